/*
 * test-log: log_escape and log_field of lib/log, the one escaping of values from outside: what
 * is kept, what becomes \xHH, the cut with "...", and the ring of buffers.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "tap.h"

static void test_escape(void)
{
    char out[64];
    CHECK_STR(log_escape(out, sizeof out, "demo@example.test"), "demo@example.test",
              "an address is kept");
    CHECK_STR(log_escape(out, sizeof out, "x> client=6.6.6.6"), "x\\x3E\\x20client\\x3D6.6.6.6",
              "'>', ' ' and '=' escaped");
    CHECK_STR(log_escape(out, sizeof out, "\"a,b\"<c>\\"), "\\x22a\\x2Cb\\x22\\x3Cc\\x3E\\x5C",
              "quote, comma, brackets, backslash");
    CHECK_STR(log_escape(out, sizeof out, "\t\r\n\x7f\xe9"), "\\x09\\x0D\\x0A\\x7F\\xE9",
              "control and 8-bit bytes");
    CHECK_STR(log_escape(out, sizeof out, "!#$%&'()*+-./:;?[]^_`{|}~"), "!#$%&'()*+-./:;?[]^_`{|}~",
              "other printable ASCII is kept");
    CHECK_STR(log_escape(out, 8, "abcdefg"), "abcdefg", "exactly fits");
    CHECK_STR(log_escape(out, 8, "abcdefgh"), "abcd...", "cut with ...");
    CHECK_STR(log_escape(out, 8, "ab    "), "ab...", "never half an escape");
    CHECK_STR(log_escape(out, 3, "abc"), "", "too small a buffer: empty");
}

static void test_field(void)
{
    const char *f[9];
    char big[2000];
    for (int i = 0; i < 9; i++) {
        snprintf(big, sizeof big, "v%d", i);
        f[i] = log_field(big);
    }
    CHECK(strcmp(f[1], "v1") == 0 && strcmp(f[7], "v7") == 0, "8 fields at once stay apart");
    CHECK(f[8] == f[0] && strcmp(f[0], "v8") == 0, "the ninth reuses the first buffer");
    CHECK_STR(log_field(NULL), "", "NULL is an empty field");
    memset(big, ' ', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *cut = log_field(big);
    CHECK(strlen(cut) <= LOG_FIELD_MAX && strcmp(cut + strlen(cut) - 3, "...") == 0,
          "a long value is cut at LOG_FIELD_MAX (%zu)", strlen(cut));
}

int main(void)
{
    test_escape();
    test_field();
    return tap_done();
}
