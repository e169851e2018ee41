/*
 * imaptok: the cursor over one assembled IMAP command (lib/imaptok.h). The grammar is RFC
 * 3501 §9 (with RFC 9051's 8-bit quoted strings and RFC 7888's "{n+}"); every function checks
 * the bytes it takes and moves the cursor only when the whole element was good.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imaptok.h"

void imaptok_init(struct imaptok *t, const char *buf, size_t len)
{
    t->p = buf;
    t->end = buf + len;
}

int imaptok_at_end(const struct imaptok *t)
{
    return t->p >= t->end;
}

int imaptok_peek(const struct imaptok *t)
{
    return t->p < t->end ? (unsigned char)*t->p : -1;
}

int imaptok_space(struct imaptok *t)
{
    return imaptok_char(t, ' ');
}

static int upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

int imaptok_char(struct imaptok *t, char c)
{
    if (t->p >= t->end || upper((unsigned char)*t->p) != upper((unsigned char)c))
        return -1;
    t->p++;
    return 0;
}

/* ATOM-CHAR: a CHAR (7-bit, not NUL) but for atom-specials. */
static int atom_char(int c)
{
    return c > 0x20 && c < 0x7f && strchr("(){%*\"\\]", c) == NULL;
}

static size_t span(const struct imaptok *t, int (*ok)(int))
{
    const char *q = t->p;
    while (q < t->end && ok((unsigned char)*q))
        q++;
    return (size_t)(q - t->p);
}

int imaptok_atom(struct imaptok *t, const char **s, size_t *len)
{
    size_t n = span(t, atom_char);
    if (n == 0)
        return -1;
    *s = t->p;
    *len = n;
    t->p += n;
    return 0;
}

int imaptok_word(struct imaptok *t, const char *w)
{
    size_t n = span(t, atom_char), wl = strlen(w);
    if (n != wl)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (upper((unsigned char)t->p[i]) != upper((unsigned char)w[i]))
            return -1;
    t->p += n;
    return 0;
}

int imaptok_flag(struct imaptok *t, const char **s, size_t *len)
{
    const char *start = t->p;
    size_t n;
    int slash = imaptok_char(t, '\\') == 0;
    if (slash && imaptok_peek(t) == '*') { /* "\*" in PERMANENTFLAGS, and nowhere else */
        t->p = start;
        return -1;
    }
    n = span(t, atom_char);
    if (n == 0) {
        t->p = start;
        return -1;
    }
    t->p += n;
    *s = start;
    *len = (size_t)(t->p - start);
    return 0;
}

/* A decimal number of at most max into *n; the cursor after it. 0, -1, IMAPTOK_TOO_LONG. */
static int digits(struct imaptok *t, uint64_t max, uint64_t *n)
{
    const char *q = t->p;
    uint64_t v = 0;
    if (q >= t->end || *q < '0' || *q > '9')
        return -1;
    for (; q < t->end && *q >= '0' && *q <= '9'; q++) {
        if (v > (max - (uint64_t)(*q - '0')) / 10)
            return IMAPTOK_TOO_LONG;
        v = v * 10 + (uint64_t)(*q - '0');
    }
    t->p = q;
    *n = v;
    return 0;
}

int imaptok_number(struct imaptok *t, uint32_t *n)
{
    uint64_t v;
    int rc = digits(t, UINT32_MAX, &v);
    if (rc == 0)
        *n = (uint32_t)v;
    return rc;
}

int imaptok_number64(struct imaptok *t, uint64_t *n)
{
    return digits(t, INT64_MAX, n);
}

static int put(char *out, size_t size, size_t *len, char c)
{
    if (*len + 1 >= size)
        return IMAPTOK_TOO_LONG;
    out[(*len)++] = c;
    return 0;
}

static int quoted(struct imaptok *t, char *out, size_t size, size_t *len)
{
    const char *q = t->p + 1;
    size_t n = 0;
    for (; q < t->end && *q != '"'; q++) {
        unsigned char c = (unsigned char)*q;
        if (c == '\\') {
            if (++q >= t->end || (*q != '"' && *q != '\\'))
                return -1;
            c = (unsigned char)*q;
        } else if (c == '\0' || c == '\r' || c == '\n') {
            return -1;
        }
        if (put(out, size, &n, (char)c) != 0)
            return IMAPTOK_TOO_LONG;
    }
    if (q >= t->end)
        return -1;
    out[n] = '\0';
    *len = n;
    t->p = q + 1;
    return 0;
}

static int literal(struct imaptok *t, char *out, size_t size, size_t *len)
{
    struct imaptok c = {t->p + 1, t->end};
    uint32_t n;
    int rc = imaptok_number(&c, &n);
    if (rc != 0)
        return rc;
    (void)imaptok_char(&c, '+');
    if (imaptok_char(&c, '}') != 0 || imaptok_char(&c, '\r') != 0 || imaptok_char(&c, '\n') != 0)
        return -1;
    if ((size_t)(c.end - c.p) < n)
        return -1;
    if (memchr(c.p, '\0', n) != NULL)
        return -1;
    if ((size_t)n >= size)
        return IMAPTOK_TOO_LONG;
    memcpy(out, c.p, n);
    out[n] = '\0';
    *len = n;
    t->p = c.p + n;
    return 0;
}

int imaptok_string(struct imaptok *t, char *out, size_t size, size_t *len)
{
    if (size == 0)
        return IMAPTOK_TOO_LONG;
    if (imaptok_peek(t) == '"')
        return quoted(t, out, size, len);
    if (imaptok_peek(t) == '{')
        return literal(t, out, size, len);
    return -1;
}

static int astring_char(int c)
{
    return atom_char(c) || c == ']';
}

static int list_char(int c)
{
    return atom_char(c) || c == '%' || c == '*' || c == ']';
}

/* The unquoted form made of chars that ok accepts, or a string. */
static int word_or_string(struct imaptok *t, int (*ok)(int), char *out, size_t size, size_t *len)
{
    size_t n = span(t, ok);
    if (n == 0)
        return imaptok_string(t, out, size, len);
    if (n >= size)
        return IMAPTOK_TOO_LONG;
    memcpy(out, t->p, n);
    out[n] = '\0';
    *len = n;
    t->p += n;
    return 0;
}

int imaptok_astring(struct imaptok *t, char *out, size_t size, size_t *len)
{
    return word_or_string(t, astring_char, out, size, len);
}

int imaptok_list_mailbox(struct imaptok *t, char *out, size_t size, size_t *len)
{
    return word_or_string(t, list_char, out, size, len);
}

/* ---- dates ---- */

static const char months[12][4] = {"JAN", "FEB", "MAR", "APR", "MAY", "JUN",
                                   "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"};

/* date-month: 0..11, or -1. */
static int month(struct imaptok *t)
{
    if (t->end - t->p < 3)
        return -1;
    for (int m = 0; m < 12; m++) {
        if (upper((unsigned char)t->p[0]) == months[m][0] &&
            upper((unsigned char)t->p[1]) == months[m][1] &&
            upper((unsigned char)t->p[2]) == months[m][2]) {
            t->p += 3;
            return m;
        }
    }
    return -1;
}

/* Exactly n digits. */
static int fixed(struct imaptok *t, int n, int *v)
{
    if (t->end - t->p < n)
        return -1;
    *v = 0;
    for (int i = 0; i < n; i++) {
        if (t->p[i] < '0' || t->p[i] > '9')
            return -1;
        *v = *v * 10 + (t->p[i] - '0');
    }
    t->p += n;
    return 0;
}

static int days_in(int m, int y)
{
    static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d[m] + (m == 1 && leap);
}

/* d-Mon-yyyy with the day as 1*2DIGIT, or (fixed_day) as (SP DIGIT / 2DIGIT). */
static int day_month_year(struct imaptok *t, int fixed_day, struct tm *tm)
{
    int d, m, y;
    if (fixed_day && imaptok_char(t, ' ') == 0) {
        if (fixed(t, 1, &d) != 0)
            return -1;
    } else if (fixed(t, 2, &d) != 0 && (fixed_day || fixed(t, 1, &d) != 0)) {
        return -1;
    }
    if (imaptok_char(t, '-') != 0 || (m = month(t)) < 0 || imaptok_char(t, '-') != 0 ||
        fixed(t, 4, &y) != 0)
        return -1;
    if (d < 1 || d > days_in(m, y) || y < 1900)
        return -1;
    memset(tm, 0, sizeof *tm);
    tm->tm_mday = d;
    tm->tm_mon = m;
    tm->tm_year = y - 1900;
    return 0;
}

int imaptok_date(struct imaptok *t, time_t *day)
{
    struct imaptok c = *t;
    struct tm tm;
    int q = imaptok_char(&c, '"') == 0;
    if (day_month_year(&c, 0, &tm) != 0 || (q && imaptok_char(&c, '"') != 0))
        return -1;
    *day = timegm(&tm);
    *t = c;
    return 0;
}

int imaptok_date_time(struct imaptok *t, time_t *when)
{
    struct imaptok c = *t;
    struct tm tm;
    int h, mi, s, zh, zm, sign;
    if (imaptok_char(&c, '"') != 0 || day_month_year(&c, 1, &tm) != 0 || imaptok_space(&c) != 0 ||
        fixed(&c, 2, &h) != 0 || imaptok_char(&c, ':') != 0 || fixed(&c, 2, &mi) != 0 ||
        imaptok_char(&c, ':') != 0 || fixed(&c, 2, &s) != 0 || imaptok_space(&c) != 0)
        return -1;
    sign = imaptok_peek(&c);
    if (imaptok_char(&c, '+') != 0 && imaptok_char(&c, '-') != 0)
        return -1;
    if (fixed(&c, 2, &zh) != 0 || fixed(&c, 2, &zm) != 0 || imaptok_char(&c, '"') != 0)
        return -1;
    if (h > 23 || mi > 59 || s > 60 || zm > 59)
        return -1;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    long offset = (long)(zh * 3600 + zm * 60) * (sign == '-' ? -1 : 1);
    *when = timegm(&tm) - offset;
    *t = c;
    return 0;
}

int imaptok_line_literal(const char *line, size_t len, uint32_t *n, int *nonsync)
{
    if (len == 0 || line[len - 1] != '}')
        return 0;
    size_t open = len - 1;
    while (open > 0 && line[open - 1] != '{')
        open--;
    if (open == 0)
        return 0; /* a '}' with no '{': not a literal (say, a quoted "}") */
    struct imaptok t = {line + open, line + len - 1};
    int rc = imaptok_number(&t, n);
    if (rc != 0)
        return -1;
    *nonsync = imaptok_char(&t, '+') == 0;
    return imaptok_at_end(&t) ? 1 : -1;
}

/* ---- sequence sets ---- */

static int seq_char(int c)
{
    return (c >= '0' && c <= '9') || c == ':' || c == ',' || c == '*';
}

static int seq_number(struct imaptok *t, uint32_t *n)
{
    if (imaptok_char(t, '*') == 0) {
        *n = IMAP_SEQ_STAR;
        return 0;
    }
    int rc = imaptok_number(t, n);
    if (rc == 0 && *n == 0)
        return -1;
    return rc;
}

int imaptok_seqset(struct imaptok *t, struct imap_seqset *set)
{
    size_t extent = span(t, seq_char), parts = 1;
    for (size_t i = 0; i < extent; i++)
        parts += t->p[i] == ',';
    if (extent == 0)
        return -1;
    struct imaptok c = {t->p, t->p + extent};
    struct imap_seqrange *r = malloc(parts * sizeof *r);
    size_t n = 0;
    if (r == NULL)
        return -3;
    for (;;) {
        int rc = seq_number(&c, &r[n].lo);
        r[n].hi = r[n].lo;
        if (rc == 0 && imaptok_char(&c, ':') == 0)
            rc = seq_number(&c, &r[n].hi);
        if (rc != 0) {
            free(r);
            return rc;
        }
        n++;
        if (imaptok_at_end(&c))
            break;
        if (imaptok_char(&c, ',') != 0 || n == parts) {
            free(r);
            return -1;
        }
    }
    set->r = r;
    set->n = n;
    set->resolved = 0;
    t->p = c.p;
    return 0;
}

static int by_lo(const void *a, const void *b)
{
    const struct imap_seqrange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

void imap_seqset_resolve(struct imap_seqset *set, uint32_t largest)
{
    size_t out = 0;
    for (size_t i = 0; i < set->n; i++) {
        struct imap_seqrange *r = &set->r[i];
        if (r->lo == IMAP_SEQ_STAR)
            r->lo = largest;
        if (r->hi == IMAP_SEQ_STAR)
            r->hi = largest;
        if (r->lo > r->hi) {
            uint32_t x = r->lo;
            r->lo = r->hi;
            r->hi = x;
        }
    }
    qsort(set->r, set->n, sizeof *set->r, by_lo);
    for (size_t i = 0; i < set->n; i++) {
        if (out > 0 && set->r[i].lo <= set->r[out - 1].hi + (uint64_t)1) {
            if (set->r[i].hi > set->r[out - 1].hi)
                set->r[out - 1].hi = set->r[i].hi;
        } else {
            set->r[out++] = set->r[i];
        }
    }
    set->n = out;
    set->resolved = 1;
}

int imap_seqset_contains(const struct imap_seqset *set, uint32_t n)
{
    size_t lo = 0, hi = set->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (n < set->r[mid].lo)
            hi = mid;
        else if (n > set->r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

void imap_seqset_free(struct imap_seqset *set)
{
    free(set->r);
    set->r = NULL;
    set->n = 0;
}
