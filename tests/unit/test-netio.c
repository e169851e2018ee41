/*
 * test-netio: line reading over a real pipe/socketpair: lines with and without CRLF, lines that
 * are too long (discarded through their LF, the next line intact), NUL bytes, timeouts, EOF,
 * that buffered output is flushed before a blocking read (what PIPELINING needs), and the
 * wall-clock limit (netio_limit).
 */
#include "config.h"

#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "netio.h"
#include "tap.h"

static struct netio n;

static void feed(int fd, const char *data, size_t len)
{
    if (write(fd, data, len) != (ssize_t)len)
        _exit(2);
}

static void test_lines(void)
{
    int sv[2];
    char line[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    netio_init(&n, sv[0], sv[0], 2);
    feed(sv[1], "HELO a\r\nbare\nNUL\0x\r\n", 20);
    CHECK(netio_getline(&n, line, sizeof line) == 8 && memcmp(line, "HELO a\r\n", 8) == 0,
          "a CRLF line");
    CHECK(netio_getline(&n, line, sizeof line) == 5 && memcmp(line, "bare\n", 5) == 0,
          "a bare LF line is returned as it is");
    CHECK(netio_getline(&n, line, sizeof line) == 7 && memcmp(line, "NUL\0x\r\n", 7) == 0,
          "NUL bytes are kept and counted");
    CHECK(!netio_pending(&n), "nothing pending");
    feed(sv[1], "0123456789abcdefXYZ\r\nnext\r\n", 27);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TOOLONG, "a long line is refused");
    CHECK(netio_getline(&n, line, sizeof line) == 6 && memcmp(line, "next\r\n", 6) == 0,
          "the line after a long one is intact");
    feed(sv[1], "0123456789abcd\n", 15);
    CHECK(netio_getline(&n, line, sizeof line) == 15, "a line of exactly size-1 fits");
    feed(sv[1], "one\r\ntwo\r\n", 10);
    CHECK(netio_getline(&n, line, sizeof line) == 5 && netio_pending(&n),
          "pipelined input is pending");
    CHECK(netio_getline(&n, line, sizeof line) == 5, "and read without blocking");

    netio_puts(&n, "250 ok\r\n");
    char got[32] = "";
    feed(sv[1], "x\r\n", 3);
    netio_getline(&n, line, sizeof line);
    netio_puts(&n, "221 bye\r\n");
    netio_set_timeout(&n, 1);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TIMEOUT, "a silent peer times out");
    ssize_t r = recv(sv[1], got, sizeof got - 1, MSG_DONTWAIT);
    got[r > 0 ? r : 0] = '\0';
    CHECK(strstr(got, "221 bye\r\n") != NULL, "output was flushed before the blocking read");
    feed(sv[1], "last", 4);
    shutdown(sv[1], SHUT_WR);
    CHECK(netio_getline(&n, line, sizeof line) == 4, "a last line without LF");
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_EOF, "then end of file");
    close(sv[1]);
    CHECK(netio_puts(&n, "x") == 0 && netio_flush(&n) == -1, "a write to a closed peer fails");
    CHECK(netio_puts(&n, "y") == -1, "and keeps failing");
    close(sv[0]);
}

/* Feeds first, then (from a child, after netio has read first) second. */
static long split_feed(int sv[2], const char *first, const char *second, char *line, size_t size)
{
    feed(sv[1], first, strlen(first));
    pid_t pid = fork();
    if (pid == 0) {
        usleep(100000);
        feed(sv[1], second, strlen(second));
        _exit(0);
    }
    long r = netio_getline(&n, line, size);
    waitpid(pid, NULL, 0);
    return r;
}

/* toolong_crlf tells a too-long line that ended in CR LF from one that ended in a bare LF,
 * wherever the CR falls: inside the discarded part, as the last stored byte, or at the end
 * of one read with the LF in the next. */
static void test_toolong_crlf(void)
{
    int sv[2];
    char line[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    netio_init(&n, sv[0], sv[0], 2);
    feed(sv[1], "0123456789abcdefXYZ\r\n", 21);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TOOLONG && n.toolong_crlf == 1,
          "a long line ending in CR LF");
    feed(sv[1], "0123456789abcdefXYZ\n", 20);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TOOLONG && n.toolong_crlf == 0,
          "a long line ending in a bare LF");
    feed(sv[1], "0123456789abcd\r\n", 16);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TOOLONG && n.toolong_crlf == 1,
          "the CR is the last byte that fitted");
    feed(sv[1], "0123456789abcdX\n", 16);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TOOLONG && n.toolong_crlf == 0,
          "a bare LF right after the last byte that fitted");
    CHECK(split_feed(sv, "0123456789abcdefXYZ\r", "\n", line, sizeof line) == NETIO_TOOLONG &&
              n.toolong_crlf == 1,
          "CR at the end of one read, LF at the start of the next");
    CHECK(split_feed(sv, "0123456789abcdefXYZ", "\n", line, sizeof line) == NETIO_TOOLONG &&
              n.toolong_crlf == 0,
          "a bare LF at the start of the next read");
    CHECK(split_feed(sv, "0123456789abcdefXYZ\r", "X\n", line, sizeof line) == NETIO_TOOLONG &&
              n.toolong_crlf == 0,
          "a CR at the end of one read is not a CR LF if the next read starts otherwise");
    feed(sv[1], "ok\r\n", 4);
    CHECK(netio_getline(&n, line, sizeof line) == 4, "the next line is intact");
    close(sv[1]);
    close(sv[0]);
}

/* The wall-clock limit: it ends a read that the timeout would let go on, it ends reading even
 * when lines keep coming, it only tightens, and restore puts the old one back. */
static void test_limit(void)
{
    int sv[2];
    char line[16];
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    netio_init(&n, sv[0], sv[0], 30);
    CHECK(!netio_limit_passed(&n), "no limit at first");
    CHECK(netio_limit(&n, 1) == 0, "a limit of 1 s (none before)");
    long long session = n.limit_ms;
    CHECK(netio_limit(&n, 60) == session && n.limit_ms == session, "a later limit is no change");
    long long before = netio_limit(&n, 0);
    CHECK(before == session && n.limit_ms < session, "a sooner one tightens");
    netio_limit_restore(&n, before);
    CHECK(n.limit_ms == session, "restore puts it back");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TIMEOUT && netio_limit_passed(&n),
          "a silent peer meets the limit, not the 30 s timeout");
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 5, "within about a second");
    feed(sv[1], "NOOP\r\n", 6);
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_TIMEOUT,
          "past the limit a waiting line is not read");
    close(sv[0]);
    close(sv[1]);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    test_lines();
    test_toolong_crlf();
    test_limit();
    return tap_done();
}
