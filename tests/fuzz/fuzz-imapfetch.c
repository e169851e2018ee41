/*
 * tests/fuzz/fuzz-imapfetch.c: lib/imapfetch on any FETCH attribute list and any message. The
 * input's first line (up to LF) is what follows "FETCH <set> "; it is also parsed as a STORE
 * flag list and as STORE's data item. The rest is the stored message. When the list parses, the
 * message is rendered (as a UID FETCH when the list's first octet is odd) and the response checked:
 * it starts with "* 7 FETCH (" and ends with ")\r\n", every literal "{n}\r\n" / "~{n}\r\n" is
 * followed by n octets, no CR, LF or NUL appears outside literals, parentheses balance outside
 * strings, and a whole BODY[] or BODY[]<0.n> equals the message with LF sent as CRLF. A refused
 * list must come with a BAD text; a refused message (UNKNOWN-CTE) must have written nothing.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "imapfetch.h"

static char path[512];
static int msg_fd = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *dir = getenv("TMPDIR");
    snprintf(path, sizeof path, "%s/fuzz-imapfetch-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm"
             : dir                         ? dir
                                           : "/tmp");
    msg_fd = mkstemp(path);
    if (msg_fd < 0)
        abort();
    unlink(path);
    return 0;
}

struct outbuf {
    char *p;
    size_t len, cap;
};

static int out_write(void *arg, const void *data, size_t len)
{
    struct outbuf *o = arg;
    if (len > o->cap - o->len)
        return -1;
    memcpy(o->p + o->len, data, len);
    o->len += len;
    return 0;
}

/* The response's syntax, as far as a client's reader depends on it. */
static void check_response(const struct outbuf *o)
{
    const char *p = o->p, *end = o->p + o->len;
    if (o->len < 14 || memcmp(p, "* 7 FETCH (", 11) != 0 || memcmp(end - 3, ")\r\n", 3) != 0)
        fuzz_fail("not a FETCH response", o->p, o->len);
    long depth = 0;
    for (const char *q = p; q < end - 2; q++) {
        if (*q == '"') {
            for (q++; q < end && *q != '"'; q++)
                if (*q == '\\')
                    q++;
            if (q >= end)
                fuzz_fail("unterminated quoted string", o->p, o->len);
        } else if (*q == '{' || (*q == '~' && q + 1 < end && q[1] == '{')) {
            q += *q == '~';
            char *e;
            unsigned long long n = strtoull(q + 1, &e, 10);
            if (e >= end - 2 || *e != '}' || e[1] != '\r' || e[2] != '\n' ||
                n > (unsigned long long)(end - (e + 3)))
                fuzz_fail("bad literal", o->p, o->len);
            q = e + 2 + n;
        } else if (*q == '(') {
            depth++;
        } else if (*q == ')' && --depth < 0) {
            fuzz_fail("unbalanced parentheses", o->p, o->len);
        } else if (*q == '\r' || *q == '\n' || *q == '\0') {
            fuzz_fail("control octet outside a literal", o->p, o->len);
        }
    }
    if (depth != 0)
        fuzz_fail("unbalanced parentheses", o->p, o->len);
}

/* BODY[] or BODY[]<0.n> alone, rendered again: the literal must be the file with LF as CRLF. */
static void check_whole(const struct imapfetch *all, size_t i, const struct imapfetch_msg *msg,
                        const uint8_t *m, size_t len)
{
    static struct imapfetch f;
    static char buf[4 << 20];
    const struct imapfetch_item *it = &all->item[i];
    if (it->partial && it->origin != 0)
        return;
    uint64_t count = it->partial ? it->count : UINT64_MAX;
    f = *all;
    f.item[0] = *it;
    f.n = 1;
    struct imapfetch_msg m1 = *msg;
    m1.uid_command = 0;
    m1.flags = "\\Seen";
    struct outbuf o = {buf, 0, sizeof buf};
    if (imapfetch_message(&f, &m1, out_write, &o) != 0)
        return; /* too big for the buffer */
    const char *head = it->partial ? "* 7 FETCH (BODY[]<0> {" : "* 7 FETCH (BODY[] {";
    if (o.len < strlen(head) || memcmp(o.p, head, strlen(head)) != 0)
        fuzz_fail("BODY[] alone is not answered as BODY[]", o.p, o.len);
    char *e;
    unsigned long long n = strtoull(o.p + strlen(head), &e, 10);
    const char *lit = e + 3;
    uint64_t k = 0;
    for (size_t b = 0; b < len && k < count; b++) {
        if (m[b] == '\n') {
            if (k >= n || lit[k] != '\r')
                fuzz_fail("BODY[] differs from the message", o.p, o.len);
            k++;
        }
        if (k < count) {
            if (k >= n || (uint8_t)lit[k] != (m[b] ? m[b] : 0x80))
                fuzz_fail("BODY[] differs from the message", o.p, o.len);
            k++;
        }
    }
    if (k != n || (size_t)(lit - o.p) + n + 3 != o.len)
        fuzz_fail("BODY[] has another length than the message", o.p, o.len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t alen = nl ? (size_t)(nl - data) : size;
    const uint8_t *m = nl ? nl + 1 : data + size;
    size_t mlen = size - (size_t)(m - data);
    char err[128];

    struct imaptok t;
    struct imapfetch_flags fl;
    imaptok_init(&t, (const char *)data, alen);
    if (imapfetch_parse_flags(&t, &fl, err, sizeof err) != 0 && err[0] == '\0')
        fuzz_fail("a refused flag list without a BAD text", NULL, 0);
    struct imapfetch_store st;
    imaptok_init(&t, (const char *)data, alen);
    err[0] = '\0';
    if (imapfetch_parse_store(&t, &st, err, sizeof err) != 0 && err[0] == '\0')
        fuzz_fail("a refused STORE without a BAD text", NULL, 0);

    static struct imapfetch f;
    imaptok_init(&t, (const char *)data, alen);
    if (imapfetch_parse(&t, &f, err, sizeof err) != 0) {
        if (err[0] == '\0')
            fuzz_fail("a refused list without a BAD text", NULL, 0);
        return 0;
    }
    if (f.n == 0 || f.n > IMAPFETCH_MAX_ITEMS || f.text_len >= IMAPFETCH_MAX_TEXT)
        fuzz_fail("item count or text out of bounds", NULL, 0);

    if (ftruncate(msg_fd, 0) != 0 || pwrite(msg_fd, m, mlen, 0) != (ssize_t)mlen)
        abort();
    uint64_t crlf = mlen;
    for (size_t i = 0; i < mlen; i++)
        crlf += m[i] == '\n';
    struct imapfetch_msg msg = {
        7, 42,   "\\Flagged",          1000000000, crlf, msg_fd, alen && data[0] & 1,
        0, 4242, alen && (data[0] & 2)};
    static char buf[4 << 20];
    struct outbuf o = {buf, 0, sizeof buf};
    int rc = imapfetch_message(&f, &msg, out_write, &o);
    if (rc == IMAPFETCH_UNKNOWN_CTE || rc == IMAPFETCH_READ_ERROR) {
        if (o.len != 0)
            fuzz_fail("a refused message wrote something", o.p, o.len);
        return 0;
    }
    if (rc != 0) {
        if (o.len < o.cap - 65536)
            fuzz_fail("rendering failed with room in the buffer", o.p, o.len);
        return 0;
    }
    check_response(&o);
    for (size_t i = 0; i < f.n; i++)
        if (f.item[i].kind == IMAPFETCH_SECTION && f.item[i].sect_len == 0)
            check_whole(&f, i, &msg, m, mlen);
    return 0;
}
