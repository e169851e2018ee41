/*
 * test-route: lib/route against a small site (two local domains, a users file, an aliases
 * file) written to a temporary directory: mailboxes, aliases, lists with remote members, the
 * postmaster, relaying with and without permission, and the open-relay forms that must never
 * route. It never touches the network.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "addr.h"
#include "conf.h"
#include "route.h"
#include "tap.h"
#include "util.h"

static char dir[] = "/tmp/test-route-XXXXXX";
static struct yubin_conf conf;

static void write_file(const char *name, const char *text, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
}

struct route_case {
    const char *path;
    int may_relay;
    enum route_kind kind;
    const char *reply; /* prefix, for REFUSED / TEMPFAIL */
    const char *local; /* "a, b" */
    const char *remote;
};

static const char *kind_name(enum route_kind k)
{
    return k == ROUTE_LOCAL     ? "LOCAL"
           : k == ROUTE_RELAY   ? "RELAY"
           : k == ROUTE_REFUSED ? "REFUSED"
                                : "TEMPFAIL";
}

static void join(char (*list)[ADDR_SIZE], size_t n, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", list[i]);
}

static void check(struct route_ctx *ctx, const struct route_case *c)
{
    struct addr a;
    struct route r;
    const char *end;
    char got[2048];
    int rc = addr_parse_path(c->path, ADDR_POSTMASTER_OK, &a, &end);
    CHECK(rc == ADDR_OK, "%s parses", c->path);
    if (rc != ADDR_OK)
        return;
    enum route_kind k = route_rcpt(ctx, &a, c->may_relay, &r);
    CHECK(k == c->kind && r.kind == k, "%s (relay %d) is %s (got %s: %s / %s)", c->path,
          c->may_relay, kind_name(c->kind), kind_name(k), r.reply, r.why);
    if (c->reply != NULL)
        CHECK(strncmp(r.reply, c->reply, strlen(c->reply)) == 0, "%s reply '%s' starts '%s'",
              c->path, r.reply, c->reply);
    join(r.local, r.n_local, got, sizeof got);
    CHECK_STR(got, c->local ? c->local : "", "%s local mailboxes", c->path);
    join(r.remote, r.n_remote, got, sizeof got);
    CHECK_STR(got, c->remote ? c->remote : "", "%s remote addresses", c->path);
    route_free(&r);
}

#define L ROUTE_LOCAL
#define X ROUTE_REFUSED
#define T ROUTE_TEMPFAIL
static const struct route_case cases[] = {
    {"<demo@example.test>", 0, L, NULL, "demo@example.test", NULL},
    {"<DeMo@EXAMPLE.test>", 0, L, NULL, "demo@example.test", NULL},
    {"<\"demo\"@example.test>", 0, L, NULL, "demo@example.test", NULL},
    {"<@relay.test:demo@example.test>", 0, L, NULL, "demo@example.test", NULL},
    {"<bob@other.test>", 0, L, NULL, "bob@other.test", NULL},
    {"<Postmaster>", 0, L, NULL, "demo@example.test", NULL},
    {"<postmaster@example.test>", 0, L, NULL, "demo@example.test", NULL},
    {"<postmaster@other.test>", 0, X, "550 5.1.1 <postmaster@other.test>", NULL, NULL},
    {"<nobody@example.test>", 0, X, "550 5.1.1 <nobody@example.test>: no such user here", NULL,
     NULL},
    {"<nobody@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<team@example.test>", 0, L, NULL, "alice@example.test, bob@other.test, demo@example.test",
     NULL},
    {"<list@example.test>", 0, L, NULL, "alice@example.test", "Friend@remote.test"},
    {"<loop1@example.test>", 0, X, "550 5.1.1", NULL, NULL},
    {"<ghosts@example.test>", 0, X, "550 5.1.1", NULL, NULL},
    /* other domains: relayed only with permission */
    {"<someone@remote.test>", 0, X, "554 5.7.1 <someone@remote.test>: relaying denied", NULL, NULL},
    {"<someone@remote.test>", 1, ROUTE_RELAY, NULL, NULL, "someone@remote.test"},
    {"<Someone@Remote.TEST>", 1, ROUTE_RELAY, NULL, NULL, "Someone@remote.test"},
    {"<demo@[127.0.0.1]>", 0, X, "554 5.7.1", NULL, NULL},
    {"<@example.test:user@remote.test>", 0, X, "554 5.7.1", NULL, NULL},
    {"<@example.test:user@remote.test>", 1, ROUTE_RELAY, NULL, NULL, "user@remote.test"},
    /* open-relay forms in a local domain: names that do not exist, even for a relay client */
    {"<user%remote.test@example.test>", 0, X, "550 5.1.1", NULL, NULL},
    {"<user%remote.test@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<remote.test!user@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<\"user@remote.test\"@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<\"user%remote.test\"@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<\"demo alias\"@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<pct%example.test@example.test>", 1, X, "550 5.1.1", NULL, NULL},
    {"<a/b@example.test>", 1, X, "550 5.1.1", NULL, NULL},
};

static void check_failures(void)
{
    struct route_ctx ctx;
    struct route r;
    struct addr a;
    const char *end;
    char path[512];
    struct yubin_conf broken = conf;

    addr_parse_path("<demo@example.test>", 0, &a, &end);
    write_file("aliases-broken", "x@example.test:\n", path, sizeof path);
    str_copy(broken.aliases_file, sizeof broken.aliases_file, path);
    route_init(&ctx, &broken);
    ctx.mailbox_exists = route_read_users_file;
    CHECK(route_rcpt(&ctx, &a, 0, &r) == ROUTE_TEMPFAIL, "a broken aliases file: TEMPFAIL");
    CHECK(strncmp(r.reply, "451 4.3.0", 9) == 0, "... answered 451 4.3.0");
    CHECK(strstr(r.why, "an alias without targets") != NULL, "... logged why (%s)", r.why);
    route_free(&r);
    route_ctx_free(&ctx);

    broken = conf;
    str_copy(broken.users_file, sizeof broken.users_file, dir); /* a directory: read error */
    route_init(&ctx, &broken);
    ctx.mailbox_exists = route_read_users_file;
    CHECK(route_rcpt(&ctx, &a, 0, &r) == ROUTE_TEMPFAIL, "an unreadable users file: TEMPFAIL");
    route_free(&r);
    route_ctx_free(&ctx);

    broken = conf;
    snprintf(path, sizeof path, "%s/no-such-users", dir);
    str_copy(broken.users_file, sizeof broken.users_file, path);
    route_init(&ctx, &broken);
    ctx.mailbox_exists = route_read_users_file;
    CHECK(route_rcpt(&ctx, &a, 0, &r) == ROUTE_REFUSED, "a missing users file has no users");
    route_free(&r);
    route_ctx_free(&ctx);

    broken = conf;
    snprintf(path, sizeof path, "%s/no-such-socket", dir);
    str_copy(broken.auth_socket, sizeof broken.auth_socket, path);
    route_init(&ctx, &broken); /* the default: ask yubin-auth, which is not running */
    CHECK(route_rcpt(&ctx, &a, 0, &r) == ROUTE_TEMPFAIL, "the password service down: TEMPFAIL");
    CHECK(strstr(r.why, "password service is not reachable") != NULL, "... logged why (%s)", r.why);
    route_free(&r);
    route_ctx_free(&ctx);
}

/* Routes text (a path) in ctx; returns the kind, r filled (free it). */
static enum route_kind route_text(struct route_ctx *ctx, const char *text, int may_relay,
                                  struct route *r)
{
    struct addr a;
    const char *end;
    if (addr_parse_path(text, ADDR_POSTMASTER_OK, &a, &end) != ADDR_OK) {
        memset(r, 0, sizeof *r);
        return ROUTE_TEMPFAIL;
    }
    return route_rcpt(ctx, &a, may_relay, r);
}

/* Is r one forwarded remote address, want? */
static int forwards_to(const struct route *r, const char *want)
{
    return r->kind == ROUTE_LOCAL && r->forward && r->n_local == 0 && r->n_remote == 1 &&
           strcmp(r->remote[0], want) == 0;
}

/* SRS: bounces to our SRS addresses go back to the original sender; forged, expired and
 * malformed ones are refused; route_forward_sender rewrites only what needs it. */
static void check_srs(void)
{
    const time_t t0 = (time_t)20000 * 86400;
    struct yubin_conf c = conf;
    struct route_ctx ctx;
    struct route r;
    struct srs s;
    char path[512], srs0[ADDR_SIZE], text[ADDR_SIZE + 2], out[ADDR_SIZE], why[400];
    write_file("srs-secret", "a secret for test-route only\n", path, sizeof path);
    chmod(path, 0600);
    str_copy(c.srs_secret_file, sizeof c.srs_secret_file, path);
    route_init(&ctx, &c);
    ctx.mailbox_exists = route_read_users_file;
    ctx.now = t0;

    CHECK(route_forward_sender(&ctx, "Sender@remote.test", srs0, sizeof srs0, why, sizeof why) ==
                  0 &&
              strncmp(srs0, "SRS0=", 5) == 0 && strstr(srs0, "=remote.test=Sender@example.test"),
          "a remote sender is rewritten: %s", srs0);
    srs_init(&s, "example.test", 21);
    srs_add_secret(&s, "a secret for test-route only", 28);
    srs_forward(&s, "Sender@remote.test", t0, out, sizeof out);
    CHECK_STR(srs0, out, "with the first local domain and the file's secret");
    snprintf(text, sizeof text, "<%s>", srs0);
    route_text(&ctx, text, 0, &r);
    CHECK(forwards_to(&r, "Sender@remote.test"), "its bounce goes back, for any client (%s)",
          r.reply);
    route_free(&r);
    str_lower(text);
    route_text(&ctx, text, 0, &r);
    CHECK(forwards_to(&r, "sender@remote.test"), "lower-cased on the way: still valid");
    route_free(&r);
    snprintf(text, sizeof text, "<%s>", srs0);
    text[6] = text[6] == 'A' ? 'B' : 'A';
    route_text(&ctx, text, 1, &r);
    CHECK(r.kind == ROUTE_REFUSED && strstr(r.reply, "550 5.7.1") && strstr(r.reply, "bad hash"),
          "a forged one is refused, even for a relay client: %s", r.reply);
    route_free(&r);
    route_text(&ctx, "<SRS0=abc@example.test>", 0, &r);
    CHECK(r.kind == ROUTE_REFUSED && strstr(r.reply, "550 5.1.1") && strstr(r.reply, "malformed"),
          "a malformed one: %s", r.reply);
    route_free(&r);
    ctx.now = t0 + 22 * 86400;
    snprintf(text, sizeof text, "<%s>", srs0);
    route_text(&ctx, text, 0, &r);
    CHECK(r.kind == ROUTE_REFUSED && strstr(r.reply, "550 5.1.1") && strstr(r.reply, "expired") &&
              strstr(r.why, "21 days"),
          "an expired one: %s (%s)", r.reply, r.why);
    route_free(&r);
    ctx.now = t0;
    snprintf(text, sizeof text, "<%.*s@remote.test>", (int)(strchr(srs0, '@') - srs0), srs0);
    CHECK(route_text(&ctx, text, 0, &r) == ROUTE_REFUSED && strstr(r.reply, "relaying denied"),
          "an SRS local part at another domain is not ours");
    route_free(&r);

    route_forward_sender(&ctx, "demo@other.test", out, sizeof out, why, sizeof why);
    CHECK(strcmp(out, "demo@other.test") == 0 && why[0] == '\0', "a local sender is kept");
    route_forward_sender(&ctx, "", out, sizeof out, why, sizeof why);
    CHECK(out[0] == '\0' && why[0] == '\0', "<> is kept");
    route_forward_sender(&ctx, srs0, out, sizeof out, why, sizeof why);
    CHECK(strcmp(out, srs0) == 0, "our own SRS address is kept");
    const char *longer = "a.rather.long.local.part.of.forty@a-long-domain-name.example.org";
    route_forward_sender(&ctx, longer, out, sizeof out, why, sizeof why);
    CHECK(strcmp(out, longer) == 0 && strstr(why, "RFC 5321"),
          "too long for SRS: kept, and why says so (%s)", why);
    route_text(&ctx, "<list@example.test>", 0, &r);
    CHECK(r.forward == 1, "a list's remote members are forwarded");
    route_free(&r);
    route_text(&ctx, "<someone@remote.test>", 1, &r);
    CHECK(r.kind == ROUTE_RELAY && r.forward == 0, "a relayed recipient is not");
    route_free(&r);
    route_ctx_free(&ctx);

    struct yubin_conf d = c;
    str_copy(d.srs_domain, sizeof d.srs_domain, "srs.example.net");
    route_init(&ctx, &d);
    ctx.mailbox_exists = route_read_users_file;
    ctx.now = t0;
    route_forward_sender(&ctx, "Sender@remote.test", out, sizeof out, why, sizeof why);
    snprintf(text, sizeof text, "<%s>", out);
    route_text(&ctx, text, 0, &r);
    CHECK(strstr(out, "@srs.example.net") && forwards_to(&r, "Sender@remote.test"),
          "srs_domain: %s routes back though it is no local domain", out);
    route_free(&r);
    route_ctx_free(&ctx);

    snprintf(path, sizeof path, "%s/no-srs-secret", dir);
    str_copy(d.srs_secret_file, sizeof d.srs_secret_file, path);
    route_init(&ctx, &d);
    ctx.mailbox_exists = route_read_users_file;
    CHECK(route_forward_sender(&ctx, "x@remote.test", out, sizeof out, why, sizeof why) == 0 &&
              strcmp(out, "x@remote.test") == 0 && strstr(why, "SRS is off"),
          "no secret file: SRS is off (%s)", why);
    snprintf(text, sizeof text, "<%s>", srs0);
    CHECK(route_text(&ctx, text, 0, &r) == ROUTE_REFUSED && strstr(r.reply, "no such user"),
          "and SRS0= is just a name");
    route_free(&r);
    route_ctx_free(&ctx);

    snprintf(path, sizeof path, "%s/srs-secret", dir);
    chmod(path, 0644);
    route_init(&ctx, &c);
    ctx.mailbox_exists = route_read_users_file;
    CHECK(route_forward_sender(&ctx, "x@remote.test", out, sizeof out, why, sizeof why) == -1 &&
              strstr(why, "0644"),
          "a secret file readable by all: a temporary failure (%s)", why);
    snprintf(text, sizeof text, "<%s>", srs0);
    CHECK(route_text(&ctx, text, 0, &r) == ROUTE_TEMPFAIL, "for bounces too");
    route_free(&r);
    route_ctx_free(&ctx);
}

int main(void)
{
    char path[512];
    if (mkdtemp(dir) == NULL)
        return 1;
    conf_defaults(&conf);
    str_copy(conf.local_domains[0], CONF_DOMAIN_SIZE, "example.test");
    str_copy(conf.local_domains[1], CONF_DOMAIN_SIZE, "other.test");
    conf.n_local_domains = 2;
    write_file("users",
               "demo@example.test:$argon2id$x\nAlice@Example.test:$argon2id$x\n"
               "bob@other.test:$argon2id$x\n",
               path, sizeof path);
    str_copy(conf.users_file, sizeof conf.users_file, path);
    write_file("aliases",
               "postmaster@example.test: demo\n"
               "team@example.test: alice, bob@other.test, postmaster, demo, ALICE@example.test\n"
               "list@example.test: alice, Friend@remote.test, ghost\n"
               "owner-list@example.test: demo\n"
               "loop1@example.test: loop2\nloop2@example.test: loop1\n"
               "ghosts@example.test: ghost1, ghost2\n",
               path, sizeof path);
    str_copy(conf.aliases_file, sizeof conf.aliases_file, path);

    struct route_ctx ctx;
    route_init(&ctx, &conf);
    ctx.mailbox_exists = route_read_users_file;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check(&ctx, &cases[i]);

    struct addr a;
    struct route r;
    const char *end;
    addr_parse_path("<list@example.test>", 0, &a, &end);
    route_rcpt(&ctx, &a, 0, &r);
    CHECK_STR(r.owner, "owner-list@example.test", "a list's owner is reported");
    CHECK(strstr(r.why, "no such member ghost@example.test") != NULL, "unknown member noted (%s)",
          r.why);
    route_free(&r);
    addr_parse_path("<loop1@example.test>", 0, &a, &end);
    route_rcpt(&ctx, &a, 0, &r);
    CHECK(strstr(r.why, "alias loop") != NULL, "a loop is noted (%s)", r.why);
    route_free(&r);

    /* submission: which senders a login may use */
    CHECK(route_sender_ok(&ctx, "demo@example.test", "demo@example.test") == 1, "own address");
    CHECK(route_sender_ok(&ctx, "DEMO@Example.Test", "demo@example.test") == 1, "any case");
    CHECK(route_sender_ok(&ctx, "postmaster@example.test", "demo@example.test") == 1,
          "an alias of the login");
    CHECK(route_sender_ok(&ctx, "team@example.test", "demo@example.test") == 1,
          "a list the login is in (nested through postmaster too)");
    CHECK(route_sender_ok(&ctx, "team@example.test", "bob@other.test") == 1,
          "a remote-domain "
          "member of the list is also a member");
    CHECK(route_sender_ok(&ctx, "alice@example.test", "demo@example.test") == 0, "another user");
    CHECK(route_sender_ok(&ctx, "", "demo@example.test") == 0, "not the null sender");
    CHECK(route_sender_ok(&ctx, "loop1@example.test", "demo@example.test") == 0, "a loop");
    CHECK(route_sender_ok(&ctx, "someone@remote.test", "demo@example.test") == 0, "remote");
    route_ctx_free(&ctx);

    check_failures();
    check_srs();
    const char *files[] = {"users", "aliases", "aliases-broken", "srs-secret"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    CHECK(rmdir(dir) == 0, "cleaned up");
    return tap_done();
}
