/*
 * imapname: modified UTF-7 checked and made from UTF-8, INBOX's case, LIST's reference and
 * pattern matching (see imapname.h). It must never allocate, read past a length it was given,
 * write past a size it was given, or take two spellings of one name.
 */
#include "config.h"

#include <stdint.h>
#include <string.h>

#include "imapname.h"
#include "util.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

static int b64_value(char c)
{
    const char *p = c != '\0' ? strchr(b64, c) : NULL;
    return p != NULL ? (int)(p - b64) : -1;
}

/* One UTF-16 unit of a run; *high holds a pending high surrogate. 0, or -1. */
static int utf16_unit(uint32_t u, uint32_t *high)
{
    if (*high != 0) {
        if (u < 0xDC00 || u > 0xDFFF)
            return -1;
        *high = 0;
        return 0;
    }
    if (u >= 0xD800 && u <= 0xDBFF) {
        *high = u;
        return 0;
    }
    /* a lone low surrogate, printable ASCII (written as itself), a control character */
    if ((u >= 0xDC00 && u <= 0xDFFF) || u < 0x20 || (u >= 0x7F && u <= 0x9F) ||
        (u >= 0x20 && u < 0x7F))
        return -1;
    return 0;
}

/* The base64 run at s[*i] (after '&'), through its '-'. 0, or -1. */
static int mutf7_run(const char *s, size_t len, size_t *i)
{
    uint32_t acc = 0, high = 0;
    unsigned bits = 0, units = 0;
    for (; *i < len && s[*i] != '-'; (*i)++) {
        int v = b64_value(s[*i]);
        if (v < 0)
            return -1;
        acc = ((acc << 6) | (uint32_t)v) & 0x3FFFFF;
        bits += 6;
        if (bits >= 16) {
            bits -= 16;
            if (utf16_unit((acc >> bits) & 0xFFFF, &high) != 0)
                return -1;
            units++;
        }
    }
    if (*i >= len || units == 0 || high != 0 || bits >= 6 || (acc & ((1u << bits) - 1)) != 0)
        return -1;
    (*i)++;
    return 0;
}

int imapname_mutf7_valid(const char *s, size_t len)
{
    size_t run_end = (size_t)-1; /* just past the last run's '-' */
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c > 0x7E)
            return 0;
        if (c != '&') {
            i++;
            continue;
        }
        if (i + 1 < len && s[i + 1] == '-') {
            i += 2;
            continue;
        }
        if (i == run_end) /* "&AOk-&AOk-": one run must hold both */
            return 0;
        i++;
        if (mutf7_run(s, len, &i) != 0)
            return 0;
        run_end = i;
    }
    return 1;
}

/* ---- UTF-8 into modified UTF-7 ---- */

/* One code point at s[*i]. 0, or -1 (overlong, a surrogate, past U+10FFFF, cut short). */
static int utf8_next(const unsigned char *s, size_t len, size_t *i, uint32_t *cp)
{
    static const uint32_t min[] = {0, 0x80, 0x800, 0x10000};
    unsigned char c = s[*i];
    size_t n;
    if (c < 0x80) {
        *cp = c;
        (*i)++;
        return 0;
    }
    if (c >= 0xC2 && c <= 0xDF)
        n = 1;
    else if ((c & 0xF0) == 0xE0)
        n = 2;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 3;
    else
        return -1;
    if (len - *i <= n)
        return -1;
    uint32_t v = c & (0x3Fu >> n);
    for (size_t k = 1; k <= n; k++) {
        if ((s[*i + k] & 0xC0) != 0x80)
            return -1;
        v = (v << 6) | (s[*i + k] & 0x3Fu);
    }
    if (v < min[n] || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
        return -1;
    *cp = v;
    *i += n + 1;
    return 0;
}

struct out {
    char *p;
    size_t size, len;
    uint32_t acc;
    unsigned bits;
};

static int put(struct out *o, char c)
{
    if (o->len + 1 >= o->size)
        return -1;
    o->p[o->len++] = c;
    o->p[o->len] = '\0';
    return 0;
}

static int put_unit(struct out *o, uint32_t u)
{
    o->acc = (o->acc << 16) | u;
    o->bits += 16;
    while (o->bits >= 6) {
        o->bits -= 6;
        if (put(o, b64[(o->acc >> o->bits) & 0x3F]) != 0)
            return -1;
    }
    o->acc &= (1u << o->bits) - 1;
    return 0;
}

/* Closes an open run: the last bits, then '-'. */
static int end_run(struct out *o)
{
    if (o->bits > 0 && put(o, b64[(o->acc << (6 - o->bits)) & 0x3F]) != 0)
        return -1;
    o->acc = o->bits = 0;
    return put(o, '-');
}

int imapname_utf8_to_mutf7(const char *s, size_t len, char *out, size_t size)
{
    struct out o = {out, size, 0, 0, 0};
    int in_run = 0;
    if (size == 0)
        return -1;
    out[0] = '\0';
    for (size_t i = 0; i < len;) {
        uint32_t cp;
        if (utf8_next((const unsigned char *)s, len, &i, &cp) != 0 || cp < 0x20 ||
            (cp >= 0x7F && cp <= 0x9F))
            return -1;
        if (cp < 0x7F) {
            if ((in_run && end_run(&o) != 0) || put(&o, (char)cp) != 0 ||
                (cp == '&' && put(&o, '-') != 0))
                return -1;
            in_run = 0;
            continue;
        }
        if (!in_run && put(&o, '&') != 0)
            return -1;
        in_run = 1;
        if (cp >= 0x10000 && (put_unit(&o, 0xD800 + ((cp - 0x10000) >> 10)) != 0 ||
                              put_unit(&o, 0xDC00 + ((cp - 0x10000) & 0x3FF)) != 0))
            return -1;
        if (cp < 0x10000 && put_unit(&o, cp) != 0)
            return -1;
    }
    return in_run ? end_run(&o) : 0;
}

/* ---- INBOX, reference and pattern ---- */

void imapname_canon(char *name)
{
    if (str_iprefix(name, "INBOX") && (name[5] == '\0' || name[5] == IMAPNAME_DELIM))
        memcpy(name, "INBOX", 5);
}

int imapname_join(const char *ref, const char *pattern, char *out, size_t size)
{
    if (str_format(out, size, "%s%s", ref, pattern) < 0)
        return -1;
    imapname_canon(out);
    return 0;
}

/* One row of the match: prev[j] says pattern[0..i) matched name[0..j); next for i + 1. */
static void match_step(char p, const char *name, size_t n, const unsigned char *prev,
                       unsigned char *next)
{
    unsigned char any = 0;
    for (size_t j = 0; j <= n; j++) {
        if (p == '*' || p == '%') {
            if (p == '%' && j > 0 && name[j - 1] == IMAPNAME_DELIM)
                any = 0;
            any |= prev[j];
            next[j] = any;
        } else {
            next[j] = j > 0 && prev[j - 1] && name[j - 1] == p;
        }
    }
}

int imapname_match(const char *pattern, const char *name)
{
    unsigned char a[IMAPNAME_MAX + 1], b[IMAPNAME_MAX + 1];
    size_t n = strlen(name);
    if (n > IMAPNAME_MAX)
        return 0;
    unsigned char *prev = a, *next = b;
    memset(prev, 0, n + 1);
    prev[0] = 1;
    for (const char *p = pattern; *p != '\0'; p++) {
        match_step(*p, name, n, prev, next);
        unsigned char *t = prev;
        prev = next;
        next = t;
    }
    return prev[n];
}
