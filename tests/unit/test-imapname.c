/*
 * test-imapname: modified UTF-7 (RFC 3501 §5.1.3) accepted and refused, UTF-8 turned into it,
 * INBOX's case, LIST's reference and pattern joined and matched ('*' and '%').
 */
#include "config.h"

#include <string.h>

#include "../../lib/imapname.h"
#include "tap.h"

static int valid(const char *s)
{
    return imapname_mutf7_valid(s, strlen(s));
}

static void test_mutf7(void)
{
    static const char *good[] = {
        "INBOX",
        "Sent",
        "a.b.c",
        "&-",
        "Tom &- Jerry",
        "Entw&APw-rfe",
        "&ZeVnLIqe-",
        "&U,BTFw-",
        "&2D3eAA-",
        "~peter/mail/&U,BTFw-/&ZeVnLIqe-",
        "",
    };
    static const char *bad[] = {
        "&AGE-",              /* 'a' in base64: printable ASCII goes as itself */
        "&ZeVnLIqe",          /* no closing '-' */
        "&AOk",               /* no closing '-' */
        "&-&",                /* a lone '&' at the end */
        "&AOkA-",             /* 8 bits left over: not a whole unit */
        "&AOl-",              /* padding bits not zero */
        "&U,BTFw-&ZeVnLIqe-", /* two runs in a row */
        "&2D0-",              /* a lone high surrogate */
        "&3gA-",              /* a lone low surrogate */
        "&Jjo!-",             /* '!' is not base64 */
        "&U/BTFw-",           /* '/' is UTF-7's, not IMAP's */
        "caf\xc3\xa9",        /* 8-bit */
        "tab\there",          /* a control character */
        "&AAk-",              /* a control character in base64 */
    };
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        CHECK(valid(good[i]), "modified UTF-7 accepted: \"%s\"", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(!valid(bad[i]), "modified UTF-7 refused: \"%s\"", bad[i]);
    CHECK(valid("&--"), "\"&-\" then a plain '-'");
    CHECK(!imapname_mutf7_valid("a\0b", 3), "a NUL refused");
}

static void test_utf8(void)
{
    char out[64];
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"Entw\xc3\xbcrfe", "Entw&APw-rfe"},
        {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e", "&ZeVnLIqe-"},
        {"\xf0\x9f\x98\x80", "&2D3eAA-"},
        {"Tom & Jerry", "Tom &- Jerry"},
        {"\xc3\xa9.\xc3\xa9", "&AOk-.&AOk-"},
        {"plain", "plain"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = imapname_utf8_to_mutf7(cases[i].in, strlen(cases[i].in), out, sizeof out);
        CHECK(rc == 0, "UTF-8 into modified UTF-7: %s", cases[i].want);
        CHECK_STR(out, cases[i].want, "  gives %s", cases[i].want);
        CHECK(valid(out), "  and it is valid");
    }
    static const char *bad[] = {"\xc0\xaf",         "\xed\xa0\x80", "\xe6\x97",
                                "\xf5\x80\x80\x80", "a\x01",        "\xc2\x85"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        CHECK(imapname_utf8_to_mutf7(bad[i], strlen(bad[i]), out, sizeof out) != 0,
              "bad UTF-8 or a control character refused (%zu)", i);
    CHECK(imapname_utf8_to_mutf7("\xe6\x97\xa5\xe6\x9c\xac", 6, out, 6) != 0,
          "a result that does not fit is refused");
}

static void test_canon_join(void)
{
    char s[64];
    strcpy(s, "inbox");
    imapname_canon(s);
    CHECK_STR(s, "INBOX", "inbox is INBOX");
    strcpy(s, "InBoX.Sub");
    imapname_canon(s);
    CHECK_STR(s, "INBOX.Sub", "InBoX.Sub is INBOX.Sub");
    strcpy(s, "inboxes");
    imapname_canon(s);
    CHECK_STR(s, "inboxes", "inboxes is not INBOX");
    CHECK(imapname_join("Lists.", "%", s, sizeof s) == 0, "join");
    CHECK_STR(s, "Lists.%", "reference and pattern joined");
    CHECK(imapname_join("", "inbox", s, sizeof s) == 0 && strcmp(s, "INBOX") == 0,
          "a pattern inbox is INBOX");
    CHECK(imapname_join("0123456789", "0123456789", s, 20) != 0, "too long for the buffer");
}

static void test_match(void)
{
    CHECK(imapname_match("*", "a.b.c"), "* matches everything");
    CHECK(imapname_match("%", "Sent"), "%% matches a top level name");
    CHECK(!imapname_match("%", "a.b"), "%% does not cross the delimiter");
    CHECK(imapname_match("a.%", "a.b"), "a.%% matches a.b");
    CHECK(!imapname_match("a.%", "a.b.c"), "a.%% does not match a.b.c");
    CHECK(imapname_match("a.*", "a.b.c"), "a.* matches a.b.c");
    CHECK(!imapname_match("a.*", "a"), "a.* does not match a");
    CHECK(imapname_match("a*", "a"), "a* matches a");
    CHECK(imapname_match("%.%", "x.y"), "%%.%% matches x.y");
    CHECK(!imapname_match("%.%", "x"), "%%.%% does not match x");
    CHECK(imapname_match("*b", "a.b"), "*b matches a.b");
    CHECK(imapname_match("INBOX", "INBOX"), "a literal name");
    CHECK(!imapname_match("INBOX", "INBOXx"), "a literal is not a prefix");
    CHECK(!imapname_match("", "x"), "an empty pattern matches nothing but \"\"");
    CHECK(imapname_match("%a%a%a%a%a%a%a%a%a%b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
          "many wildcards, still quick");
    CHECK(!imapname_match("*a*a*a*a*a*a*a*a*a*a*c",
                          "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaab"),
          "many wildcards, no match, still quick");
}

int main(void)
{
    test_mutf7();
    test_utf8();
    test_canon_join();
    test_match();
    return tap_done();
}
