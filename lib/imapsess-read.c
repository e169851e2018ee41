/*
 * imapsess-read: one IMAP command off the connection (lib/imapsess.h): its lines, each under
 * IMAP_LINE_MAX and ending in CRLF, and the literals they announce ("{n}" synchronising: the
 * client waits for "+"; "{n+}" RFC 7888: it does not), joined into one bounded buffer for
 * lib/imaptok; and the message literal of APPEND (a literal or, RFC 3516, a literal8 "~{n}"),
 * left on the connection for the command to stream (imapsess_literal_*).
 *
 * It must never send "+" for a literal it will not take, read a refused command's unasked
 * {n+} literal as commands (it is read through and dropped), take a bare CR or LF as a line
 * end (the session is closed: RFC 9051 §2.2 wants CRLF), or copy past the caller's buffer.
 */
#include "config.h"

#include <string.h>

#include "imapsess.h"
#include "log.h"
#include "util.h"

/* tag = 1*<any ASTRING-CHAR except "+"> (RFC 3501 §9). */
static int tag_char(int c)
{
    return c > 0x20 && c < 0x7f && strchr("(){%*\"\\+", c) == NULL;
}

/* The length of the tag at t, or 0 when there is no valid one. */
static size_t tag_length(const struct imaptok *t)
{
    const char *p = t->p;
    while (p < t->end && tag_char((unsigned char)*p))
        p++;
    size_t n = (size_t)(p - t->p);
    return n > IMAP_TAG_MAX || (p < t->end && *p != ' ') ? 0 : n;
}

int imapsess_take_tag(struct imapsess *s, struct imaptok *t)
{
    size_t n = tag_length(t);
    if (n == 0) {
        str_copy(s->tag, sizeof s->tag, "*");
        return -1;
    }
    memcpy(s->tag, t->p, n);
    s->tag[n] = '\0';
    t->p += n;
    return 0;
}

/* Reads and drops n octets of a literal. 0, NETIO_TIMEOUT or NETIO_ERROR. */
static long skip(struct imapsess *s, uint64_t n)
{
    char buf[4096];
    while (n > 0) {
        size_t k = n > sizeof buf ? sizeof buf : (size_t)n;
        long r = netio_read(&s->io, buf, k);
        if (r <= 0)
            return r == 0 ? NETIO_ERROR : r;
        n -= (uint64_t)r;
    }
    return 0;
}

/* One line of a command: CRLF removed, *len set. 1, 0 when the session must end (BYE sent:
 * too long, a bare CR or LF), NETIO_TIMEOUT, or NETIO_ERROR (also when the client closed). */
static long command_line(struct imapsess *s, char *line, size_t size, size_t *len)
{
    long r = netio_getline(&s->io, line, size);
    if (r == NETIO_TOOLONG) {
        imapsess_untagged(s, "BYE command line too long (%d octets at most)", IMAP_LINE_MAX);
        log_msg(LOG_NOTICE, "client=%s command line too long: closing", s->client);
        s->done = 1;
        return 0;
    }
    if (r <= 0)
        return r == NETIO_EOF ? NETIO_ERROR : r;
    size_t l = (size_t)r;
    if (line[l - 1] != '\n')
        return NETIO_ERROR; /* a last line without its CRLF: the client is gone */
    if (l < 2 || line[l - 2] != '\r' || memchr(line, '\r', l - 2) != NULL) {
        imapsess_untagged(s, "BYE bare CR or LF in a command line, closing the connection");
        log_msg(LOG_NOTICE, "client=%s bare CR or LF in a command: closing", s->client);
        s->done = 1;
        return 0;
    }
    *len = l - 2;
    line[*len] = '\0';
    return 1;
}

/* After a refused line: the {n+} literals the client sends without asking, and the lines
 * after them, are read through to the command's end. 0, or a NETIO_* code (or 0 with
 * s->done). */
static long discard_rest(struct imapsess *s, const char *first, size_t first_len)
{
    char line[IMAP_LINE_MAX];
    uint32_t n;
    int nonsync;
    size_t len = first_len < sizeof line ? first_len : sizeof line - 1;
    memcpy(line, first, len);
    while (imaptok_line_literal(line, len, &n, &nonsync) == 1 && nonsync) {
        long r = skip(s, n);
        if (r == 0)
            r = command_line(s, line, sizeof line, &len);
        if (r <= 0)
            return r;
    }
    return 0;
}

/* APPEND's message literal: the one after "mailbox SP [flag-list SP] [date-time SP]". */
static int append_prefix(const char *args, size_t len)
{
    struct imaptok t;
    char name[IMAP_FOLDER_MAX];
    size_t n;
    time_t when;
    imaptok_init(&t, args, len);
    if (imaptok_astring(&t, name, sizeof name, &n) != 0 || imaptok_space(&t) != 0)
        return 0;
    if (imaptok_char(&t, '(') == 0) {
        const char *f;
        while (imaptok_flag(&t, &f, &n) == 0 && imaptok_space(&t) == 0)
            ;
        if (imaptok_char(&t, ')') != 0 || imaptok_space(&t) != 0)
            return 0;
    }
    if (imaptok_date_time(&t, &when) == 0 && imaptok_space(&t) != 0)
        return 0;
    return imaptok_at_end(&t);
}

/* The table entry of the command the first line names ("tag NAME" or "tag UID NAME"). */
static const struct imapcmd *first_command(const char *line, size_t len,
                                           const struct imapcmd *(*lookup)(const char *, int))
{
    struct imaptok t;
    const char *w;
    size_t n;
    char name[32];
    int uid = 0;
    imaptok_init(&t, line, len);
    size_t tag = tag_length(&t);
    t.p += tag;
    if (tag == 0 || imaptok_space(&t) != 0 || imaptok_atom(&t, &w, &n) != 0)
        return NULL;
    if (n == 3 && strncasecmp(w, "UID", 3) == 0) {
        uid = 1;
        if (imaptok_space(&t) != 0 || imaptok_atom(&t, &w, &n) != 0)
            return NULL;
    }
    if (n >= sizeof name)
        return NULL;
    for (size_t i = 0; i < n; i++)
        name[i] = (char)((w[i] >= 'a' && w[i] <= 'z') ? w[i] - 32 : w[i]);
    name[n] = '\0';
    return lookup(name, uid);
}

/* Where the arguments of a command without a UID form start: after "tag SP NAME SP". */
static size_t args_offset(const char *buf, size_t len)
{
    size_t spaces = 0, i;
    for (i = 0; i < len && spaces < 2; i++)
        spaces += buf[i] == ' ';
    return i;
}

/* A refused command: the reply, then its unasked literals read through. */
static long refuse(struct imapsess *s, const char *line, size_t len, const char *status,
                   const char *text)
{
    if (strcmp(status, "NO") == 0)
        imapsess_no(s, "%s", text);
    else
        imapsess_bad(s, "%s", text);
    long r = discard_rest(s, line, len);
    return r < 0 ? r : 0;
}

/* The message literal of APPEND announced at the end of the assembled buf[0..used). */
static long stream_literal(struct imapsess *s, const char *line, size_t len, uint32_t n,
                           int nonsync, int binary)
{
    if (n > s->conf.max_message_size) {
        log_msg(LOG_NOTICE, "client=%s APPEND of %u octets refused (max_message_size)", s->client,
                n);
        return refuse(s, line, len, "NO", "[TOOBIG] message too large");
    }
    s->lit.size = s->lit.left = n;
    s->lit.nonsync = nonsync;
    s->lit.binary = binary;
    s->lit.pending = 1;
    return 1;
}

int imapsess_read_command(struct imapsess *s, char *buf, size_t size, size_t *len,
                          const struct imapcmd *(*lookup)(const char *name, int uid))
{
    char line[IMAP_LINE_MAX];
    size_t used = 0, l;
    const struct imapcmd *stream = NULL;
    memset(&s->lit, 0, sizeof s->lit);
    str_copy(s->tag, sizeof s->tag, "*");
    s->replied = s->uid = 0;
    s->cmd_flags = 0;
    for (int first = 1;; first = 0) {
        long r = command_line(s, line, sizeof line, &l);
        if (r <= 0)
            return (int)r;
        if (first) {
            struct imaptok t;
            imaptok_init(&t, line, l);
            if (imapsess_take_tag(s, &t) != 0)
                return (int)refuse(s, line, l, "BAD",
                                   l == 0 ? "empty command line" : "invalid tag");
            const struct imapcmd *c = first_command(line, l, lookup);
            stream = c != NULL && (c->flags & IMAPCMD_STREAM) ? c : NULL;
        }
        if (memchr(line, '\0', l) != NULL)
            return (int)refuse(s, line, l, "BAD", "NUL octet in the command");
        uint32_t n;
        int nonsync, lit = imaptok_line_literal(line, l, &n, &nonsync);
        if (lit < 0)
            return (int)refuse(s, line, l, "BAD", "malformed literal");
        if (used + l + 2 >= size)
            return (int)refuse(s, line, l, "BAD", "[TOOBIG] command too long");
        memcpy(buf + used, line, l);
        used += l;
        if (lit == 0) {
            *len = used;
            return 1;
        }
        size_t brace = used - 1;
        while (buf[brace] != '{')
            brace--;
        int lit8 = brace > used - l && buf[brace - 1] == '~'; /* "~{n}": literal8 */
        size_t start = brace - (size_t)lit8;
        if (stream != NULL) {
            size_t a = args_offset(buf, start);
            if (a <= start && append_prefix(buf + a, start - a)) {
                *len = start;
                return (int)stream_literal(s, line, l, n, nonsync, lit8);
            }
        }
        if (lit8)
            return (int)refuse(s, line, l, "BAD", "literal8 (~{n}) is only for APPEND's message");
        if (used + 2 + (uint64_t)n + 2 >= size)
            return (int)refuse(s, line, l, nonsync ? "BAD" : "NO", "[TOOBIG] literal too large");
        if (!nonsync &&
            (netio_puts(&s->io, "+ Ready for literal data\r\n") != 0 || netio_flush(&s->io) != 0))
            return NETIO_ERROR;
        memcpy(buf + used, "\r\n", 2);
        used += 2;
        if (n > 0) {
            r = netio_read(&s->io, buf + used, n);
            if (r <= 0)
                return r == 0 ? NETIO_ERROR : (int)r;
        }
        used += n;
    }
}

/* ---- APPEND's literal ---- */

int imapsess_literal_begin(struct imapsess *s)
{
    s->lit.begun = 1;
    if (s->lit.nonsync)
        return 0;
    if (netio_puts(&s->io, "+ Ready for literal data\r\n") != 0 || netio_flush(&s->io) != 0)
        return -1;
    return 0;
}

long imapsess_literal_read(struct imapsess *s, char *buf, size_t size)
{
    if (s->lit.left == 0)
        return 0;
    size_t k = s->lit.left < size ? (size_t)s->lit.left : size;
    long r = netio_read(&s->io, buf, k);
    if (r <= 0)
        return r == 0 ? NETIO_ERROR : r;
    s->lit.left -= (uint64_t)r;
    return r;
}

int imapsess_literal_end(struct imapsess *s)
{
    char line[IMAP_LINE_MAX];
    size_t len;
    if (s->lit.left > 0 && skip(s, s->lit.left) != 0)
        return -1;
    s->lit.left = 0;
    s->lit.ended = 1;
    long r = command_line(s, line, sizeof line, &len);
    if (r <= 0)
        return -1;
    if (len == 0)
        return 0;
    return discard_rest(s, line, len) < 0 || s->done ? -1 : 1;
}

/* After the command: a literal it did not take is read through (only an unasked {n+} one is
 * on its way; a synchronising one is never sent without "+"). 0, or -1: the session ends. */
int imapsess_literal_finish(struct imapsess *s)
{
    if (!s->lit.pending || s->lit.ended)
        return 0;
    if (!s->lit.begun && !s->lit.nonsync)
        return 0;
    return imapsess_literal_end(s) < 0 ? -1 : 0;
}
