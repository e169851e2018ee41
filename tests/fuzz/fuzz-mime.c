/*
 * tests/fuzz/fuzz-mime.c: lib/mime on any message. The input is the stored message; it is
 * parsed from a reader that hands it over in pieces of varying size (the first octet picks
 * them), then every part is rendered (BODYSTRUCTURE, BODY, ENVELOPE for messages) and a few
 * section specifiers resolved. Checks the promises of lib/mime.h: parsing never fails on
 * any input, the spans lie inside the message and nest, CRLF sizes are the LF ones plus the
 * LFs, at most MIME_MAX_PARTS parts, and every rendering is balanced IMAP text.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mime.h"

struct feed {
    const uint8_t *p;
    size_t len, at, step;
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static ssize_t feed_read(void *arg, void *buf, size_t len)
{
    struct feed *f = arg;
    size_t n = f->len - f->at;
    if (n > f->step)
        n = f->step;
    if (n > len)
        n = len;
    memcpy(buf, f->p + f->at, n);
    f->at += n;
    f->step = f->step * 7 % 4093 + 1;
    return (ssize_t)n;
}

static uint64_t lfs(const uint8_t *p, uint64_t off, uint64_t len)
{
    uint64_t n = 0;
    for (uint64_t i = 0; i < len; i++)
        n += p[off + i] == '\n';
    return n;
}

static void check_span(const struct mime_span *s, const struct feed *f, const char *what)
{
    if (s->off > f->len || s->len > f->len - s->off)
        fuzz_fail(what, NULL, 0);
    if (s->crlf_len != s->len + lfs(f->p, s->off, s->len) ||
        s->crlf_off != s->off + lfs(f->p, 0, s->off))
        fuzz_fail("CRLF span is not the LF span plus its LFs", NULL, 0);
}

/* Parentheses balance outside quoted strings and literals. */
static void check_balanced(const struct mime_buf *b, const char *what)
{
    long depth = 0;
    for (size_t i = 0; i < b->len; i++) {
        char c = b->p[i];
        if (c == '"') {
            for (i++; i < b->len && b->p[i] != '"'; i++)
                if (b->p[i] == '\\')
                    i++;
        } else if (c == '{') {
            char *end;
            unsigned long n = strtoul(b->p + i + 1, &end, 10);
            if (*end != '}' || end[1] != '\r' || end[2] != '\n')
                fuzz_fail("bad literal", b->p, b->len);
            i = (size_t)(end + 2 - b->p) + n;
        } else if (c == '(')
            depth++;
        else if (c == ')' && --depth < 0)
            fuzz_fail(what, b->p, b->len);
        else if (c == '\r' || c == '\n' || c == '\0')
            fuzz_fail("control octet outside a literal", b->p, b->len);
    }
    if (depth != 0)
        fuzz_fail(what, b->p, b->len);
}

static void render(const struct mime_tree *t, int i, char *out, size_t cap)
{
    for (int ext = 0; ext < 2; ext++) {
        struct mime_buf b = {out, 0, cap, 0};
        if (mime_bodystructure(t, i, ext, mime_buf_write, &b) != 0 && !b.overflow)
            fuzz_fail("bodystructure failed", NULL, 0);
        if (!b.overflow)
            check_balanced(&b, "unbalanced BODYSTRUCTURE");
    }
    if (t->parts[i].is_message) {
        struct mime_buf b = {out, 0, cap, 0};
        if (mime_envelope(t, i, mime_buf_write, &b) != 0 && !b.overflow)
            fuzz_fail("envelope failed", NULL, 0);
        if (!b.overflow)
            check_balanced(&b, "unbalanced ENVELOPE");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    struct feed f = {data + 1, size - 1, 0, (size_t)data[0] * 31 + 1};
    struct mime_tree t;
    if (mime_parse(&t, feed_read, &f) != 0)
        fuzz_fail("mime_parse failed", NULL, 0);
    if (t.n == 0 || t.n > MIME_MAX_PARTS)
        fuzz_fail("part count out of bounds", NULL, 0);
    static char out[1 << 20];
    for (size_t i = 0; i < t.n; i++) {
        check_span(&t.parts[i].header, &f, "header span outside the message");
        check_span(&t.parts[i].body, &f, "body span outside the message");
        if (t.parts[i].depth > MIME_MAX_DEPTH)
            fuzz_fail("too deep", NULL, 0);
        render(&t, (int)i, out, sizeof out);
    }
    static const char *specs[] = {"",          "HEADER", "TEXT",
                                  "1",         "1.MIME", "2.1",
                                  "1.1.1",     "2.TEXT", "1.HEADER.FIELDS (From To)",
                                  "3.2.1.MIME"};
    for (size_t k = 0; k < sizeof specs / sizeof specs[0]; k++) {
        struct mime_section s;
        if (mime_section(&t, specs[k], strlen(specs[k]), &s) == 0) {
            check_span(&s.span, &f, "section outside the message");
            if (s.part < 0 || (size_t)s.part >= t.n)
                fuzz_fail("section part out of range", NULL, 0);
        }
    }
    mime_free(&t);
    return 0;
}
