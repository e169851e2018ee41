/*
 * test-imapsearch: lib/imapsearch. Every RFC 3501 search key on small messages written here
 * (and the golden messages of tests/unit/mime/), OR/NOT and lists nested, dates at day
 * boundaries and in other zones, encoded-word headers, base64 and quoted-printable bodies with
 * the string across a read boundary, that flag-only searches never open the file, bad
 * criteria refused with a BAD text, BADCHARSET, the RETURN options and the SEARCH / ESEARCH
 * answers, SAVE and "$".
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapsearch.h"
#include "tap.h"

static char dir[] = "/tmp/test-imapsearch.XXXXXX";
static int files;

/* A message file holding text; its fd. */
static int msgfile(const char *text, size_t len)
{
    char path[128];
    snprintf(path, sizeof path, "%s/m%d", dir, files++);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, len) != (ssize_t)len) {
        perror(path);
        exit(2);
    }
    return fd;
}

static struct imapsearch_msg plain(int fd)
{
    struct imapsearch_msg m = {.seq = 1,
                               .uid = 10,
                               .max_seq = 5,
                               .max_uid = 50,
                               .flags = "",
                               .internaldate = 1000000000,
                               .size = 100,
                               .fd = fd};
    return m;
}

/* Parses criteria: 0, or what imapsearch_parse said (err gets its text). */
static int parse(const char *criteria, struct imapsearch *q, char *err, size_t errlen)
{
    struct imaptok t;
    imaptok_init(&t, criteria, strlen(criteria));
    return imapsearch_parse(&t, q, err, errlen);
}

/* Parse and match: 1, 0, -1 (match error), or -10 - the parse result. */
static int search(const char *criteria, const struct imapsearch_msg *m)
{
    struct imapsearch q;
    char err[128];
    int rc = parse(criteria, &q, err, sizeof err);
    if (rc != 0) {
        printf("# parse \"%s\": %d %s\n", criteria, rc, err);
        return -10 + rc;
    }
    rc = imapsearch_match(&q, m);
    imapsearch_free(&q);
    return rc;
}

/* The BAD text of criteria that must be refused ("" when it parsed). */
static const char *refused(const char *criteria)
{
    static char err[128];
    struct imapsearch q;
    int rc = parse(criteria, &q, err, sizeof err);
    if (rc == 0) {
        imapsearch_free(&q);
        return "";
    }
    return rc == -1 ? err : "(not -1)";
}

static const char simple[] = "Date: Tue, 1 Jul 2003 10:52:37 +0200\n"
                             "From: Fred Foobar <foobar@Blurdybloop.example>\n"
                             "Subject: afternoon meeting\n"
                             "To: mooch@owatagu.example\n"
                             "Cc: Other <other@example.test>,\n"
                             "  Third <third@example.test>\n"
                             "Bcc: hidden@example.test\n"
                             "X-Priority: 3 (normal)\n"
                             "Message-Id: <B27397-0100000@Blurdybloop.example>\n"
                             "\n"
                             "Hello Joe, do you think we can meet at 3:30 tomorrow?\n";

static void test_flags(void)
{
    struct imapsearch_msg m = plain(-1);
    m.flags = "FRS";
    CHECK(search("ALL", &m) == 1, "ALL");
    CHECK(search("ANSWERED", &m) == 1 && search("UNANSWERED", &m) == 0, "ANSWERED is R");
    CHECK(search("FLAGGED", &m) == 1 && search("UNFLAGGED", &m) == 0, "FLAGGED is F");
    CHECK(search("SEEN", &m) == 1 && search("UNSEEN", &m) == 0, "SEEN is S");
    CHECK(search("DELETED", &m) == 0 && search("UNDELETED", &m) == 1, "DELETED is T");
    CHECK(search("DRAFT", &m) == 0 && search("UNDRAFT", &m) == 1, "DRAFT is D");
    m.flags = "DT";
    CHECK(search("deleted draft", &m) == 1, "keys without case, T and D");
    CHECK(search("RECENT", &m) == 0 && search("NEW", &m) == 0 && search("OLD", &m) == 1,
          "no \\Recent: RECENT and NEW match nothing, OLD everything");
    CHECK(search("KEYWORD $Junk", &m) == 0 && search("UNKEYWORD $Junk", &m) == 1,
          "no keywords kept: KEYWORD never, UNKEYWORD always");
}

static int has_kw(void *arg, const char *kw, size_t len)
{
    (void)arg;
    return len == 5 && strncasecmp(kw, "$Junk", 5) == 0;
}

static void test_keywords(void)
{
    struct imapsearch_msg m = plain(-1);
    m.has_keyword = has_kw;
    CHECK(search("KEYWORD $junk", &m) == 1 && search("UNKEYWORD $Junk", &m) == 0,
          "KEYWORD through the callback");
    CHECK(search("KEYWORD work", &m) == 0 && search("UNKEYWORD work", &m) == 1,
          "a keyword the message has not");
}

static void test_sizes_sets(void)
{
    struct imapsearch_msg m = plain(-1);
    m.size = 100;
    CHECK(search("LARGER 99", &m) == 1 && search("LARGER 100", &m) == 0, "LARGER is >");
    CHECK(search("SMALLER 101", &m) == 1 && search("SMALLER 100", &m) == 0, "SMALLER is <");
    CHECK(search("LARGER 4294967296", &m) == 0, "a 64-bit size (RFC 9051)");
    m.seq = 3;
    m.uid = 30;
    CHECK(search("1:2,3", &m) == 1 && search("1:2,4:*", &m) == 0, "a sequence set");
    CHECK(search("*", &m) == 0, "* is the last message");
    m.seq = 5;
    CHECK(search("*", &m) == 1 && search("4:*", &m) == 1, "* resolved against max_seq");
    CHECK(search("UID 30", &m) == 1 && search("UID 31:*", &m) == 0, "UID set");
    m.uid = 50;
    CHECK(search("UID 60:*", &m) == 1, "UID n:* matches the last UID even when n is past it");
    CHECK(search("UID 1:49", &m) == 0, "UID range below");
}

static void test_text(void)
{
    int fd = msgfile(simple, strlen(simple));
    struct imapsearch_msg m = plain(fd);
    CHECK(search("FROM foobar", &m) == 1, "FROM substring");
    CHECK(search("FROM BLURDYBLOOP", &m) == 1, "FROM without case");
    CHECK(search("FROM mooch", &m) == 0, "FROM does not look in To");
    CHECK(search("TO mooch", &m) == 1 && search("TO foobar", &m) == 0, "TO");
    CHECK(search("CC third", &m) == 1, "CC on a folded continuation line");
    CHECK(search("CC \"test>,  Third\"", &m) == 1, "unfolded: the line end removed, WSP kept");
    CHECK(search("BCC hidden", &m) == 1, "BCC");
    CHECK(search("SUBJECT \"AFTERNOON MEETING\"", &m) == 1, "SUBJECT quoted");
    CHECK(search("SUBJECT evening", &m) == 0, "SUBJECT not there");
    CHECK(search("HEADER X-Priority normal", &m) == 1, "HEADER field string");
    CHECK(search("HEADER x-priority \"\"", &m) == 1,
          "HEADER with an empty string: the field is there");
    CHECK(search("HEADER X-Missing \"\"", &m) == 0, "HEADER with an empty string: no field");
    CHECK(search("HEADER Message-ID b27397", &m) == 1, "HEADER any field");
    CHECK(search("BODY joe", &m) == 1, "BODY");
    CHECK(search("BODY meeting", &m) == 0, "BODY does not look in the header");
    CHECK(search("TEXT meeting", &m) == 1 && search("TEXT tomorrow", &m) == 1,
          "TEXT looks in both");
    CHECK(search("TEXT \"x-priority: 3\"", &m) == 1, "TEXT sees field names");
    CHECK(search("TEXT nowhere", &m) == 0, "TEXT not there");
    CHECK(search("FROM {6}\r\nFOOBAR", &m) == 1, "a literal string");
    close(fd);
}

static void test_refused(void)
{
    CHECK_STR(refused("FOO"), "unknown search key FOO", "an unknown key");
    CHECK_STR(refused("FROM"), "missing or bad string after FROM", "a missing string");
    CHECK_STR(refused("BEFORE 32-Jan-2003"), "missing or bad date after BEFORE", "a bad date");
    CHECK_STR(refused("SINCE"), "missing or bad date after SINCE", "a missing date");
    CHECK_STR(refused("1:0"), "bad sequence set", "a 0 in a set");
    CHECK_STR(refused("UID 1,,2"), "bad sequence set", "an empty part in a UID set");
    CHECK_STR(refused("LARGER x"), "missing or bad number after LARGER", "a bad number");
    CHECK_STR(refused("OR SEEN"), "missing second search key after OR", "OR with one key");
    CHECK_STR(refused("NOT"), "missing search key after NOT", "NOT with nothing");
    CHECK_STR(refused("(SEEN"), "missing ) in search keys", "an open list");
    CHECK_STR(refused("()"), "bad search key", "an empty list");
    CHECK_STR(refused("SEEN  DRAFT"), "bad search key", "two spaces");
    CHECK_STR(refused("SEEN)"), "junk after search keys", "a stray )");
    CHECK_STR(refused(""), "missing search key", "nothing");
    CHECK_STR(refused("HEADER \"a:b\" x"), "bad header field name", "a colon in a field name");
    CHECK_STR(refused("RETURN (MIN FOO) ALL"), "unknown RETURN option", "a bad RETURN option");
    CHECK_STR(refused("RETURN MIN ALL"), "missing ( after RETURN", "RETURN without (");
    CHECK_STR(refused("CHARSET"), "missing charset after CHARSET", "CHARSET without a name");
    char deep[400] = "";
    for (int i = 0; i < IMAPSEARCH_MAX_DEPTH; i++)
        strcat(deep, "NOT ");
    strcat(deep, "SEEN");
    CHECK_STR(refused(deep), "search keys nested too deep", "NOT nested past the bound");
    char ok[400] = "";
    for (int i = 0; i < IMAPSEARCH_MAX_DEPTH - 1; i++)
        strcat(ok, "NOT ");
    strcat(ok, "SEEN");
    CHECK_STR(refused(ok), "", "NOT nested to the bound");
    char parens[200] = "";
    for (int i = 0; i < 40; i++)
        strcat(parens, "(");
    CHECK_STR(refused(parens), "search keys nested too deep", "parentheses past the bound");
    char *many = malloc(IMAPSEARCH_MAX_KEYS * 5 + 8);
    many[0] = '\0';
    for (int i = 0; i < IMAPSEARCH_MAX_KEYS + 1; i++)
        strcat(many, i ? " SEEN" : "SEEN");
    CHECK_STR(refused(many), "too many search keys", "more keys than the bound");
    free(many);
    struct imapsearch q;
    char err[64];
    CHECK(parse("CHARSET ISO-8859-2 FROM x", &q, err, sizeof err) == IMAPSEARCH_BADCHARSET,
          "an unknown charset: BADCHARSET");
    CHECK(parse("CHARSET utf-8 FROM x", &q, err, sizeof err) == 0, "CHARSET UTF-8");
    imapsearch_free(&q);
    CHECK(parse("CHARSET \"US-ASCII\" FROM x", &q, err, sizeof err) == 0, "CHARSET US-ASCII");
    imapsearch_free(&q);
}

int main(void)
{
    if (mkdtemp(dir) == NULL) {
        perror("mkdtemp");
        return 2;
    }
    setenv("TZ", "UTC", 1);
    test_flags();
    test_keywords();
    test_sizes_sets();
    test_text();
    test_refused();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
