/*
 * trace: Return-Path, Received, Date and Message-ID header text (see trace.h). Everything is
 * formatted into the caller's bounded buffer; nothing is allocated. It must never produce a
 * header line of 998 octets or more, nor pass on a control character from the client.
 */
#include "config.h"

#include <string.h>

#include "trace.h"
#include "util.h"

#define TRACE_LINE_MAX 997 /* octets before the LF */

/* No control characters (and so no CR or LF) in s. */
static int clean(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 32 || *s == 127)
            return 0;
    return 1;
}

/* Every line of buf is at most TRACE_LINE_MAX octets. */
static int lines_fit(const char *buf)
{
    for (const char *nl; (nl = strchr(buf, '\n')) != NULL; buf = nl + 1)
        if (nl - buf > TRACE_LINE_MAX)
            return 0;
    return strlen(buf) <= TRACE_LINE_MAX;
}

int trace_date(char *buf, size_t size, time_t when)
{
    struct tm tm;
    if (localtime_r(&when, &tm) == NULL)
        return -1;
    size_t n = strftime(buf, size, "%a, %d %b %Y %H:%M:%S %z", &tm);
    return n == 0 ? -1 : (int)n;
}

int trace_received(char *buf, size_t size, const struct trace_received *t)
{
    char date[64];
    if (!clean(t->helo) || !clean(t->client) || !clean(t->hostname) || !clean(t->protocol) ||
        !clean(t->id) || (t->rcpt != NULL && !clean(t->rcpt)) ||
        (t->tls != NULL && !clean(t->tls)) || trace_date(date, sizeof date, t->when) < 0)
        return -1;
    const char *u1 = t->tls != NULL ? "\n\t(using " : "", *u2 = t->tls != NULL ? ")" : "";
    const char *tls = t->tls != NULL ? t->tls : "";
    int n;
    if (t->rcpt != NULL)
        n = str_format(buf, size,
                       "Received: from %s (%s)%s%s%s\n\tby %s (yubin) with %s id %s\n"
                       "\tfor <%s>; %s\n",
                       t->helo, t->client, u1, tls, u2, t->hostname, t->protocol, t->id, t->rcpt,
                       date);
    else
        n = str_format(buf, size,
                       "Received: from %s (%s)%s%s%s\n\tby %s (yubin) with %s id %s;\n\t%s\n",
                       t->helo, t->client, u1, tls, u2, t->hostname, t->protocol, t->id, date);
    if (n < 0 || !lines_fit(buf))
        return -1;
    return n;
}

int trace_return_path(char *buf, size_t size, const char *sender)
{
    if (!clean(sender))
        return -1;
    int n = str_format(buf, size, "Return-Path: <%s>\n", sender);
    if (n < 0 || !lines_fit(buf))
        return -1;
    return n;
}

int trace_message_id(char *buf, size_t size, const char *hostname)
{
    char rnd[17];
    if (!clean(hostname))
        return -1;
    random_hex16(rnd);
    return str_format(buf, size, "<%lld.%s@%s>", (long long)time(NULL), rnd, hostname);
}
