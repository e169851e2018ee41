/*
 * test-header: lib/header, the header section sendmail(8) holds for parsing: LF line ends,
 * the mbox "From " line, folds, a body without an empty line, a lone '.', the size limit,
 * and walking the fields by name.
 */
#include "config.h"

#include <stdlib.h>

#include "header.h"
#include "tap.h"

static struct header h;
static char line[HEADER_MAX];

static int read_text(const char *text, size_t len, int dots_end, long *first)
{
    FILE *f = fmemopen((void *)text, len, "r");
    memset(&h, 0, sizeof h);
    struct deliver_text t = {0};
    int rc = header_read(&h, f, dots_end, line, sizeof line, first, &t);
    fclose(f);
    return rc;
}

#define READ(text, dots, first) read_text(text, sizeof text - 1, dots, first)

int main(void)
{
    long first;
    size_t pos = 0, s, e, n;
    CHECK(READ("From someone Mon Jan  1 00:00:00 2024\r\nFrom: A <a@b.test>\r\nTo: x@y.test,\r\n"
               "  z@y.test\r\nBcc: hidden@y.test\r\n\r\nbody\r\n",
               1, &first) == HEADER_OK,
          "read");
    CHECK(first == 0 && !h.ended && !h.no_blank, "ended at the empty line");
    CHECK(h.len == strlen("From: A <a@b.test>\nTo: x@y.test,\n  z@y.test\nBcc: hidden@y.test\n") &&
              memcmp(h.buf, "From: A <a@b.test>\nTo:", 22) == 0,
          "mbox From line dropped, LF line ends");
    CHECK(header_next_field(&h, &pos, &s, &e, &n) && n == 4 && header_name_is(&h, s, n, "FROM"),
          "first field From (any case)");
    CHECK(header_next_field(&h, &pos, &s, &e, &n) && header_name_is(&h, s, n, "To") &&
              e - s == strlen("To: x@y.test,\n  z@y.test\n"),
          "the To field with its fold");
    CHECK(header_next_field(&h, &pos, &s, &e, &n) && header_is_bcc(&h, s, n), "Bcc");
    CHECK(!header_next_field(&h, &pos, &s, &e, &n), "no more fields");
    header_note_fields(&h);
    CHECK(h.has_from && !h.has_date && !h.has_msgid && !h.has_resent, "what it has");

    CHECK(READ("Subject: x\nthis is the body\n", 0, &first) == HEADER_OK && h.no_blank &&
              first == 17 && memcmp(line, "this is the body\n", 17) == 0,
          "a body line without the empty line first is left for the caller");
    CHECK(READ("Subject: x\n.\nmore\n", 1, &first) == HEADER_OK && h.ended,
          "a lone dot ends the input without -i");
    CHECK(READ("Subject: x\n.\nmore\n", 0, &first) == HEADER_OK && !h.ended && h.no_blank,
          "with -i it is a body line");
    CHECK(READ("Subject: no newline", 1, &first) == HEADER_OK && h.ended &&
              h.len == strlen("Subject: no newline\n"),
          "a last line without LF gets one");
    size_t big = HEADER_MAX + 100;
    char *text = malloc(big);
    memset(text, 'x', big);
    memcpy(text, "X-Long: ", 8);
    text[big - 1] = '\n';
    CHECK(read_text(text, big, 1, &first) == HEADER_TOOLONG, "a header section over %d octets",
          HEADER_MAX);
    free(text);
    return tap_done();
}
