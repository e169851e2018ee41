/*
 * test-peer: lib/peer on real descriptors: a pipe is "local", a Unix-domain socketpair is a
 * local program with our uid (SO_PEERCRED), a loopback TCP connection is its address (an
 * IPv4-mapped IPv6 peer as IPv4), and peer_set_addr takes only IPv4 and IPv6. It never
 * connects anywhere but 127.0.0.1 and ::1.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "peer.h"
#include "tap.h"

/* A connected TCP pair on family's loopback; the accepted end in *server. 0 or -1. */
static int tcp_pair(int family, int *client, int *server)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    socklen_t len = family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    if (family == AF_INET) {
        ((struct sockaddr_in *)&ss)->sin_family = AF_INET;
        ((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else {
        ((struct sockaddr_in6 *)&ss)->sin6_family = AF_INET6;
        ((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
    }
    int l = socket(family, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&ss, len) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    *client = socket(family, SOCK_STREAM, 0);
    if (*client < 0 || connect(*client, (struct sockaddr *)&ss, len) != 0)
        return -1;
    *server = accept(l, NULL, NULL);
    close(l);
    return *server < 0 ? -1 : 0;
}

static void test_pipe_and_unix(void)
{
    struct peer p;
    int fds[2];
    CHECK(pipe(fds) == 0, "pipe");
    CHECK(peer_from_fd(&p, fds[0]) == 0 && p.kind == PEER_PIPE, "a pipe is no socket");
    CHECK_STR(p.text, "local", "a pipe's peer is local");
    CHECK(p.addr.ss_family == 0, "a pipe has no address");
    close(fds[0]);
    close(fds[1]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
    CHECK(peer_from_fd(&p, fds[0]) == 0 && p.kind == PEER_UNIX, "a Unix socket: a local program");
    CHECK(p.uid == (unsigned long)getuid(), "its uid from SO_PEERCRED (%lu)", p.uid);
    char want[32];
    snprintf(want, sizeof want, "uid %lu", (unsigned long)getuid());
    CHECK_STR(p.trace, want, "Received shows the uid");
    CHECK_STR(p.text, "local", "the log's client= is local");
    CHECK(p.addr.ss_family == 0, "and it is in no network");
    close(fds[0]);
    close(fds[1]);
}

static void test_tcp(void)
{
    struct peer p;
    int c, s;
    CHECK(tcp_pair(AF_INET, &c, &s) == 0, "IPv4 loopback pair");
    CHECK(peer_from_fd(&p, s) == 0 && p.kind == PEER_TCP && p.addr.ss_family == AF_INET,
          "IPv4 client");
    CHECK_STR(p.text, "127.0.0.1", "IPv4 text");
    CHECK_STR(p.trace, "[127.0.0.1]", "IPv4 trace");
    close(c);
    close(s);
    if (tcp_pair(AF_INET6, &c, &s) != 0) {
        CHECK(1, "no IPv6 loopback here: skipped");
        return;
    }
    CHECK(peer_from_fd(&p, s) == 0 && p.kind == PEER_TCP && p.addr.ss_family == AF_INET6,
          "IPv6 client");
    CHECK_STR(p.trace, "[IPv6:::1]", "IPv6 trace");
    close(c);
    close(s);
}

static void test_set_addr(void)
{
    struct peer p;
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    int fds[2];
    CHECK(pipe(fds) == 0 && peer_from_fd(&p, fds[0]) == 0, "start from a pipe");
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &in6.sin6_addr);
    CHECK(peer_set_addr(&p, (struct sockaddr *)&in6) == 0 && p.kind == PEER_TCP &&
              p.addr.ss_family == AF_INET,
          "an IPv4-mapped address becomes IPv4");
    CHECK_STR(p.text, "192.0.2.9", "mapped text");
    inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr);
    CHECK(peer_set_addr(&p, (struct sockaddr *)&in6) == 0, "IPv6");
    CHECK_STR(p.trace, "[IPv6:2001:db8::7]", "IPv6 trace");
    CHECK(peer_set_addr(&p, (struct sockaddr *)&un) == -1, "AF_UNIX refused");
    CHECK_STR(p.text, "2001:db8::7", "and nothing changed");
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    test_pipe_and_unix();
    test_tcp();
    test_set_addr();
    return tap_done();
}
