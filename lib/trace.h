/*
 * trace: the header lines a handler adds to a message it accepts: Return-Path (RFC 5321
 * §4.4), Received (RFC 5321 §4.4, RFC 5322 §3.6.7), Date and Message-ID (RFC 5322 §3.6).
 * Lines end in LF (messages are stored with LF, DESIGN.md §3) and are folded so none reaches
 * 998 octets. It never copies a CR or LF from its inputs into a header: such input is refused.
 */
#ifndef YUBIN_TRACE_H
#define YUBIN_TRACE_H

#include <stddef.h>
#include <time.h>

struct trace_received {
    const char *helo;     /* the client's EHLO/HELO argument */
    const char *client;   /* "[192.0.2.1]", "[IPv6:2001:db8::1]" or "local" */
    const char *hostname; /* our name */
    const char *protocol; /* "SMTP", "ESMTP", "ESMTPA", "ESMTPS", "ESMTPSA" (RFC 3848) */
    const char *id;       /* the message id in our logs */
    const char *rcpt;     /* the one recipient, or NULL when there are several */
    time_t when;
    const char *tls; /* "TLSv1.3 with cipher ... (256/256 bits)" (lib/tls), or NULL */
};

/* "Received: from ...\n\t(using TLS...)\n\tby ...\n\t...; <date>\n" (the "using" line, as
 * Postfix writes it, only over TLS). Returns the length, or -1 (does not fit,
 * or an input holds a CR, LF or another control character). */
int trace_received(char *buf, size_t size, const struct trace_received *t);
/* "Return-Path: <sender>\n" (sender "" for the null path). Length or -1. */
int trace_return_path(char *buf, size_t size, const char *sender);
/* An RFC 5322 date-time in local time: "Mon, 23 Nov 2026 02:20:53 +0000". Length or -1. */
int trace_date(char *buf, size_t size, time_t when);
/* A new "<time.random@hostname>" for a Message-ID header. Length or -1. */
int trace_message_id(char *buf, size_t size, const char *hostname);

#endif
