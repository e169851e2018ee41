/*
 * test-imapfetch: lib/imapfetch. The attribute parser on good and bad lists (with the BAD
 * texts), the flag lists, and the FETCH responses rendered for the golden messages of
 * tests/unit/mime/ compared with what RFC 3501 / 3516 say they are (written by hand), partial
 * fetches at their edges, BINARY decoding, \Seen, and a 50 MB message in constant memory.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "imapfetch.h"
#include "tap.h"

static char out[1 << 20];
static char err[256];

/* Parses args; returns the rc and leaves err set. */
static int parse(struct imapfetch *f, const char *args)
{
    struct imaptok t;
    imaptok_init(&t, args, strlen(args));
    return imapfetch_parse(&t, f, err, sizeof err);
}

static int file_fd(const char *text, size_t len)
{
    char path[] = "/tmp/test-imapfetch-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path);
    if (write(fd, text, len) != (ssize_t)len) {
        close(fd);
        return -1;
    }
    return fd;
}

static struct imapfetch_msg msg(int fd)
{
    struct imapfetch_msg m = {0};
    m.seq = 12;
    m.uid = 4827;
    m.flags = "\\Answered";
    m.internaldate = 837596665; /* 1996-07-17 09:44:25 UTC */
    m.crlf_size = 401;
    m.fd = fd;
    return m;
}

/* The response to FETCH args for m, or "(rc N)". */
static const char *fetch(const char *args, const struct imapfetch_msg *m)
{
    static struct imapfetch f;
    struct mime_buf b = {out, 0, sizeof out, 0};
    if (parse(&f, args) != 0) {
        snprintf(out, sizeof out, "(BAD %s)", err);
        return out;
    }
    int rc = imapfetch_message(&f, m, mime_buf_write, &b);
    if (rc != 0)
        snprintf(out, sizeof out, "(rc %d)", rc);
    return out;
}

static void check_parse(void)
{
    struct imapfetch f;
    CHECK(parse(&f, "ALL") == 0 && f.n == 4 && f.item[3].kind == IMAPFETCH_ENVELOPE,
          "ALL is FLAGS INTERNALDATE RFC822.SIZE ENVELOPE");
    CHECK(parse(&f, "fast") == 0 && f.n == 3 && !(f.needs & IMAPFETCH_NEED_FILE),
          "fast (any case) is three items that need no file");
    CHECK(parse(&f, "FULL") == 0 && f.n == 5 && f.item[4].kind == IMAPFETCH_BODY,
          "FULL ends with BODY");
    CHECK(parse(&f, "(UID FLAGS RFC822.SIZE)") == 0 && f.n == 3 && !(f.needs & IMAPFETCH_NEED_FILE),
          "a list of three cheap items");
    CHECK(parse(&f, "body.peek[header.fields (from \"To\" {2}\r\ncc)]<0.100>") == 0 && f.n == 1 &&
              f.item[0].peek && f.item[0].partial && f.item[0].origin == 0 &&
              f.item[0].count == 100,
          "BODY.PEEK[HEADER.FIELDS (...)]<0.100> with quoted and literal names");
    CHECK_STR(f.text + f.item[0].sect, "HEADER.FIELDS (FROM TO CC)",
              "the section kept canonical, names upper-cased");
    CHECK(parse(&f, "(BODY[1.2.MIME] BODY[3.HEADER.FIELDS.NOT (X-A)] BODY[] BODY[TEXT])") == 0 &&
              f.n == 4 && imapfetch_sets_seen(&f),
          "four sections; BODY[] sets \\Seen");
    CHECK_STR(f.text + f.item[1].sect, "3.HEADER.FIELDS.NOT (X-A)", "a numbered HEADER.FIELDS.NOT");
    CHECK(f.item[2].sect_len == 0, "BODY[] has an empty section");
    CHECK(parse(&f, "(BODY.PEEK[] BINARY.PEEK[1] BINARY.SIZE[1] RFC822.HEADER)") == 0 &&
              !imapfetch_sets_seen(&f),
          "PEEKs, BINARY.SIZE and RFC822.HEADER do not set \\Seen");
    CHECK(parse(&f, "RFC822") == 0 && imapfetch_sets_seen(&f), "RFC822 sets \\Seen");
    CHECK(parse(&f, "RFC822.TEXT") == 0 && imapfetch_sets_seen(&f), "RFC822.TEXT sets \\Seen");
    CHECK(parse(&f, "BINARY[2.1]<5.10>") == 0 && imapfetch_sets_seen(&f) && f.item[0].origin == 5,
          "BINARY[2.1]<5.10> sets \\Seen");
    CHECK(parse(&f, "(UID UID FLAGS BODY.PEEK[1] BODY[1])") == 0 && f.n == 3 && !f.item[2].peek,
          "duplicates dropped (BODY[1] wins over BODY.PEEK[1])");

    static const struct {
        const char *args, *bad;
    } bads[] = {
        {"", "Missing FETCH attributes"},
        {"()", "Unknown FETCH attribute "},
        {"(FLAGS", "Invalid FETCH attribute list"},
        {"(FLAGS  UID)", "Unknown FETCH attribute "},
        {"FOO", "Unknown FETCH attribute FOO"},
        {"(FLAGS ALL)", "Unknown FETCH attribute ALL"},
        {"BODY.PEEK", "Unknown FETCH attribute BODY.PEEK"},
        {"FLAGS UID", "Junk after FETCH attributes"},
        {"(FLAGS) x", "Junk after FETCH attributes"},
        {"BODY[1.X]", "Invalid section [1.X]"},
        {"BODY[0]", "Invalid section [0]"},
        {"BODY[1.]", "Invalid section [1.]"},
        {"BODY[MIME]", "Invalid section [MIME]"},
        {"BODY[HEADER.FIELDS]", "Invalid section [HEADER.FIELDS]"},
        {"BODY[HEADER.FIELDS ()]", "Invalid section [HEADER.FIELDS"},
        {"BODY[HEADER.FIELDS (A:B)]", "Invalid section [HEADER.FIELDS"},
        {"BODY[TEXT", "Invalid section [TEXT"},
        {"BINARY[HEADER]", "Invalid section [HEADER]"},
        {"BINARY[1.MIME]", "Invalid section [1.MIME]"},
        {"BODY[]<0.0>", "Invalid partial"},
        {"BODY[]<5>", "Invalid partial"},
        {"BODY[]<a.5>", "Invalid partial"},
        {"BINARY.SIZE[1]<0.5>", "Invalid partial"},
        {"BODY[]x", "Unknown FETCH attribute BODY"},
        {"UIDX", "Unknown FETCH attribute UIDX"},
        {"RFC822.SIZE[1]", "Unknown FETCH attribute RFC822.SIZE[1]"},
    };
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++) {
        int rc = parse(&f, bads[k].args);
        CHECK(rc == -1 && strncmp(err, bads[k].bad, strlen(bads[k].bad)) == 0,
              "\"%s\" is refused: %s", bads[k].args, err);
    }
    char many[1024] = "(";
    for (int k = 0; k < IMAPFETCH_MAX_ITEMS + 1; k++)
        snprintf(many + strlen(many), sizeof many - strlen(many), "%sBODY[%d]", k ? " " : "",
                 k + 1);
    strcat(many, ")");
    CHECK(parse(&f, many) == -1 && strcmp(err, "Too many FETCH attributes") == 0,
          "more than %d items are refused", IMAPFETCH_MAX_ITEMS);
}

/* CONDSTORE (RFC 7162): the MODSEQ item, the (CHANGEDSINCE n) modifier, send_modseq. */
static void check_modseq(void)
{
    struct imapfetch f;
    struct imapfetch_msg m = msg(-1);
    m.modseq = 9223372036854775807ull;
    CHECK(parse(&f, "(UID MODSEQ)") == 0 && f.n == 2 && f.item[1].kind == IMAPFETCH_MODSEQ &&
              !(f.needs & IMAPFETCH_NEED_FILE) && !f.changedsince_given,
          "MODSEQ reads no file");
    CHECK_STR(fetch("(UID MODSEQ)", &m), "* 12 FETCH (UID 4827 MODSEQ (9223372036854775807))\r\n",
              "MODSEQ (n)");
    CHECK(parse(&f, "(FLAGS) (CHANGEDSINCE 12345)") == 0 && f.changedsince_given &&
              f.changedsince == 12345,
          "(CHANGEDSINCE n)");
    CHECK(parse(&f, "FLAGS (changedsince 0)") == 0 && f.changedsince_given && f.changedsince == 0,
          "after a lone item, any case, 0");
    m.send_modseq = 1;
    m.modseq = 7;
    CHECK_STR(fetch("FLAGS", &m), "* 12 FETCH (MODSEQ (7) FLAGS (\\Answered))\r\n",
              "send_modseq: MODSEQ first");
    m.uid_command = 1;
    CHECK_STR(fetch("(FLAGS MODSEQ)", &m),
              "* 12 FETCH (UID 4827 FLAGS (\\Answered) MODSEQ (7))\r\n", "after the UID, once");
    static const char *const bads[] = {"FLAGS (CHANGEDSINCE x)",
                                       "FLAGS (CHANGEDSINCE)",
                                       "FLAGS (CHANGEDSINCE 9223372036854775808)",
                                       "FLAGS (CHANGEDSINCE 1",
                                       "FLAGS (VANISHED VANISHED CHANGEDSINCE 1)",
                                       "FLAGS ()",
                                       "FLAGS (CHANGEDSINCE 1 CHANGEDSINCE 2)",
                                       "FLAGS  (CHANGEDSINCE 1)",
                                       "FLAGS (CHANGEDSINCE 1) x"};
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++)
        CHECK(parse(&f, bads[k]) == -1, "\"%s\" is refused: %s", bads[k], err);
    CHECK(parse(&f, "FLAGS (CHANGEDSINCE 5 VANISHED)") == 0 && f.vanished && f.changedsince == 5 &&
              parse(&f, "FLAGS (vanished CHANGEDSINCE 5)") == 0 && f.vanished &&
              parse(&f, "FLAGS (VANISHED)") == 0 && f.vanished && !f.changedsince_given &&
              parse(&f, "FLAGS (CHANGEDSINCE 5)") == 0 && !f.vanished,
          "QRESYNC's VANISHED, in either place (the caller checks it has CHANGEDSINCE)");
}

static void check_flags(void)
{
    struct imapfetch_flags fl;
    struct imaptok t;
    const char *s = "(\\Seen $Junk \\flagged \\SEEN $junk $Forwarded)";
    imaptok_init(&t, s, strlen(s));
    CHECK(imapfetch_parse_flags(&t, &fl, err, sizeof err) == 0 && imaptok_at_end(&t),
          "a flag list parses");
    CHECK_STR(fl.letters, "FPS", "system flags as sorted Maildir letters");
    CHECK(fl.n_kw == 1 && fl.kw_len[0] == 5 && strncmp(fl.kw[0], "$Junk", 5) == 0,
          "one keyword, duplicates dropped");
    s = "\\Deleted \\Draft";
    imaptok_init(&t, s, strlen(s));
    CHECK(imapfetch_parse_flags(&t, &fl, err, sizeof err) == 0 && strcmp(fl.letters, "DT") == 0,
          "flags without parentheses");
    s = "()";
    imaptok_init(&t, s, strlen(s));
    CHECK(imapfetch_parse_flags(&t, &fl, err, sizeof err) == 0 && fl.letters[0] == '\0' &&
              fl.n_kw == 0,
          "an empty list");
    static const char *bads[] = {"(\\Recent)", "(\\Foo)", "(\\Seen", "(\\Seen  \\Draft)",
                                 "",           "(\\*)",   "((a))"};
    for (size_t k = 0; k < sizeof bads / sizeof bads[0]; k++) {
        imaptok_init(&t, bads[k], strlen(bads[k]));
        CHECK(imapfetch_parse_flags(&t, &fl, err, sizeof err) == -1 && t.p == bads[k],
              "\"%s\" is refused (%s), the cursor unmoved", bads[k], err);
    }
    struct imapfetch_store st;
    static const struct {
        const char *args;
        int rc, op, silent;
        const char *letters, *bad;
    } stores[] = {
        {"+FLAGS (\\Seen)", 0, IMAPFETCH_STORE_ADD, 0, "S", ""},
        {"-flags.silent \\Deleted \\Draft", 0, IMAPFETCH_STORE_REMOVE, 1, "DT", ""},
        {"FLAGS ()", 0, IMAPFETCH_STORE_SET, 0, "", ""},
        {"FLAGS.SILENT (\\Answered)", 0, IMAPFETCH_STORE_SET, 1, "R", ""},
        {"+FLAGS", -1, 0, 0, "", "Missing STORE flags"},
        {"*FLAGS (\\Seen)", -1, 0, 0, "", "Invalid STORE data item *FLAGS"},
        {"+FLAGS (\\Seen) x", -1, 0, 0, "", "Junk after STORE flags"},
        {"+FLAGS.LOUD (\\Seen)", -1, 0, 0, "", "Invalid STORE data item +FLAGS.LOUD"},
        {"FLAGS (\\Recent)", -1, 0, 0, "", "Invalid system flag \\Recent"},
    };
    for (size_t k = 0; k < sizeof stores / sizeof stores[0]; k++) {
        imaptok_init(&t, stores[k].args, strlen(stores[k].args));
        int rc = imapfetch_parse_store(&t, &st, err, sizeof err);
        if (stores[k].rc == 0)
            CHECK(rc == 0 && (int)st.op == stores[k].op && st.silent == stores[k].silent &&
                      strcmp(st.flags.letters, stores[k].letters) == 0,
                  "STORE %s", stores[k].args);
        else
            CHECK(rc == -1 && strcmp(err, stores[k].bad) == 0, "STORE %s is refused: %s",
                  stores[k].args, err);
    }
}

/* tests/unit/ of the source: $YUBIN_SRC's under make check (distcheck too), else the cwd. */
static const char *unit_dir(void)
{
    static char dir[4096];
    const char *src = getenv("YUBIN_SRC");
    snprintf(dir, sizeof dir, "%s%s", src ? src : ".", src ? "/tests/unit" : "");
    return dir;
}

static int open_golden(const char *name)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/mime/%s", unit_dir(), name);
    return open(path, O_RDONLY);
}

#define ENV3501                                                                                    \
    "(\"Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\" \"IMAP4rev1 WG mtg summary and minutes\" "         \
    "((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" "        \
    "\"cac.washington.edu\")) ((\"Terry Gray\" NIL \"gray\" \"cac.washington.edu\")) ((NIL NIL "   \
    "\"imap\" \"cac.washington.edu\")) ((NIL NIL \"minutes\" \"CNRI.Reston.VA.US\")(\"John "       \
    "Klensin\" NIL \"KLENSIN\" \"MIT.EDU\")) NIL NIL \"<B27397-0100000@cac.washington.edu>\")"

static void check_rfc3501(void)
{
    int fd = open_golden("rfc3501-envelope.eml");
    CHECK(fd >= 0, "rfc3501-envelope.eml opens");
    struct imapfetch_msg m = msg(fd);
    CHECK_STR(fetch("FAST", &m),
              "* 12 FETCH (FLAGS (\\Answered) INTERNALDATE \"17-Jul-1996 02:44:25 -0700\" "
              "RFC822.SIZE 401)\r\n",
              "FAST: RFC 3501's INTERNALDATE example (TZ=America/Los_Angeles)");
    CHECK_STR(fetch("(ENVELOPE)", &m), "* 12 FETCH (ENVELOPE " ENV3501 ")\r\n",
              "ENVELOPE as RFC 3501 §8's example");
    CHECK_STR(fetch("BODYSTRUCTURE", &m),
              "* 12 FETCH (BODYSTRUCTURE (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL "
              "\"7bit\" 55 1 NIL NIL NIL NIL))\r\n",
              "BODYSTRUCTURE");
    CHECK_STR(fetch("(BODY UID)", &m),
              "* 12 FETCH (BODY (\"TEXT\" \"PLAIN\" (\"CHARSET\" \"US-ASCII\") NIL NIL \"7bit\" 55 "
              "1) UID 4827)\r\n",
              "BODY and UID, in the order asked");
    m.uid_command = 1;
    CHECK_STR(fetch("FLAGS", &m), "* 12 FETCH (UID 4827 FLAGS (\\Answered))\r\n",
              "UID FETCH: UID first");
    CHECK_STR(fetch("(FLAGS UID)", &m), "* 12 FETCH (FLAGS (\\Answered) UID 4827)\r\n",
              "UID FETCH with UID asked: only once");
    m.uid_command = 0;
    CHECK_STR(fetch("BODY[TEXT]", &m),
              "* 12 FETCH (BODY[TEXT] {55}\r\nHello Joe, do you think we can meet at 3:30 "
              "tomorrow?\r\n FLAGS (\\Answered \\Seen))\r\n",
              "BODY[TEXT]: CRLF, and FLAGS with \\Seen added");
    CHECK_STR(fetch("(FLAGS BODY.PEEK[TEXT]<6.3>)", &m),
              "* 12 FETCH (FLAGS (\\Answered) BODY[TEXT]<6> {3}\r\nJoe)\r\n",
              "a partial PEEK: named by its origin, no \\Seen");
    CHECK_STR(fetch("(FLAGS RFC822.TEXT)", &m),
              "* 12 FETCH (FLAGS (\\Answered \\Seen) RFC822.TEXT {55}\r\nHello Joe, do you think "
              "we can meet at 3:30 tomorrow?\r\n)\r\n",
              "RFC822.TEXT, FLAGS asked: \\Seen in it");
    m.read_only = 1;
    CHECK_STR(fetch("BODY[TEXT]<53.10>", &m), "* 12 FETCH (BODY[TEXT]<53> {2}\r\n\r\n)\r\n",
              "read-only: no \\Seen; a partial cut at the end");
    CHECK_STR(fetch("BODY[TEXT]<55.10>", &m), "* 12 FETCH (BODY[TEXT]<55> {0}\r\n)\r\n",
              "origin at the end: empty");
    CHECK_STR(fetch("BODY[TEXT]<4000000000.1>", &m),
              "* 12 FETCH (BODY[TEXT]<4000000000> {0}\r\n)\r\n", "origin far past the end: empty");
    CHECK_STR(fetch("BODY[TEXT]<54.1>", &m), "* 12 FETCH (BODY[TEXT]<54> {1}\r\n\n)\r\n",
              "a partial that ends between CR and LF");
    m.read_only = 0;
    m.flags = "\\Seen";
    CHECK_STR(fetch("BODY[HEADER.FIELDS (SUBJECT cc)]", &m),
              "* 12 FETCH (BODY[HEADER.FIELDS (SUBJECT CC)] {116}\r\nSubject: IMAP4rev1 WG mtg "
              "summary and minutes\r\ncc: minutes@CNRI.Reston.VA.US,\r\n   John Klensin "
              "<KLENSIN@MIT.EDU>\r\n\r\n)\r\n",
              "HEADER.FIELDS: already \\Seen, no FLAGS");
    CHECK_STR(fetch("BODY.PEEK[HEADER.FIELDS.NOT (Date From Subject To cc Message-ID "
                    "Mime-Version)]<2.12>",
                    &m),
              "* 12 FETCH (BODY[HEADER.FIELDS.NOT (DATE FROM SUBJECT TO CC MESSAGE-ID "
              "MIME-VERSION)]<2> {12}\r\nntent-Type: )\r\n",
              "HEADER.FIELDS.NOT with a partial");
    m.flags = "";
    CHECK_STR(fetch("(BODY[9] BODY[1.HEADER] BINARY.SIZE[2])", &m),
              "* 12 FETCH (BODY[9] {0}\r\n BODY[1.HEADER] {0}\r\n BINARY.SIZE[2] 0 FLAGS "
              "(\\Seen))\r\n",
              "sections naming no part");
    CHECK_STR(fetch("(RFC822.HEADER)", &m),
              "* 12 FETCH (RFC822.HEADER {346}\r\nDate: Wed, 17 Jul 1996 02:23:25 -0700 (PDT)\r\n"
              "From: Terry Gray <gray@cac.washington.edu>\r\nSubject: IMAP4rev1 WG mtg summary "
              "and minutes\r\nTo: imap@cac.washington.edu\r\ncc: minutes@CNRI.Reston.VA.US,\r\n"
              "   John Klensin <KLENSIN@MIT.EDU>\r\nMessage-Id: "
              "<B27397-0100000@cac.washington.edu>\r\nMIME-Version: 1.0\r\nContent-Type: "
              "TEXT/PLAIN; CHARSET=US-ASCII\r\n\r\n)\r\n",
              "RFC822.HEADER: the header and its blank line, CRLF");
    const char *r = fetch("BODY.PEEK[]", &m);
    CHECK(strncmp(r, "* 12 FETCH (BODY[] {401}\r\nDate: ", 32) == 0 &&
              strcmp(r + strlen(r) - 14, "tomorrow?\r\n)\r\n") == 0 && strlen(r) == 26 + 401 + 3,
          "BODY[]: the whole message, 401 octets");
    r = fetch("RFC822", &m);
    CHECK(strncmp(r, "* 12 FETCH (RFC822 {401}\r\nDate: ", 32) == 0 &&
              strstr(r, "tomorrow?\r\n FLAGS (\\Seen))\r\n") != NULL,
          "RFC822: the whole message, sets \\Seen");
    CHECK_STR(fetch("(BINARY.SIZE[1] BINARY.PEEK[1]<0.5>)", &m),
              "* 12 FETCH (BINARY.SIZE[1] 55 BINARY[1]<0> {5}\r\nHello)\r\n",
              "BINARY of a 7bit part: as it is");
    close(fd);
}

static void check_binary(void)
{
    static const char text[] = "Content-Type: multipart/mixed; boundary=b\n"
                               "\n"
                               "--b\n"
                               "Content-Type: text/plain\n"
                               "Content-Transfer-Encoding: quoted-printable\n"
                               "\n"
                               "caf=C3=A9 =3D ok  \n"
                               "soft=\n"
                               "break =\t\n"
                               "end=\n"
                               "--b\n"
                               "Content-Type: application/octet-stream\n"
                               "Content-Transfer-Encoding: BASE64\n"
                               "\n"
                               "AAECAw==\n"
                               "--b\n"
                               "Content-Type: application/x-foo\n"
                               "Content-Transfer-Encoding: x-uuencode\n"
                               "\n"
                               "begin\n"
                               "--b\n"
                               "Content-Transfer-Encoding: base64\n"
                               "\n"
                               "aGVs\n"
                               "bG8K\n"
                               "--b--\n";
    int fd = file_fd(text, sizeof text - 1);
    struct imapfetch_msg m = msg(fd);
    m.flags = "\\Seen";
    CHECK_STR(
        fetch("BINARY[1]", &m),
        "* 12 FETCH (BINARY[1] {26}\r\ncaf\xc3\xa9 = ok\r\nsoftbreak end=)\r\n",
        "quoted-printable decoded: escapes, soft breaks, trailing blanks dropped, a lone = kept");
    CHECK_STR(fetch("BINARY.SIZE[1]", &m), "* 12 FETCH (BINARY.SIZE[1] 26)\r\n",
              "BINARY.SIZE of the quoted-printable part");
    struct imapfetch f;
    struct mime_buf b = {out, 0, sizeof out, 0};
    parse(&f, "(BINARY.SIZE[2] BINARY[2])");
    CHECK(imapfetch_message(&f, &m, mime_buf_write, &b) == 0 && b.len == 52 &&
              memcmp(out, "* 12 FETCH (BINARY.SIZE[2] 4 BINARY[2] ~{4}\r\n\0\1\2\3)\r\n", 52) == 0,
          "base64 with a NUL: literal8");
    CHECK_STR(fetch("BINARY[4]<2.10>", &m), "* 12 FETCH (BINARY[4]<2> {4}\r\nllo\n)\r\n",
              "base64 over two lines, partial after decoding");
    CHECK_STR(fetch("(UID BINARY[3])", &m), "(rc -3)", "an unknown encoding: UNKNOWN-CTE");
    CHECK_STR(fetch("(UID BINARY.SIZE[3])", &m), "(rc -3)", "BINARY.SIZE too");
    CHECK_STR(fetch("(UID BODY[3])", &m), "* 12 FETCH (UID 4827 BODY[3] {5}\r\nbegin)\r\n",
              "BODY[3] is sent encoded (the LF before the boundary is the boundary's)");
    static const char nul[] = "Subject: nul\n\na\0b\n";
    int fd2 = file_fd(nul, sizeof nul - 1);
    struct imapfetch_msg m2 = msg(fd2);
    m2.flags = "\\Seen";
    b = (struct mime_buf){out, 0, sizeof out, 0};
    parse(&f, "(BODY[TEXT] BINARY[1])");
    CHECK(imapfetch_message(&f, &m2, mime_buf_write, &b) == 0 && b.len == 58 &&
              memcmp(out,
                     "* 12 FETCH (BODY[TEXT] {5}\r\na\x80\x62\r\n BINARY[1] ~{5}\r\na\0b\r\n)\r\n",
                     58) == 0,
          "a NUL: 0x80 in BODY[], as it is in BINARY's literal8");
    close(fd2);
    CHECK_STR(fetch("BINARY[]<0.12>", &m), "* 12 FETCH (BINARY[]<0> {12}\r\nContent-Type)\r\n",
              "BINARY[] of a multipart: the message as it is");
    close(fd);
    static const char one[] = "Subject: one\nContent-Transfer-Encoding: base64\n\naGVs\nbG8=\n";
    int fd3 = file_fd(one, sizeof one - 1);
    struct imapfetch_msg m3 = msg(fd3);
    m3.flags = "\\Seen";
    CHECK_STR(fetch("(BINARY.SIZE[] BINARY[])", &m3),
              "* 12 FETCH (BINARY.SIZE[] 56 BINARY[] {56}\r\nContent-Transfer-Encoding: binary\r\n"
              "Subject: one\r\n\r\nhello)\r\n",
              "BINARY[] of one base64 part: its header saying binary, its body decoded");
    close(fd3);
    static const char uu[] = "Subject: uu\nContent-Transfer-Encoding: x-uuencode\n\nbegin\n";
    int fd4 = file_fd(uu, sizeof uu - 1);
    struct imapfetch_msg m4 = msg(fd4);
    CHECK_STR(fetch("(UID BINARY[])", &m4), "(rc -3)", "BINARY[] of an unknown encoding");
    CHECK_STR(fetch("(UID BINARY.SIZE[])", &m4), "(rc -3)", "BINARY.SIZE[] too");
    close(fd4);
}

/* The golden cases: tests/unit/imapfetch/NAME.ref holds, for tests/unit/mime/NAME.eml, each
 * FETCH below as "== FETCH <args>" and the response as it goes on the wire (one over 4096
 * octets by its first 2048 and its length). IMAPFETCH_REGEN=1
 * rewrites them (review the diff against RFC 3501 before committing it). */
static const char *golden_fetches[] = {
    "FULL",
    "(UID BODYSTRUCTURE)",
    "BODY.PEEK[HEADER.FIELDS (From To Subject Content-Type)]",
    "(BODY.PEEK[1] BODY.PEEK[1.MIME] BODY.PEEK[2]<0.20> BODY.PEEK[TEXT]<10.30>)",
    "(BODY.PEEK[2.HEADER] BODY.PEEK[2.TEXT] BODY.PEEK[1.1] BODY.PEEK[2.1.MIME])",
    "(BINARY.SIZE[1] BINARY.PEEK[1] BINARY.SIZE[2] BINARY.PEEK[1.1]<0.40>)",
    "RFC822.HEADER",
    "BODY[]",
};

static void check_golden(const char *name)
{
    char eml[4200], ref[4200];
    snprintf(eml, sizeof eml, "%s/mime/%s.eml", unit_dir(), name);
    snprintf(ref, sizeof ref, "%s/imapfetch/%s.ref", unit_dir(), name);
    int fd = open(eml, O_RDONLY);
    CHECK(fd >= 0, "%s opens", eml);
    struct imapfetch_msg m = msg(fd);
    m.flags = "\\Seen";
    m.crlf_size = 0;
    char c;
    while (fd >= 0 && read(fd, &c, 1) == 1)
        m.crlf_size += c == '\n' ? 2 : 1;
    static char got[1 << 18];
    size_t len = 0;
    for (size_t k = 0; k < sizeof golden_fetches / sizeof golden_fetches[0]; k++) {
        const char *r = fetch(golden_fetches[k], &m);
        size_t rl = r == out ? strlen(r) : 0;
        len += (size_t)snprintf(got + len, sizeof got - len, "== FETCH %s\n", golden_fetches[k]);
        size_t keep = rl > 4096 ? 2048 : rl; /* a long one: its start and its length */
        if (keep < sizeof got - len) {
            memcpy(got + len, r, keep);
            len += keep;
        }
        if (keep < rl)
            len += (size_t)snprintf(got + len, sizeof got - len, "\n... %zu octets in all\n", rl);
    }
    close(fd);
    if (getenv("IMAPFETCH_REGEN")) {
        FILE *w = fopen(ref, "wb");
        if (w) {
            fwrite(got, 1, len, w);
            fclose(w);
        }
    }
    static char want[1 << 18];
    FILE *f = fopen(ref, "rb");
    size_t wl = f ? fread(want, 1, sizeof want, f) : 0;
    if (f)
        fclose(f);
    CHECK(f != NULL && wl == len && memcmp(want, got, len) == 0, "%s renders as %s", name, ref);
}

/* The writer of the big test: counts and keeps the start. */
struct counter {
    uint64_t n;
    char head[64];
};

static int count_write(void *arg, const void *data, size_t len)
{
    struct counter *c = arg;
    if (c->n < sizeof c->head - 1) {
        size_t k = len < sizeof c->head - 1 - c->n ? len : sizeof c->head - 1 - c->n;
        memcpy(c->head + c->n, data, k);
        c->head[c->n + k] = '\0';
    }
    c->n += len;
    return 0;
}

static long maxrss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void check_big(void)
{
    char path[] = "/tmp/test-imapfetch-big-XXXXXX";
    int fd = mkstemp(path);
    unlink(path);
    static char chunk[1 << 16];
    const char head[] = "Subject: big\nContent-Transfer-Encoding: base64\n\n";
    CHECK(write(fd, head, sizeof head - 1) == (ssize_t)sizeof head - 1, "big: header written");
    for (size_t k = 0; k < sizeof chunk; k += 77)
        memcpy(chunk + k,
               "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\n",
               sizeof chunk - k < 77 ? sizeof chunk - k : 77);
    size_t lines = sizeof chunk / 77, body = lines * 77;
    uint64_t total = sizeof head - 1;
    while (total < (50u << 20)) {
        if (write(fd, chunk, body) != (ssize_t)body)
            break;
        total += body;
    }
    uint64_t nl = 3 + (total - (sizeof head - 1)) / 77; /* LFs: 3 in the header */
    struct imapfetch_msg m = msg(fd);
    m.crlf_size = total + nl + 1;
    long before = maxrss_kib();
    struct imapfetch f;
    struct counter c = {0, ""};
    parse(&f, "BODY.PEEK[]");
    CHECK(imapfetch_message(&f, &m, count_write, &c) == 0, "a 50 MB BODY[] renders");
    char want[64];
    snprintf(want, sizeof want, "* 12 FETCH (BODY[] {%llu}\r\n", (unsigned long long)(total + nl));
    CHECK(strncmp(c.head, want, strlen(want)) == 0, "its literal announces %s", want + 12);
    CHECK(c.n == strlen(want) + total + nl + 3, "and holds exactly that many octets");
    c = (struct counter){0, ""};
    parse(&f, "BINARY.PEEK[1]<1000.3>");
    CHECK(imapfetch_message(&f, &m, count_write, &c) == 0, "a 50 MB BINARY renders");
    CHECK_STR(c.head, "* 12 FETCH (BINARY[1]<1000> {3}\r\nfgh)\r\n",
              "decoded from the base64 of the whole message (57 octets a line: 1000 is 'f')");
    long grew = maxrss_kib() - before;
    CHECK(grew < 1024, "memory grew by %ld KiB only", grew);
    close(fd);
}

int main(void)
{
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();
    check_parse();
    check_modseq();
    check_flags();
    check_rfc3501();
    check_binary();
    static const char *goldens[] = {
        "8bit",        "alternative-in-mixed", "bad-headers",      "deep-nesting",
        "long-header", "missing-boundary",     "no-body",          "no-headers-part",
        "rfc2231",     "rfc3501-envelope",     "rfc822-attachment"};
    for (size_t k = 0; k < sizeof goldens / sizeof goldens[0]; k++)
        check_golden(goldens[k]);
    check_big();
    return tap_done();
}
