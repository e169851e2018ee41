/*
 * sasl: decoding of the SASL PLAIN (RFC 4616) and LOGIN mechanisms, shared by pop3-in
 * (RFC 5034) and SMTP submission (RFC 4954). Protocol-neutral: it turns base64 text into
 * credentials and back, and never decides anything about the login, never logs, and wipes
 * what it decoded when asked (sasl_creds_wipe).
 */
#ifndef YUBIN_SASL_H
#define YUBIN_SASL_H

#include <stddef.h>

#define SASL_NAME_SIZE 256
#define SASL_PASSWORD_SIZE 1024

/* The base64 challenges of the LOGIN mechanism ("Username:" and "Password:"). */
#define SASL_LOGIN_USER_CHALLENGE "VXNlcm5hbWU6"
#define SASL_LOGIN_PASS_CHALLENGE "UGFzc3dvcmQ6"

struct sasl_creds {
    char authzid[SASL_NAME_SIZE];    /* "" when the client sent none */
    char authcid[SASL_NAME_SIZE];    /* the login name */
    char passwd[SASL_PASSWORD_SIZE]; /* NUL-terminated; never logged */
    size_t passwd_len;
};

/* Is the client's line the cancel token "*"? */
int sasl_is_cancel(const char *line);

/* Decodes standard base64 (with padding; no white space) into out (outsize bytes). "=" alone
 * is the empty string (an empty initial response). Returns the decoded length, or -1 for bad
 * base64 or if it does not fit. */
long sasl_b64_decode(const char *in, unsigned char *out, size_t outsize);
/* Encodes len bytes as standard base64 into out. 0 or -1 if it does not fit. */
int sasl_b64_encode(char *out, size_t outsize, const unsigned char *in, size_t len);

/* PLAIN: base64 of [authzid] NUL authcid NUL passwd. Fills c. 0, or -1 if malformed (bad
 * base64, not exactly two NULs, empty authcid or password, a field too long). c is wiped on
 * failure. */
int sasl_plain_decode(const char *b64, struct sasl_creds *c);

/* LOGIN: one base64 answer (the user name or the password) into out, NUL-terminated.
 * Returns its length, or -1 if malformed (bad base64, a NUL inside, too long). */
long sasl_login_decode(const char *b64, char *out, size_t outsize);

/* Wipes every field (sodium_memzero). */
void sasl_creds_wipe(struct sasl_creds *c);

#endif
