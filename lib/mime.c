/*
 * lib/mime.c: the streaming half of lib/mime: reads a message line by line in bounded chunks
 * and builds the part tree (spans, line counts, raw field values), and resolves section
 * specifiers. The rendering of BODYSTRUCTURE and ENVELOPE is in mime-render.c.
 *
 * It must never keep more of the message than one chunk, one line prefix and one field
 * (MIME_MAX_FIELD), never allocate past the MIME_MAX_* bounds, and never fail on bad input:
 * what it cannot follow becomes a leaf body (see MIME_DEG_* in mime.h).
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mime-int.h"
#include "mime.h"

struct open_part {
    int part;
    int multi;  /* a multipart whose boundary is looked for */
    int closed; /* its close delimiter was seen: the rest is epilogue */
    size_t blen;
    char boundary[MIME_MAX_BOUNDARY + 1];
};

struct parser {
    struct mime_tree *t;
    mime_reader rd;
    void *arg;
    unsigned char chunk[MIME_CHUNK];
    size_t c_pos, c_len;
    int eof;
    char line[MIME_MAX_FIELD]; /* the kept prefix of the current line */
    size_t keep;               /* octets kept */
    uint64_t l_len;            /* octets of the line before its LF */
    unsigned term;             /* 1: the line ends with LF; 0: the last, unterminated */
    struct open_part open[MIME_MAX_DEPTH];
    int n_open;
    int in_header;             /* the innermost open part is in its header section */
    uint64_t lf, crlf, nlines; /* where the current line starts; lines before it */
    unsigned prev_term;
    uint64_t prev_len;
    char field[MIME_MAX_FIELD]; /* the header field being unfolded */
    size_t f_len;
};

static const struct {
    const char *name;
    enum mime_field f;
} fields[] = {
    {"content-type", MIME_F_CONTENT_TYPE},
    {"content-transfer-encoding", MIME_F_ENCODING},
    {"content-id", MIME_F_ID},
    {"content-description", MIME_F_DESCRIPTION},
    {"content-disposition", MIME_F_DISPOSITION},
    {"content-language", MIME_F_LANGUAGE},
    {"content-location", MIME_F_LOCATION},
    {"content-md5", MIME_F_MD5},
    {"date", MIME_F_DATE},
    {"subject", MIME_F_SUBJECT},
    {"from", MIME_F_FROM},
    {"sender", MIME_F_SENDER},
    {"reply-to", MIME_F_REPLY_TO},
    {"to", MIME_F_TO},
    {"cc", MIME_F_CC},
    {"bcc", MIME_F_BCC},
    {"in-reply-to", MIME_F_IN_REPLY_TO},
    {"message-id", MIME_F_MESSAGE_ID},
};

/* Keeps len octets of s (CR and NUL dropped) in the tree's strings: 1 + offset, or 0. */
uint32_t mime_store(struct mime_tree *t, const char *s, size_t len)
{
    if (t->s_len + len + 1 > MIME_MAX_STRINGS) {
        t->degraded |= MIME_DEG_STRINGS;
        return 0;
    }
    if (t->s_len + len + 1 > t->s_cap) {
        size_t cap = t->s_cap ? t->s_cap : 1024;
        while (cap < t->s_len + len + 1)
            cap *= 2;
        if (cap > MIME_MAX_STRINGS)
            cap = MIME_MAX_STRINGS;
        char *n = realloc(t->strings, cap);
        if (n == NULL)
            return 0;
        t->strings = n;
        t->s_cap = cap;
    }
    size_t at = t->s_len;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '\r' && s[i] != '\0')
            t->strings[t->s_len++] = s[i];
    t->strings[t->s_len++] = '\0';
    return (uint32_t)at + 1;
}

const char *mime_str(const struct mime_tree *t, uint32_t ref)
{
    return ref ? t->strings + ref - 1 : NULL;
}

const char *mime_field_value(const struct mime_tree *t, int i, enum mime_field f)
{
    if (i < 0 || (size_t)i >= t->n || f >= MIME_F_COUNT)
        return NULL;
    return mime_str(t, t->parts[i].field[f]);
}

/* A new part, last child of parent (-1: the root), its header starting at the next line. */
static int new_part(struct parser *ps, int parent, uint64_t lf, uint64_t crlf)
{
    struct mime_tree *t = ps->t;
    if (t->n >= MIME_MAX_PARTS) {
        t->degraded |= MIME_DEG_PARTS;
        return -1;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        if (cap > MIME_MAX_PARTS)
            cap = MIME_MAX_PARTS;
        struct mime_part *n = realloc(t->parts, cap * sizeof *n);
        if (n == NULL)
            return -2;
        t->parts = n;
        t->cap = cap;
    }
    int i = (int)t->n++;
    struct mime_part *p = &t->parts[i];
    memset(p, 0, sizeof *p);
    p->parent = parent;
    p->child = p->next = p->last_child = -1;
    p->header.off = lf;
    p->header.crlf_off = crlf;
    p->is_message = parent < 0;
    if (parent >= 0) {
        struct mime_part *up = &t->parts[parent];
        p->depth = (unsigned short)(up->depth + 1);
        if (up->last_child >= 0)
            t->parts[up->last_child].next = i;
        else
            up->child = i;
        up->last_child = i;
    }
    return i;
}

static void flush_field(struct parser *ps)
{
    struct mime_part *p = &ps->t->parts[ps->open[ps->n_open - 1].part];
    char *colon = memchr(ps->field, ':', ps->f_len);
    size_t n = colon ? (size_t)(colon - ps->field) : 0;
    while (n > 0 && (ps->field[n - 1] == ' ' || ps->field[n - 1] == '\t'))
        n--;
    for (size_t k = 0; colon && k < sizeof fields / sizeof fields[0]; k++) {
        if (strlen(fields[k].name) != n || strncasecmp(fields[k].name, ps->field, n) != 0)
            continue;
        if (p->field[fields[k].f] || (fields[k].f >= MIME_F_DATE && !p->is_message))
            break;
        const char *v = colon + 1, *end = ps->field + ps->f_len;
        while (v < end && (*v == ' ' || *v == '\t' || *v == '\r'))
            v++;
        while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
            end--;
        p->field[fields[k].f] = mime_store(ps->t, v, (size_t)(end - v));
        break;
    }
    ps->f_len = 0;
}

static void field_add(struct parser *ps, const char *s, size_t len, uint64_t full)
{
    if (full > len)
        ps->t->degraded |= MIME_DEG_FIELD;
    if (len > sizeof ps->field - ps->f_len) {
        len = sizeof ps->field - ps->f_len;
        ps->t->degraded |= MIME_DEG_FIELD;
    }
    memcpy(ps->field + ps->f_len, s, len);
    ps->f_len += len;
}

/* The content type of a part whose header is complete: kind, type and subtype. */
static void finish_header(struct parser *ps, int i)
{
    struct mime_tree *t = ps->t;
    struct mime_part *p = &t->parts[i];
    const char *ct = mime_str(t, p->field[MIME_F_CONTENT_TYPE]);
    struct mime_ctype c;
    if (ct != NULL && mime_parse_ctype(ct, &c) == 0) {
        char ty[128], st[128]; /* copies: storing may move ct */
        size_t tl = c.type_len < sizeof ty ? c.type_len : sizeof ty - 1;
        size_t sl = c.subtype_len < sizeof st ? c.subtype_len : sizeof st - 1;
        memcpy(ty, c.type, tl);
        memcpy(st, c.subtype, sl);
        p->type = mime_store(t, ty, tl);
        p->subtype = mime_store(t, st, sl);
    } else if (p->parent >= 0 && t->parts[p->parent].kind == MIME_MULTIPART &&
               mime_is(t, p->parent, "multipart", "digest")) {
        p->type = mime_store(t, "message", 7);
        p->subtype = mime_store(t, "rfc822", 6);
    }
    if (mime_is(t, i, "multipart", NULL))
        p->kind = MIME_MULTIPART;
    else if (mime_is(t, i, "message", "rfc822"))
        p->kind = MIME_MESSAGE;
}

static void set_end(struct mime_span *s, uint64_t lf, uint64_t crlf)
{
    s->len = lf > s->off ? lf - s->off : 0;
    s->crlf_len = crlf > s->crlf_off ? crlf - s->crlf_off : 0;
}

/* Ends part i's body (or header) where a boundary line starts (at_boundary) or at the end. */
static void close_part(struct parser *ps, int i, int at_boundary)
{
    struct mime_part *p = &ps->t->parts[i];
    uint64_t lf = ps->lf, crlf = ps->crlf, lines = ps->nlines;
    if (at_boundary && ps->prev_term) { /* the line end before a boundary is the boundary's */
        lf -= 1;
        crlf -= 2;
        lines -= 1;
    }
    if (ps->in_header && ps->open[ps->n_open - 1].part == i) {
        flush_field(ps);
        set_end(&p->header, lf, crlf);
        finish_header(ps, i);
        p->body.off = p->header.off + p->header.len;
        p->body.crlf_off = p->header.crlf_off + p->header.crlf_len;
        ps->in_header = 0;
        return;
    }
    set_end(&p->body, lf, crlf);
    if (p->body.len == 0)
        return;
    int open_line = at_boundary ? ps->prev_len > 0 : (!ps->prev_term && ps->prev_len > 0);
    p->lines = lines - p->start_line + (open_line ? 1 : 0);
}

/* The header of the innermost part ended with the current (blank) line: its body begins. */
static void begin_body(struct parser *ps)
{
    struct mime_tree *t = ps->t;
    struct open_part *op = &ps->open[ps->n_open - 1];
    int i = op->part;
    flush_field(ps);
    uint64_t lf = ps->lf + ps->l_len + ps->term, crlf = ps->crlf + ps->l_len + 2 * ps->term;
    set_end(&t->parts[i].header, lf, crlf);
    finish_header(ps, i);
    struct mime_part *p = &t->parts[i];
    p->body.off = lf;
    p->body.crlf_off = crlf;
    p->start_line = ps->nlines + ps->term;
    ps->in_header = 0;
    if (p->kind == MIME_MULTIPART) {
        char b[MIME_MAX_FIELD];
        size_t blen = mime_param(t, i, MIME_F_CONTENT_TYPE, "boundary", b, sizeof b);
        if (blen == 0 || blen > MIME_MAX_BOUNDARY) {
            t->degraded |= MIME_DEG_BOUNDARY;
            return;
        }
        memcpy(op->boundary, b, blen);
        op->blen = blen;
        op->multi = 1;
    } else if (p->kind == MIME_MESSAGE) {
        const char *enc = mime_str(t, p->field[MIME_F_ENCODING]);
        if (enc && (strcasecmp(enc, "base64") == 0 || strcasecmp(enc, "quoted-printable") == 0))
            return; /* not a message we can read: a leaf */
        if (ps->n_open >= MIME_MAX_DEPTH) {
            t->degraded |= MIME_DEG_DEPTH;
            return;
        }
        int c = new_part(ps, i, lf, crlf);
        if (c < 0)
            return;
        t->parts[c].is_message = 1;
        ps->open[ps->n_open++] = (struct open_part){.part = c};
        ps->in_header = 1;
    }
}

/* The open multipart whose boundary the current line is, or -1; *close for "--b--". */
static int find_boundary(const struct parser *ps, int *close)
{
    if (ps->keep < 2 || ps->line[0] != '-' || ps->line[1] != '-')
        return -1;
    for (int k = ps->n_open - 1; k >= 0; k--) {
        const struct open_part *op = &ps->open[k];
        if (!op->multi || op->closed || ps->keep < 2 + op->blen ||
            memcmp(ps->line + 2, op->boundary, op->blen) != 0)
            continue;
        const char *r = ps->line + 2 + op->blen, *end = ps->line + ps->keep;
        *close = end - r >= 2 && r[0] == '-' && r[1] == '-';
        for (r += *close ? 2 : 0; r < end && (*r == ' ' || *r == '\t' || *r == '\r'); r++)
            ;
        if (r == end) /* only transport padding after it: not "--b" of a longer "--bx" */
            return k;
    }
    return -1;
}

static void on_boundary(struct parser *ps, int k, int close)
{
    while (ps->n_open > k + 1) {
        close_part(ps, ps->open[ps->n_open - 1].part, 1);
        ps->n_open--;
    }
    ps->in_header = 0;
    if (close) {
        ps->open[k].closed = 1;
        return;
    }
    if (ps->n_open >= MIME_MAX_DEPTH) {
        ps->t->degraded |= MIME_DEG_DEPTH;
        return;
    }
    int c = new_part(ps, ps->open[k].part, ps->lf + ps->l_len + ps->term,
                     ps->crlf + ps->l_len + 2 * ps->term);
    if (c < 0)
        return;
    ps->open[ps->n_open++] = (struct open_part){.part = c};
    ps->in_header = 1;
}

static void on_line(struct parser *ps)
{
    int close = 0, k = find_boundary(ps, &close);
    if (k >= 0)
        on_boundary(ps, k, close);
    else if (ps->in_header && ps->term &&
             (ps->l_len == 0 || (ps->l_len == 1 && ps->line[0] == '\r')))
        begin_body(ps);
    else if (ps->in_header && (ps->line[0] == ' ' || ps->line[0] == '\t') && ps->f_len > 0)
        field_add(ps, ps->line, ps->keep, ps->l_len);
    else if (ps->in_header) {
        if (ps->f_len > 0)
            flush_field(ps);
        field_add(ps, ps->line, ps->keep, ps->l_len);
    }
    ps->prev_term = ps->term;
    ps->prev_len = ps->l_len;
    ps->lf += ps->l_len + ps->term;
    ps->crlf += ps->l_len + 2 * ps->term;
    ps->nlines += ps->term;
}

/* Reads the next line into ps->line (its prefix); 1, 0 at the end, -1 on a read error. */
static int next_line(struct parser *ps)
{
    ps->keep = 0;
    ps->l_len = 0;
    ps->term = 0;
    for (;;) {
        if (ps->c_pos == ps->c_len) {
            if (ps->eof)
                return ps->l_len > 0 ? 1 : 0;
            ssize_t n = ps->rd(ps->arg, ps->chunk, sizeof ps->chunk);
            if (n < 0)
                return -1;
            if (n == 0) {
                ps->eof = 1;
                continue;
            }
            ps->c_pos = 0;
            ps->c_len = (size_t)n;
        }
        unsigned char *s = ps->chunk + ps->c_pos;
        size_t avail = ps->c_len - ps->c_pos;
        unsigned char *nl = memchr(s, '\n', avail);
        size_t take = nl ? (size_t)(nl - s) : avail;
        size_t room = sizeof ps->line - ps->keep;
        memcpy(ps->line + ps->keep, s, take < room ? take : room);
        ps->keep += take < room ? take : room;
        ps->l_len += take;
        ps->c_pos += take + (nl ? 1 : 0);
        if (nl) {
            ps->term = 1;
            return 1;
        }
    }
}

int mime_parse(struct mime_tree *t, mime_reader rd, void *arg)
{
    memset(t, 0, sizeof *t);
    struct parser *ps = calloc(1, sizeof *ps);
    if (ps == NULL)
        return -1;
    ps->t = t;
    ps->rd = rd;
    ps->arg = arg;
    int rc = new_part(ps, -1, 0, 0);
    ps->open[0].part = 0;
    ps->n_open = 1;
    ps->in_header = 1;
    while (rc == 0 && (rc = next_line(ps)) > 0) {
        rc = 0;
        on_line(ps);
    }
    while (rc == 0 && ps->n_open > 0) {
        close_part(ps, ps->open[ps->n_open - 1].part, 0);
        ps->n_open--;
    }
    int e = errno;
    free(ps);
    if (rc != 0) {
        mime_free(t);
        errno = rc == -2 ? ENOMEM : e;
        return -1;
    }
    return 0;
}

struct fd_reader {
    int fd;
    off_t at;
};

static ssize_t fd_read(void *arg, void *buf, size_t len)
{
    struct fd_reader *r = arg;
    ssize_t n;
    do
        n = pread(r->fd, buf, len, r->at);
    while (n < 0 && errno == EINTR);
    if (n > 0)
        r->at += n;
    return n;
}

int mime_parse_fd(struct mime_tree *t, int fd)
{
    struct fd_reader r = {fd, 0};
    return mime_parse(t, fd_read, &r);
}

void mime_free(struct mime_tree *t)
{
    free(t->parts);
    free(t->strings);
    memset(t, 0, sizeof *t);
}

/* Children in IMAP's numbering: a multipart's parts; for a message/rfc822 part, those of its
 * message (its one part if it is not a multipart); for the root if not multipart, itself. */
static int nth_child(const struct mime_tree *t, int i, unsigned long n, int root)
{
    const struct mime_part *p = &t->parts[i];
    if (p->kind == MIME_MESSAGE && !root) {
        if (p->child < 0)
            return -1;
        i = p->child;
        p = &t->parts[i];
        if (p->kind != MIME_MULTIPART)
            return n == 1 ? i : -1;
    }
    if (p->kind != MIME_MULTIPART)
        return root && n == 1 ? i : -1;
    int c = p->child;
    while (c >= 0 && --n > 0)
        c = t->parts[c].next;
    return c;
}

static int keyword(const char **s, const char *end, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(end - *s) < n || strncasecmp(*s, word, n) != 0)
        return 0;
    if (*s + n < end && (*s)[n] != '.' && (*s)[n] != ' ' && (*s)[n] != '(')
        return 0;
    *s += n;
    return 1;
}

/* The span of HEADER / TEXT / HEADER.FIELDS of message m. */
static int msg_section(const struct mime_tree *t, int m, const char *p, const char *end,
                       struct mime_section *s)
{
    s->part = m;
    if (keyword(&p, end, "HEADER.FIELDS.NOT"))
        s->kind = MIME_SECT_HEADER_FIELDS_NOT;
    else if (keyword(&p, end, "HEADER.FIELDS"))
        s->kind = MIME_SECT_HEADER_FIELDS;
    else if (keyword(&p, end, "HEADER"))
        s->kind = MIME_SECT_HEADER;
    else if (keyword(&p, end, "TEXT"))
        s->kind = MIME_SECT_TEXT;
    else
        return errno = EINVAL, -1;
    if (s->kind == MIME_SECT_HEADER_FIELDS || s->kind == MIME_SECT_HEADER_FIELDS_NOT) {
        while (p < end && *p == ' ')
            p++;
        if (p == end || *p != '(')
            return errno = EINVAL, -1;
        s->rest = p;
    } else if (p != end)
        return errno = EINVAL, -1;
    s->span = s->kind == MIME_SECT_TEXT ? t->parts[m].body : t->parts[m].header;
    return 0;
}

int mime_section(const struct mime_tree *t, const char *spec, size_t len, struct mime_section *s)
{
    const char *p = spec, *end = spec + len;
    memset(s, 0, sizeof *s);
    if (t->n == 0)
        return errno = ENOENT, -1;
    int i = 0, numbered = 0;
    while (p < end && *p >= '1' && *p <= '9') {
        unsigned long n = 0;
        while (p < end && *p >= '0' && *p <= '9' && n < 100000)
            n = n * 10 + (unsigned long)(*p++ - '0');
        if (p < end && *p >= '0' && *p <= '9')
            return errno = ENOENT, -1;
        if ((i = nth_child(t, i, n, !numbered)) < 0)
            return errno = ENOENT, -1;
        numbered = 1;
        if (p == end)
            break;
        if (*p++ != '.')
            return errno = EINVAL, -1;
    }
    s->part = i;
    if (p == end) {
        s->kind = MIME_SECT_ALL;
        if (!numbered) {
            const struct mime_part *r = &t->parts[0];
            s->span = r->header;
            s->span.len += r->body.len;
            s->span.crlf_len += r->body.crlf_len;
        } else
            s->span = t->parts[i].body;
        return 0;
    }
    if (numbered && keyword(&p, end, "MIME")) {
        if (p != end)
            return errno = EINVAL, -1;
        s->kind = MIME_SECT_MIME;
        s->span = t->parts[i].header;
        return 0;
    }
    if (numbered) {
        if (t->parts[i].kind != MIME_MESSAGE || t->parts[i].child < 0)
            return errno = ENOENT, -1;
        i = t->parts[i].child;
    }
    return msg_section(t, i, p, end, s);
}
