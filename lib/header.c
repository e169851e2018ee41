/*
 * header.c: the header section of a message from a local program (see header.h), read with
 * getc into the caller's fixed buffers; nothing is allocated.
 */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "header.h"

/* Reads one line (through its LF) into buf, at most size octets. Returns its length, 0 at
 * end of input, -1 on a read error, -2 when it does not fit. */
static long read_line(FILE *in, char *buf, size_t size)
{
    size_t n = 0;
    int c;
    while (n < size && (c = getc(in)) != EOF) {
        buf[n++] = (char)c;
        if (c == '\n')
            return (long)n;
    }
    if (n == size)
        return -2;
    return ferror(in) ? -1 : (long)n;
}

static int is_lone_dot(const char *l, size_t n)
{
    return (n == 2 && l[0] == '.' && l[1] == '\n') ||
           (n == 3 && l[0] == '.' && l[1] == '\r' && l[2] == '\n');
}

/* Does this line start a header field ("Name:" with printable name)? */
static int is_field(const char *l, size_t n)
{
    size_t i = 0;
    while (i < n && l[i] > ' ' && l[i] < 0x7f && l[i] != ':')
        i++;
    if (i == 0)
        return 0;
    while (i < n && (l[i] == ' ' || l[i] == '\t'))
        i++;
    return i < n && l[i] == ':';
}

int header_read(struct header *h, FILE *in, int dots_end, char *line, size_t size, long *line_len,
                struct deliver_text *scan)
{
    int first = 1;
    *line_len = 0;
    for (;;) {
        long n = read_line(in, line, size);
        if (n < 0)
            return n == -1 ? HEADER_IOERR : HEADER_TOOLONG;
        deliver_text_scan(scan, line, (size_t)n);
        if (n == 0 || (dots_end && is_lone_dot(line, (size_t)n))) {
            h->ended = 1;
            return 0;
        }
        if (line[n - 1] == '\n' && n >= 2 && line[n - 2] == '\r')
            line[--n - 1] = '\n';
        if (line[n - 1] != '\n') /* the last line, without LF: read_line left room */
            line[n++] = '\n';
        if (first && n >= 5 && memcmp(line, "From ", 5) == 0) { /* an mbox "From " line */
            first = 0;
            continue;
        }
        if (line[0] == '\n')
            return 0;
        if (!is_field(line, (size_t)n) && (h->len == 0 || (line[0] != ' ' && line[0] != '\t'))) {
            h->no_blank = 1;
            *line_len = n;
            return 0;
        }
        first = 0;
        if (h->len + (size_t)n > sizeof h->buf)
            return HEADER_TOOLONG;
        memcpy(h->buf + h->len, line, (size_t)n);
        h->len += (size_t)n;
    }
}

int header_next_field(const struct header *h, size_t *pos, size_t *start, size_t *end,
                      size_t *name_len)
{
    size_t p = *pos;
    if (p >= h->len)
        return 0;
    *start = p;
    while (p < h->len) {
        const char *nl = memchr(h->buf + p, '\n', h->len - p);
        p = nl != NULL ? (size_t)(nl - h->buf) + 1 : h->len;
        if (p >= h->len || (h->buf[p] != ' ' && h->buf[p] != '\t'))
            break;
    }
    *end = *pos = p;
    size_t n = 0;
    while (*start + n < p && h->buf[*start + n] != ':' && h->buf[*start + n] != ' ' &&
           h->buf[*start + n] != '\t')
        n++;
    *name_len = n;
    return 1;
}

int header_name_is(const struct header *h, size_t start, size_t n, const char *name)
{
    return strlen(name) == n && strncasecmp(h->buf + start, name, n) == 0;
}

int header_is_bcc(const struct header *h, size_t s, size_t n)
{
    return header_name_is(h, s, n, "Bcc") || header_name_is(h, s, n, "Resent-Bcc");
}

void header_note_fields(struct header *h)
{
    size_t pos = 0, s, e, n;
    while (header_next_field(h, &pos, &s, &e, &n)) {
        h->has_from |= header_name_is(h, s, n, "From");
        h->has_date |= header_name_is(h, s, n, "Date");
        h->has_msgid |= header_name_is(h, s, n, "Message-ID");
        h->has_resent |= header_name_is(h, s, n, "Resent-To") ||
                         header_name_is(h, s, n, "Resent-Cc") ||
                         header_name_is(h, s, n, "Resent-Bcc");
    }
}
