/*
 * lib/imapfetch-render.c: one message's "* n FETCH (...)" response (lib/imapfetch.h). Before
 * the first octet goes out it parses the message's MIME tree (when an item needs it) and
 * measures every literal: a section's CRLF length from lib/mime's spans, a HEADER.FIELDS
 * text and a decoded BINARY part by a counting pass over the file. Then it writes the items,
 * streaming each body from the file through LF -> CRLF (or a base64 / quoted-printable
 * decoder) and a clip to <origin.count>.
 *
 * It must never send a literal whose octets differ from its announced count (the stream is
 * checked: a file that changed under it breaks the response, which the caller then closes),
 * never hold more of the message than a few MIME_CHUNK buffers, and never write anything for
 * a message it refuses (UNKNOWN-CTE, a read error while measuring).
 */
#include "config.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imapfetch.h"
#include "mime-int.h"
#include "util.h"

/* ---- sinks: where transformed octets go ---- */

/* Counts octets and keeps those in [lo, hi) for the writer (NULL: count only). */
struct sink {
    mime_writer w;
    void *arg;
    uint64_t pos, lo, hi;
    int nonul; /* NUL goes out as 0x80: IMAP strings hold no NUL (only BINARY's literal8) */
    int nul;   /* a NUL was seen (inside [lo, hi)) */
    int err;
};

/* Writes p[0..n) with each NUL as 0x80, through a small buffer. */
static int write_nonul(struct sink *s, const char *p, size_t n)
{
    char b[4096];
    while (n > 0) {
        size_t k = n < sizeof b ? n : sizeof b;
        for (size_t i = 0; i < k; i++)
            b[i] = p[i] == '\0' ? (char)0x80 : p[i];
        if (s->w(s->arg, b, k) != 0)
            return -1;
        p += k;
        n -= k;
    }
    return 0;
}

static void sink_put(struct sink *s, const char *p, size_t n)
{
    uint64_t from = s->pos, to = s->pos + n;
    s->pos = to;
    if (s->err || to <= s->lo || from >= s->hi)
        return;
    size_t skip = from < s->lo ? (size_t)(s->lo - from) : 0;
    size_t end = to > s->hi ? (size_t)(s->hi - from) : n;
    int nul = memchr(p + skip, '\0', end - skip) != NULL;
    s->nul |= nul;
    if (s->w == NULL)
        return;
    if (nul && s->nonul ? write_nonul(s, p + skip, end - skip) != 0
                        : s->w(s->arg, p + skip, end - skip) != 0)
        s->err = 1;
}

static int sink_write(void *arg, const void *data, size_t len)
{
    struct sink *s = arg;
    sink_put(s, data, len);
    return s->err ? -1 : 0;
}

/* ---- decoders: file octets in, sink octets out ---- */

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP, CTE_UNKNOWN };

struct decoder {
    enum cte cte;
    struct sink *out;
    size_t n; /* octets in buf */
    /* base64 */
    uint32_t quad;
    int q_n, done;
    /* quoted-printable */
    int state; /* 0 text, 1 after '=', 2 after '=' and one hex digit, 3 after '=' and blanks */
    char hex1;
    size_t ws; /* blanks held back (dropped before a line break) */
    char wsbuf[256];
    char buf[2 * MIME_CHUNK + 8]; /* last: stream() clears what is before it */
};

static void emit(struct decoder *d, char c)
{
    if (d->n == sizeof d->buf) {
        sink_put(d->out, d->buf, d->n);
        d->n = 0;
    }
    d->buf[d->n++] = c;
}

static void flush(struct decoder *d)
{
    sink_put(d->out, d->buf, d->n);
    d->n = 0;
}

static void b64_octet(struct decoder *d, unsigned char c)
{
    if (d->done)
        return;
    if (c == '=') { /* padding: what is held is the last group */
        if (d->q_n == 2)
            emit(d, (char)(d->quad >> 4));
        else if (d->q_n == 3) {
            emit(d, (char)(d->quad >> 10));
            emit(d, (char)(d->quad >> 2));
        }
        d->done = d->q_n >= 2;
        d->q_n = 0;
        d->quad = 0;
        return;
    }
    int v = base64_value(c);
    if (v < 0)
        return; /* line breaks and anything outside the alphabet are skipped */
    d->quad = d->quad << 6 | (uint32_t)v;
    if (++d->q_n == 4) {
        emit(d, (char)(d->quad >> 16));
        emit(d, (char)(d->quad >> 8));
        emit(d, (char)d->quad);
        d->q_n = 0;
        d->quad = 0;
    }
}

static void qp_blanks(struct decoder *d)
{
    for (size_t k = 0; k < d->ws; k++)
        emit(d, d->wsbuf[k]);
    d->ws = 0;
}

static void qp_octet(struct decoder *d, char c)
{
    if (c == '\r')
        return; /* the file's line ends are LF; a CR before one is no content */
    switch (d->state) {
    case 1:
        if (c == '\n') {
            d->state = 0; /* soft line break */
            return;
        }
        if (c == ' ' || c == '\t') {
            d->state = 3;
            return;
        }
        if (hex_value(c) >= 0) {
            d->hex1 = c;
            d->state = 2;
            return;
        }
        emit(d, '='); /* not an escape: kept as it is */
        d->state = 0;
        break;
    case 2:
        d->state = 0;
        if (hex_value(c) >= 0) {
            emit(d, (char)(hex_value(d->hex1) << 4 | hex_value(c)));
            return;
        }
        emit(d, '=');
        emit(d, d->hex1);
        break;
    case 3:
        if (c == ' ' || c == '\t')
            return;
        d->state = 0;
        if (c == '\n')
            return; /* "=" with trailing blanks: still a soft break */
        emit(d, '=');
        break;
    default:
        break;
    }
    if (c == ' ' || c == '\t') {
        if (d->ws == sizeof d->wsbuf)
            qp_blanks(d);
        d->wsbuf[d->ws++] = c;
        return;
    }
    if (c == '\n') {
        d->ws = 0; /* trailing blanks are transport padding (RFC 2045 §6.7 rule 3) */
        emit(d, '\r');
        emit(d, '\n');
        return;
    }
    qp_blanks(d);
    if (c == '=')
        d->state = 1;
    else
        emit(d, c);
}

/* LF as CRLF, runs copied whole: buf has room for 2 * n (stream() reads at most MIME_CHUNK). */
static void crlf_runs(struct decoder *d, const char *p, size_t n)
{
    flush(d);
    const char *end = p + n;
    while (p < end) {
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        size_t run = lf ? (size_t)(lf - p) : (size_t)(end - p);
        memcpy(d->buf + d->n, p, run);
        d->n += run;
        p += run;
        if (lf) {
            memcpy(d->buf + d->n, "\r\n", 2);
            d->n += 2;
            p++;
        }
    }
}

/* Whole groups of four alphabet octets decoded in a row; anything else one octet at a time. */
static void b64_runs(struct decoder *d, const unsigned char *p, size_t n)
{
    static signed char val[256];
    if (val['B'] == 0) {
        for (int c = 0; c < 256; c++)
            val[c] = (signed char)base64_value((unsigned char)c);
    }
    flush(d);
    size_t i = 0;
    while (i < n) {
        if (d->q_n == 0 && !d->done && i + 4 <= n) {
            int a = val[p[i]], b = val[p[i + 1]], c = val[p[i + 2]], e = val[p[i + 3]];
            if ((a | b | c | e) >= 0) {
                uint32_t q = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)e;
                d->buf[d->n++] = (char)(q >> 16);
                d->buf[d->n++] = (char)(q >> 8);
                d->buf[d->n++] = (char)q;
                i += 4;
                continue;
            }
        }
        b64_octet(d, p[i++]);
    }
}

static void decode(struct decoder *d, const char *p, size_t n)
{
    if (d->cte == CTE_IDENTITY) {
        crlf_runs(d, p, n);
    } else if (d->cte == CTE_BASE64) {
        b64_runs(d, (const unsigned char *)p, n);
    } else {
        for (size_t i = 0; i < n; i++)
            qp_octet(d, p[i]);
    }
}

static void decode_end(struct decoder *d)
{
    if (d->cte == CTE_QP) {
        if (d->state == 1 || d->state == 3)
            emit(d, '=');
        else if (d->state == 2) {
            emit(d, '=');
            emit(d, d->hex1);
        }
        d->ws = 0;
    }
    flush(d);
}

/* Streams the file span [off, off+len) through a decoder into out. 0, or -1 (read error). */
static int stream(int fd, uint64_t off, uint64_t len, enum cte cte, struct sink *out)
{
    struct decoder d;
    char buf[MIME_CHUNK];
    memset(&d, 0, offsetof(struct decoder, buf));
    d.cte = cte;
    d.out = out;
    while (len > 0 && !out->err) {
        size_t want = len < sizeof buf ? (size_t)len : sizeof buf;
        ssize_t got = pread(fd, buf, want, (off_t)off);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return errno = got == 0 ? EIO : errno, -1;
        decode(&d, buf, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    decode_end(&d);
    return 0;
}

/* ---- what each item sends, measured before anything is written ---- */

struct body {
    int exists; /* 0: the section names no part (NIL) */
    int whole;  /* BINARY[] of a message that is one encoded part: its header with the CTE
                   field made "binary", then its body decoded */
    struct mime_section s;
    enum cte cte;
    uint64_t size; /* octets of the whole section as sent */
    int nul;       /* BINARY: the decoded octets hold a NUL */
};

struct render {
    const struct imapfetch *f;
    const struct imapfetch_msg *m;
    struct mime_tree tree;
    int have_tree;
    mime_writer w; /* the caller's writer, reached through ob */
    void *arg;
    int err;
    size_t ob_len;
    char ob[2048]; /* small pieces gathered: one writer call for a FLAGS/UID/SIZE response */
    struct body body[IMAPFETCH_MAX_ITEMS]; /* last: not cleared for a fetch without bodies */
};

static enum cte part_cte(const struct mime_tree *t, int part)
{
    if (t->parts[part].kind != MIME_LEAF)
        return CTE_IDENTITY;
    const char *v = mime_field_value(t, part, MIME_F_ENCODING);
    if (v == NULL || *v == '\0')
        return CTE_IDENTITY;
    struct {
        const char *name;
        enum cte cte;
    } known[] = {{"7bit", CTE_IDENTITY},
                 {"8bit", CTE_IDENTITY},
                 {"binary", CTE_IDENTITY},
                 {"base64", CTE_BASE64},
                 {"quoted-printable", CTE_QP}};
    size_t n = strlen(v);
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
        if (strlen(known[k].name) == n && strncasecmp(v, known[k].name, n) == 0)
            return known[k].cte;
    return CTE_UNKNOWN;
}

/* The section text an item resolves: BODY[...] as given; RFC822.* as BODY[] / HEADER / TEXT. */
static const char *item_section(const struct imapfetch *f, const struct imapfetch_item *it,
                                size_t *len)
{
    static const char header[] = "HEADER", text[] = "TEXT";
    *len = 0;
    switch (it->kind) {
    case IMAPFETCH_RFC822_HEADER:
        *len = sizeof header - 1;
        return header;
    case IMAPFETCH_RFC822_TEXT:
        *len = sizeof text - 1;
        return text;
    case IMAPFETCH_RFC822:
        return "";
    default:
        *len = it->sect_len;
        return f->text + it->sect;
    }
}

static int is_body(unsigned kind)
{
    return kind == IMAPFETCH_SECTION || kind == IMAPFETCH_RFC822 ||
           kind == IMAPFETCH_RFC822_HEADER || kind == IMAPFETCH_RFC822_TEXT ||
           kind == IMAPFETCH_BINARY || kind == IMAPFETCH_BINARY_SIZE;
}

/* BINARY[] of a message whose body is its only part, base64 or quoted-printable (RFC 3516:
 * the section decoded; a multipart message's own CTE can only be an identity one, RFC 2045
 * §6.4, so it goes as it is): the header with its Content-Transfer-Encoding field replaced by
 * "binary" (first, so that the rest of the header is streamed as it is), then the body
 * decoded, into s. 0 / -1. */
static int whole_binary(struct render *r, struct sink *s)
{
    static const char field[] = "Content-Transfer-Encoding", binary[] = ": binary\r\n";
    const struct mime_part *root = &r->tree.parts[0];
    sink_put(s, field, sizeof field - 1);
    sink_put(s, binary, sizeof binary - 1);
    if (mime_header_fields(r->m->fd, &root->header, field, sizeof field - 1, 1, sink_write, s) != 0)
        return -1;
    return stream(r->m->fd, root->body.off, root->body.len, part_cte(&r->tree, 0), s);
}

/* Resolves and measures item i. 0, IMAPFETCH_READ_ERROR or IMAPFETCH_UNKNOWN_CTE. */
static int measure(struct render *r, size_t i)
{
    const struct imapfetch_item *it = &r->f->item[i];
    struct body *b = &r->body[i];
    size_t len;
    const char *spec = item_section(r->f, it, &len);
    memset(b, 0, sizeof *b);
    b->exists = mime_section(&r->tree, spec, len, &b->s) == 0;
    if (!b->exists)
        return 0;
    int binary = it->kind == IMAPFETCH_BINARY || it->kind == IMAPFETCH_BINARY_SIZE;
    b->cte = binary ? part_cte(&r->tree, b->s.part) : CTE_IDENTITY;
    if (b->cte == CTE_UNKNOWN)
        return IMAPFETCH_UNKNOWN_CTE;
    struct sink count = {NULL, NULL, 0, 0, UINT64_MAX, 0, 0, 0};
    b->whole = binary && len == 0 && b->cte != CTE_IDENTITY;
    if (b->whole) {
        if (whole_binary(r, &count) != 0)
            return IMAPFETCH_READ_ERROR;
        b->size = count.pos;
        b->nul = count.nul;
    } else if (b->s.kind == MIME_SECT_HEADER_FIELDS || b->s.kind == MIME_SECT_HEADER_FIELDS_NOT) {
        if (mime_header_fields(r->m->fd, &b->s.span, b->s.rest, strlen(b->s.rest),
                               b->s.kind == MIME_SECT_HEADER_FIELDS_NOT, sink_write, &count) != 0)
            return IMAPFETCH_READ_ERROR;
        b->size = count.pos;
    } else if (b->cte != CTE_IDENTITY) {
        if (stream(r->m->fd, b->s.span.off, b->s.span.len, b->cte, &count) != 0)
            return IMAPFETCH_READ_ERROR;
        b->size = count.pos;
        b->nul = count.nul;
    } else {
        b->size = b->s.span.crlf_len;
        if (binary) { /* literal8 only when needed: look for a NUL */
            if (stream(r->m->fd, b->s.span.off, b->s.span.len, CTE_IDENTITY, &count) != 0)
                return IMAPFETCH_READ_ERROR;
            b->nul = count.nul;
        }
    }
    return 0;
}

static int prepare(struct render *r)
{
    if (!(r->f->needs & IMAPFETCH_NEED_FILE))
        return 0;
    if (mime_parse_fd(&r->tree, r->m->fd) != 0)
        return IMAPFETCH_READ_ERROR;
    r->have_tree = 1;
    for (size_t i = 0; i < r->f->n; i++) {
        if (!is_body(r->f->item[i].kind))
            continue;
        int rc = measure(r, i);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/* ---- output ---- */

static void ob_flush(struct render *r)
{
    if (!r->err && r->ob_len > 0 && r->w(r->arg, r->ob, r->ob_len) != 0)
        r->err = 1;
    r->ob_len = 0;
}

/* The writer every rendering goes through: small pieces into ob, big ones straight on. */
static int render_write(void *arg, const void *data, size_t n)
{
    struct render *r = arg;
    if (r->err)
        return -1;
    if (n > sizeof r->ob - r->ob_len) {
        ob_flush(r);
        if (n >= sizeof r->ob) {
            if (!r->err && r->w(r->arg, data, n) != 0)
                r->err = 1;
            return r->err ? -1 : 0;
        }
    }
    memcpy(r->ob + r->ob_len, data, n);
    r->ob_len += n;
    return r->err ? -1 : 0;
}

static void out(struct render *r, const char *s, size_t n)
{
    render_write(r, s, n);
}

static void outs(struct render *r, const char *s)
{
    out(r, s, strlen(s));
}

/* v in decimal (by hand: snprintf was a sixth of a long listing's CPU). */
static void out_u64(struct render *r, uint64_t v)
{
    char b[20];
    size_t i = sizeof b;
    do
        b[--i] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    out(r, b + i, sizeof b - i);
}

static int has_flag(const char *flags, const char *name)
{
    size_t n = strlen(name);
    for (const char *p = flags; p && *p;) {
        while (*p == ' ')
            p++;
        const char *b = p;
        while (*p && *p != ' ')
            p++;
        if ((size_t)(p - b) == n && strncasecmp(b, name, n) == 0)
            return 1;
    }
    return 0;
}

static void out_flags(struct render *r, int add_seen)
{
    const char *flags = r->m->flags ? r->m->flags : "";
    outs(r, "FLAGS (");
    outs(r, flags);
    if (add_seen)
        outs(r, *flags ? " \\Seen" : "\\Seen");
    outs(r, ")");
}

static void out_date(struct render *r, time_t when)
{
    static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    char b[64];
    if (localtime_r(&when, &tm) == NULL) {
        when = 0;
        gmtime_r(&when, &tm);
    }
    long off = tm.tm_gmtoff / 60;
    char sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(b, sizeof b, "INTERNALDATE \"%2d-%s-%04d %02d:%02d:%02d %c%02ld%02ld\"", tm.tm_mday,
             months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec, sign,
             off / 60, off % 60);
    outs(r, b);
}

static void out_name(struct render *r, const struct imapfetch_item *it)
{
    static const char *names[] = {
        [IMAPFETCH_RFC822] = "RFC822",           [IMAPFETCH_RFC822_HEADER] = "RFC822.HEADER",
        [IMAPFETCH_RFC822_TEXT] = "RFC822.TEXT", [IMAPFETCH_SECTION] = "BODY[",
        [IMAPFETCH_BINARY] = "BINARY[",          [IMAPFETCH_BINARY_SIZE] = "BINARY.SIZE[",
    };
    outs(r, names[it->kind]);
    if (it->kind == IMAPFETCH_SECTION || it->kind == IMAPFETCH_BINARY ||
        it->kind == IMAPFETCH_BINARY_SIZE) {
        out(r, r->f->text + it->sect, it->sect_len);
        outs(r, "]");
    }
    if (it->partial) {
        outs(r, "<");
        out_u64(r, it->origin);
        outs(r, ">");
    }
}

/* A body item: its name, then the literal with the clipped octets. */
static void out_body(struct render *r, const struct imapfetch_item *it, const struct body *b)
{
    out_name(r, it);
    outs(r, " ");
    if (it->kind == IMAPFETCH_BINARY_SIZE) {
        out_u64(r, b->exists ? b->size : 0);
        return;
    }
    if (!b->exists) { /* an empty string, as Dovecot answers it */
        outs(r, "{0}\r\n");
        return;
    }
    uint64_t lo = it->partial ? it->origin : 0, hi = b->size;
    if (lo > b->size)
        lo = b->size;
    if (it->partial && it->count < hi - lo)
        hi = lo + it->count;
    char head[40];
    snprintf(head, sizeof head, "%s{%llu}\r\n", it->kind == IMAPFETCH_BINARY && b->nul ? "~" : "",
             (unsigned long long)(hi - lo));
    outs(r, head);
    if (r->err || hi == lo)
        return;
    struct sink s = {render_write, r, 0, lo, hi, it->kind != IMAPFETCH_BINARY, 0, 0};
    int rc;
    if (b->whole)
        rc = whole_binary(r, &s);
    else if (b->s.kind == MIME_SECT_HEADER_FIELDS || b->s.kind == MIME_SECT_HEADER_FIELDS_NOT)
        rc = mime_header_fields(r->m->fd, &b->s.span, b->s.rest, strlen(b->s.rest),
                                b->s.kind == MIME_SECT_HEADER_FIELDS_NOT, sink_write, &s);
    else
        rc = stream(r->m->fd, b->s.span.off, b->s.span.len, b->cte, &s);
    if (rc != 0 || s.err || s.pos != b->size)
        r->err = 1; /* short or long: the literal is broken, the caller closes */
}

static void out_item(struct render *r, size_t i)
{
    const struct imapfetch_item *it = &r->f->item[i];
    switch (it->kind) {
    case IMAPFETCH_UID:
        outs(r, "UID ");
        out_u64(r, r->m->uid);
        break;
    case IMAPFETCH_FLAGS:
        break; /* out_flags, by the caller */
    case IMAPFETCH_INTERNALDATE:
        out_date(r, r->m->internaldate);
        break;
    case IMAPFETCH_RFC822_SIZE:
        outs(r, "RFC822.SIZE ");
        out_u64(r, r->m->crlf_size);
        break;
    case IMAPFETCH_MODSEQ:
        outs(r, "MODSEQ (");
        out_u64(r, r->m->modseq);
        outs(r, ")");
        break;
    case IMAPFETCH_ENVELOPE:
        outs(r, "ENVELOPE ");
        if (!r->err && mime_envelope(&r->tree, 0, render_write, r) != 0)
            r->err = 1;
        break;
    case IMAPFETCH_BODYSTRUCTURE:
    case IMAPFETCH_BODY:
        outs(r, it->kind == IMAPFETCH_BODY ? "BODY " : "BODYSTRUCTURE ");
        if (!r->err && mime_bodystructure(&r->tree, 0, it->kind == IMAPFETCH_BODYSTRUCTURE,
                                          render_write, r) != 0)
            r->err = 1;
        break;
    default:
        out_body(r, it, &r->body[i]);
        break;
    }
}

static int has_kind(const struct imapfetch *f, unsigned kind)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->item[i].kind == kind)
            return 1;
    return 0;
}

int imapfetch_message(const struct imapfetch *f, const struct imapfetch_msg *m, mime_writer w,
                      void *arg)
{
    struct render r; /* body[i] is set by measure() for the body items only */
    memset(&r, 0, offsetof(struct render, ob));
    r.f = f;
    r.m = m;
    r.w = w;
    r.arg = arg;
    int rc = prepare(&r);
    if (rc != 0) {
        if (r.have_tree)
            mime_free(&r.tree);
        return rc;
    }
    int add_seen = imapfetch_sets_seen(f) && !m->read_only && !has_flag(m->flags, "\\Seen");
    int sep = 0;
    outs(&r, "* ");
    out_u64(&r, m->seq);
    outs(&r, " FETCH (");
    if (m->uid_command && !has_kind(f, IMAPFETCH_UID)) {
        outs(&r, "UID ");
        out_u64(&r, m->uid);
        sep = 1;
    }
    if (m->send_modseq && !has_kind(f, IMAPFETCH_MODSEQ)) {
        outs(&r, sep++ ? " MODSEQ (" : "MODSEQ (");
        out_u64(&r, m->modseq);
        outs(&r, ")");
    }
    for (size_t i = 0; i < f->n && !r.err; i++) {
        if (sep++)
            outs(&r, " ");
        if (f->item[i].kind == IMAPFETCH_FLAGS)
            out_flags(&r, add_seen);
        else
            out_item(&r, i);
    }
    if (add_seen && !has_kind(f, IMAPFETCH_FLAGS)) {
        outs(&r, " ");
        out_flags(&r, 1);
    }
    outs(&r, ")\r\n");
    ob_flush(&r);
    if (r.have_tree)
        mime_free(&r.tree);
    return r.err ? IMAPFETCH_BROKEN : 0;
}
