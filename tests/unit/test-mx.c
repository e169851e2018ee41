/*
 * test-mx: the parts of lib/mx that need no DNS server: parsing dns_resolver strings,
 * domain literals, sorting by preference with shuffling among equals, and the bad-input
 * answers of mx_lookup. The DNS behaviour itself is tested against dnsmasq in
 * tests/e2e/test_mx.py. Never touches the network (the resolver here points at a port
 * nothing is asked on).
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "mx.h"
#include "tap.h"

static const char *fmt(const struct sockaddr_storage *sa)
{
    static char buf[80];
    char a[64];
    unsigned port = sa->ss_family == AF_INET ? ntohs(((const struct sockaddr_in *)sa)->sin_port)
                                             : ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
    if (mx_addr_format(sa, a, sizeof a) < 0)
        return "?";
    snprintf(buf, sizeof buf, "%s %s#%u", sa->ss_family == AF_INET ? "v4" : "v6", a, port);
    return buf;
}

static void test_parse_resolver(void)
{
    static const struct {
        const char *in, *want;
    } good[] = {
        {"127.0.0.1", "v4 127.0.0.1#53"},
        {"127.0.0.53:5353", "v4 127.0.0.53#5353"},
        {"[::1]:53000", "v6 ::1#53000"},
        {"[2001:db8::5]", "v6 2001:db8::5#53"},
        {"::1", "v6 ::1#53"},
    };
    static const char *bad[] = {
        "",     "localhost",      "127.0.0.1:", "127.0.0.1:0",      "1.2.3.4:65536", "[::1]x",
        "[::1", "[127.0.0.1]:53", "1.2.3:53",   "127.0.0.1:53:53x", "[::1]:-1",      "1.2.3.4 :53"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        struct sockaddr_storage sa;
        int rc = mx_parse_resolver(good[i].in, &sa);
        CHECK(rc == 0, "dns_resolver \"%s\" parses", good[i].in);
        if (rc == 0)
            CHECK_STR(fmt(&sa), good[i].want, "dns_resolver \"%s\" is %s", good[i].in,
                      good[i].want);
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct sockaddr_storage sa;
        CHECK(mx_parse_resolver(bad[i], &sa) < 0, "dns_resolver \"%s\" is refused", bad[i]);
    }
}

static void test_literals(void)
{
    static struct mx_result r;
    CHECK(mx_domain_literal("example.test", &r) == 0, "a domain name is not a literal");
    CHECK(mx_domain_literal("[192.0.2.7]", &r) == 1 && r.status == MX_OK && r.n_hosts == 1 &&
              r.hosts[0].n_addrs == 1 && r.hosts[0].pref == 0,
          "[192.0.2.7] is one host with one address");
    CHECK_STR(fmt(&r.hosts[0].addrs[0]), "v4 192.0.2.7#0", "[192.0.2.7] is 192.0.2.7");
    CHECK(mx_domain_literal("[IPv6:2001:DB8::1]", &r) == 1 && r.status == MX_OK,
          "[IPv6:2001:DB8::1] resolves");
    CHECK_STR(fmt(&r.hosts[0].addrs[0]), "v6 2001:db8::1#0", "[IPv6:...] is that address");
    static const char *bad[] = {"[192.0.2]", "[2001:db8::1]", "[IPv6:192.0.2.1]",
                                "[]",        "[192.0.2.1",    "[",
                                "[x:y]",     "[ 1.2.3.4]",    "[192.0.2.256]"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK(mx_domain_literal(bad[i], &r) == 1 && r.status == MX_PERMFAIL &&
                  strncmp(r.why, "5.1.3 ", 6) == 0 && r.n_hosts == 0,
              "literal \"%s\" is a permanent 5.1.3 failure", bad[i]);
    }
}

static void fill(struct mx_host *h, size_t n, const unsigned *prefs)
{
    for (size_t i = 0; i < n; i++) {
        memset(&h[i], 0, sizeof h[i]);
        snprintf(h[i].name, sizeof h[i].name, "h%zu", i);
        h[i].pref = prefs[i];
    }
}

static void test_sort(void)
{
    static struct mx_host h[MX_MAX_HOSTS];
    static const unsigned prefs[6] = {30, 10, 20, 10, 5, 20};
    int sorted = 1, seen_13 = 0, seen_31 = 0;
    for (int round = 0; round < 200; round++) {
        fill(h, 6, prefs);
        mx_sort_hosts(h, 6);
        for (size_t i = 1; i < 6; i++)
            if (h[i - 1].pref > h[i].pref)
                sorted = 0;
        if (strcmp(h[0].name, "h4") != 0 || strcmp(h[5].name, "h0") != 0)
            sorted = 0;
        if (strcmp(h[1].name, "h1") == 0 && strcmp(h[2].name, "h3") == 0)
            seen_13 = 1;
        if (strcmp(h[1].name, "h3") == 0 && strcmp(h[2].name, "h1") == 0)
            seen_31 = 1;
    }
    CHECK(sorted, "hosts come out in preference order, every time");
    CHECK(seen_13 && seen_31, "hosts of equal preference come out in both orders");

    int first[4] = {0, 0, 0, 0};
    static const unsigned same[4] = {10, 10, 10, 10};
    for (int round = 0; round < 400; round++) {
        fill(h, 4, same);
        mx_sort_hosts(h, 4);
        first[h[0].name[1] - '0']++;
    }
    CHECK(first[0] > 40 && first[1] > 40 && first[2] > 40 && first[3] > 40,
          "each of four equal hosts comes first often (%d %d %d %d of 400)", first[0], first[1],
          first[2], first[3]);
    fill(h, 1, prefs);
    mx_sort_hosts(h, 1);
    CHECK(strcmp(h[0].name, "h0") == 0, "one host stays");
    mx_sort_hosts(h, 0);
    CHECK(1, "no hosts is fine");
}

static void test_bad_domains(void)
{
    char err[256];
    static struct mx_result r;
    CHECK(mx_resolver_new("no.such:host", 1, err, sizeof err) == NULL && err[0] != '\0',
          "a bad dns_resolver is an error: %s", err);
    struct mx_resolver *sys = mx_resolver_new("", 1, err, sizeof err);
    CHECK(sys != NULL, "an empty dns_resolver means /etc/resolv.conf (%s)", sys ? "ok" : err);
    mx_resolver_free(sys);
    /* Port 9 (discard) on loopback: nothing is asked because every name below is refused
     * before any query, or is a literal. */
    struct mx_resolver *res = mx_resolver_new("127.0.0.1:9", 1, err, sizeof err);
    CHECK(res != NULL, "a resolver from \"127.0.0.1:9\"");
    if (res == NULL)
        return;
    static const char *bad[] = {
        "",
        ".",
        "a..b",
        "-\x01.test",
        "a b.test",
        "x@y.test",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(mx_lookup(res, bad[i], &r) == MX_PERMFAIL && strncmp(r.why, "5.1.3 ", 6) == 0,
              "domain \"%s\" is refused with 5.1.3 (%s)", bad[i], r.why);
    CHECK(mx_lookup(res, "[127.0.0.9]", &r) == MX_OK && r.n_hosts == 1,
          "a literal resolves without DNS");
    mx_resolver_free(res);
}

static struct mx_host host(const char *name, unsigned pref, const char *v4)
{
    struct mx_host h = {.pref = pref, .n_addrs = 1};
    struct sockaddr_in *in = (struct sockaddr_in *)&h.addrs[0];
    snprintf(h.name, sizeof h.name, "%s", name);
    in->sin_family = AF_INET;
    inet_pton(AF_INET, v4, &in->sin_addr);
    return h;
}

/* RFC 5321 §5.1: drop the exchanges at and above our own preference; none left: a loop. */
static void test_drop_self(void)
{
    struct sockaddr_storage own[2] = {{0}};
    struct sockaddr_in *in = (struct sockaddr_in *)&own[0];
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&own[1];
    in->sin_family = AF_INET;
    in->sin_port = htons(25); /* any port */
    inet_pton(AF_INET, "192.0.2.7", &in->sin_addr);
    in6->sin6_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::7", &in6->sin6_addr);
    struct mx_result r = {.status = MX_OK, .n_hosts = 3};
    r.hosts[0] = host("a.example", 5, "198.51.100.1");
    r.hosts[1] = host("us.example", 10, "198.51.100.2");
    r.hosts[2] = host("c.example", 20, "198.51.100.3");
    CHECK(mx_drop_self_from(&r, "d.example", "US.example", own, 2) == MX_OK && r.n_hosts == 1 &&
              strcmp(r.hosts[0].name, "a.example") == 0,
          "we are the MX of preference 10 by name: only the better one is left");
    r.n_hosts = 3;
    r.hosts[0] = host("b.example", 10, "198.51.100.9");
    r.hosts[1] = host("us2.example", 10, "192.0.2.7");
    CHECK(mx_drop_self_from(&r, "d.example", "mx.other", own, 2) == MX_PERMFAIL && r.n_hosts == 0,
          "one of our addresses at the best preference: nothing left");
    CHECK_STR(r.why, "5.4.6 mail for d.example loops back to myself", "bounced with 5.4.6");
    struct mx_result v6 = {.status = MX_OK, .n_hosts = 1, .implicit = 1};
    v6.hosts[0].n_addrs = 1;
    v6.hosts[0].addrs[0].ss_family = AF_INET6;
    inet_pton(AF_INET6, "2001:db8::7", &((struct sockaddr_in6 *)&v6.hosts[0].addrs[0])->sin6_addr);
    CHECK(mx_drop_self_from(&v6, "d.example", "mx.other", own, 2) == MX_PERMFAIL,
          "an implicit MX that is our IPv6 address loops as well");
    struct mx_result ok = {.status = MX_OK, .n_hosts = 1};
    ok.hosts[0] = host("far.example", 10, "203.0.113.1");
    CHECK(mx_drop_self_from(&ok, "d.example", "mx.other", own, 2) == MX_OK && ok.n_hosts == 1,
          "someone else's MX is left alone");
    struct sockaddr_storage mine[MX_MAX_OWN];
    CHECK(mx_own_addrs(mine, MX_MAX_OWN) >= 1, "this host has an address (loopback at least)");
}

int main(void)
{
    test_parse_resolver();
    test_literals();
    test_sort();
    test_bad_domains();
    test_drop_self();
    return tap_done();
}
