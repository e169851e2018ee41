/*
 * imapsel: the commands of imap4-in about the selected folder (RFC 3501 §6.3.1-2, §6.4):
 * SELECT and EXAMINE, CLOSE, UNSELECT (RFC 3691), EXPUNGE and UID EXPUNGE (RFC 4315), CHECK,
 * and IDLE (RFC 2177), through lib/mailbox; run functions for bin/imap4-in.c's table.
 * It must never change a folder opened with EXAMINE, report an EXPUNGE out of order (each
 * sequence number is right when it is sent), or keep the client in IDLE past imap_timeout.
 */
#ifndef YUBIN_IMAPSEL_H
#define YUBIN_IMAPSEL_H

#include "imapsess.h"

/* SELECT and EXAMINE (s->cmd says which). */
int imapsel_select(struct imapsess *s, struct imaptok *args);
int imapsel_close(struct imapsess *s, struct imaptok *args);
int imapsel_unselect(struct imapsess *s, struct imaptok *args);
/* EXPUNGE, and UID EXPUNGE <set> when s->uid. */
int imapsel_expunge(struct imapsess *s, struct imaptok *args);
/* IDLE: "+ idling", then untagged updates as the folder changes (an inotify watch, so a
 * delivery is announced at once), until DONE. */
int imapsel_idle(struct imapsess *s, struct imaptok *args);

#endif
