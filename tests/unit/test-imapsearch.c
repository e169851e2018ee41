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
#include <strings.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapsearch.h"
#include "tap.h"
#include "tmpdir.h"

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

/* Searches a message of this text (as a file): the result of search(). */
static int body_search(const char *text, const char *criteria)
{
    int fd = msgfile(text, strlen(text));
    struct imapsearch_msg m = plain(fd);
    int rc = search(criteria, &m);
    close(fd);
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
          "not \\Recent: RECENT and NEW do not match, OLD does");
    m.recent = 1;
    CHECK(search("RECENT", &m) == 1 && search("NEW", &m) == 1 && search("OLD", &m) == 0,
          "\\Recent and not \\Seen: RECENT, NEW");
    m.flags = "S";
    CHECK(search("RECENT", &m) == 1 && search("NEW", &m) == 0, "\\Recent and \\Seen: not NEW");
    m.recent = 0;
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

/* ---- the file is opened only when a key needs it ---- */

struct opener {
    int fd, calls, last, err;
};

static int open_msg(void *arg)
{
    struct opener *o = arg;
    o->calls++;
    if (o->err != 0) {
        errno = o->err;
        return -1;
    }
    return o->last = dup(o->fd);
}

static void test_lazy_open(void)
{
    int fd = msgfile(simple, strlen(simple));
    struct opener o = {.fd = fd};
    struct imapsearch_msg m = plain(-1);
    m.open = open_msg;
    m.open_arg = &o;
    m.flags = "S";
    CHECK(search("SEEN LARGER 10 UID 10 1 SINCE 1-Jan-2000 NOT DRAFT", &m) == 1 && o.calls == 0,
          "flags, sizes, sets, dates: the file is never opened");
    CHECK(search("UNSEEN FROM foobar", &m) == 0 && o.calls == 0,
          "a false flag key decides before a text key is read, whatever the order");
    CHECK(search("FROM foobar UNSEEN", &m) == 0 && o.calls == 0, "the text key listed first");
    CHECK(search("OR FROM nobody SEEN", &m) == 1 && o.calls == 0, "OR decided by its cheap side");
    CHECK(search("NOT OR FROM nobody SEEN", &m) == 0 && o.calls == 0, "NOT OR, the same");
    CHECK(search("FROM foobar SUBJECT meeting BODY joe SENTON 1-Jul-2003", &m) == 1 && o.calls == 1,
          "several text keys: the file opened once");
    CHECK(fcntl(o.last, F_GETFD) == -1 && errno == EBADF, "and closed again");
    o.calls = 0;
    CHECK(search("SUBJECT meeting", &m) == 1 && o.calls == 1, "a header key: opened");
    o.err = ENOENT;
    CHECK(search("SUBJECT meeting", &m) == 0, "a message gone (ENOENT): no text key matches");
    CHECK(search("NOT SUBJECT meeting", &m) == 1, "so NOT of one does");
    o.err = EIO;
    errno = 0;
    CHECK(search("SUBJECT meeting", &m) == -1 && errno == EIO, "another open error: -1");
    CHECK(search("SEEN", &m) == 1, "which a flag search never meets");
    m.open = NULL;
    CHECK(search("BODY joe", &m) == 0, "no fd and no opener: no text");
    close(fd);
}

/* ---- OR, NOT, lists ---- */

static void test_logic(void)
{
    struct imapsearch_msg m = plain(-1);
    m.flags = "S";
    CHECK(search("OR SEEN FLAGGED", &m) == 1 && search("OR FLAGGED SEEN", &m) == 1, "OR");
    CHECK(search("OR FLAGGED DRAFT", &m) == 0, "OR of two false keys");
    CHECK(search("NOT SEEN", &m) == 0 && search("NOT NOT SEEN", &m) == 1, "NOT, twice");
    CHECK(search("(SEEN UNFLAGGED)", &m) == 1 && search("(SEEN FLAGGED)", &m) == 0,
          "a list is an AND");
    CHECK(search("NOT (SEEN FLAGGED)", &m) == 1, "NOT of a list");
    CHECK(search("OR (FLAGGED SEEN) (DRAFT SEEN)", &m) == 0, "OR of lists");
    CHECK(search("OR OR FLAGGED DRAFT SEEN", &m) == 1, "OR inside OR");
    CHECK(search("OR FLAGGED OR DRAFT SEEN", &m) == 1, "OR as the second key of OR");
    CHECK(search("((((SEEN))))", &m) == 1, "lists inside lists");
    CHECK(search("SEEN (UNDRAFT (NOT FLAGGED)) OR ANSWERED 1", &m) == 1, "a mixture");
    CHECK(search("SEEN (UNDRAFT (NOT FLAGGED)) OR ANSWERED 2", &m) == 0, "a mixture, false");
}

/* ---- dates ---- */

/* 2003-07-01 00:00:00 UTC */
#define JUL1 1057017600

static void test_internal_dates(void)
{
    struct imapsearch_msg m = plain(-1);
    m.internaldate = JUL1;
    CHECK(search("ON 1-Jul-2003", &m) == 1, "ON at the first second of the day");
    CHECK(search("SINCE 1-Jul-2003", &m) == 1 && search("BEFORE 1-Jul-2003", &m) == 0,
          "SINCE is within or later, BEFORE is earlier");
    CHECK(search("BEFORE 2-Jul-2003", &m) == 1 && search("SINCE 2-Jul-2003", &m) == 0,
          "the next day");
    m.internaldate = JUL1 - 1;
    CHECK(search("ON 30-Jun-2003", &m) == 1 && search("BEFORE 1-Jul-2003", &m) == 1,
          "one second earlier is the day before");
    m.internaldate = JUL1 + 86399;
    CHECK(search("ON \"1-Jul-2003\"", &m) == 1, "the last second of the day, date quoted");
    setenv("TZ", "EST5", 1);
    tzset();
    m.internaldate = JUL1 + 2 * 3600;
    CHECK(search("ON 30-Jun-2003", &m) == 1 && search("ON 1-Jul-2003", &m) == 0,
          "in the local zone (TZ=EST5), 02:00 UTC is still the day before");
    setenv("TZ", "UTC", 1);
    tzset();
    CHECK(search("ON 1-Jul-2003", &m) == 1, "and in UTC the same instant is 1 July");
    m.internaldate = -86400;
    CHECK(search("ON 31-Dec-1969", &m) == 1, "a date before 1970");
}

static int sent(const char *date_line, const char *criteria)
{
    char text[512];
    snprintf(text, sizeof text, "%sSubject: x\n\nbody\n", date_line);
    return body_search(text, criteria);
}

static void test_sent_dates(void)
{
    const char *late = "Date: Tue, 1 Jul 2003 23:30:00 -0700\n"; /* 2 July in UTC */
    CHECK(sent(late, "SENTON 1-Jul-2003") == 1, "SENTON: the date in the field's own zone");
    CHECK(sent(late, "SENTON 2-Jul-2003") == 0, "not the UTC day");
    CHECK(sent(late, "SENTBEFORE 2-Jul-2003") == 1 && sent(late, "SENTBEFORE 1-Jul-2003") == 0,
          "SENTBEFORE");
    CHECK(sent(late, "SENTSINCE 1-Jul-2003") == 1 && sent(late, "SENTSINCE 2-Jul-2003") == 0,
          "SENTSINCE");
    const char *early = "Date: Wed, 2 Jul 2003 00:10:00 +1400\n";
    CHECK(sent(early, "SENTON 2-Jul-2003") == 1, "+1400: its own day");
    CHECK(sent("Date: 5 Feb 99 10:00 GMT\n", "SENTON 5-Feb-1999") == 1, "a 2-digit year 99");
    CHECK(sent("Date: 5 Feb 03 10:00 GMT\n", "SENTON 5-Feb-2003") == 1, "a 2-digit year 03");
    CHECK(sent("Date:\n Thu,\n 29 Feb 2024 12:00:00 +0000 (UTC)\n", "SENTON 29-Feb-2024") == 1,
          "a folded Date with a comment, a leap day");
    CHECK(sent("Date: 30 Feb 2024 12:00:00 +0000\n", "SENTON 1-Mar-2024") == 0 &&
              sent("Date: 30 Feb 2024 12:00:00 +0000\n", "NOT SENTBEFORE 1-Jan-3000") == 1,
          "an impossible Date matches no SENT key");
    CHECK(sent("Date: someday\n", "OR SENTBEFORE 1-Jan-3000 SENTSINCE 1-Jan-1900") == 0,
          "an unreadable Date matches no SENT key");
    CHECK(sent("X-Date: 1 Jul 2003 10:00 +0000\n", "SENTON 1-Jul-2003") == 0,
          "no Date field: no SENT key");
}

/* ---- RFC 2047 ---- */

static int subject(const char *header, const char *criteria)
{
    char text[1024];
    snprintf(text, sizeof text, "From: a@x.test\n%s\n\nbody\n", header);
    return body_search(text, criteria);
}

static void test_encoded_words(void)
{
    const char *b = "Subject: =?UTF-8?B?Q2Fmw6kgY3LDqG1l?=";
    CHECK(subject(b, "SUBJECT \"caf\xc3\xa9 cr\xc3\xa8me\"") == 1, "B, UTF-8");
    CHECK(subject(b, "SUBJECT \"CAF\xc3\x89\"") == 1, "Latin-1 letters folded in UTF-8");
    CHECK(subject(b, "SUBJECT Q2Fm") == 0, "the encoded text is not what is searched");
    const char *q = "Subject: =?iso-8859-1?q?Caf=E9_cr=E8me?=";
    CHECK(subject(q, "SUBJECT \"caf\xc3\xa9 cr\xc3\xa8me\"") == 1, "Q, ISO-8859-1 to UTF-8");
    CHECK(subject("Subject: =?utf-8?q?one?= =?utf-8?q?two?=", "SUBJECT onetwo") == 1,
          "white space between two encoded words dropped");
    CHECK(subject("Subject: =?utf-8?q?one?=  plain", "SUBJECT \"one  plain\"") == 1,
          "kept between a word and plain text");
    CHECK(subject("Subject: =?utf-8?q?one?=\n =?utf-8?q?two?=", "SUBJECT onetwo") == 1,
          "encoded words on two folded lines");
    CHECK(subject("Subject: =?windows-1252?q?=80_5?=", "SUBJECT \"\xe2\x82\xac 5\"") == 1,
          "windows-1252: the euro sign");
    CHECK(subject("Subject: =?iso-8859-15?b?pA==?=", "SUBJECT \"\xe2\x82\xac\"") == 1,
          "ISO-8859-15 in B: the euro sign");
    CHECK(subject("Subject: =?utf-8*en?q?hello?=", "SUBJECT hello") == 1,
          "an RFC 2231 language after the charset");
    CHECK(subject("Subject: =?koi8-r?b?8NLJ18XU?=", "SUBJECT \"\xf0\xd2\xc9\xd7\xc5\xd4\"") == 1,
          "an unknown charset keeps its octets");
    CHECK(subject("Subject: =?utf-8?x?abc?=", "SUBJECT \"=?utf-8?x?abc?=\"") == 1,
          "an unknown encoding is plain text");
    CHECK(subject("Subject: =?utf-8?q?no end", "SUBJECT \"no end\"") == 1,
          "an unterminated word is plain text");
    CHECK(subject("From: =?utf-8?q?J=C3=B6rg?= <j@x.test>", "FROM \"j\xc3\xb6rg\"") == 1,
          "a display name in From");
    CHECK(subject("To: =?UTF-8?B?w4lsaXNl?= <e@x.test>", "TEXT \"to: \xc3\xa9lise\"") == 1,
          "TEXT sees the decoded header, the case folded");
    CHECK(subject("Subject: =?UTF-8?B?w4lsaXNl?=", "SUBJECT \"\xc3\xa9LISE\"") == 1 &&
              subject("Subject: \xc3\xa9lise", "SUBJECT \"\xc3\x89lise\"") == 1,
          "a needle that starts with a Latin-1 letter, either case");
}

/* ---- bodies ---- */

static void b64(const unsigned char *in, size_t len, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0, line = 0;
    for (size_t i = 0; i < len; i += 3) {
        unsigned v =
            in[i] << 16 | (i + 1 < len ? in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = i + 1 < len ? a[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < len ? a[v & 63] : '=';
        if ((line += 4) == 76) {
            out[o++] = '\n';
            line = 0;
        }
    }
    out[o++] = '\n';
    out[o] = '\0';
}

static void test_transfer_encodings(void)
{
    CHECK(body_search("Content-Transfer-Encoding: quoted-printable\n\nhel=\nlo w=6Frld\n",
                      "BODY \"hello world\"") == 1,
          "QP: a soft line break and =XX decoded");
    CHECK(body_search("Content-Transfer-Encoding: quoted-printable\n\nhel= \t\nlo\n",
                      "BODY hello") == 1,
          "QP: white space after a soft break");
    CHECK(body_search("Content-Transfer-Encoding: Quoted-Printable\n\na=3Db =ZZ\n",
                      "BODY \"a=b =ZZ\"") == 1,
          "QP: a bad escape kept as it is");
    CHECK(body_search("Content-Type: text/plain; charset=\"ISO-8859-1\"\n"
                      "Content-Transfer-Encoding: quoted-printable\n\ncaf=E9\n",
                      "BODY \"CAF\xc3\x89\"") == 1,
          "QP in ISO-8859-1: to UTF-8 and folded");
    CHECK(body_search("Content-Type: text/plain; charset=iso-8859-1\n\ncaf\xe9\n",
                      "BODY \"caf\xc3\xa9\"") == 1,
          "an 8-bit ISO-8859-1 body");
    CHECK(body_search("Content-Transfer-Encoding: base64\n\naGVsbG8gd29y\nbGQ=\n",
                      "BODY \"hello world\"") == 1,
          "base64 across a line break");
    CHECK(body_search("Content-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=\n", "BODY aGVs") == 0,
          "base64: the encoded text is not searched");
    CHECK(body_search("Content-Type: application/octet-stream\n"
                      "Content-Transfer-Encoding: base64\n\naGVsbG8gd29ybGQ=\n",
                      "BODY hello") == 0,
          "an encoded non-text part is not searched");
    CHECK(body_search("Content-Type: application/x-thing\n\nhello there\n", "BODY hello") == 1,
          "a 7bit non-text part is");
    CHECK(body_search("Subject: x\n\nline one\r\nline two\n", "BODY {9}\r\none\r\nline") == 1,
          "CR ignored on both sides");
    CHECK(body_search("Subject: x\n\n", "BODY \"\"") == 1, "an empty string is in every body");
    CHECK(body_search("Subject: x\n", "TEXT \"\"") == 1, "and TEXT \"\" in every message");
}

/* A needle across the 16 KiB read boundary, in plain, base64 and QP bodies. */
static void test_chunk_boundary(void)
{
    static const char hdr[] = "Subject: big\n\n";
    size_t hl = strlen(hdr);
    for (size_t at = 16384 - 8; at <= 16384 + 1; at += 3) {
        char *text = malloc(40000);
        memcpy(text, hdr, hl);
        size_t pos = at - hl;
        memset(text + hl, 'x', 30000);
        memcpy(text + hl + pos, "NEEDLE", 6);
        text[hl + 30000] = '\0';
        CHECK(body_search(text, "BODY needle") == 1, "plain: the needle at file offset %zu", at);
        free(text);
    }
    unsigned char *dec = malloc(40000);
    char *enc = malloc(60000), *text = malloc(70000);
    memset(dec, 'y', 40000);
    for (size_t at = 12288 - 4; at <= 12288 + 4; at += 2) { /* 12288 decoded = 16384 encoded */
        memset(dec, 'y', 40000);
        memcpy(dec + at, "NEEDLE", 6);
        b64(dec, 40000, enc);
        snprintf(text, 70000, "Content-Transfer-Encoding: base64\n\n%s", enc);
        CHECK(body_search(text, "BODY needle") == 1, "base64: the needle at decoded %zu", at);
    }
    for (size_t at = 16300; at < 16400; at += 37) {
        size_t o = 0;
        o += (size_t)snprintf(text, 70000, "Content-Transfer-Encoding: quoted-printable\n\n");
        for (; o < at; o++)
            text[o] = (o % 70 == 69) ? '\n' : 'z';
        o += (size_t)snprintf(text + o, 100, "NE=\nE=44LE");
        while (o < 30000)
            text[o++] = 'z';
        text[o] = '\0';
        CHECK(body_search(text, "BODY needle") == 1, "QP: a soft break and =44 near %zu", at);
    }
    free(dec);
    free(enc);
    free(text);
}

static void test_long_header(void)
{
    /* a field longer than a decoding piece and than a read */
    size_t n = 40000;
    char *text = malloc(n + 200);
    size_t o = (size_t)snprintf(text, 200, "To: ");
    for (; o < n; o++)
        text[o] = (o % 60 == 0) ? '\n' : (o % 60 == 1) ? ' ' : 'a';
    memcpy(text + 8190, "ZZTOPZZ", 7);
    memcpy(text + 16380, "YYTOPYY", 7);
    o += (size_t)snprintf(text + o, 200, "\nSubject: after\n\nbody\n");
    CHECK(body_search(text, "TO zztopzz") == 1, "a needle across the 8 KiB decoding piece");
    CHECK(body_search(text, "TO yytopyy") == 1, "a needle across the 16 KiB read");
    CHECK(body_search(text, "SUBJECT after") == 1, "the field after a long one");
    CHECK(body_search(text, "SUBJECT aaaa") == 0, "fields are searched one by one");
    free(text);
}

static void test_multipart(void)
{
    const char *mixed = "From: a@x.test\n"
                        "Subject: parts\n"
                        "Content-Type: multipart/mixed; boundary=\"b\"\n"
                        "\n"
                        "preamble words\n"
                        "--b\n"
                        "Content-Type: text/plain; charset=utf-8\n"
                        "Content-Transfer-Encoding: quoted-printable\n"
                        "\n"
                        "first=20part\n"
                        "--b\n"
                        "Content-Type: text/html\n"
                        "Content-Transfer-Encoding: base64\n"
                        "\n"
                        "PHA+c2Vjb25kIHBhcnQ8L3A+\n"
                        "--b\n"
                        "Content-Type: image/png\n"
                        "Content-Transfer-Encoding: base64\n"
                        "\n"
                        "aW1hZ2Ugd29yZHM=\n"
                        "--b\n"
                        "Content-Type: message/rfc822\n"
                        "\n"
                        "Subject: =?utf-8?q?inner_subject?=\n"
                        "\n"
                        "inner body\n"
                        "--b--\n"
                        "epilogue words\n";
    CHECK(body_search(mixed, "BODY \"first part\"") == 1, "a QP text part");
    CHECK(body_search(mixed, "BODY \"<p>second part\"") == 1, "a base64 text/html part");
    CHECK(body_search(mixed, "BODY \"image words\"") == 0, "not a base64 image");
    CHECK(body_search(mixed, "BODY \"inner subject\"") == 1,
          "an attached message's header, decoded");
    CHECK(body_search(mixed, "BODY \"inner body\"") == 1, "and its body");
    CHECK(body_search(mixed, "SUBJECT inner") == 0, "but not as the message's own Subject");
    CHECK(body_search(mixed, "BODY preamble") == 0 && body_search(mixed, "BODY epilogue") == 0,
          "preamble and epilogue are not searched");
    CHECK(body_search(mixed, "BODY \"part--b\"") == 0, "nor the boundaries, nor across parts");
    CHECK(body_search(mixed, "TEXT parts") == 1 && body_search(mixed, "TEXT \"inner body\"") == 1,
          "TEXT: header and parts");
    CHECK(body_search(mixed, "TEXT image/png") == 1 && body_search(mixed, "BODY image/png") == 0,
          "a part's MIME header: TEXT sees it, BODY does not");
}

/* The golden messages of lib/mime's tests. */
static int golden(const char *name, const char *criteria)
{
    char path[4096];
    const char *src = getenv("YUBIN_SRC");
    snprintf(path, sizeof path, "%s/tests/unit/mime/%s.eml", src ? src : "..", name);
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(path, sizeof path, "mime/%s.eml", name);
        fd = open(path, O_RDONLY);
    }
    if (fd < 0) {
        perror(path);
        return -2;
    }
    struct imapsearch_msg m = plain(fd);
    int rc = search(criteria, &m);
    close(fd);
    return rc;
}

static void test_golden(void)
{
    CHECK(golden("rfc3501-envelope", "FROM \"terry gray\" CC klensin SENTON 17-Jul-1996") == 1,
          "rfc3501-envelope: From, a folded cc, the sent date in -0700");
    CHECK(golden("rfc3501-envelope", "SENTON 16-Jul-1996") == 0, "not the day before");
    CHECK(golden("rfc3501-envelope", "BODY \"3:30 tomorrow\"") == 1, "its body");
    CHECK(golden("alternative-in-mixed", "BODY \"plain text\" BODY \"<p>hello\"") == 1,
          "alternative-in-mixed: both alternatives");
    CHECK(golden("alternative-in-mixed", "BODY JVBERi0") == 0, "not the base64 PDF");
    CHECK(golden("alternative-in-mixed", "BODY preamble") == 0, "nor the preamble");
    CHECK(golden("rfc822-attachment", "BODY \"the original\" BODY \"<bold>one\"") == 1,
          "rfc822-attachment: the attached message's header and parts");
    CHECK(golden("rfc822-attachment", "SUBJECT forwarded NOT SUBJECT original") == 1,
          "its own Subject only");
    CHECK(golden("8bit", "SUBJECT \"CAF\xc3\x89\" BODY \"D\xc3\x89J\xc3\x80 vu\"") == 1,
          "8bit: raw UTF-8 in a header and the body, folded");
    CHECK(golden("no-body", "BODY \"\" NOT BODY x") == 1, "no-body: empty");
    CHECK(golden("bad-headers", "ALL") == 1 && golden("bad-headers", "TEXT zzzzqqq") == 0,
          "bad-headers: read without error");
    CHECK(golden("deep-nesting", "BODY zzzzqqq") == 0, "deep-nesting: read without error");
    CHECK(golden("missing-boundary", "BODY zzzzqqq") == 0, "missing-boundary: likewise");
}

/* 50 MB: the body streamed in constant memory, the needle at its end. */
static void test_big(void)
{
    size_t size = 50u << 20;
    char path[128];
    snprintf(path, sizeof path, "%s/big", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    char *block = malloc(1 << 20);
    memset(block, 'q', 1 << 20);
    for (size_t i = 0; i < (1 << 20); i += 80)
        block[i] = '\n';
    int ok = write(fd, "Subject: big\n\n", 14) == 14;
    for (size_t w = 0; ok && w < size; w += 1 << 20)
        ok = write(fd, block, 1 << 20) == 1 << 20;
    ok = ok && write(fd, "the END\n", 8) == 8;
    free(block);
    struct rusage before, after;
    getrusage(RUSAGE_SELF, &before);
    struct imapsearch_msg m = plain(fd);
    CHECK(ok && search("BODY \"the end\"", &m) == 1, "a 50 MB body: the needle at its end");
    getrusage(RUSAGE_SELF, &after);
    long grown = after.ru_maxrss - before.ru_maxrss;
    CHECK(grown < 4096, "in constant memory (peak RSS grew %ld KiB)", grown);
    close(fd);
    unlink(path);
}

/* ---- the answer ---- */

static int to_buf(void *arg, const void *data, size_t len)
{
    char *b = arg;
    size_t have = strlen(b);
    if (have + len >= 65536)
        return -1;
    memcpy(b + have, data, len);
    b[have + len] = '\0';
    return 0;
}

static int fail_writer(void *arg, const void *data, size_t len)
{
    (void)arg, (void)data, (void)len;
    return -1;
}

/* The answer for criteria over hits (sequence numbers; UIDs are 10 times them). */
static const char *answer(const char *criteria, const uint32_t *seqs, size_t n, int uid, int rev2)
{
    static char out[65536];
    struct imapsearch q;
    struct imapsearch_hits h = {0};
    char err[64];
    out[0] = '\0';
    if (parse(criteria, &q, err, sizeof err) != 0)
        return "(parse)";
    for (size_t i = 0; i < n; i++)
        imapsearch_hits_add(&h, seqs[i], seqs[i] * 10);
    if (imapsearch_result(&q, &h, uid, rev2, "A1", to_buf, out) != 0)
        snprintf(out, sizeof out, "(write)");
    imapsearch_hits_free(&h);
    imapsearch_free(&q);
    return out;
}

static void test_answers(void)
{
    static const uint32_t three[] = {2, 3, 5}, run[] = {1, 2, 3, 4, 7, 9, 10};
    CHECK_STR(answer("ALL", three, 3, 0, 0), "* SEARCH 2 3 5\r\n", "SEARCH in IMAP4rev1");
    CHECK_STR(answer("ALL", three, 3, 1, 0), "* SEARCH 20 30 50\r\n", "UID SEARCH: UIDs");
    CHECK_STR(answer("ALL", three, 0, 0, 0), "* SEARCH\r\n", "nothing found");
    CHECK_STR(answer("RETURN (MIN MAX COUNT ALL) ALL", three, 3, 0, 0),
              "* ESEARCH (TAG \"A1\") MIN 2 MAX 5 COUNT 3 ALL 2:3,5\r\n",
              "RETURN: ESEARCH even in IMAP4rev1");
    CHECK_STR(answer("RETURN (MIN MAX COUNT ALL) ALL", three, 3, 1, 0),
              "* ESEARCH (TAG \"A1\") UID MIN 20 MAX 50 COUNT 3 ALL 20,30,50\r\n",
              "UID SEARCH RETURN");
    CHECK_STR(answer("RETURN () ALL", run, 7, 0, 0), "* ESEARCH (TAG \"A1\") ALL 1:4,7,9:10\r\n",
              "RETURN () is ALL, as a compact set");
    CHECK_STR(answer("RETURN (COUNT) ALL", three, 0, 0, 0), "* ESEARCH (TAG \"A1\") COUNT 0\r\n",
              "COUNT 0");
    CHECK_STR(answer("RETURN (MIN MAX ALL) ALL", three, 0, 1, 0), "* ESEARCH (TAG \"A1\") UID\r\n",
              "no MIN, MAX or ALL when nothing matched");
    CHECK_STR(answer("return (count min) ALL", three, 3, 0, 0),
              "* ESEARCH (TAG \"A1\") MIN 2 COUNT 3\r\n", "options without case, in any order");
    CHECK_STR(answer("ALL", three, 3, 0, 1), "* ESEARCH (TAG \"A1\") ALL 2:3,5\r\n",
              "IMAP4rev2: ESEARCH, ALL by default");
    CHECK_STR(answer("ALL", three, 3, 1, 1), "* ESEARCH (TAG \"A1\") UID ALL 20,30,50\r\n",
              "IMAP4rev2 UID SEARCH");
    CHECK_STR(answer("RETURN (SAVE) ALL", three, 3, 0, 1), "", "RETURN (SAVE) alone: no answer");
    CHECK_STR(answer("RETURN (SAVE COUNT) ALL", three, 3, 0, 0),
              "* ESEARCH (TAG \"A1\") COUNT 3\r\n", "SAVE with COUNT: COUNT");
    uint32_t *many = malloc(5000 * sizeof *many);
    for (int i = 0; i < 5000; i++)
        many[i] = (uint32_t)(2 * i + 1);
    const char *a = answer("ALL", many, 5000, 0, 0);
    CHECK(strncmp(a, "* SEARCH 1 3 5 ", 15) == 0 && strstr(a, " 9997 9999\r\n") != NULL,
          "a long answer through the buffer (%zu octets)", strlen(a));
    free(many);
    struct imapsearch q;
    struct imapsearch_hits h = {0};
    char err[8];
    parse("ALL", &q, err, sizeof err);
    imapsearch_hits_add(&h, 1, 1);
    CHECK(imapsearch_result(&q, &h, 0, 0, "t", fail_writer, NULL) == -1, "a writer's failure");
    imapsearch_hits_free(&h);
    imapsearch_free(&q);
}

/* MODSEQ (RFC 7162): the key, its entry name and type, the answer's (MODSEQ n). */
static void test_modseq(void)
{
    struct imapsearch_msg m = plain(-1);
    struct imapsearch q;
    char err[64], out[256] = "";
    m.modseq = 50;
    CHECK(search("MODSEQ 50", &m) == 1 && search("MODSEQ 51", &m) == 0 &&
              search("MODSEQ 0", &m) == 1,
          "MODSEQ n: at least n");
    CHECK(search("MODSEQ \"/flags/\\\\Seen\" all 20", &m) == 1 &&
              search("modseq \"/flags/work\" priv 60", &m) == 0 &&
              search("NOT MODSEQ \"/flags/$x\" shared 60", &m) == 1,
          "with an entry name and type");
    CHECK(search("MODSEQ 9223372036854775807", &m) == 0, "the largest mod-sequence");
    CHECK(parse("MODSEQ 7", &q, err, sizeof err) == 0 && q.uses_modseq && !q.reads_date,
          "uses_modseq, and no file to read");
    imapsearch_free(&q);
    CHECK(parse("SEEN", &q, err, sizeof err) == 0 && !q.uses_modseq, "not without the key");
    imapsearch_free(&q);
    CHECK_STR(refused("MODSEQ"), "missing mod-sequence after MODSEQ", "no value");
    CHECK_STR(refused("MODSEQ x"), "bad mod-sequence after MODSEQ (0 to 2^63-1)", "a bad value");
    CHECK_STR(refused("MODSEQ 9223372036854775808"), "bad mod-sequence after MODSEQ (0 to 2^63-1)",
              "2^63");
    CHECK_STR(refused("MODSEQ \"/flags/x\" 5"), "bad entry name or type after MODSEQ",
              "an entry without its type");
    CHECK_STR(refused("MODSEQ \"/annotate/x\" all 5"), "bad entry name or type after MODSEQ",
              "an entry that is not a flag");
    CHECK_STR(refused("MODSEQ \"/flags/x\" mine 5"), "bad entry name or type after MODSEQ",
              "a bad type");
    /* the answer: the highest MODSEQ of what it reports */
    static const uint64_t ms[] = {30, 90, 40};
    static const char *const want[][2] = {
        {"MODSEQ 1", "* SEARCH 1 2 3 (MODSEQ 90)\r\n"},
        {"RETURN (COUNT) MODSEQ 1", "* ESEARCH (TAG \"A1\") COUNT 3 MODSEQ 90\r\n"},
        {"RETURN (MIN MAX) MODSEQ 1", "* ESEARCH (TAG \"A1\") MIN 1 MAX 3 MODSEQ 40\r\n"},
        {"RETURN (MIN) MODSEQ 1", "* ESEARCH (TAG \"A1\") MIN 1 MODSEQ 30\r\n"},
        {"RETURN (SAVE) MODSEQ 1", ""},
    };
    for (size_t k = 0; k < sizeof want / sizeof want[0]; k++) {
        struct imapsearch_hits h = {0};
        out[0] = '\0';
        parse(want[k][0], &q, err, sizeof err);
        for (uint32_t i = 0; i < 3; i++) {
            imapsearch_hits_add(&h, i + 1, i + 1);
            imapsearch_hits_modseq(&h, ms[i]);
        }
        imapsearch_result(&q, &h, 0, 0, "A1", to_buf, out);
        CHECK_STR(out, want[k][1], "%s", want[k][0]);
        imapsearch_hits_free(&h);
        imapsearch_free(&q);
    }
    struct imapsearch_hits none = {0};
    out[0] = '\0';
    parse("MODSEQ 1", &q, err, sizeof err);
    imapsearch_result(&q, &none, 0, 0, "A1", to_buf, out);
    CHECK_STR(out, "* SEARCH\r\n", "no hit: no (MODSEQ n)");
    imapsearch_free(&q);
}

/* The UIDs SAVE keeps, as text. */
static const char *saved(const char *criteria, const uint32_t *uids, size_t n)
{
    static char out[256];
    struct imapsearch q;
    struct imapsearch_hits h = {0};
    struct imap_seqset set;
    char err[64];
    size_t o = 0;
    out[0] = '\0';
    if (parse(criteria, &q, err, sizeof err) != 0)
        return "(parse)";
    for (size_t i = 0; i < n; i++)
        imapsearch_hits_add(&h, (uint32_t)i + 1, uids[i]);
    if (imapsearch_save(&q, &h, &set) == 0) {
        for (size_t i = 0; i < set.n; i++)
            o += (size_t)snprintf(out + o, sizeof out - o, "%s%u:%u", i ? "," : "", set.r[i].lo,
                                  set.r[i].hi);
        imap_seqset_free(&set);
    }
    imapsearch_hits_free(&h);
    imapsearch_free(&q);
    return out;
}

static void test_save(void)
{
    static const uint32_t uids[] = {4, 5, 6, 9, 12};
    CHECK_STR(saved("RETURN (SAVE) ALL", uids, 5), "4:6,9:9,12:12", "SAVE: every hit");
    CHECK_STR(saved("RETURN (SAVE MIN) ALL", uids, 5), "4:4", "SAVE MIN: the first");
    CHECK_STR(saved("RETURN (SAVE MAX) ALL", uids, 5), "12:12", "SAVE MAX: the last");
    CHECK_STR(saved("RETURN (SAVE MIN MAX) ALL", uids, 5), "4:4,12:12", "SAVE MIN MAX: both");
    CHECK_STR(saved("RETURN (SAVE MIN MAX) ALL", uids, 1), "4:4", "one hit: once");
    CHECK_STR(saved("RETURN (SAVE MIN COUNT) ALL", uids, 5), "4:6,9:9,12:12",
              "SAVE with COUNT: every hit");
    CHECK_STR(saved("RETURN (SAVE) ALL", uids, 0), "", "no hits: empty");
    struct imap_seqset set;
    struct imapsearch_hits h = {0};
    struct imapsearch q;
    char err[8];
    parse("RETURN (SAVE) ALL", &q, err, sizeof err);
    for (size_t i = 0; i < 5; i++)
        imapsearch_hits_add(&h, (uint32_t)i + 1, uids[i]);
    imapsearch_save(&q, &h, &set);
    imapsearch_hits_free(&h);
    imapsearch_free(&q);
    struct imapsearch_msg m = plain(-1);
    m.saved = &set;
    m.uid = 9;
    CHECK(search("$", &m) == 1 && search("UID $", &m) == 1, "\"$\" is the saved result");
    m.uid = 7;
    CHECK(search("$", &m) == 0 && search("NOT $", &m) == 1, "a UID not saved");
    m.saved = NULL;
    CHECK(search("$", &m) == 0, "nothing saved: \"$\" matches nothing");
    imap_seqset_free(&set);
    CHECK(parse("UID $ SEEN", &q, err, sizeof err) == 0 && q.uses_saved, "uses_saved is set");
    imapsearch_free(&q);
}

static void test_query_fields(void)
{
    struct imapsearch q;
    char err[64];
    CHECK(parse("SEEN 1:3 LARGER 5", &q, err, sizeof err) == 0 && !q.reads_header &&
              !q.reads_body && !q.reads_date && !q.has_return && !q.uses_saved,
          "a cheap query reads nothing");
    imapsearch_free(&q);
    CHECK(parse("UNSEEN OR DELETED KEYWORD x UID 1:*", &q, err, sizeof err) == 0 && !q.reads_date &&
              !q.reads_header,
          "flags, keywords and UIDs need no INTERNALDATE");
    imapsearch_free(&q);
    CHECK(parse("NOT (OR BEFORE 1-Jan-2000 ON 2-Jan-2000)", &q, err, sizeof err) == 0 &&
              q.reads_date && !q.reads_header,
          "BEFORE and ON read INTERNALDATE, not the header");
    imapsearch_free(&q);
    CHECK(parse("SINCE 1-Jan-2000", &q, err, sizeof err) == 0 && q.reads_date,
          "SINCE reads INTERNALDATE");
    imapsearch_free(&q);
    CHECK(parse("FROM x", &q, err, sizeof err) == 0 && q.reads_header && !q.reads_body,
          "FROM reads the header");
    imapsearch_free(&q);
    CHECK(parse("SENTON 1-Jan-2000", &q, err, sizeof err) == 0 && q.reads_header && !q.reads_date,
          "SENTON reads the header, not INTERNALDATE");
    imapsearch_free(&q);
    CHECK(parse("OR BODY x TEXT y", &q, err, sizeof err) == 0 && q.reads_header && q.reads_body,
          "TEXT reads both");
    imapsearch_free(&q);
}

/* One query over several messages, as the SEARCH glue uses it. */
static void test_reuse(void)
{
    struct imapsearch q;
    char err[64];
    static const char m1[] = "Subject: one\n\nends in nee";
    static const char m2[] = "Dle: x\n\nnothing\n";
    int f1 = msgfile(m1, strlen(m1)), f2 = msgfile(m2, strlen(m2));
    struct imapsearch_msg m = plain(f1);
    CHECK(parse("TEXT needle", &q, err, sizeof err) == 0, "parsed once");
    CHECK(imapsearch_match(&q, &m) == 0, "the first message ends in part of the needle");
    m.fd = f2;
    CHECK(imapsearch_match(&q, &m) == 0, "which the next message's header does not complete");
    imapsearch_free(&q);
    CHECK(parse("4:*", &q, err, sizeof err) == 0, "a set with *");
    m.seq = 4;
    m.max_seq = 5;
    CHECK(imapsearch_match(&q, &m) == 1, "4 in 4:5");
    m.max_seq = 3;
    m.seq = 3;
    CHECK(imapsearch_match(&q, &m) == 1, "after an expunge, * is 3 and 4:* is 3:4");
    m.seq = 2;
    CHECK(imapsearch_match(&q, &m) == 0, "2 is not in it");
    imapsearch_free(&q);
    close(f1);
    close(f2);
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
    CHECK(parse("RETURN (SAVE) CHARSET KOI8-R ALL", &q, err, sizeof err) == IMAPSEARCH_BADCHARSET &&
              q.ret == IMAPSEARCH_RET_SAVE && q.nodes == NULL,
          "BADCHARSET keeps the RETURN options (SAVE empties $ on a NO), nothing else");
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
    test_reuse();
    test_lazy_open();
    test_logic();
    test_internal_dates();
    test_sent_dates();
    test_encoded_words();
    test_transfer_encodings();
    test_chunk_boundary();
    test_long_header();
    test_multipart();
    test_golden();
    test_big();
    test_answers();
    test_modseq();
    test_save();
    test_query_fields();
    test_refused();
    if (tmpdir_remove(dir) != 0)
        return 2;
    return tap_done();
}
