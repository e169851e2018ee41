/*
 * esmtp: the arguments of SMTP commands as a server reads them (RFC 5321 §4.1.1-2): the
 * HELO/EHLO name, the "FROM:" / "TO:" keyword before a path, and MAIL's parameters (SIZE,
 * RFC 1870; BODY, RFC 6152; AUTH, RFC 4954 §5). The paths themselves are lib/addr's.
 * It never allocates, and answers every refusal with the reply a server sends for it.
 */
#ifndef YUBIN_ESMTP_H
#define YUBIN_ESMTP_H

#include <stdint.h>

#define ESMTP_HELO_MAX 255

/* A HELO/EHLO argument: one word of printable ASCII, at most ESMTP_HELO_MAX octets. */
int esmtp_helo_ok(const char *arg);

/* arg after keyword ("FROM:", "TO:", any case) and optional spaces (a common client habit),
 * or NULL when arg does not start with it. */
const char *esmtp_after_keyword(const char *arg, const char *keyword);

struct esmtp_params {
    int have_size, have_body;
    uint64_t size;
};

/* Parses " KEY=VALUE ..." after MAIL's path (rest is cut up). ehlo: the session said EHLO;
 * auth: AUTH is offered (AUTH= is then accepted and ignored). NULL, or the reply refusing
 * the command ("555 5.5.4 unsupported parameter"). */
const char *esmtp_mail_params(char *rest, int ehlo, int auth, struct esmtp_params *p);

#endif
