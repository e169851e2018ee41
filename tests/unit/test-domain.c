/*
 * test-domain: the one domain-name rule of lib/domain (labels, '-', no '_', lengths) and the
 * normal form (lower case, a trailing dot dropped only when allowed), and that lib/addr,
 * lib/conf and lib/users now agree with it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "domain.h"
#include "tap.h"
#include "users.h"

static const char *const good[] = {
    "example.test", "a",     "EXAMPLE.Test", "mail-in.example.test",
    "a-b.c-d",      "x1.y2", "123.example",  "xn--bcher-kva.example",
};
static const char *const bad[] = {
    "",
    ".",
    "a.",
    ".a",
    "a..b",
    "-a.test",
    "a-.test",
    "a.-b",
    "a b",
    "a@b",
    "a/b",
    "ex\xc3\xa4mple.test",
    "a.b\n",
    "a,b",
    "[127.0.0.1]",
    "mail_in.example.test",
    "_dmarc.example.test",
};

/* conf_load of text (written to a scratch file). 0 or -1 with err set. */
static int load(const char *text, struct yubin_conf *c, char *err, size_t errlen)
{
    char path[] = "/tmp/test-domain-XXXXXX";
    int fd = mkstemp(path);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    err[0] = '\0';
    if (f == NULL)
        return -1;
    fprintf(f, "%sstate_dir /tmp\nuser nobody\n", text);
    fclose(f);
    int rc = conf_load(c, path, err, errlen);
    unlink(path);
    return rc;
}

static void test_rule(void)
{
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        CHECK(domain_valid(good[i]), "'%s' is a domain", good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!domain_valid(bad[i]), "bad %zu is no domain", i);
    char label[80];
    memset(label, 'a', 63);
    strcpy(label + 63, ".test");
    CHECK(domain_valid(label), "a 63-octet label");
    memset(label, 'a', 64);
    strcpy(label + 64, ".test");
    CHECK(!domain_valid(label), "a 64-octet label");
    char longest[DOMAIN_MAX + 2];
    for (size_t i = 0; i < DOMAIN_MAX; i++)
        longest[i] = i % 2 ? '.' : 'a';
    longest[DOMAIN_MAX] = '\0';
    CHECK(domain_valid(longest), "%d octets", DOMAIN_MAX);
    strcat(longest, "a");
    longest[DOMAIN_MAX - 1] = '.';
    CHECK(!domain_valid(longest), "%d octets", DOMAIN_MAX + 1);
    CHECK(domain_len("example.test>") == 12, "span stops at '>'");
    CHECK(domain_len("example.test.>") == 0, "a dot then '>' is no domain");
}

static void test_normalise(void)
{
    char out[64];
    CHECK(domain_normalise(out, sizeof out, "Mail-In.Example.TEST.", DOMAIN_TRAILING_DOT) == 0 &&
              strcmp(out, "mail-in.example.test") == 0,
          "lower case, trailing dot dropped: %s", out);
    CHECK(domain_normalise(out, sizeof out, "example.test.", 0) == -1 && out[0] == '\0',
          "a trailing dot only where allowed");
    CHECK(domain_normalise(out, sizeof out, "example.test..", DOMAIN_TRAILING_DOT) == -1,
          "one trailing dot, not two");
    CHECK(domain_normalise(out, sizeof out, ".", DOMAIN_TRAILING_DOT) == -1, "the root alone");
    CHECK(domain_normalise(out, 5, "example.test", 0) == -1 && out[0] == '\0', "too small");
    CHECK(domain_normalise(out, sizeof out, "Relay_1.example.test", DOMAIN_HOST_NAME) == 0 &&
              strcmp(out, "relay_1.example.test") == 0,
          "a host name (a smarthost) may carry '_'");
    CHECK(domain_normalise(out, sizeof out, "relay_1.example.test", 0) == -1,
          "a mail domain may not");
}

/* Every part that takes a domain agrees with the rule: '_' is refused by all alike (before,
 * yubin.conf took a local domain with '_' that no address could ever match), and a trailing
 * dot in yubin.conf is dropped (before, it was a configuration error). */
static void test_agreement(void)
{
    struct addr a;
    const char *end, *why;
    CHECK(addr_parse_path("<demo@mail_in.example.test>", 0, &a, &end) != ADDR_OK,
          "addr refuses '_' in a domain");
    CHECK(addr_parse_path("<demo@example.test.>", 0, &a, &end) != ADDR_OK,
          "addr: no trailing dot in an address (RFC 5321)");
    CHECK(!users_address_ok("demo@mail_in.example.test", &why), "users refuses '_'");
    CHECK(!users_address_ok("demo@-x.test", &why), "users refuses a leading '-'");

    static struct yubin_conf c;
    char err[300];
    CHECK(load("hostname MX.Example.TEST.\nlocal_domains Example.test. Other.test\n", &c, err,
               sizeof err) == 0,
          "conf loads");
    CHECK(strcmp(c.hostname, "mx.example.test") == 0, "hostname normalised: %s", c.hostname);
    CHECK(c.n_local_domains == 2 && strcmp(c.local_domains[0], "example.test") == 0,
          "local domain normalised: %s", c.local_domains[0]);
    CHECK(conf_is_local_domain(&c, "EXAMPLE.test"), "any case matches");
    CHECK(load("local_domains mail_in.example.test\n", &c, err, sizeof err) != 0 &&
              strstr(err, ":1:") != NULL,
          "conf refuses a local domain with '_', naming the line");
    CHECK(load("hostname mx_1.example.test\n", &c, err, sizeof err) != 0, "and a hostname");
    CHECK(load("local_domains example.test..\n", &c, err, sizeof err) != 0, "and two dots");
}

int main(void)
{
    test_rule();
    test_normalise();
    test_agreement();
    return tap_done();
}
