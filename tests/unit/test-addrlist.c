/*
 * test-addrlist: lib/addrlist, the RFC 5322 address lists sendmail -t reads: display names,
 * comments, quoted strings, groups, folds, source routes, and the lists it refuses.
 */
#include "config.h"

#include "addrlist.h"
#include "tap.h"
#include "util.h"

static char got[2000];

static int take(void *arg, const char *addr)
{
    (void)arg;
    size_t n = strlen(got);
    str_format(got + n, sizeof got - n, "%s%s", n ? "|" : "", addr);
    return strcmp(addr, "stop@here") == 0 ? 42 : 0;
}

static int scan(const char *text, char *why, size_t size)
{
    struct addrlist_taker t = {take, NULL, why, size};
    got[0] = '\0';
    why[0] = '\0';
    return addrlist_scan(text, strlen(text), &t);
}

int main(void)
{
    char why[300];
    static const struct {
        const char *in, *out;
    } ok[] = {
        {"a@b.test", "a@b.test"},
        {"John Smith <js@b.test>, other@c.test", "js@b.test|other@c.test"},
        {"\"Smith, John\" <js@b.test>", "js@b.test"},
        {"js@b.test (John Smith)", "js@b.test"},
        {"team: a@b.test, c@d.test;, e@f.test", "a@b.test|c@d.test|e@f.test"},
        {"<@relay.test,@other.test:x@y.test>", "x@y.test"},
        {"a @ b . test", "a@b.test"},
        {"first@a.test,\r\n second@b.test", "first@a.test|second@b.test"},
        {"\"quoted local\"@b.test", "\"quoted local\"@b.test"},
        {"x@[192.0.2.1]", "x@[192.0.2.1]"},
        {"undisclosed-recipients:;", ""},
        {"<a (comment) @b.test>", "a@b.test"},
    };
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        int rc = scan(ok[i].in, why, sizeof why);
        CHECK(rc == 0, "list %zu scanned (%d %s)", i, rc, why);
        CHECK_STR(got, ok[i].out, "list %zu: the addresses %s", i, ok[i].out);
    }
    CHECK(scan("John Smith", why, sizeof why) == -1 &&
              strcmp(why, "not an address: JohnSmith") == 0,
          "a phrase without an address is refused (%s)", why);
    CHECK(scan("John <js@b.test", why, sizeof why) == -1 && strcmp(why, "'<' without '>'") == 0,
          "'<' without '>' refused");
    char longer[700];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    CHECK(scan(longer, why, sizeof why) == -1 && strcmp(why, "an address is too long") == 0,
          "an address over ADDR_SIZE refused, not cut");
    CHECK(scan("a@b.test, stop@here, never@seen", why, sizeof why) == 42 &&
              strcmp(got, "a@b.test|stop@here") == 0,
          "the taker stops the scan with its result");
    return tap_done();
}
