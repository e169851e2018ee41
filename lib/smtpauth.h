/*
 * smtpauth: the server side of one SMTP AUTH exchange (RFC 4954) with the PLAIN and LOGIN
 * mechanisms: the 334 challenges, the client's responses, the password check by yubin-auth
 * (lib/authc), the 235/535/454/501 replies, the log lines and the delays and count of failed
 * logins. smtp-in decides whether AUTH may be used at all; this module runs the exchange.
 *
 * It must never log or keep a password, leave one in a buffer it was given (the caller wipes
 * line and its input buffer), or close the connection itself: it tells the caller how the
 * session goes on.
 */
#ifndef YUBIN_SMTPAUTH_H
#define YUBIN_SMTPAUTH_H

#include <stddef.h>

#include "conf.h"
#include "netio.h"
#include "sasl.h"

struct smtpauth {
    struct netio *io;
    const struct yubin_conf *conf; /* hostname, auth_delay_ms, max_auth_failures, the service */
    const char *client;            /* for the log */
    unsigned failures;             /* failed logins in this session */
    char login[SASL_NAME_SIZE];    /* the authenticated mailbox, or "" */
};

enum smtpauth_result {
    SMTPAUTH_OK,      /* 235 sent: a->login is set */
    SMTPAUTH_REFUSED, /* a 4xx/5xx reply was sent; it counts towards max_errors */
    SMTPAUTH_CLOSE,   /* 421 sent (timeout, too many failed logins): close the connection */
    SMTPAUTH_EOF,     /* the client went away in the middle of the exchange */
    SMTPAUTH_BARE,    /* a bare CR or LF in a response: refuse it and close */
};

/* Runs AUTH mechanism [initial] (initial: the initial response, or NULL). line (size octets)
 * holds the client's responses; the caller wipes it afterwards. */
enum smtpauth_result smtpauth_run(struct smtpauth *a, const char *mechanism, const char *initial,
                                  char *line, size_t size);

#endif
