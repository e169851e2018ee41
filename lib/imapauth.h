/*
 * imapauth: logging in to imap4-in: LOGIN (RFC 3501 §6.2.3) and AUTHENTICATE PLAIN (RFC 4616)
 * with an initial response (SASL-IR, RFC 4959), checked by the password service (lib/authc)
 * as pop3-in does, with the same delays and count of failures; then the user's Maildir made
 * if missing, with its special folders (lib/mailbox).
 * It must never log or keep a password (the command buffer and the SASL data are wiped by
 * the caller and here), and never take a login over plaintext unless imapauth_allowed says so.
 */
#ifndef YUBIN_IMAPAUTH_H
#define YUBIN_IMAPAUTH_H

#include "imapsess.h"

/* May the client log in now: over TLS, from loopback or a pipe, or with auth_without_tls. */
int imapauth_allowed(const struct imapsess *s);

/* LOGIN and AUTHENTICATE: 1 when the client is now logged in (state AUTH, s->user and
 * s->root set; the caller sends the tagged OK [CAPABILITY ...]), 0 after a tagged NO or BAD,
 * -1 when the session must end (the connection failed, or too many failures: * BYE sent). */
int imapauth_login(struct imapsess *s, struct imaptok *args);
int imapauth_authenticate(struct imapsess *s, struct imaptok *args);

#endif
