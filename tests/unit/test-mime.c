/*
 * test-mime: lib/mime against golden cases (tests/unit/mime/NAME.eml rendered as NAME.ref
 * says: BODYSTRUCTURE, BODY, ENVELOPE, and the spans of a few sections), plus the promises
 * the golden files cannot show: the same tree whatever the read sizes, the CRLF sizes, the
 * bounded output buffer, HEADER.FIELDS, and a 50 MB message parsed in constant memory.
 * MIME_REGEN=1 rewrites the .ref files (review the diff before committing it).
 */
#include "config.h"

#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mime.h"
#include "tap.h"

static char out[1 << 20];

static void line(FILE *f, const char *label, int rc, struct mime_buf *b)
{
    fprintf(f, "%s %s\n", label, rc == 0 ? b->p : "(failed)");
}

static const char *sections[] = {"",       "HEADER", "TEXT", "1",   "1.MIME", "2", "2.HEADER",
                                 "2.TEXT", "1.1",    "2.1",  "1.2", "2.2.1",  "3"};

/* The golden text of one message. */
static void describe(const struct mime_tree *t, FILE *f)
{
    struct mime_buf b = {out, 0, sizeof out, 0};
    line(f, "BODYSTRUCTURE", mime_bodystructure(t, 0, 1, mime_buf_write, &b), &b);
    b.len = 0;
    line(f, "BODY", mime_bodystructure(t, 0, 0, mime_buf_write, &b), &b);
    b.len = 0;
    line(f, "ENVELOPE", mime_envelope(t, 0, mime_buf_write, &b), &b);
    for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++) {
        struct mime_section s;
        if (mime_section(t, sections[k], strlen(sections[k]), &s) != 0)
            fprintf(f, "SECTION [%s] none\n", sections[k]);
        else
            fprintf(f, "SECTION [%s] part %d off %llu len %llu crlf %llu+%llu\n", sections[k],
                    s.part, (unsigned long long)s.span.off, (unsigned long long)s.span.len,
                    (unsigned long long)s.span.crlf_off, (unsigned long long)s.span.crlf_len);
    }
    fprintf(f, "PARTS %zu DEGRADED 0x%02x\n", t->n, t->degraded);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[1 << 20];
    *len = fread(buf, 1, sizeof buf - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

struct tiny {
    int fd;
    size_t step;
};

static ssize_t tiny_read(void *arg, void *buf, size_t len)
{
    struct tiny *r = arg;
    size_t n = r->step < len ? r->step : len;
    r->step = r->step % 13 + 1;
    return read(r->fd, buf, n);
}

static void check_golden(const char *eml)
{
    char ref[4096], got[1 << 16];
    snprintf(ref, sizeof ref, "%.*s.ref", (int)(strlen(eml) - 4), eml);
    const char *name = strrchr(eml, '/') + 1;
    int fd = open(eml, O_RDONLY);
    struct mime_tree t, t2;
    CHECK(fd >= 0 && mime_parse_fd(&t, fd) == 0, "%s parses", name);
    FILE *m = fmemopen(got, sizeof got, "w");
    describe(&t, m);
    fclose(m);
    /* the same text when read a few octets at a time */
    struct tiny r = {fd, 1};
    lseek(fd, 0, SEEK_SET);
    CHECK(mime_parse(&t2, tiny_read, &r) == 0, "%s parses in small reads", name);
    static char got2[1 << 16];
    m = fmemopen(got2, sizeof got2, "w");
    describe(&t2, m);
    fclose(m);
    CHECK_STR(got2, got, "%s: the same tree whatever the read sizes", name);
    close(fd);
    mime_free(&t);
    mime_free(&t2);
    if (getenv("MIME_REGEN")) {
        FILE *w = fopen(ref, "w");
        fputs(got, w);
        fclose(w);
    }
    size_t len;
    char *want = slurp(ref, &len);
    CHECK(want != NULL, "%s has a reference", name);
    if (want)
        CHECK_STR(got, want, "%s renders as its .ref", name);
}

static ssize_t mem_read(void *arg, void *buf, size_t len)
{
    const char **p = arg;
    size_t n = strlen(*p) < len ? strlen(*p) : len;
    memcpy(buf, *p, n);
    *p += n;
    return (ssize_t)n;
}

static int parse_str(struct mime_tree *t, const char *s)
{
    return mime_parse(t, mem_read, &s);
}

static void check_sizes(void)
{
    struct mime_tree t;
    CHECK(parse_str(&t, "Subject: x\n\nline 1\nline 2\n") == 0, "a small message parses");
    CHECK(t.parts[0].header.len == 12 && t.parts[0].header.crlf_len == 14, "header 12 / 14");
    CHECK(t.parts[0].body.off == 12 && t.parts[0].body.crlf_off == 14, "body at 12 / 14");
    CHECK(t.parts[0].body.len == 14 && t.parts[0].body.crlf_len == 16, "body 14 / 16");
    CHECK(t.parts[0].lines == 2, "two lines");
    mime_free(&t);
    CHECK(parse_str(&t, "Subject: x\n\nno final newline") == 0 && t.parts[0].lines == 1 &&
              t.parts[0].body.crlf_len == 16,
          "an unterminated last line counts as a line, with no CRLF added");
    mime_free(&t);
}

static void check_buffer(void)
{
    struct mime_tree t;
    char small[16];
    struct mime_buf b = {small, 0, sizeof small, 0};
    parse_str(&t, "Content-Type: text/plain\n\nx\n");
    CHECK(mime_bodystructure(&t, 0, 1, mime_buf_write, &b) == -1 && b.overflow &&
              b.len < sizeof small && small[b.len] == '\0',
          "a rendering too long for its buffer fails, the buffer stays bounded");
    b = (struct mime_buf){out, 0, sizeof out, 0};
    CHECK(mime_bodystructure(&t, 0, 0, mime_buf_write, &b) == 0, "BODY renders");
    CHECK_STR(out, "(\"text\" \"plain\" NIL NIL NIL \"7bit\" 3 1)", "BODY of text/plain");
    mime_free(&t);
}

static int hf_fd(const char *text)
{
    char path[] = "/tmp/test-mime-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    if (write(fd, text, strlen(text)) != (ssize_t)strlen(text))
        return -1;
    return fd;
}

static void check_header_fields(void)
{
    int fd = hf_fd("From: a@x.test\nTo: b@y.test,\n  c@y.test\nSubject: hi\nX-Other: 1\n\nbody\n");
    struct mime_tree t;
    CHECK(fd >= 0 && mime_parse_fd(&t, fd) == 0, "a message for HEADER.FIELDS parses");
    struct mime_section s;
    const char *spec = "HEADER.FIELDS (to SUBJECT)";
    CHECK(mime_section(&t, spec, strlen(spec), &s) == 0 && s.kind == MIME_SECT_HEADER_FIELDS,
          "HEADER.FIELDS resolves");
    struct mime_buf b = {out, 0, sizeof out, 0};
    CHECK(mime_header_fields(fd, &s.span, s.rest, strlen(s.rest), 0, mime_buf_write, &b) == 0,
          "HEADER.FIELDS writes");
    CHECK_STR(out, "To: b@y.test,\r\n  c@y.test\r\nSubject: hi\r\n\r\n",
              "only the named fields, folded lines kept, CRLF, then the blank line");
    b.len = 0;
    CHECK(mime_header_fields(fd, &s.span, s.rest, strlen(s.rest), 1, mime_buf_write, &b) == 0,
          "HEADER.FIELDS.NOT writes");
    CHECK_STR(out, "From: a@x.test\r\nX-Other: 1\r\n\r\n", "all but the named fields");
    CHECK(mime_section(&t, "1.HEADER", 8, &s) == -1, "1.HEADER of a text/plain: no such part");
    CHECK(mime_section(&t, "MIME", 4, &s) == -1, "MIME without a part number is refused");
    CHECK(mime_section(&t, "1.FOO", 5, &s) == -1, "an unknown keyword is refused");
    CHECK(mime_section(&t, "0", 1, &s) == -1, "part 0 does not exist");
    mime_free(&t);
    close(fd);
}

/* 50 MB of multipart message, generated as it is read. */
struct big {
    uint64_t left;
    int state;
};

static ssize_t big_read(void *arg, void *buf, size_t len)
{
    struct big *g = arg;
    static const char head[] = "Content-Type: multipart/mixed; boundary=x\n\n";
    static const char part[] = "--x\nContent-Type: text/plain\n\n"
                               "0123456789012345678901234567890123456789012345678901234567\n";
    const char *src = g->state == 0 ? head : part;
    size_t n = strlen(src);
    if (g->left == 0)
        return 0;
    if (n > len)
        return -1;
    g->state = 1;
    g->left = g->left > n ? g->left - n : 0;
    memcpy(buf, src, n);
    return (ssize_t)n;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void check_big(void)
{
    long before = maxrss_kib();
    struct big g = {50u << 20, 0};
    struct mime_tree t;
    CHECK(mime_parse(&t, big_read, &g) == 0, "a 50 MB message parses");
    CHECK(t.n == MIME_MAX_PARTS && (t.degraded & MIME_DEG_PARTS), "its parts stop at %d",
          MIME_MAX_PARTS);
    CHECK(t.parts[0].body.len > (49u << 20), "the root's body spans the whole message");
    long grew = maxrss_kib() - before;
    CHECK(grew < 2048, "memory grew by %ld KiB only", grew);
    struct mime_buf b = {out, 0, sizeof out, 0};
    CHECK(mime_bodystructure(&t, 0, 1, mime_buf_write, &b) == 0, "its BODYSTRUCTURE renders");
    mime_free(&t);
}

int main(void)
{
    glob_t g;
    const char *dir = getenv("YUBIN_SRC");
    char pat[4096];
    snprintf(pat, sizeof pat, "%s/tests/unit/mime/*.eml", dir ? dir : "..");
    if (glob(pat, 0, NULL, &g) != 0) {
        snprintf(pat, sizeof pat, "mime/*.eml");
        glob(pat, 0, NULL, &g);
    }
    CHECK(g.gl_pathc >= 10, "golden inputs found (%zu)", g.gl_pathc);
    for (size_t i = 0; i < g.gl_pathc; i++)
        check_golden(g.gl_pathv[i]);
    globfree(&g);
    check_sizes();
    check_buffer();
    check_header_fields();
    check_big();
    return tap_done();
}
