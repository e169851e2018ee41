/*
 * authc: the handlers' side of the password service, yubin-auth(8). pop3-in and smtp-in ask
 * it to check a login, and lib/route asks it whether a mailbox exists, over the local stream
 * socket `auth_socket`; the handlers never open the users file. One connection per process,
 * opened on first need and kept. Every answer has a deadline. It never logs or keeps a
 * password (the request buffer is wiped), and a service that is down or slow is a temporary
 * failure with a reason, never a crash or a hang.
 *
 * The protocol (yubin-auth(8)): one request line, one answer line, LF-terminated, at most
 * AUTHC_LINE_MAX octets; names and passwords go base64-encoded:
 *   PASS <service> <client-address> <base64 user> <base64 password>
 *       -> OK <mailbox> <delay-ms>  |  NO <delay-ms> <failures>  |  TEMP <text>
 *   USER <base64 user>
 *       -> OK <mailbox>  |  NO  |  TEMP <text>
 * Anything malformed is answered BAD <text> and the connection is closed.
 */
#ifndef YUBIN_AUTHC_H
#define YUBIN_AUTHC_H

#include <stddef.h>

#include "conf.h"

#define AUTHC_LINE_MAX 2048
#define AUTHC_NAME_MAX 255 /* a user name, before encoding */
#define AUTHC_PASSWORD_MAX 1024
#define AUTHC_CLIENT_MAX 63 /* a client address token */

struct authc_answer {
    char mailbox[AUTHC_NAME_MAX + 1]; /* OK: the mailbox as the users file names it */
    unsigned long delay_ms;           /* how long the service held the request for failures */
    unsigned failures;                /* NO: failures counted for this client address */
    char why[300];                    /* TEMP: what went wrong, for the log */
};

/* Checks user's password. service is "pop3" or "smtp", client the address the handler got
 * from its socket ("local" on pipes). 1 correct (a->mailbox set), 0 wrong or no such user,
 * -1 temporary failure (a->why set: the service is down, busy or cannot read the file). */
int authc_login(const struct yubin_conf *c, const char *service, const char *client,
                const char *user, const char *password, size_t pwlen, struct authc_answer *a);
/* A failed login in pop3-in or imap4-in: counts it in *failures, waits c->auth_delay_ms,
 * doubled for each earlier failure (at most 60 s), unless the service already held the request
 * held_ms (>= 0), and logs it with who (the user name tried), client and why. The caller
 * replies. */
void authc_failed(const struct yubin_conf *c, unsigned *failures, const char *client,
                  const char *who, const char *why, long held_ms);

/* Is user a mailbox? 1 yes (mailbox filled, if not NULL), 0 no, -1 temporary failure (why
 * filled, if not NULL). */
int authc_user(const struct yubin_conf *c, const char *user, char *mailbox, size_t mailbox_size,
               char *why, size_t why_size);

/* Closes the kept connection (before a fork, say). */
void authc_close(void);

#endif
