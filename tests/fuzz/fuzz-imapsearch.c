/*
 * tests/fuzz/fuzz-imapsearch.c: lib/imapsearch on any SEARCH arguments and any message. The
 * input is the arguments (what follows "SEARCH "), then optionally a NUL and the stored
 * message (a small built-in one when there is none). Checks the promises of imapsearch.h:
 * parsing gives 0, -1 with a printable BAD text, BADCHARSET or NOMEM and nothing else; a
 * parsed query matches each message variant with 0 or 1 (never an error on a readable file),
 * "NOT (q)" matches exactly when q does not, a query that reads no text never opens the file,
 * the opened file is closed again, and the SEARCH / ESEARCH answers are one CRLF-ended line.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "fuzz.h"
#include "imapsearch.h"

static const char sample[] = "Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
                             "From: =?utf-8?q?Fred_F=C3=B6obar?= <foobar@example.test>\n"
                             "Subject: =?iso-8859-1?b?Y2Fm6Q==?= meeting\n"
                             "To: mooch@example.test\n"
                             "Content-Type: multipart/mixed; boundary=b\n"
                             "\n"
                             "--b\n"
                             "Content-Transfer-Encoding: quoted-printable\n"
                             "\n"
                             "Hello Joe, at 3:30 tomorrow=3F\n"
                             "--b\n"
                             "Content-Type: text/plain\n"
                             "Content-Transfer-Encoding: base64\n"
                             "\n"
                             "aGVsbG8gd29ybGQ=\n"
                             "--b--\n";

static int memfd;
static int opens;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    memfd = fuzz_memfd("imapsearch-msg");
    return 0;
}

static int open_msg(void *arg)
{
    (void)arg;
    opens++;
    return dup(memfd);
}

struct obuf {
    char *p;
    size_t len, cap;
};

static int collect(void *arg, const void *data, size_t len)
{
    struct obuf *b = arg;
    if (b->len + len >= b->cap)
        return -1;
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

static int match(struct imapsearch *q, const char *flags, uint32_t seq, int lazy)
{
    struct imapsearch_msg m = {.seq = seq,
                               .uid = seq * 3,
                               .max_seq = 7,
                               .max_uid = 21,
                               .flags = flags,
                               .internaldate = 1057017600 + (time_t)seq * 40000,
                               .size = 500 * seq,
                               .fd = lazy ? -1 : memfd,
                               .open = open_msg};
    int v = imapsearch_match(q, &m);
    if (v != 0 && v != 1)
        fuzz_fail("imapsearch_match gave neither 0 nor 1", NULL, 0);
    return v;
}

/* "NOT (criteria)" when the criteria are bare keys. */
static void check_not(const char *crit, size_t len, const int *want, const char *const *flags)
{
    char *c = malloc(len + 8);
    struct imapsearch q;
    char err[128];
    struct imaptok t;
    if (c == NULL)
        return;
    memcpy(c, "NOT (", 5);
    memcpy(c + 5, crit, len);
    c[len + 5] = ')';
    imaptok_init(&t, c, len + 6);
    if (imapsearch_parse(&t, &q, err, sizeof err) == 0) {
        for (int i = 0; i < 4; i++)
            if (match(&q, flags[i % 2], (uint32_t)i + 1, 0) != !want[i])
                fuzz_fail("NOT (q) is not the negation of q", c, len + 6);
        imapsearch_free(&q);
    }
    free(c);
}

static void check_answer(const struct imapsearch *q, const struct imapsearch_hits *h)
{
    static char out[1 << 16];
    for (int mode = 0; mode < 4; mode++) {
        struct obuf b = {out, 0, sizeof out};
        out[0] = '\0';
        if (imapsearch_result(q, h, mode & 1, mode >> 1, "A1", collect, &b) != 0)
            fuzz_fail("imapsearch_result failed", NULL, 0);
        if (b.len == 0)
            continue; /* RETURN (SAVE) */
        if (b.len < 4 || memcmp(out + b.len - 2, "\r\n", 2) != 0 || out[0] != '*')
            fuzz_fail("the answer is not one line", out, b.len);
        for (size_t i = 0; i + 2 < b.len; i++)
            if (out[i] == '\r' || out[i] == '\n')
                fuzz_fail("a line end inside the answer", out, b.len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t clen = nul ? (size_t)(nul - data) : size;
    const void *msg = nul ? (const void *)(nul + 1) : (const void *)sample;
    size_t mlen = nul ? size - clen - 1 : sizeof sample - 1;
    uint64_t fds = fuzz_open_fds();
    if (ftruncate(memfd, 0) != 0 || pwrite(memfd, msg, mlen, 0) != (ssize_t)mlen)
        fuzz_fail("memfd", NULL, 0);

    struct imaptok t;
    struct imapsearch q;
    char err[128];
    imaptok_init(&t, (const char *)data, clen);
    int rc = imapsearch_parse(&t, &q, err, sizeof err);
    if (rc == -1) {
        if (err[0] == '\0')
            fuzz_fail("BAD without a text", data, clen);
        for (const char *e = err; *e; e++)
            if (*e < 0x20 || *e > 0x7e)
                fuzz_fail("a BAD text that is not printable", err, strlen(err));
        return 0;
    }
    if (rc == IMAPSEARCH_BADCHARSET || rc == IMAPSEARCH_NOMEM)
        return 0;
    if (rc != 0)
        fuzz_fail("imapsearch_parse gave something else", data, clen);

    static const char *const flags[] = {"", "DFRST"};
    struct imapsearch_hits h = {0};
    int want[4];
    opens = 0;
    for (int i = 0; i < 4; i++) {
        want[i] = match(&q, flags[i % 2], (uint32_t)i + 1, 1);
        if (want[i] != match(&q, flags[i % 2], (uint32_t)i + 1, 0))
            fuzz_fail("an open fd and a lazy open disagree", data, clen);
        if (want[i] && imapsearch_hits_add(&h, (uint32_t)i + 1, (uint32_t)(i + 1) * 3) != 0)
            fuzz_fail("out of memory", NULL, 0);
    }
    if (!q.reads_header && !q.reads_body && opens > 0)
        fuzz_fail("a query without text keys opened the file", data, clen);
    check_answer(&q, &h);
    int bare = !q.has_return && (clen < 7 || strncasecmp((const char *)data, "CHARSET", 7) != 0);
    imapsearch_hits_free(&h);
    imapsearch_free(&q);
    if (bare)
        check_not((const char *)data, clen, want, flags);
    fuzz_check_fds(fds, "imapsearch");
    return 0;
}
