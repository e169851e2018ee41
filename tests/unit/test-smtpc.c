/*
 * test-smtpc: lib/smtpc against a scripted SMTP server in a child process on a socketpair (and
 * on loopback for smtpc_connect): PIPELINING grouping, RSET between messages, HELO fallback,
 * SIZE and 8BITMIME parameters, the exact bytes of a dot-stuffed CRLF body, multi-line
 * replies, malformed replies, 421, timeouts, refused connections. The server records every
 * byte it receives into a file the checks read afterwards. Nothing here may hang: every read
 * on both sides has a timeout of a few seconds.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "smtpc.h"
#include "tap.h"

/* A server step: 'S' send the text as it is, 'E' expect one line starting with the text
 * (read without replying: consecutive E steps prove the client pipelined), 'D' read a DATA
 * body through "\r\n.\r\n", 'W' wait a second, 'C' close, 'Q' read until EOF. */
struct step {
    char op;
    const char *s;
};

static char capture_path[] = "/tmp/test-smtpc-capXXXXXX";
static int capture_fd = -1;

static int srv_byte(int fd, char *ch)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 3000) <= 0)
        return -1;
    if (read(fd, ch, 1) != 1)
        return -1;
    if (write(capture_fd, ch, 1) != 1)
        return -1;
    return 0;
}

static int srv_line(int fd, char *buf, size_t size)
{
    size_t n = 0;
    char ch;
    while (n + 1 < size) {
        if (srv_byte(fd, &ch) < 0)
            return -1;
        buf[n++] = ch;
        if (ch == '\n')
            break;
    }
    buf[n] = '\0';
    return 0;
}

static int srv_data(int fd)
{
    char last[5] = {0};
    char ch;
    for (;;) {
        if (srv_byte(fd, &ch) < 0)
            return -1;
        memmove(last, last + 1, 4);
        last[4] = ch;
        if (memcmp(last, "\r\n.\r\n", 5) == 0)
            return 0;
    }
}

/* Runs the script on fd; exits 0 if every expectation held, else the failing step + 10. */
static void server(int fd, const struct step *script)
{
    char line[4096];
    for (int i = 0; script[i].op != 0; i++) {
        const struct step *s = &script[i];
        int ok = 0;
        switch (s->op) {
        case 'S':
            ok = write(fd, s->s, strlen(s->s)) == (ssize_t)strlen(s->s);
            break;
        case 'E':
            ok = srv_line(fd, line, sizeof line) == 0 && strncmp(line, s->s, strlen(s->s)) == 0;
            if (!ok)
                fprintf(stderr, "# server step %d: wanted \"%s\", got \"%s\"\n", i, s->s, line);
            break;
        case 'D':
            ok = srv_data(fd) == 0;
            break;
        case 'W':
            sleep(1);
            ok = 1;
            break;
        case 'C':
            ok = close(fd) == 0;
            break;
        case 'Q':
            while (srv_line(fd, line, sizeof line) == 0 && line[0] != '\0')
                ;
            ok = 1;
            break;
        }
        if (!ok)
            _exit(10 + i);
    }
    _exit(0);
}

static pid_t server_pid;

/* Starts the scripted server on a socketpair; returns the client's end. */
static int start_server(const struct step *script)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        exit(2);
    if (ftruncate(capture_fd, 0) < 0 || lseek(capture_fd, 0, SEEK_SET) < 0)
        exit(2);
    server_pid = fork();
    if (server_pid < 0)
        exit(2);
    if (server_pid == 0) {
        close(sv[0]);
        server(sv[1], script);
    }
    close(sv[1]);
    return sv[0];
}

/* Waits for the server; its exit status (0 = its script held). */
static int server_done(void)
{
    int status = 0;
    if (waitpid(server_pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* What the server received. */
static char captured[1 << 16];
static const char *capture(void)
{
    ssize_t n = pread(capture_fd, captured, sizeof captured - 1, 0);
    captured[n > 0 ? n : 0] = '\0';
    return captured;
}

static char transcript[8192];
static void on_line(void *arg, char dir, const char *line, size_t len)
{
    size_t have = strlen(transcript);
    (void)arg;
    if (have + len + 4 < sizeof transcript) {
        transcript[have] = dir;
        transcript[have + 1] = ' ';
        memcpy(transcript + have + 2, line, len);
        transcript[have + 2 + len] = '\n';
        transcript[have + 3 + len] = '\0';
    }
}

static struct smtpc c;
static const struct smtpc_opts opts = {.helo = "client.test",
                                       .connect_timeout = 2,
                                       .command_timeout = 2,
                                       .data_timeout = 2,
                                       .transcript = on_line};

/* A stored message: a Return-Path: line (not relayed) then len bytes of body. Returns its fd
 * and the offset of the first byte to relay. */
static int message_n(const char *body, size_t len, off_t *offset)
{
    char path[] = "/tmp/test-smtpc-msgXXXXXX";
    const char *rp = "Return-Path: <a@example.org>\n";
    int fd = mkstemp(path);
    if (fd < 0)
        exit(2);
    unlink(path);
    if (write(fd, rp, strlen(rp)) < 0 || write(fd, body, len) < 0)
        exit(2);
    *offset = (off_t)strlen(rp);
    return fd;
}

static int message(const char *body, off_t *offset)
{
    return message_n(body, strlen(body), offset);
}

#define GREET                                                                                      \
    {'S', "220 mx.test ESMTP\r\n"},                                                                \
    {                                                                                              \
        'E', "EHLO client.test\r\n"                                                                \
    }
#define EHLO_FULL                                                                                  \
    {                                                                                              \
        'S', "250-mx.test\r\n250-PIPELINING\r\n250-SIZE 100000\r\n250 8BITMIME\r\n"                \
    }

static void test_pipelined(void)
{
    static const struct step script[] = {
        GREET,
        EHLO_FULL,
        {'E', "MAIL FROM:<a@example.org> SIZE=72\r\n"},
        {'E', "RCPT TO:<b@mx.test>\r\n"},
        {'E', "RCPT TO:<nobody@mx.test>\r\n"},
        {'E', "RCPT TO:<c@mx.test>\r\n"},
        {'E', "DATA\r\n"},
        {'S', "250 2.1.0 ok\r\n250 2.1.5 ok\r\n550-5.1.1 no such\r\n550 5.1.1 user here\r\n"
              "250 2.1.5 ok\r\n354 go\r\n"},
        {'D', NULL},
        {'S', "250 2.0.0 queued as X1\r\n"},
        {'E', "RSET\r\n"},
        {'E', "MAIL FROM:<> SIZE=7\r\n"},
        {'E', "RCPT TO:<b@mx.test>\r\n"},
        {'E', "DATA\r\n"},
        {'S', "250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"},
        {'D', NULL},
        {'S', "451 4.3.0 try later\r\n"},
        {'E', "QUIT\r\n"},
        {'S', "221 bye\r\n"},
        {'Q', NULL},
        {0, NULL}};
    struct smtpc_reply why, res[3];
    const char *rcpts[] = {"b@mx.test", "nobody@mx.test", "c@mx.test"};
    off_t off;
    int fd =
        message("Subject: x\n\n.leading dot\n..two\nline\r\nlone\rcr\n.\nno final newline", &off);
    transcript[0] = '\0';
    int rc = smtpc_start(&c, start_server(script), "sink", &opts, &why);
    CHECK(rc == 0 && c.esmtp, "EHLO accepted");
    CHECK((c.ext & SMTPC_EXT_PIPELINING) && (c.ext & SMTPC_EXT_8BITMIME) &&
              (c.ext & SMTPC_EXT_SIZE) && c.max_size == 100000,
          "EHLO keywords parsed");
    uint64_t size = 0;
    int eight = 1;
    CHECK(smtpc_measure(fd, off, &size, &eight, NULL) == 0 && size == 72 && eight == 0,
          "measure: CRLF size without dot-stuffing, 7-bit");
    struct smtpc_msg m = {"a@example.org", rcpts, 3, fd, off};
    rc = smtpc_send(&c, &m, res);
    CHECK(rc == 0, "first message sent, connection usable");
    CHECK(res[0].code == 250 && smtpc_reply_result(&res[0]) == 0, "rcpt 1 delivered (%s)",
          res[0].text);
    CHECK_STR(res[0].text, "250 2.0.0 queued as X1", "rcpt 1 has the final reply");
    CHECK(res[1].code == 550 && smtpc_reply_result(&res[1]) == -1, "rcpt 2 refused");
    CHECK_STR(res[1].enhanced, "5.1.1", "its enhanced code");
    CHECK_STR(res[1].text, "550 5.1.1 no such user here", "multi-line reply joined");
    CHECK(res[2].code == 250, "rcpt 3 delivered");
    const char *one = "b@mx.test";
    struct smtpc_msg m2 = {"", &one, 1, message("short", &off), off};
    rc = smtpc_send(&c, &m2, res);
    CHECK(rc == 0 && res[0].code == 451 && smtpc_reply_result(&res[0]) == 1,
          "second message on the same connection, after RSET: 451 is temporary");
    smtpc_quit(&c);
    CHECK(c.fd == -1, "closed after QUIT");
    CHECK(server_done() == 0, "the server saw MAIL, RCPTs and DATA in one group, RSET, QUIT");
    const char *got = capture();
    CHECK(strstr(got, "\r\n354") == NULL &&
              strstr(got, "DATA\r\nSubject: x\r\n\r\n..leading dot\r\n...two\r\nline\r\n"
                          "lone\r\ncr\r\n..\r\nno final newline\r\n.\r\n") != NULL,
          "body: CRLF everywhere, dot-stuffed, last line ended, no Return-Path");
    CHECK(strstr(got, "Return-Path") == NULL, "the Return-Path line is not relayed");
    int bare = 0;
    for (const char *p = got; *p; p++)
        if ((*p == '\n' && (p == got || p[-1] != '\r')) || (*p == '\r' && p[1] != '\n'))
            bare = 1;
    CHECK(!bare, "no bare CR or LF on the wire");
    CHECK(strstr(transcript, "C MAIL FROM:<a@example.org> SIZE=72\n") != NULL &&
              strstr(transcript, "S 550-5.1.1 no such\n") != NULL &&
              strstr(transcript, "C <message: 72 octets>\n") != NULL,
          "the transcript shows both sides");
}

static void test_8bit_and_helo(void)
{
    static const struct step script8[] = {
        GREET,
        EHLO_FULL,
        {'E', "MAIL FROM:<a@example.org> SIZE=9 BODY=8BITMIME\r\n"},
        {'E', "RCPT TO:<b@mx.test>\r\n"},
        {'E', "DATA\r\n"},
        {'S', "250 ok\r\n250 ok\r\n354 go\r\n"},
        {'D', NULL},
        {'S', "250 ok\r\n"},
        {'Q', NULL},
        {0, NULL}};
    static const struct step helo[] = {GREET,
                                       {'S', "502 5.5.1 what\r\n"},
                                       {'E', "HELO client.test\r\n"},
                                       {'S', "250 mx.test\r\n"},
                                       {'E', "MAIL FROM:<a@example.org>\r\n"},
                                       {'S', "250 ok\r\n"},
                                       {'E', "RCPT TO:<b@mx.test>\r\n"},
                                       {'S', "250 ok\r\n"},
                                       {'E', "DATA\r\n"},
                                       {'S', "354 go\r\n"},
                                       {'D', NULL},
                                       {'S', "250 ok\r\n"},
                                       {'Q', NULL},
                                       {0, NULL}};
    struct smtpc_reply why, res[1];
    const char *one = "b@mx.test";
    off_t off;
    int fd = message("caf\xc3\xa9 8\n", &off);
    struct smtpc_msg m = {"a@example.org", &one, 1, fd, off};
    CHECK(smtpc_start(&c, start_server(script8), "sink", &opts, &why) == 0, "connected");
    CHECK(smtpc_send(&c, &m, res) == 0 && res[0].code == 250, "8-bit message sent");
    smtpc_close(&c);
    CHECK(server_done() == 0, "BODY=8BITMIME when offered and the body is 8-bit");
    CHECK(strstr(capture(), "caf\xc3\xa9 8\r\n.\r\n") != NULL, "8-bit bytes kept as they are");

    CHECK(smtpc_start(&c, start_server(helo), "sink", &opts, &why) == 0 && !c.esmtp && c.ext == 0,
          "502 to EHLO: HELO fallback");
    CHECK(smtpc_send(&c, &m, res) == 0 && res[0].code == 250,
          "8-bit sent anyway to a server without 8BITMIME, one command at a time");
    smtpc_close(&c);
    CHECK(server_done() == 0, "no SIZE= or BODY= to a HELO server, lockstep commands");
}

/* A stored message with a NUL byte is never sent: not its MAIL FROM, not a byte of it. */
static void test_nul(void)
{
    static const struct step script[] = {GREET, EHLO_FULL, {'Q', NULL}, {0, NULL}};
    static const char body[] = "Subject: x\n\nline\n\0.\nQUIT\n";
    struct smtpc_reply why, res[1];
    const char *one = "b@mx.test";
    off_t off;
    uint64_t size;
    int eight, nul = 0;
    int fd = message_n(body, sizeof body - 1, &off);
    CHECK(smtpc_measure(fd, off, &size, &eight, &nul) == 0 && nul == 1, "measure sees the NUL");
    struct smtpc_msg m = {"a@example.org", &one, 1, fd, off};
    CHECK(smtpc_start(&c, start_server(script), "sink", &opts, &why) == 0, "connected");
    CHECK(smtpc_send(&c, &m, res) == 0 && res[0].code == 554 && smtpc_reply_result(&res[0]) == -1,
          "a message with a NUL byte fails for good (%s)", res[0].text);
    CHECK_STR(res[0].enhanced, "5.6.0", "as a content problem");
    smtpc_close(&c);
    CHECK(server_done() == 0, "the server saw nothing after EHLO");
    const char *got = capture();
    CHECK(strstr(got, "MAIL") == NULL && strstr(got, "line") == NULL, "nothing of it was sent");
    close(fd);
}

/* session_limit: a wall-clock limit for the whole connection, whatever each reply takes. */
static void test_session_limit(void)
{
    static const struct step slow[] = {{'W', NULL},
                                       {'S', "220 mx.test ESMTP\r\n"},
                                       {'E', "EHLO client.test\r\n"},
                                       {'Q', NULL},
                                       {0, NULL}};
    static const struct step quick[] = {
        GREET, {'S', "250 mx.test\r\n"}, {'E', "QUIT\r\n"}, {'Q', NULL}, {0, NULL}};
    struct smtpc_opts o = opts;
    struct smtpc_reply why, res[1];
    const char *one = "b@mx.test";
    o.command_timeout = 3;
    o.session_limit = 2;
    CHECK(smtpc_start(&c, start_server(slow), "sink", &o, &why) == 1 && why.code == 0 &&
              strstr(why.text, "session time limit (2 s)") != NULL,
          "the greeting in time, the EHLO reply not: cut at 2 s, not after 3 more (%s)", why.text);
    CHECK(server_done() == 0, "the slow server");
    o.session_limit = 1;
    CHECK(smtpc_start(&c, start_server(quick), "sink", &o, &why) == 0, "a quick session");
    struct timespec ts = {1, 200000000L};
    nanosleep(&ts, NULL);
    off_t off;
    int fd = message("late\n", &off);
    struct smtpc_msg m = {"a@example.org", &one, 1, fd, off};
    CHECK(smtpc_send(&c, &m, res) == 1 && res[0].code == 0 && smtpc_reply_result(&res[0]) == 1 &&
              strstr(res[0].text, "(not sent)") != NULL,
          "no transaction starts after the limit: temporary (%s)", res[0].text);
    CHECK(c.fd == -1, "and the connection is closed");
    CHECK(server_done() == 0, "with a QUIT, and no MAIL FROM");
    close(fd);
}

/* smtpc_send_all: at most max_rcpts per transaction, the ones refused as too many again in
 * the next, and a code-0 reply for those whose turn never came. */
static void test_send_all(void)
{
    static const struct step script[] = {
        GREET,
        EHLO_FULL,
        {'E', "MAIL FROM:<a@example.org>"},
        {'E', "RCPT TO:<r1@mx.test>"},
        {'E', "RCPT TO:<r2@mx.test>"},
        {'E', "DATA"},
        {'S', "250 ok\r\n250 ok\r\n452 4.5.3 too many\r\n354 go\r\n"},
        {'D', NULL},
        {'S', "250 ok\r\n"},
        {'E', "RSET"},
        {'E', "MAIL FROM:<a@example.org>"},
        {'E', "RCPT TO:<r2@mx.test>"},
        {'E', "RCPT TO:<r3@mx.test>"},
        {'E', "DATA"},
        {'S', "250 ok\r\n250 ok\r\n250 ok\r\n250 ok\r\n354 go\r\n"},
        {'D', NULL},
        {'S', "250 ok\r\n"},
        {'E', "RSET"},
        {'C', NULL},
        {0, NULL}};
    struct smtpc_reply why, res[4];
    const char *rcpts[] = {"r1@mx.test", "r2@mx.test", "r3@mx.test", "r4@mx.test"};
    off_t off;
    int fd = message("hello\n", &off);
    struct smtpc_msg m = {"a@example.org", rcpts, 4, fd, off};
    CHECK(smtpc_start(&c, start_server(script), "sink", &opts, &why) == 0, "connected");
    CHECK(smtpc_send_all(&c, &m, res, 2) == 1, "three transactions, the third one lost");
    CHECK(res[0].code == 250 && res[1].code == 250 && res[2].code == 250,
          "2 per transaction, the one refused as too many in the next (%s)", res[1].text);
    CHECK(res[3].code == 0 && smtpc_reply_result(&res[3]) == 1, "the last one: temporary (%s)",
          res[3].text);
    CHECK(server_done() == 0, "the server saw 2, 2 and a third transaction");
    close(fd);
}

/* A server that answers EHLO with reply, then expects QUIT or nothing. */
static int bad_reply(const char *reply, struct smtpc_reply *why)
{
    const struct step script[] = {GREET, {'S', reply}, {'Q', NULL}, {0, NULL}};
    int rc = smtpc_start(&c, start_server(script), "sink", &opts, why);
    smtpc_close(&c);
    int srv = server_done();
    return srv == 0 ? rc : 100 + srv;
}

static void test_malformed(void)
{
    struct smtpc_reply why;
    char big[SMTPC_LINE_MAX + 100];
    CHECK(bad_reply("250-a\r\n251 b\r\n", &why) == 1 && why.code == 0 &&
              strcmp(why.enhanced, "4.5.0") == 0,
          "codes differ between lines: protocol error, temporary (%s)", why.text);
    CHECK(bad_reply("250 ok\n", &why) == 1 && why.code == 0, "a bare LF in a reply: error");
    CHECK(bad_reply("25 ok\r\n", &why) == 1 && why.code == 0, "two digits: error");
    CHECK(bad_reply("250xok\r\n", &why) == 1 && why.code == 0, "no separator: error");
    CHECK(bad_reply("199 ok\r\n", &why) == 1 && why.code == 0, "1xx: error");
    char *lines = malloc(70 * 8 + 1);
    lines[0] = '\0';
    for (int i = 0; i < 70; i++)
        strcat(lines, "250-xx\r\n");
    CHECK(bad_reply(lines, &why) == 1 && why.code == 0, "70 continuation lines: error");
    free(lines);
    memset(big, 'x', sizeof big);
    memcpy(big, "250 ", 4);
    memcpy(big + sizeof big - 3, "\r\n", 3);
    CHECK(bad_reply(big, &why) == 1 && why.code == 0, "a reply line of %zu octets: error",
          sizeof big);
    CHECK(bad_reply("250\r\n", &why) == 0, "\"250\" alone is a valid reply");
    CHECK(bad_reply("421 4.3.2 going down\r\n", &why) == 1 && why.code == 421 && c.fd < 0,
          "421 to EHLO: temporary, closed");
    CHECK(bad_reply("550 5.7.1 go away\r\n", &why) == 1 && why.code == 0,
          "550 to EHLO, then no reply to HELO: temporary");
    static const struct step both[] = {GREET,
                                       {'S', "550 5.7.1 go away\r\n"},
                                       {'E', "HELO client.test\r\n"},
                                       {'S', "554 5.7.1 still no\r\n"},
                                       {'E', "QUIT"},
                                       {'S', "221 bye\r\n"},
                                       {'Q', NULL},
                                       {0, NULL}};
    CHECK(smtpc_start(&c, start_server(both), "sink", &opts, &why) == -1 && why.code == 554,
          "5xx to EHLO and to HELO: permanent");
    CHECK(server_done() == 0, "HELO tried after any 5xx to EHLO, then QUIT");
}

static void test_greeting_and_timeouts(void)
{
    struct smtpc_reply why, res[2];
    static const struct step g554[] = {{'S', "554 5.7.1 no service\r\n"},
                                       {'E', "QUIT"},
                                       {'S', "221 bye\r\n"},
                                       {'Q', NULL},
                                       {0, NULL}};
    static const struct step g421[] = {{'S', "421 busy\r\n"}, {'Q', NULL}, {0, NULL}};
    static const struct step silent[] = {{'W', NULL}, {'W', NULL}, {'W', NULL}, {0, NULL}};
    CHECK(smtpc_start(&c, start_server(g554), "sink", &opts, &why) == -1 && why.code == 554,
          "554 greeting: permanent, QUIT sent");
    CHECK(server_done() == 0, "the 554 server got its QUIT");
    CHECK(smtpc_start(&c, start_server(g421), "sink", &opts, &why) == 1 && why.code == 421,
          "421 greeting: temporary");
    server_done();
    time_t t0 = time(NULL);
    CHECK(smtpc_start(&c, start_server(silent), "sink", &opts, &why) == 1 && why.code == 0 &&
              strstr(why.text, "timeout") != NULL,
          "a silent server times out (%s)", why.text);
    CHECK(time(NULL) - t0 <= 3, "within the command timeout");
    server_done();

    static const struct step stall[] = {GREET,
                                        EHLO_FULL,
                                        {'E', "MAIL"},
                                        {'E', "RCPT"},
                                        {'E', "RCPT"},
                                        {'E', "DATA"},
                                        {'S', "250 ok\r\n250 ok\r\n421 4.7.0 bye now\r\n"},
                                        {'Q', NULL},
                                        {0, NULL}};
    const char *two[] = {"b@mx.test", "c@mx.test"};
    off_t off;
    struct smtpc_msg m = {"a@example.org", two, 2, message("x\n", &off), off};
    smtpc_start(&c, start_server(stall), "sink", &opts, &why);
    CHECK(smtpc_send(&c, &m, res) == 1 && res[0].code == 421 && res[1].code == 421 && c.fd < 0,
          "421 at RCPT: every recipient temporary, connection closed");
    CHECK(server_done() == 0, "421 script");

    static const struct step nodata[] = {
        GREET,         EHLO_FULL,     {'E', "MAIL"},
        {'E', "RCPT"}, {'E', "DATA"}, {'S', "250 ok\r\n250 ok\r\n354 go\r\n"},
        {'D', NULL},   {'W', NULL},   {'W', NULL},
        {'Q', NULL},   {0, NULL}};
    smtpc_start(&c, start_server(nodata), "sink", &opts, &why);
    t0 = time(NULL);
    m.n_rcpts = 1;
    CHECK(smtpc_send(&c, &m, res) == 1 && res[0].code == 0 && smtpc_reply_result(&res[0]) == 1 &&
              strcmp(res[0].enhanced, "4.4.2") == 0,
          "no reply after the final dot: temporary (%s)", res[0].text);
    CHECK(time(NULL) - t0 <= 3, "within the data timeout");
    server_done();
}

static void test_refusals(void)
{
    struct smtpc_reply why, res[3];
    static const struct step mailfail[] = {
        GREET,
        EHLO_FULL,
        {'E', "MAIL"},
        {'E', "RCPT TO:<b@mx.test>"},
        {'E', "RCPT TO:<c@"},
        {'E', "DATA"},
        {'S', "553 5.1.8 bad sender\r\n503 no mail\r\n503 no mail\r\n354 huh\r\n"},
        {'E', ".\r\n"},
        {'S', "554 no valid recipients\r\n"},
        {'E', "RSET"},
        {'E', "MAIL"},
        {'E', "RCPT"},
        {'E', "DATA"},
        {'S', "250 ok\r\n250 ok\r\n550 5.1.1 no\r\n554 5.5.1 no valid recipients\r\n"},
        {'E', "QUIT"},
        {'S', "221 bye\r\n"},
        {'Q', NULL},
        {0, NULL}};
    const char *rcpts[] = {"b@mx.test", "bad\r\nRSET@x", "c@mx.test"};
    off_t off;
    struct smtpc_msg m = {"a@example.org", rcpts, 3, message("x\n", &off), off};
    smtpc_start(&c, start_server(mailfail), "sink", &opts, &why);
    CHECK(smtpc_send(&c, &m, res) == 0, "MAIL refused: connection still usable");
    CHECK(res[0].code == 553 && res[2].code == 553 && strstr(res[0].text, "bad sender"),
          "every recipient gets the MAIL reply");
    CHECK(res[1].code == 553 && strcmp(res[1].enhanced, "5.1.3") == 0,
          "an address with CR LF is refused, never sent");
    m.rcpts = rcpts + 2;
    m.n_rcpts = 1;
    CHECK(smtpc_send(&c, &m, res) == 0 && res[0].code == 550, "RCPT refused: 550 for it");
    smtpc_quit(&c);
    CHECK(server_done() == 0, "354 without recipients is ended with a lone dot");
    CHECK(strstr(capture(), "bad") == NULL || strstr(capture(), "RSET@x") == NULL,
          "the bad address never reached the server");

    static const struct step toobig[] = {GREET,         {'S', "250-mx.test\r\n250 SIZE 10\r\n"},
                                         {'E', "QUIT"}, {'S', "221 bye\r\n"},
                                         {'Q', NULL},   {0, NULL}};
    m.fd = message("0123456789 and more\n", &off);
    m.offset = off;
    smtpc_start(&c, start_server(toobig), "sink", &opts, &why);
    CHECK(smtpc_send(&c, &m, res) == 0 && res[0].code == 552 &&
              strcmp(res[0].enhanced, "5.3.4") == 0,
          "over the server's SIZE: 552 5.3.4 without sending (%s)", res[0].text);
    smtpc_quit(&c);
    CHECK(server_done() == 0, "nothing but QUIT after EHLO");
}

/* A listener whose accept queue is full drops further SYNs: a connect to it hangs, so the
 * connect timeout must end it. */
static void test_connect_timeout(void)
{
    struct smtpc_reply why;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    struct smtpc_opts fast = opts;
    int fill[4];
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 0) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0)
        exit(2);
    for (int i = 0; i < 4; i++) { /* fill the queue; the later ones hang (non-blocking) */
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        (void)connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    fast.connect_timeout = 1;
    time_t t0 = time(NULL);
    int rc = smtpc_connect(&c, (struct sockaddr *)&sa, sizeof sa, &fast, &why);
    CHECK(rc == 1 && why.code == 0 && strstr(why.text, "cannot connect") && time(NULL) - t0 <= 3,
          "a connect that hangs ends after connect_timeout (%s)", why.text);
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(l);
}

/* The same conversation over IPv6 loopback, when the machine has it. */
static void test_connect_v6(void)
{
    struct smtpc_reply why;
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    socklen_t len = sizeof sa;
    int l = socket(AF_INET6, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, 1) < 0 ||
        getsockname(l, (struct sockaddr *)&sa, &len) < 0) {
        printf("# no IPv6 loopback here; skipped\n");
        if (l >= 0)
            close(l);
        return;
    }
    static const struct step script[] = {GREET,         {'S', "250 mx.test\r\n"},
                                         {'E', "QUIT"}, {'S', "221 bye\r\n"},
                                         {'Q', NULL},   {0, NULL}};
    pid_t pid = fork();
    if (pid == 0) {
        int fd = accept(l, NULL, NULL);
        server(fd, script);
    }
    close(l);
    server_pid = pid;
    int rc = smtpc_connect(&c, (struct sockaddr *)&sa, sizeof sa, &opts, &why);
    CHECK(rc == 0 && strncmp(c.peer, "[::1]:", 6) == 0, "connected over IPv6 to %s", c.peer);
    smtpc_quit(&c);
    CHECK(server_done() == 0, "greeting, EHLO, QUIT over IPv6");
}

static void test_connect(void)
{
    struct smtpc_reply why;
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int l = socket(AF_INET, SOCK_STREAM, 0);
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    getsockname(l, (struct sockaddr *)&sa, &len);
    close(l); /* the port is now (very likely) closed */
    CHECK(smtpc_connect(&c, (struct sockaddr *)&sa, sizeof sa, &opts, &why) == 1 && why.code == 0 &&
              strcmp(why.enhanced, "4.4.1") == 0,
          "connection refused: temporary 4.4.1 (%s)", why.text);

    l = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = 0;
    bind(l, (struct sockaddr *)&sa, sizeof sa);
    len = sizeof sa;
    getsockname(l, (struct sockaddr *)&sa, &len);
    listen(l, 1);
    static const struct step script[] = {GREET,         {'S', "250 mx.test\r\n"},
                                         {'E', "QUIT"}, {'S', "221 bye\r\n"},
                                         {'Q', NULL},   {0, NULL}};
    pid_t pid = fork();
    if (pid == 0) {
        int fd = accept(l, NULL, NULL);
        server(fd, script);
    }
    close(l);
    server_pid = pid;
    CHECK(smtpc_connect(&c, (struct sockaddr *)&sa, sizeof sa, &opts, &why) == 0,
          "connected over loopback to %s", c.peer);
    smtpc_quit(&c);
    CHECK(server_done() == 0, "greeting, EHLO, QUIT over TCP");
    test_connect_timeout();
    test_connect_v6();
}

static void test_text(void)
{
    struct smtpc_reply why;
    static char big[1800];
    memset(big, 'y', sizeof big);
    memcpy(big, "554-5.7.1 \x80\x01 ", 13);
    memcpy(big + 900, "\r\n554 5.7.1 end", 15);
    memcpy(big + sizeof big - 3, "\r\n", 3);
    const struct step script[] = {
        {'S', big}, {'E', "QUIT"}, {'S', "221 bye\r\n"}, {'Q', NULL}, {0, NULL}};
    CHECK(smtpc_start(&c, start_server(script), "sink", &opts, &why) == -1 &&
              strlen(why.text) == SMTPC_TEXT_SIZE - 1 &&
              strcmp(why.text + SMTPC_TEXT_SIZE - 4, "...") == 0 &&
              strncmp(why.text, "554 5.7.1 ?? yyy", 16) == 0,
          "long reply text is cut with \"...\", control and 8-bit bytes shown as '?' (%.20s)",
          why.text);
    CHECK(server_done() == 0, "a long multi-line greeting");
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    capture_fd = mkstemp(capture_path);
    if (capture_fd < 0)
        return 2;
    unlink(capture_path);
    test_pipelined();
    test_8bit_and_helo();
    test_nul();
    test_session_limit();
    test_send_all();
    test_malformed();
    test_greeting_and_timeouts();
    test_refusals();
    test_connect();
    test_text();
    return tap_done();
}
