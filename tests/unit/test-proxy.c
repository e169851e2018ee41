/*
 * test-proxy: lib/proxy on PROXY protocol v2 headers built byte by byte: IPv4 and IPv6 over
 * TCP, LOCAL, TLVs; and every way a header can be wrong (truncated, oversized, a wrong
 * signature, v1 text, the UNIX family, UDP, version 1, an unknown command, an address block
 * or a TLV that does not fit). Then through lib/netio on a socketpair: the client's first
 * command after the header stays in the buffer. It never opens a network socket.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "netio.h"
#include "proxy.h"
#include "tap.h"

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* A header: the signature, ver_cmd, fam, then body (blen octets); returns its length. */
static size_t header(unsigned char *out, unsigned ver_cmd, unsigned fam, const void *body,
                     size_t blen)
{
    memcpy(out, sig, 12);
    out[12] = (unsigned char)ver_cmd;
    out[13] = (unsigned char)fam;
    out[14] = (unsigned char)(blen >> 8);
    out[15] = (unsigned char)blen;
    memcpy(out + 16, body, blen);
    return 16 + blen;
}

static const unsigned char v4_body[12] = {192, 0, 2, 7, 127, 0, 0, 1, 0xd4, 0x31, 0, 25};

static int parse(const unsigned char *buf, size_t len, struct proxy_info *pi, size_t *need,
                 const char **why)
{
    *need = 0;
    return proxy_parse(buf, len, pi, need, why);
}

static void test_good(void)
{
    unsigned char buf[2048], body[64];
    struct proxy_info pi;
    size_t need, n = header(buf, 0x21, 0x11, v4_body, sizeof v4_body);
    const char *why;
    char text[INET6_ADDRSTRLEN];
    CHECK(parse(buf, n, &pi, &need, &why) == PROXY_OK && !pi.local && pi.length == 28,
          "PROXY TCP4 (%s)", why);
    const struct sockaddr_in *s4 = (const struct sockaddr_in *)&pi.src;
    inet_ntop(AF_INET, &s4->sin_addr, text, sizeof text);
    CHECK(s4->sin_family == AF_INET && strcmp(text, "192.0.2.7") == 0 &&
              ntohs(s4->sin_port) == 54321,
          "the real client is 192.0.2.7:54321 (%s)", text);
    CHECK(ntohs(((const struct sockaddr_in *)&pi.dst)->sin_port) == 25, "it connected to 25");
    memset(body, 0, 36);
    inet_pton(AF_INET6, "2001:db8::5", body);
    body[32] = 0x10;
    body[34] = 0x02;
    body[35] = 0x4b;
    n = header(buf, 0x21, 0x21, body, 36);
    CHECK(parse(buf, n, &pi, &need, &why) == PROXY_OK && pi.src.ss_family == AF_INET6,
          "PROXY TCP6");
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)&pi.src)->sin6_addr, text, sizeof text);
    CHECK_STR(text, "2001:db8::5", "the IPv6 client");
    n = header(buf, 0x20, 0x00, "", 0);
    CHECK(parse(buf, n, &pi, &need, &why) == PROXY_OK && pi.local, "LOCAL (a health check)");
    memcpy(body, v4_body, 12);
    memcpy(body + 12,
           "\x04\x00\x03"
           "abc"
           "\x20\x00\x00",
           9); /* NOOP, an empty SSL TLV */
    n = header(buf, 0x21, 0x11, body, 21);
    CHECK(parse(buf, n, &pi, &need, &why) == PROXY_OK && pi.length == 37, "TLVs are skipped");
}

static void bad(const unsigned char *buf, size_t len, const char *want, const char *what)
{
    struct proxy_info pi;
    size_t need;
    const char *why = "";
    int rc = parse(buf, len, &pi, &need, &why);
    CHECK(rc == PROXY_BAD && strstr(why, want) != NULL, "%s: refused (%s)", what, why);
}

static void test_bad(void)
{
    unsigned char buf[2048], body[300] = {0};
    struct proxy_info pi;
    size_t need;
    const char *why;
    size_t n = header(buf, 0x21, 0x11, v4_body, sizeof v4_body);
    CHECK(parse(buf, 10, &pi, &need, &why) == PROXY_NEED && need == 16,
          "truncated in the signature: 16 octets needed");
    CHECK(parse(buf, n - 1, &pi, &need, &why) == PROXY_NEED && need == n,
          "truncated in the addresses: the whole length needed");
    buf[14] = 0x08; /* 2048 octets of body */
    buf[15] = 0x00;
    bad(buf, n, "too long", "oversized");
    buf[14] = 0x04; /* 1025: one over */
    buf[15] = 0x01;
    bad(buf, n, "too long", "one octet over the bound");
    n = header(buf, 0x21, 0x11, v4_body, sizeof v4_body);
    buf[7] = 'X';
    bad(buf, n, "signature", "a wrong signature");
    bad((const unsigned char *)"EHLO client.test\r\n", 18, "signature", "plain SMTP");
    bad((const unsigned char *)"PROXY TCP4 192.0.2.7 127.0.0.1 54321 25\r\n", 41, "v1", "v1 text");
    n = header(buf, 0x21, 0x31, body, 216);
    bad(buf, n, "TCP over IPv4 or IPv6", "the UNIX family");
    n = header(buf, 0x21, 0x12, v4_body, sizeof v4_body);
    bad(buf, n, "TCP over IPv4 or IPv6", "UDP");
    n = header(buf, 0x21, 0x01, v4_body, sizeof v4_body);
    bad(buf, n, "TCP over IPv4 or IPv6", "PROXY with the UNSPEC family");
    n = header(buf, 0x11, 0x11, v4_body, sizeof v4_body);
    bad(buf, n, "version", "version 1 in binary");
    n = header(buf, 0x22, 0x11, v4_body, sizeof v4_body);
    bad(buf, n, "command", "an unknown command");
    n = header(buf, 0x21, 0x21, v4_body, sizeof v4_body);
    bad(buf, n, "shorter", "an IPv6 header with an IPv4 address block");
    memcpy(body, v4_body, 12);
    memcpy(body + 12,
           "\x04\x00\x09"
           "abc",
           6);
    n = header(buf, 0x21, 0x11, body, 18);
    bad(buf, n, "TLV", "a TLV longer than the header");
    CHECK(proxy_looks_like((const char *)sig, 12) && proxy_looks_like("PROXY TCP4 x", 12) &&
              proxy_looks_like("\r\n\r\n\0\r", 6) && !proxy_looks_like("\r\n\r\n", 4) &&
              !proxy_looks_like("EHLO x\r\n", 8) && !proxy_looks_like("PROXYX", 6),
          "proxy_looks_like");
}

static void test_netio(void)
{
    unsigned char buf[128];
    char line[64];
    int fds[2];
    struct netio n;
    struct proxy_info pi;
    const char *why = "";
    size_t len = header(buf, 0x21, 0x11, v4_body, sizeof v4_body);
    memcpy(buf + len, "EHLO c.test\r\n", 13);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
    CHECK(write(fds[1], buf, len + 13) == (ssize_t)(len + 13), "header and EHLO in one write");
    netio_init(&n, fds[0], fds[0], 5);
    CHECK(proxy_read(&n, &pi, &why) == 0 && pi.src.ss_family == AF_INET, "read (%s)", why);
    CHECK(netio_getline(&n, line, sizeof line) == 13 && strcmp(line, "EHLO c.test\r\n") == 0,
          "the command after the header is kept");
    CHECK(write(fds[1], buf, 20) == 20 && close(fds[1]) == 0, "half a header, then EOF");
    CHECK(proxy_read(&n, &pi, &why) == -1 && strstr(why, "closed") != NULL,
          "truncated by EOF: refused (%s)", why);
    close(fds[0]);
    CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0, "socketpair");
    netio_init(&n, fds[0], fds[0], 1);
    CHECK(write(fds[1], buf, 16) == 16, "the fixed part only, then silence");
    CHECK(proxy_read(&n, &pi, &why) == -1 && strstr(why, "timeout") != NULL,
          "a header that never ends: timeout (%s)", why);
    const char *peek;
    CHECK(write(fds[1], "QUIT\r\n", 6) == 6 && netio_peek(&n, &peek) == 6 &&
              memcmp(peek, "QUIT\r\n", 6) == 0,
          "netio_peek sees what was sent, without waiting");
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    test_good();
    test_bad();
    test_netio();
    return tap_done();
}
