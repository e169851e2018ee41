/*
 * test-imaptok: lib/imaptok. Atoms, flags, words, quoted strings (escapes, 8-bit, CR/LF and
 * NUL refused), literals (synchronising and "{n+}", short, with a NUL, too long for the
 * buffer), astrings and LIST patterns, numbers at and past 32 and 63 bits, dates and
 * date-times (zones, bad days, leap years), the literal announcement at a line's end, and
 * sequence sets ("*", reversed ranges, merging, 0 and empty parts refused). A failed call
 * must leave the cursor where it was.
 */
#include "config.h"

#include <string.h>

#include "imaptok.h"
#include "tap.h"

static struct imaptok tok(const char *s)
{
    struct imaptok t;
    imaptok_init(&t, s, strlen(s));
    return t;
}

static void test_atoms(void)
{
    struct imaptok t = tok("FETCH BODY[TEXT] (x)");
    const char *s;
    size_t n;
    CHECK(imaptok_atom(&t, &s, &n) == 0 && n == 5 && memcmp(s, "FETCH", 5) == 0, "an atom");
    CHECK(imaptok_atom(&t, &s, &n) == -1 && imaptok_peek(&t) == ' ', "no atom at SP");
    CHECK(imaptok_space(&t) == 0 && imaptok_space(&t) == -1, "one SP, then none");
    CHECK(imaptok_atom(&t, &s, &n) == 0 && n == 9 && memcmp(s, "BODY[TEXT", 9) == 0,
          "']' ends an atom, '[' does not");
    CHECK(imaptok_char(&t, ']') == 0 && imaptok_space(&t) == 0, "then ']' and SP");
    CHECK(imaptok_atom(&t, &s, &n) == -1, "'(' is no atom");
    t = tok("body.peek[");
    CHECK(imaptok_word(&t, "BODY") == -1, "a word is a whole atom");
    CHECK(imaptok_word(&t, "BODY.PEEK[") == 0 && imaptok_at_end(&t), "words without case");
    t = tok("\\Seen \\* $Junk \\");
    CHECK(imaptok_flag(&t, &s, &n) == 0 && n == 5, "a system flag");
    imaptok_space(&t);
    CHECK(imaptok_flag(&t, &s, &n) == -1 && imaptok_peek(&t) == '\\', "\\* is no flag");
    t.p += 3;
    CHECK(imaptok_flag(&t, &s, &n) == 0 && n == 5 && memcmp(s, "$Junk", 5) == 0, "a keyword");
    imaptok_space(&t);
    CHECK(imaptok_flag(&t, &s, &n) == -1 && imaptok_peek(&t) == '\\', "a lone backslash");
    t = tok("a\x80");
    CHECK(imaptok_atom(&t, &s, &n) == 0 && n == 1, "8-bit octets are not atom chars");
}

static void test_strings(void)
{
    char out[16];
    size_t n;
    struct imaptok t = tok("\"a \\\"b\\\\\" x");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == 0 && n == 5, "a quoted string");
    CHECK_STR(out, "a \"b\\", "its escapes decoded");
    CHECK(imaptok_peek(&t) == ' ', "the cursor after it");
    t = tok("\"a\\b\"");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == -1 && imaptok_peek(&t) == '"',
          "a bad escape: refused, cursor kept");
    t = tok("\"unterminated");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == -1, "an unterminated quote");
    t = tok("\"a\rb\"");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == -1, "CR in a quoted string");
    t = tok("\"caf\xc3\xa9\"");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == 0 && n == 5, "UTF-8 in a quoted string");
    t = tok("\"0123456789abcdef\"");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == IMAPTOK_TOO_LONG, "too long for out");
    t = tok("{5}\r\nhe\"lo rest");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == 0 && n == 5, "a literal");
    CHECK_STR(out, "he\"lo", "its octets as they are");
    CHECK(imaptok_space(&t) == 0, "the cursor after its octets");
    t = tok("{3+}\r\nabc");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == 0 && n == 3 && imaptok_at_end(&t),
          "a non-synchronising literal");
    t = tok("{9}\r\nabc");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == -1 && imaptok_peek(&t) == '{',
          "a literal longer than what is there");
    t = tok("{3}abc");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == -1, "a literal without CRLF");
    static const char nul[] = "{3}\r\na\0c";
    imaptok_init(&t, nul, sizeof nul - 1);
    CHECK(imaptok_string(&t, out, sizeof out, &n) == -1, "a NUL in a literal");
    t = tok("{20}\r\n01234567890123456789");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == IMAPTOK_TOO_LONG, "a literal too long");
    t = tok("{99999999999}\r\n");
    CHECK(imaptok_string(&t, out, sizeof out, &n) == IMAPTOK_TOO_LONG, "a length past 32 bits");
    t = tok("INBOX.a] \"x\" atom");
    CHECK(imaptok_astring(&t, out, sizeof out, &n) == 0, "an astring");
    CHECK_STR(out, "INBOX.a]", "']' belongs to an astring");
    imaptok_space(&t);
    CHECK(imaptok_astring(&t, out, sizeof out, &n) == 0 && strcmp(out, "x") == 0,
          "a quoted astring");
    t = tok("%.* x");
    CHECK(imaptok_astring(&t, out, sizeof out, &n) == -1, "'%%' is no astring char");
    CHECK(imaptok_list_mailbox(&t, out, sizeof out, &n) == 0 && strcmp(out, "%.*") == 0,
          "but a list-mailbox one");
    t = tok("()");
    CHECK(imaptok_astring(&t, out, sizeof out, &n) == -1, "no astring at '('");
}

static void test_numbers(void)
{
    uint32_t n;
    uint64_t m;
    struct imaptok t = tok("4294967295 4294967296 x");
    CHECK(imaptok_number(&t, &n) == 0 && n == 4294967295u, "the largest number");
    imaptok_space(&t);
    CHECK(imaptok_number(&t, &n) == IMAPTOK_TOO_LONG && imaptok_peek(&t) == '4',
          "one more: too long, cursor kept");
    CHECK(imaptok_number64(&t, &m) == 0 && m == 4294967296ull, "a 64-bit number");
    imaptok_space(&t);
    CHECK(imaptok_number(&t, &n) == -1, "no number at a letter");
    t = tok("9223372036854775808");
    CHECK(imaptok_number64(&t, &m) == IMAPTOK_TOO_LONG, "past 63 bits");
}

static void test_dates(void)
{
    time_t when;
    struct imaptok t = tok("1-Feb-1994 \"29-feb-2000\" 29-Feb-1900 31-Apr-2020 1-Foo-2020");
    CHECK(imaptok_date(&t, &when) == 0 && when == 760060800, "1-Feb-1994");
    imaptok_space(&t);
    CHECK(imaptok_date(&t, &when) == 0 && when == 951782400, "a quoted leap day, any case");
    imaptok_space(&t);
    CHECK(imaptok_date(&t, &when) == -1 && imaptok_peek(&t) == '2', "1900 had no 29 Feb");
    t.p += 12;
    CHECK(imaptok_date(&t, &when) == -1, "31 April");
    t.p += 12;
    CHECK(imaptok_date(&t, &when) == -1, "no such month");
    t = tok("\"17-Jul-1996 02:44:25 -0700\"");
    CHECK(imaptok_date_time(&t, &when) == 0 && when == 837596665 && imaptok_at_end(&t),
          "RFC 3501's date-time, zone applied");
    t = tok("\" 7-Jul-1996 09:44:25 +0000\"");
    CHECK(imaptok_date_time(&t, &when) == 0 && when == 836732665, "a day with a leading SP");
    t = tok("\"7-Jul-1996 09:44:25 +0000\"");
    CHECK(imaptok_date_time(&t, &when) == -1, "a one-digit day without SP");
    t = tok("\"17-Jul-1996 24:00:00 +0000\"");
    CHECK(imaptok_date_time(&t, &when) == -1, "hour 24");
    t = tok("17-Jul-1996 02:44:25 -0700");
    CHECK(imaptok_date_time(&t, &when) == -1, "a date-time must be quoted");
}

static void test_line_literal(void)
{
    uint32_t n;
    int ns;
    CHECK(imaptok_line_literal("A1 LOGIN {5}", 12, &n, &ns) == 1 && n == 5 && !ns, "{5}");
    CHECK(imaptok_line_literal("A1 APPEND x {310+}", 18, &n, &ns) == 1 && n == 310 && ns, "{310+}");
    CHECK(imaptok_line_literal("A1 NOOP", 7, &n, &ns) == 0, "no literal");
    CHECK(imaptok_line_literal("A1 X \"}\"", 8, &n, &ns) == 0, "a quoted brace");
    CHECK(imaptok_line_literal("A1 X }", 6, &n, &ns) == 0, "a brace alone");
    CHECK(imaptok_line_literal("A1 X {x}", 8, &n, &ns) == -1, "{x}");
    CHECK(imaptok_line_literal("A1 X {}", 7, &n, &ns) == -1, "{}");
    CHECK(imaptok_line_literal("A1 X {99999999999}", 18, &n, &ns) == -1, "an oversized one");
}

static void test_seqsets(void)
{
    struct imap_seqset set;
    struct imaptok t = tok("7:*,1,3:2,5 rest");
    CHECK(imaptok_seqset(&t, &set) == 0 && set.n == 4, "four parts");
    CHECK(imaptok_peek(&t) == ' ', "the cursor after the set");
    imap_seqset_resolve(&set, 9);
    CHECK(set.n == 3, "merged: 1:3, 5, 7:9 (n=%zu)", set.n);
    CHECK(imap_seqset_contains(&set, 1) && imap_seqset_contains(&set, 2) &&
              imap_seqset_contains(&set, 3) && !imap_seqset_contains(&set, 4) &&
              imap_seqset_contains(&set, 5) && !imap_seqset_contains(&set, 6) &&
              imap_seqset_contains(&set, 9) && !imap_seqset_contains(&set, 10),
          "membership");
    imap_seqset_free(&set);
    t = tok("5:*");
    CHECK(imaptok_seqset(&t, &set) == 0, "5:*");
    imap_seqset_resolve(&set, 3);
    CHECK(imap_seqset_contains(&set, 3) && imap_seqset_contains(&set, 5) &&
              !imap_seqset_contains(&set, 2),
          "5:* when 3 is the largest is 3:5 (RFC 3501 §6.4.8)");
    imap_seqset_free(&set);
    t = tok("*");
    CHECK(imaptok_seqset(&t, &set) == 0, "*");
    imap_seqset_resolve(&set, 0);
    CHECK(!imap_seqset_contains(&set, 1), "* in an empty mailbox holds nothing but 0");
    imap_seqset_free(&set);
    t = tok("4294967295:1");
    CHECK(imaptok_seqset(&t, &set) == 0, "the whole range");
    imap_seqset_resolve(&set, 7);
    CHECK(imap_seqset_contains(&set, 4294967294u), "reversed and wide");
    imap_seqset_free(&set);
    static const char *bad[] = {"0", "1,,2", "1:", ":2", ",1", "1,", "1:2:3", "x", "**"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = tok(bad[i]);
        CHECK(imaptok_seqset(&t, &set) == -1 && t.p == bad[i], "refused: \"%s\"", bad[i]);
    }
    t = tok("1:4294967296");
    CHECK(imaptok_seqset(&t, &set) == IMAPTOK_TOO_LONG, "a number past 32 bits");
}

int main(void)
{
    test_atoms();
    test_strings();
    test_numbers();
    test_dates();
    test_line_literal();
    test_seqsets();
    return tap_done();
}
