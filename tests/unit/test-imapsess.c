/*
 * test-imapsess: lib/imapsess's command reader and replies over files: a plain command, a
 * synchronising literal ("+" sent) and a {n+} one (none), a literal past the bound (NO
 * [TOOBIG] without "+", and a {n+} one read through so the next command is found), APPEND's
 * message literal left for streaming, bad tags, a NUL, a bare LF (BYE), tagged replies with
 * the BAD count, and strings quoted or sent as literals.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapsess.h"
#include "tap.h"
#include "util.h"

static struct imapsess s;
static char out_path[] = "/tmp/test-imapsess.XXXXXX";
static char buf[IMAP_CMD_MAX];

static const struct imapcmd append_cmd = {"APPEND", IMAP_LOGGED_IN, NULL, IMAPCMD_STREAM};

static const struct imapcmd *lookup(const char *name, int uid)
{
    return !uid && strcmp(name, "APPEND") == 0 ? &append_cmd : NULL;
}

/* A session reading input (len octets) and writing to a fresh out file. */
static void start(const char *input, size_t len)
{
    char in_path[] = "/tmp/test-imapsess.XXXXXX";
    int in = mkstemp(in_path);
    if (in < 0 || write(in, input, len) != (ssize_t)len || lseek(in, 0, SEEK_SET) != 0)
        abort();
    unlink(in_path);
    int out = mkstemp(out_path);
    if (out < 0)
        abort();
    unlink(out_path);
    strcpy(out_path, "/tmp/test-imapsess.XXXXXX");
    imapsess_init(&s, in, out);
    conf_defaults(&s.conf);
    s.conf.max_message_size = 1000;
    s.conf.max_errors = 3;
    netio_set_timeout(&s.io, 5);
}

/* What the session wrote so far. */
static const char *output(void)
{
    static char text[8192];
    netio_flush(&s.io);
    ssize_t n = pread(s.io.out_fd, text, sizeof text - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    return text;
}

static void stop(void)
{
    close(s.io.in_fd);
    close(s.io.out_fd);
}

static int read_cmd(size_t *len)
{
    return imapsess_read_command(&s, buf, sizeof buf, len, lookup);
}

static void test_plain_and_literals(void)
{
    const char in[] = "a1 NOOP\r\na2 LOGIN {3}\r\nbob {4+}\r\npass\r\n";
    size_t len;
    start(in, sizeof in - 1);
    CHECK(read_cmd(&len) == 1 && len == 7 && memcmp(buf, "a1 NOOP", 7) == 0, "a plain command");
    CHECK(strcmp(s.tag, "a1") == 0, "its tag");
    CHECK(read_cmd(&len) == 1 && len == 28 &&
              memcmp(buf, "a2 LOGIN {3}\r\nbob {4+}\r\npass", len) == 0,
          "lines and literals joined");
    CHECK(strcmp(output(), "+ Ready for literal data\r\n") == 0,
          "one + for the {3}, none for {4+}");
    CHECK(read_cmd(&len) == NETIO_ERROR, "then the end");
    stop();
}

static void test_too_large(void)
{
    static char in[200000];
    size_t k = (size_t)snprintf(in, sizeof in, "b1 LOGIN {70000}\r\nb2 X {70000+}\r\n");
    memset(in + k, 'x', 70000);
    k += 70000;
    k += (size_t)snprintf(in + k, sizeof in - k, " y\r\nb3 NOOP\r\n");
    size_t len;
    start(in, k);
    CHECK(read_cmd(&len) == 0, "a synchronising literal over the bound");
    CHECK(strcmp(output(), "b1 NO [TOOBIG] literal too large\r\n") == 0, "NO [TOOBIG], no +");
    CHECK(read_cmd(&len) == 0, "a {n+} literal over the bound");
    CHECK(strstr(output(), "b2 BAD [TOOBIG] literal too large\r\n") != NULL, "BAD [TOOBIG]");
    CHECK(read_cmd(&len) == 1 && len == 7 && memcmp(buf, "b3 NOOP", 7) == 0,
          "the next command is found after the literal was read through");
    stop();
}

static void test_append_stream(void)
{
    const char in[] =
        "c1 APPEND INBOX (\\Seen) {5}\r\nhello\r\n"
        "c2 APPEND {5}\r\nDraft {5000}\r\nc3 APPEND x {3+}\r\nabc more\r\nc4 NOOP\r\n";
    size_t len;
    start(in, sizeof in - 1);
    CHECK(read_cmd(&len) == 1 && s.lit.pending && s.lit.size == 5 && !s.lit.nonsync,
          "APPEND's message literal is left on the connection");
    CHECK(len == 24 && memcmp(buf, "c1 APPEND INBOX (\\Seen) ", len) == 0,
          "the arguments before it");
    CHECK(strcmp(output(), "") == 0, "no + before the command says so");
    char data[16];
    CHECK(imapsess_literal_begin(&s) == 0 && imapsess_literal_read(&s, data, sizeof data) == 5 &&
              memcmp(data, "hello", 5) == 0 && imapsess_literal_read(&s, data, 5) == 0,
          "streamed");
    CHECK(imapsess_literal_end(&s) == 0, "and the line ends there");
    CHECK(read_cmd(&len) == 0 && strstr(output(), "c2 NO [TOOBIG]") != NULL,
          "a message past max_message_size, its name a literal");
    CHECK(read_cmd(&len) == 1 && s.lit.pending && s.lit.nonsync, "a {n+} message");
    CHECK(imapsess_literal_finish(&s) == 0, "not taken: read through");
    CHECK(read_cmd(&len) == 1 && memcmp(buf, "c4 NOOP", 7) == 0, "the next command");
    stop();
}

static void test_bad_lines(void)
{
    const char in[] = "\r\n+x NOOP\r\nd1 NO\0OP\r\nd2 NOOP\nd3 NOOP\r\n";
    size_t len;
    start(in, sizeof in - 1);
    CHECK(read_cmd(&len) == 0 && strstr(output(), "* BAD empty command line") != NULL,
          "an empty line");
    CHECK(read_cmd(&len) == 0 && strstr(output(), "* BAD invalid tag") != NULL, "a bad tag");
    CHECK(read_cmd(&len) == 0 && strstr(output(), "d1 BAD NUL") != NULL, "a NUL");
    CHECK(strstr(output(), "* BYE too many protocol errors") != NULL && s.done,
          "the third BAD ends the session");
    s.done = 0;
    CHECK(read_cmd(&len) == 0 && s.done && strstr(output(), "* BYE bare CR or LF") != NULL,
          "a bare LF closes");
    stop();
}

static void test_strings(void)
{
    start("", 0);
    imapsess_string(&s, "a \"b\" \\c", 8);
    imapsess_write(&s, " ", 1);
    imapsess_string(&s, "x\r\ny", 4);
    imapsess_write(&s, " ", 1);
    imapsess_nstring(&s, NULL, 0);
    imapsess_write(&s, " ", 1);
    imapsess_astring(&s, "INBOX", 5);
    imapsess_write(&s, " ", 1);
    imapsess_astring(&s, "a b", 3);
    imapsess_write(&s, " ", 1);
    imapsess_astring(&s, "nil", 3);
    CHECK(strcmp(output(), "\"a \\\"b\\\" \\\\c\" {4}\r\nx\r\ny NIL INBOX \"a b\" \"nil\"") == 0,
          "quoted, literal, NIL, atom");
    str_copy(s.tag, sizeof s.tag, "t1");
    imapsess_ok(&s, "[READ-WRITE] SELECT completed");
    imapsess_no(&s, "a second reply is dropped");
    CHECK(strstr(output(), "t1 OK [READ-WRITE] SELECT completed\r\n") != NULL &&
              strstr(output(), "second") == NULL,
          "one tagged reply");
    stop();
}

int main(void)
{
    test_plain_and_literals();
    test_too_large();
    test_append_stream();
    test_bad_lines();
    test_strings();
    return tap_done();
}
