/*
 * lib/imapsearch-text.c: the text keys of lib/imapsearch read from one message: the header
 * unfolded field by field with RFC 2047 words decoded, the Date: field's day, and the body's
 * text parts with base64 / quoted-printable and single-octet charsets decoded, all streamed
 * through KMP matchers (a needle split across two reads is found). The message is read with
 * pread in IMAPSEARCH_CHUNK pieces; memory is bounded whatever its size. It must never write
 * to the message, read it whole into memory, or read past what the needles still need.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imapsearch-int.h"
#include "mime.h"
#include "util.h"

#define IMAPSEARCH_CHUNK 16384
#define PIECE 8192    /* octets of one field value decoded at once */
#define NAME_MAX_ 255 /* a longer field name matches no key */

/* ---- needles ---- */

int imapsearch_needle_init(struct imapsearch_needle *n, const char *s, size_t len)
{
    unsigned char prev = 0;
    size_t k = 0;
    n->pat = malloc(len + 1);
    n->fail = malloc((len + 1) * sizeof *n->fail);
    if (n->pat == NULL || n->fail == NULL)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            continue;
        n->pat[k++] = imapsearch_fold(prev, c);
        prev = c;
    }
    n->len = k;
    for (int c = 0; k > 0 && c < 256; c++) /* the octets whose fold can be pat[0] */
        n->start[c] = imapsearch_fold(0, (unsigned char)c) == n->pat[0] ||
                      imapsearch_fold(0xC3, (unsigned char)c) == n->pat[0];
    if (k > 0)
        n->fail[0] = 0;
    for (size_t i = 1, b = 0; i < k; i++) {
        while (b > 0 && n->pat[i] != n->pat[b])
            b = n->fail[b - 1];
        if (n->pat[i] == n->pat[b])
            b++;
        n->fail[i] = b;
    }
    return 0;
}

long imapsearch_days(long y, int m, int d)
{
    /* days from civil (proleptic Gregorian), 1970-01-01 is 0 */
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* ---- the scanner ---- */

/* Where decoded octets go: the top-level header's field values (TEXT needles and the FIELD
 * needles of the current field), TEXT needles only (the top-level field names and line ends,
 * the headers of MIME parts), or the body (BODY and TEXT needles; an attached message's
 * header goes there too). */
enum sink { SINK_TOP, SINK_TEXT, SINK_BODY };

/* The header parser's state: one field at a time. */
struct hdr {
    enum { H_LINE, H_NAME, H_VALUE, H_SKIP, H_DONE } state;
    int in_field, lead;
    char name[NAME_MAX_ + 1];
    size_t name_len;
    int name_bad;
    unsigned char val[PIECE];
    size_t val_len;
    enum sink sink;
};

struct scanner {
    size_t n;              /* needles */
    size_t *k;             /* KMP state per needle */
    unsigned char *prev;   /* the octet before, per needle (for the fold) */
    unsigned char *active; /* FIELD needles whose field is the current one */
    struct imapsearch_found f;
    uint64_t body_off; /* where the top-level body starts */
    char date[128], ctype[512], cte[64];
    int field_kind; /* of the current top-level field: 1 date, 2 ctype, 3 cte */
    size_t cap_len;
    struct hdr h;
    unsigned char out[4096]; /* decoded octets before they go to the needles */
    size_t out_len;
    unsigned char chunk[IMAPSEARCH_CHUNK];
    struct imapsearch *q;
};

static struct scanner *scanner(struct imapsearch *q)
{
    struct scanner *s = q->scan;
    if (s != NULL)
        return s;
    size_t n = q->n_needles ? q->n_needles : 1;
    if ((s = calloc(1, sizeof *s)) == NULL)
        return NULL;
    s->k = calloc(n, sizeof *s->k);
    s->prev = calloc(n, 1);
    s->active = calloc(n, 1);
    s->f.found = calloc(n, 1);
    if (s->k == NULL || s->prev == NULL || s->active == NULL || s->f.found == NULL) {
        q->scan = s;
        imapsearch_scan_free(q);
        errno = ENOMEM;
        return NULL;
    }
    s->n = q->n_needles;
    s->q = q;
    q->scan = s;
    return s;
}

void imapsearch_scan_free(struct imapsearch *q)
{
    struct scanner *s = q->scan;
    if (s == NULL)
        return;
    free(s->k);
    free(s->prev);
    free(s->active);
    free(s->f.found);
    free(s);
    q->scan = NULL;
}

struct imapsearch_found *imapsearch_found_reset(struct imapsearch *q)
{
    struct scanner *s = scanner(q);
    if (s == NULL)
        return NULL;
    unsigned char *found = s->f.found;
    memset(found, 0, s->n ? s->n : 1);
    memset(s->k, 0, (s->n ? s->n : 1) * sizeof *s->k); /* TEXT needles start with the header */
    memset(s->prev, 0, s->n ? s->n : 1);
    s->f = (struct imapsearch_found){.found = found};
    return &s->f;
}

/* Runs needle i over p[0..len). */
static void kmp(struct scanner *s, size_t i, const unsigned char *p, size_t len)
{
    const struct imapsearch_needle *nd = &s->q->needles[i];
    size_t k = s->k[i];
    unsigned char prev = s->prev[i];
    if (nd->len == 0) {
        s->f.found[i] = 1;
        return;
    }
    for (size_t j = 0; j < len; j++) {
        if (k == 0) { /* skip to an octet that can start the needle */
            size_t from = j;
            while (j < len && !nd->start[p[j]])
                j++;
            if (j == len)
                break;
            if (j > from && p[j - 1] != '\r')
                prev = p[j - 1];
        }
        unsigned char raw = p[j];
        if (raw == '\r')
            continue;
        unsigned char c = imapsearch_fold(prev, raw);
        prev = raw;
        while (k > 0 && nd->pat[k] != c)
            k = nd->fail[k - 1];
        if (nd->pat[k] == c && ++k == nd->len) {
            s->f.found[i] = 1;
            return;
        }
    }
    if (len > 0 && k == 0 && p[len - 1] != '\r')
        prev = p[len - 1];
    s->k[i] = k;
    s->prev[i] = prev;
}

/* Decoded header or body octets to the needles the current sink feeds. */
static void feed(struct scanner *s, enum sink sink, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < s->n; i++) {
        enum needle_where w = s->q->needles[i].where;
        if (s->f.found[i])
            continue;
        if (sink == SINK_BODY ? w != NEEDLE_FIELD
                              : w == NEEDLE_TEXT || (sink == SINK_TOP && s->active[i]))
            kmp(s, i, p, len);
    }
}

static void out_flush(struct scanner *s, enum sink sink)
{
    feed(s, sink, s->out, s->out_len);
    s->out_len = 0;
}

static void out_byte(struct scanner *s, enum sink sink, unsigned char c)
{
    if (s->out_len == sizeof s->out)
        out_flush(s, sink);
    s->out[s->out_len++] = c;
}

/* ---- charsets ---- */

enum cs { CS_RAW, CS_LATIN1, CS_LATIN9, CS_CP1252 };

static enum cs charset_of(const char *name, size_t len)
{
    static const struct {
        const char *name;
        enum cs cs;
    } names[] = {{"iso-8859-1", CS_LATIN1},   {"iso8859-1", CS_LATIN1}, {"iso_8859-1", CS_LATIN1},
                 {"latin1", CS_LATIN1},       {"l1", CS_LATIN1},        {"iso-8859-15", CS_LATIN9},
                 {"iso8859-15", CS_LATIN9},   {"latin-9", CS_LATIN9},   {"latin9", CS_LATIN9},
                 {"windows-1252", CS_CP1252}, {"cp1252", CS_CP1252}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == len && strncasecmp(names[i].name, name, len) == 0)
            return names[i].cs;
    return CS_RAW; /* UTF-8, US-ASCII and the rest: their octets as they are */
}

static unsigned to_unicode(enum cs cs, unsigned char c)
{
    static const unsigned short cp1252[32] = {
        0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
        0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
    if (cs == CS_CP1252 && c >= 0x80 && c < 0xA0)
        return cp1252[c - 0x80];
    if (cs == CS_LATIN9) {
        switch (c) {
        case 0xA4:
            return 0x20AC;
        case 0xA6:
            return 0x0160;
        case 0xA8:
            return 0x0161;
        case 0xB4:
            return 0x017D;
        case 0xB8:
            return 0x017E;
        case 0xBC:
            return 0x0152;
        case 0xBD:
            return 0x0153;
        case 0xBE:
            return 0x0178;
        }
    }
    return c;
}

/* One decoded octet in charset cs, out as UTF-8. */
static void out_char(struct scanner *s, enum sink sink, enum cs cs, unsigned char c)
{
    if (cs == CS_RAW || c < 0x80) {
        out_byte(s, sink, c);
        return;
    }
    unsigned u = to_unicode(cs, c);
    if (u < 0x800) {
        out_byte(s, sink, (unsigned char)(0xC0 | u >> 6));
    } else {
        out_byte(s, sink, (unsigned char)(0xE0 | u >> 12));
        out_byte(s, sink, (unsigned char)(0x80 | ((u >> 6) & 0x3F)));
    }
    out_byte(s, sink, (unsigned char)(0x80 | (u & 0x3F)));
}

/* ---- RFC 2047 encoded words ---- */

/* An encoded word "=?cs?e?text?=" at p[0..len): its length, or 0 if there is none. */
static size_t encoded_word(const unsigned char *p, size_t len, size_t *cs_len, char *enc,
                           size_t *text_off, size_t *text_len)
{
    size_t i = 2;
    if (len < 8 || p[0] != '=' || p[1] != '?')
        return 0;
    while (i < len && i < 66 && p[i] != '?' && p[i] > ' ')
        i++;
    if (i >= len - 3 || p[i] != '?' || i == 2)
        return 0;
    *cs_len = i - 2;
    *enc = (char)(p[i + 1] | 0x20);
    if ((*enc != 'b' && *enc != 'q') || p[i + 2] != '?')
        return 0;
    *text_off = i + 3;
    for (i += 3; i + 1 < len && i < 1024; i++) {
        if (p[i] <= ' ')
            return 0;
        if (p[i] == '?' && p[i + 1] == '=') {
            *text_len = i - *text_off;
            return i + 2;
        }
    }
    return 0;
}

static void decode_word(struct scanner *s, enum sink sink, const unsigned char *p, size_t wl)
{
    size_t cs_len, off, tl;
    char enc;
    encoded_word(p, wl, &cs_len, &enc, &off, &tl);
    const char *cs_name = (const char *)p + 2;
    const char *star = memchr(cs_name, '*', cs_len); /* RFC 2231 language */
    enum cs cs = charset_of(cs_name, star ? (size_t)(star - cs_name) : cs_len);
    const unsigned char *t = p + off;
    if (enc == 'q') {
        for (size_t i = 0; i < tl; i++) {
            int h, l;
            if (t[i] == '_')
                out_char(s, sink, cs, ' ');
            else if (t[i] == '=' && i + 2 < tl && (h = hex_value(t[i + 1])) >= 0 &&
                     (l = hex_value(t[i + 2])) >= 0)
                out_char(s, sink, cs, (unsigned char)(h << 4 | l)), i += 2;
            else
                out_char(s, sink, cs, t[i]);
        }
        return;
    }
    unsigned acc = 0, bits = 0;
    for (size_t i = 0; i < tl; i++) {
        int v = base64_value(t[i]);
        if (v < 0)
            continue;
        acc = (acc << 6 | (unsigned)v) & 0xFFFFFF;
        if ((bits += 6) >= 8) {
            bits -= 8;
            out_char(s, sink, cs, (unsigned char)(acc >> bits));
        }
    }
}

/* A piece of an unfolded field value, its encoded words decoded (white space between two
 * encoded words dropped, RFC 2047 §6.2), to the sink. */
static void value_piece(struct scanner *s, enum sink sink, const unsigned char *p, size_t len)
{
    int after_word = 0;
    size_t ws = 0, ws_len = 0;
    for (size_t i = 0; i < len;) {
        size_t cl, to, tl, wl;
        char enc;
        if (p[i] == ' ' || p[i] == '\t') {
            if (ws_len == 0)
                ws = i;
            ws_len++;
            i++;
            continue;
        }
        wl = p[i] == '=' ? encoded_word(p + i, len - i, &cl, &enc, &to, &tl) : 0;
        if (ws_len > 0 && !(after_word && wl > 0))
            for (size_t k = 0; k < ws_len; k++)
                out_byte(s, sink, p[ws + k]);
        ws_len = 0;
        if (wl > 0) {
            decode_word(s, sink, p + i, wl);
            after_word = 1;
            i += wl;
        } else {
            out_byte(s, sink, p[i++]);
            after_word = 0;
        }
    }
    for (size_t k = 0; k < ws_len; k++)
        out_byte(s, sink, p[ws + k]);
}

/* ---- header fields ---- */

static void capture(struct scanner *s, const unsigned char *p, size_t len)
{
    char *dst = s->field_kind == 1 ? s->date : s->field_kind == 2 ? s->ctype : s->cte;
    size_t cap = s->field_kind == 1   ? sizeof s->date
                 : s->field_kind == 2 ? sizeof s->ctype
                                      : sizeof s->cte;
    for (size_t i = 0; i < len && s->cap_len + 1 < cap; i++)
        if (p[i] != '\0')
            dst[s->cap_len++] = (char)p[i];
    dst[s->cap_len] = '\0';
}

static void field_start(struct scanner *s, struct hdr *h)
{
    static const char *const kinds[] = {"date", "content-type", "content-transfer-encoding"};
    const unsigned char *colon_sp = (const unsigned char *)": ";
    if (h->sink == SINK_TOP) {
        for (size_t i = 0; i < s->n; i++) {
            const struct imapsearch_needle *nd = &s->q->needles[i];
            s->active[i] =
                nd->where == NEEDLE_FIELD && !h->name_bad && strcasecmp(nd->field, h->name) == 0;
            if (s->active[i]) {
                s->k[i] = 0;
                s->prev[i] = 0;
            }
        }
        s->field_kind = 0;
        for (int k = 0; k < 3; k++) {
            char *dst = k == 0 ? s->date : k == 1 ? s->ctype : s->cte;
            if (!h->name_bad && dst[0] == '\0' && strcasecmp(h->name, kinds[k]) == 0)
                s->field_kind = k + 1;
        }
        s->cap_len = 0;
    }
    /* TEXT sees "Name: value" lines */
    enum sink text = h->sink == SINK_TOP ? SINK_TEXT : h->sink;
    for (size_t i = 0; i < h->name_len; i++)
        out_byte(s, text, (unsigned char)h->name[i]);
    for (int i = 0; i < 2; i++)
        out_byte(s, text, colon_sp[i]);
    out_flush(s, text);
}

/* The value so far (a piece, or the rest at the field's end) decoded and fed. */
static void field_flush(struct scanner *s, struct hdr *h)
{
    value_piece(s, h->sink, h->val, h->val_len);
    if (h->sink == SINK_TOP && s->field_kind != 0)
        capture(s, s->out, s->out_len); /* only the first piece is kept: enough for these */
    out_flush(s, h->sink);
    h->val_len = 0;
}

static void field_end(struct scanner *s, struct hdr *h)
{
    if (!h->in_field)
        return;
    field_flush(s, h);
    enum sink text = h->sink == SINK_TOP ? SINK_TEXT : h->sink;
    out_byte(s, text, '\n');
    out_flush(s, text);
    if (h->sink == SINK_TOP) {
        memset(s->active, 0, s->n ? s->n : 1);
        s->field_kind = 0;
    }
    h->in_field = 0;
}

static void hdr_begin(struct hdr *h, enum sink sink)
{
    h->state = H_LINE;
    h->in_field = 0;
    h->val_len = 0;
    h->name_len = 0;
    h->name_bad = 0;
    h->sink = sink;
}

static void name_byte(struct scanner *s, struct hdr *h, unsigned char c)
{
    if (c == ':') {
        while (h->name_len > 0 &&
               (h->name[h->name_len - 1] == ' ' || h->name[h->name_len - 1] == '\t'))
            h->name_len--;
        h->name[h->name_len] = '\0';
        h->state = H_VALUE;
        h->in_field = 1;
        h->lead = 1;
        field_start(s, h);
    } else if (c == '\n') {
        h->state = H_LINE; /* a line without a colon: not a field */
    } else if (h->name_len < NAME_MAX_) {
        h->name[h->name_len++] = (char)c;
    } else {
        h->name_bad = 1;
    }
}

static void val_byte(struct scanner *s, struct hdr *h, unsigned char c)
{
    if (h->val_len == PIECE)
        field_flush(s, h);
    h->val[h->val_len++] = c;
}

/* Header octets; returns how many were taken (up to the end of the blank line). */
static size_t hdr_feed(struct scanner *s, struct hdr *h, const unsigned char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == '\r')
            continue;
        switch (h->state) {
        case H_LINE:
            if (c == ' ' || c == '\t') {
                h->state = h->in_field ? H_VALUE : H_SKIP;
                if (h->in_field && !h->lead)
                    val_byte(s, h, c);
                break;
            }
            field_end(s, h);
            if (c == '\n') {
                h->state = H_DONE;
                return i + 1;
            }
            h->state = H_NAME;
            h->name_len = 0;
            h->name_bad = 0;
            name_byte(s, h, c);
            break;
        case H_NAME:
            name_byte(s, h, c);
            break;
        case H_VALUE:
            if (c == '\n') {
                h->state = H_LINE;
            } else if (!(h->lead && (c == ' ' || c == '\t'))) {
                h->lead = 0;
                val_byte(s, h, c);
            }
            break;
        case H_SKIP:
            if (c == '\n')
                h->state = H_LINE;
            break;
        case H_DONE:
            return i;
        }
    }
    return len;
}

/* Up to a chunk of the file at off (at most left octets) into s->chunk: the count, 0 at the
 * end, -1 on error. */
static ssize_t read_chunk(struct scanner *s, int fd, uint64_t off, uint64_t left)
{
    size_t want = left < sizeof s->chunk ? (size_t)left : sizeof s->chunk;
    ssize_t got;
    do
        got = pread(fd, s->chunk, want, (off_t)off);
    while (got < 0 && errno == EINTR);
    return got;
}

/* Reads a header from off (to its blank line, or to end) into the sink. The offset after it in
 * *after. 0, or -1. */
static int read_header(struct scanner *s, int fd, uint64_t off, uint64_t end, enum sink sink,
                       uint64_t *after)
{
    struct hdr *h = &s->h;
    hdr_begin(h, sink);
    while (off < end && h->state != H_DONE) {
        ssize_t got = read_chunk(s, fd, off, end - off);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        off += hdr_feed(s, h, s->chunk, (size_t)got);
    }
    field_end(s, h);
    *after = off;
    return 0;
}

/* ---- Date: ---- */

static const char *skip_ws(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* The day of an RFC 5322 date ("Tue, 1 Jul 2003 10:52:37 +0200"), in its own zone. */
static int parse_date(const char *p, long *day)
{
    static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    int d = 0, m = -1, nd = 0;
    long y = 0;
    int ny = 0;
    p = skip_ws(p);
    const char *comma = strchr(p, ',');
    if (comma != NULL && comma - p <= 12)
        p = skip_ws(comma + 1);
    for (; *p >= '0' && *p <= '9' && nd < 2; p++, nd++)
        d = d * 10 + (*p - '0');
    p = skip_ws(p);
    if (nd == 0 || strlen(p) < 3)
        return -1;
    for (int k = 0; k < 12; k++)
        if (strncasecmp(p, months + 3 * k, 3) == 0)
            m = k + 1;
    if (m < 0)
        return -1;
    p += 3;
    while (*p && *p != ' ' && *p != '\t')
        p++; /* "July" */
    p = skip_ws(p);
    for (; *p >= '0' && *p <= '9' && ny < 4; p++, ny++)
        y = y * 10 + (*p - '0');
    if (ny < 2)
        return -1;
    if (ny == 2)
        y += y < 50 ? 2000 : 1900; /* RFC 5322 §4.3 */
    else if (ny == 3)
        y += 1900;
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d < 1 || d > mdays[m - 1])
        return -1;
    *day = imapsearch_days(y, m, d);
    return 0;
}

/* ---- the body ---- */

enum cte { CTE_IDENTITY, CTE_BASE64, CTE_QP };

static enum cte cte_of(const char *v)
{
    if (v == NULL)
        return CTE_IDENTITY;
    v = skip_ws(v);
    if (strncasecmp(v, "base64", 6) == 0)
        return CTE_BASE64;
    if (strncasecmp(v, "quoted-printable", 16) == 0)
        return CTE_QP;
    return CTE_IDENTITY;
}

/* Is a Content-Type value (NULL or "" for none) of type type ("text", "multipart", ...)? */
static int ctype_is(const char *v, const char *type)
{
    size_t n = strlen(type);
    if (v == NULL || *skip_ws(v) == '\0')
        return strcmp(type, "text") == 0;
    v = skip_ws(v);
    return strncasecmp(v, type, n) == 0 && (v[n] == '/' || v[n] == ' ' || v[n] == ';');
}

/* The charset parameter of a Content-Type value. */
static enum cs ctype_charset(const char *v)
{
    for (const char *p = v ? strchr(v, ';') : NULL; p != NULL; p = strchr(p + 1, ';')) {
        const char *q = skip_ws(p + 1);
        if (strncasecmp(q, "charset", 7) != 0)
            continue;
        q = skip_ws(q + 7);
        if (*q != '=')
            continue;
        q = skip_ws(q + 1);
        int quoted = *q == '"';
        q += quoted;
        size_t n = strcspn(q, quoted ? "\"" : " \t;");
        return charset_of(q, n);
    }
    return CS_RAW;
}

struct decoder {
    enum cte cte;
    enum cs cs;
    int state; /* QP: 0, 1 after '=', 2 after "=h", 3 in a soft break; base64: bits */
    unsigned acc;
    unsigned char h;
};

static void qp_byte(struct scanner *s, struct decoder *d, unsigned char c)
{
    int v;
    switch (d->state) {
    case 1:
        if ((v = hex_value(c)) >= 0) {
            d->h = c;
            d->state = 2;
        } else if (c == '\n') {
            d->state = 0;
        } else if (c == ' ' || c == '\t' || c == '\r') {
            d->state = 3;
        } else {
            out_char(s, SINK_BODY, d->cs, '=');
            d->state = 0;
            qp_byte(s, d, c);
        }
        return;
    case 2:
        d->state = 0;
        if ((v = hex_value(c)) >= 0) {
            out_char(s, SINK_BODY, d->cs, (unsigned char)(hex_value(d->h) << 4 | v));
            return;
        }
        out_char(s, SINK_BODY, d->cs, '=');
        out_char(s, SINK_BODY, d->cs, d->h);
        qp_byte(s, d, c);
        return;
    case 3:
        if (c == '\n' || c == ' ' || c == '\t' || c == '\r') {
            d->state = c == '\n' ? 0 : 3;
            return;
        }
        d->state = 0;
        qp_byte(s, d, c);
        return;
    }
    if (c == '=')
        d->state = 1;
    else
        out_char(s, SINK_BODY, d->cs, c);
}

static void decode(struct scanner *s, struct decoder *d, const unsigned char *p, size_t len)
{
    if (d->cte == CTE_IDENTITY && d->cs == CS_RAW) { /* as it is: no copy */
        feed(s, SINK_BODY, p, len);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        int v;
        switch (d->cte) {
        case CTE_IDENTITY:
            out_char(s, SINK_BODY, d->cs, p[i]);
            break;
        case CTE_QP:
            qp_byte(s, d, p[i]);
            break;
        case CTE_BASE64:
            if ((v = base64_value(p[i])) < 0) {
                if (p[i] == '=')
                    d->state = 0, d->acc = 0;
                break;
            }
            d->acc = (d->acc << 6 | (unsigned)v) & 0xFFFFFF;
            if ((d->state += 6) >= 8) {
                d->state -= 8;
                out_char(s, SINK_BODY, d->cs, (unsigned char)(d->acc >> d->state));
            }
            break;
        }
    }
    out_flush(s, SINK_BODY);
}

/* Are all the needles the body feeds found? */
static int body_found(const struct scanner *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->q->needles[i].where != NEEDLE_FIELD && !s->f.found[i])
            return 0;
    return 1;
}

/* A new stream for the body needles: their KMP state starts over (a string is not found
 * across two parts). */
static void body_reset(struct scanner *s)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->q->needles[i].where != NEEDLE_FIELD) {
            s->k[i] = 0;
            s->prev[i] = 0;
        }
}

/* One leaf body: [off, off + len) (len UINT64_MAX: to the end of the file). */
static int read_leaf(struct scanner *s, int fd, uint64_t off, uint64_t len, const char *ctype,
                     const char *cte)
{
    struct decoder d = {.cte = cte_of(cte), .cs = CS_RAW};
    if (ctype_is(ctype, "text"))
        d.cs = ctype_charset(ctype);
    else if (d.cte != CTE_IDENTITY)
        return 0; /* an encoded attachment: binary */
    body_reset(s);
    while (len > 0 && !body_found(s)) {
        ssize_t got = read_chunk(s, fd, off, len);
        if (got < 0)
            return -1;
        if (got == 0)
            break;
        decode(s, &d, s->chunk, (size_t)got);
        off += (uint64_t)got;
        len -= (uint64_t)got;
    }
    return 0;
}

static const char *part_type(const struct mime_tree *t, const struct mime_part *p, char *buf,
                             size_t cap)
{
    if (p->type == 0)
        return NULL;
    snprintf(buf, cap, "%s/%s", t->strings + p->type - 1,
             p->subtype ? t->strings + p->subtype - 1 : "");
    return buf;
}

/* Every part of a MIME tree: leaves' bodies, attached messages' headers. */
static int read_tree(struct scanner *s, int fd, const struct mime_tree *t)
{
    for (size_t i = 0; i < t->n && !body_found(s); i++) {
        const struct mime_part *p = &t->parts[i];
        char type[300];
        if (i > 0) { /* an attached message's header is its body's, a part's is TEXT's */
            uint64_t after;
            body_reset(s);
            if (read_header(s, fd, p->header.off, p->header.off + p->header.len,
                            p->is_message ? SINK_BODY : SINK_TEXT, &after) != 0)
                return -1;
        }
        if (p->kind == MIME_MULTIPART || (p->kind == MIME_MESSAGE && p->child >= 0))
            continue;
        const char *ct = part_type(t, p, type, sizeof type);
        char full[600];
        const char *raw = mime_field_value(t, (int)i, MIME_F_CONTENT_TYPE);
        if (ct != NULL && raw != NULL) { /* the type as mime read it, the raw parameters */
            const char *semi = strchr(raw, ';');
            snprintf(full, sizeof full, "%s%s", ct, semi ? semi : "");
            ct = full;
        }
        if (read_leaf(s, fd, p->body.off, p->body.len, ct,
                      mime_field_value(t, (int)i, MIME_F_ENCODING)) != 0)
            return -1;
    }
    return 0;
}

static int scan_body(struct scanner *s, int fd)
{
    if (body_found(s))
        return 0;
    int tree = (ctype_is(s->ctype, "multipart") || ctype_is(s->ctype, "message")) &&
               cte_of(s->cte) == CTE_IDENTITY;
    if (!tree)
        return read_leaf(s, fd, s->body_off, UINT64_MAX, s->ctype, s->cte);
    struct mime_tree t;
    if (mime_parse_fd(&t, fd) != 0)
        return -1;
    int rc = read_tree(s, fd, &t);
    mime_free(&t);
    return rc;
}

/* An empty string is in every header (TEXT) and every body (BODY). */
static void empty_found(struct scanner *s, enum needle_where w)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->q->needles[i].where == w && s->q->needles[i].len == 0)
            s->f.found[i] = 1;
}

int imapsearch_scan(struct imapsearch *q, int fd, int body, struct imapsearch_found *f)
{
    struct scanner *s = scanner(q);
    if (s == NULL)
        return -1;
    (void)f; /* the same as &s->f (imapsearch_found_reset) */
    if (!s->f.header_done) {
        empty_found(s, NEEDLE_TEXT);
        s->date[0] = s->ctype[0] = s->cte[0] = '\0';
        if (read_header(s, fd, 0, UINT64_MAX, SINK_TOP, &s->body_off) != 0)
            return -1;
        s->f.header_done = 1;
        s->f.has_date = s->date[0] != '\0' && parse_date(s->date, &s->f.sent_day) == 0;
    }
    if (body && !s->f.body_done) {
        empty_found(s, NEEDLE_BODY);
        if (scan_body(s, fd) != 0)
            return -1;
        s->f.body_done = 1;
    }
    return 0;
}
