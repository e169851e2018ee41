/*
 * test-addr: lib/addr against a table of RFC 5321 paths, good and bad: null paths, source
 * routes, quoted local parts, address literals, the 64/255/256 limits and the characters that
 * must never pass. It never touches files or the network.
 */
#include "config.h"

#include <string.h>

#include "addr.h"
#include "tap.h"

struct path_case {
    const char *in;
    int flags;
    int rc;
    const char *text;   /* expected text on ADDR_OK */
    const char *domain; /* expected domain on ADDR_OK */
    int quoted;
    const char *rest; /* what follows the path */
};

#define R ADDR_POSTMASTER_OK
#define N ADDR_NULL_OK

static const struct path_case cases[] = {
    {"<>", N, ADDR_OK, "", "", 0, ""},
    {"<>", R, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<> SIZE=10", N, ADDR_OK, "", "", 0, " SIZE=10"},
    {"<a@b.example>", 0, ADDR_OK, "a@b.example", "b.example", 0, ""},
    {"<User.Name@Example.TEST>", 0, ADDR_OK, "User.Name@example.test", "example.test", 0, ""},
    {"<a@b> BODY=8BITMIME", N, ADDR_OK, "a@b", "b", 0, " BODY=8BITMIME"},
    {"<user%other@example.test>", 0, ADDR_OK, "user%other@example.test", "example.test", 0, ""},
    {"<host!user@example.test>", 0, ADDR_OK, "host!user@example.test", "example.test", 0, ""},
    {"<a+tag@x.test>", 0, ADDR_OK, "a+tag@x.test", "x.test", 0, ""},
    {"<{weird}'#$&*=?^`|~@x.test>", 0, ADDR_OK, "{weird}'#$&*=?^`|~@x.test", "x.test", 0, ""},
    /* source routes: accepted, dropped */
    {"<@relay.test:u@x.test>", 0, ADDR_OK, "u@x.test", "x.test", 0, ""},
    {"<@a.test,@b.test:u@x.test>", 0, ADDR_OK, "u@x.test", "x.test", 0, ""},
    {"<@example.test:user@remote.test>", 0, ADDR_OK, "user@remote.test", "remote.test", 0, ""},
    {"<@:u@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<@a.test,u@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<@a.test;@b:u@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<@a.test,:u@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    /* quoted local parts */
    {"<\"john\"@x.test>", 0, ADDR_OK, "john@x.test", "x.test", 0, ""},
    {"<\"john.q\"@x.test>", 0, ADDR_OK, "john.q@x.test", "x.test", 0, ""},
    {"<\"john smith\"@x.test>", 0, ADDR_OK, "\"john smith\"@x.test", "x.test", 1, ""},
    {"<\"user@remote.test\"@example.test>", 0, ADDR_OK, "\"user@remote.test\"@example.test",
     "example.test", 1, ""},
    {"<\"a\\\"b\"@x.test>", 0, ADDR_OK, "\"a\\\"b\"@x.test", "x.test", 1, ""},
    {"<\"a>b\"@x.test>", 0, ADDR_OK, "\"a>b\"@x.test", "x.test", 1, ""},
    {"<\"\"@x.test>", 0, ADDR_OK, "\"\"@x.test", "x.test", 1, ""},
    {"<\"abc@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<\"a\tb\"@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<\"a\\\001\"@x.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    /* address literals */
    {"<u@[127.0.0.1]>", 0, ADDR_OK, "u@[127.0.0.1]", "[127.0.0.1]", 0, ""},
    {"<u@[IPv6:::1]>", 0, ADDR_OK, "u@[ipv6:::1]", "[ipv6:::1]", 0, ""},
    {"<u@[IPv6:2001:db8::1]>", 0, ADDR_OK, "u@[ipv6:2001:db8::1]", "[ipv6:2001:db8::1]", 0, ""},
    {"<u@[x-tag:stuff]>", 0, ADDR_OK, "u@[x-tag:stuff]", "[x-tag:stuff]", 0, ""},
    {"<u@[1.2.3]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<u@[256.1.1.1]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<u@[IPv6:zz::1]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<u@[]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<u@[1.2.3.4>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<u@[1.2.3.4 ]>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    /* Postmaster */
    {"<Postmaster>", R, ADDR_OK, "Postmaster", "", 0, ""},
    {"<postmaster>", R, ADDR_OK, "postmaster", "", 0, ""},
    {"<postmaster>", N, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<postmasterx>", R, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<@a.test:postmaster>", R, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    /* bad syntax */
    {"a@b", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@b", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<@b>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@b@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<user@remote.test@example.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a b@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"< a@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@c >", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<.a@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a.@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a..b@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@.c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@c.>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@c..d>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@-c.d>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@c-.d>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@c_d.e>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a(b)@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a,b@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a\\b@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<\xc3\xa9@c.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@\xc3\xa9.test>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a\r@c>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<a@c\n>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
    {"<<a@c>>", 0, ADDR_ERR_SYNTAX, NULL, NULL, 0, NULL},
};

/* The input with control and 8-bit bytes as \xHH, so each TAP line stays one line. */
static const char *printable(const char *s)
{
    static char out[400];
    size_t n = 0;
    for (; *s != '\0' && n + 5 < sizeof out; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 32 || c > 126)
            n += (size_t)snprintf(out + n, sizeof out - n, "\\x%02x", c);
        else
            out[n++] = (char)c;
    }
    out[n] = '\0';
    return out;
}

static void check_case(const struct path_case *c)
{
    struct addr a;
    const char *end = NULL;
    const char *name = printable(c->in);
    int rc = addr_parse_path(c->in, c->flags, &a, &end);
    CHECK(rc == c->rc, "parse '%s' gives %d (got %d: %s)", name, c->rc, rc, addr_error_text(rc));
    if (rc != ADDR_OK || c->rc != ADDR_OK)
        return;
    CHECK_STR(a.text, c->text, "text of '%s'", name);
    CHECK_STR(a.domain, c->domain, "domain of '%s'", name);
    CHECK(a.quoted == c->quoted, "quoted flag of '%s'", name);
    CHECK_STR(end, c->rest, "rest after '%s'", name);
}

static void repeat(char *dst, char ch, size_t n)
{
    memset(dst, ch, n);
    dst[n] = '\0';
}

/* Domain of labels "aaa...a." totalling exactly len octets. */
static void long_domain(char *dst, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (i % 50 == 49 && i + 1 < len) ? '.' : 'd';
    dst[len] = '\0';
}

static void check_limits(void)
{
    char local[100], domain[300], path[700];
    struct addr a;
    const char *end;

    repeat(local, 'l', 64);
    snprintf(path, sizeof path, "<%s@x.test>", local);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_OK, "64-octet local part accepted");
    repeat(local, 'l', 65);
    snprintf(path, sizeof path, "<%s@x.test>", local);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_LOCAL_LONG, "65-octet local refused");
    snprintf(path, sizeof path, "<\"%.62s\"@x.test>", local);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_OK, "64-octet quoted local accepted");
    snprintf(path, sizeof path, "<\"%.61s \"@x.test>", local);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_OK && a.quoted, "quoted with space kept");
    snprintf(path, sizeof path, "<\"%.63s\"@x.test>", local);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_LOCAL_LONG, "65-octet quoted refused");

    /* a path of exactly 256 octets: "<" + local(10) + "@" + domain(243) + ">" */
    long_domain(domain, 243);
    snprintf(path, sizeof path, "<llllllllll@%s>", domain);
    CHECK(strlen(path) == 256, "test path is 256 octets");
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_OK, "256-octet path accepted");
    CHECK(strlen(a.text) == 254, "its text is 254 octets");
    long_domain(domain, 244);
    snprintf(path, sizeof path, "<llllllllll@%s>", domain);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_PATH_LONG, "257-octet path refused");
    snprintf(path, sizeof path, "<@relay.test:llllllllll@%s>", domain + 12);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_PATH_LONG,
          "a source route counts towards the 256 octets");

    long_domain(domain, 255);
    snprintf(path, sizeof path, "<l@%s>", domain);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_PATH_LONG, "255-octet domain: path");
    long_domain(domain, 256);
    snprintf(path, sizeof path, "<l@%s>", domain);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_DOMAIN_LONG, "256-octet domain refused");

    repeat(domain, 'a', 63);
    snprintf(path, sizeof path, "<l@%s.test>", domain);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_OK, "63-octet label accepted");
    repeat(domain, 'a', 64);
    snprintf(path, sizeof path, "<l@%s.test>", domain);
    CHECK(addr_parse_path(path, 0, &a, &end) == ADDR_ERR_SYNTAX, "64-octet label refused");
}

static void check_mailbox(void)
{
    struct addr a;
    CHECK(addr_parse_mailbox("Demo@Example.TEST", &a) == ADDR_OK, "mailbox parses");
    CHECK_STR(a.text, "Demo@example.test", "mailbox text keeps local case");
    CHECK(addr_parse_mailbox("<demo@example.test>", &a) == ADDR_ERR_SYNTAX, "brackets refused");
    CHECK(addr_parse_mailbox("demo@example.test x", &a) == ADDR_ERR_SYNTAX, "trailing junk");
    CHECK(addr_parse_mailbox("demo", &a) == ADDR_ERR_SYNTAX, "no domain refused");
    CHECK(addr_parse_mailbox("\"a b\"@x.test", &a) == ADDR_OK && a.quoted, "quoted mailbox");
    CHECK(addr_parse_mailbox("", &a) == ADDR_ERR_SYNTAX, "empty refused");
}

int main(void)
{
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_case(&cases[i]);
    check_limits();
    check_mailbox();
    CHECK(strcmp(addr_error_text(ADDR_ERR_PATH_LONG), "path too long (over 256 octets)") == 0,
          "error text");
    return tap_done();
}
