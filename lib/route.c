/*
 * route: one recipient to its mailboxes, its relay, or its refusal (see route.h). The order
 * is fixed: postmaster, then SRS addresses of ours, then the domain (local or not), then the
 * shape of the local part, then aliases, then the users file. It must never let a local part
 * that names another host ('%', '!', quoted '@', source routes) reach anything but a refusal,
 * and never relay for a session that may not (an SRS address routes only with our own hash).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "authc.h"
#include "route.h"
#include "users.h"
#include "util.h"

void route_init(struct route_ctx *ctx, const struct yubin_conf *conf)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->conf = conf;
    ctx->mailbox_exists = route_ask_service;
}

int route_ask_service(const struct yubin_conf *conf, const char *address, char *why,
                      size_t why_size)
{
    return authc_user(conf, address, NULL, 0, why, why_size);
}

int route_read_users_file(const struct yubin_conf *conf, const char *address, char *why,
                          size_t why_size)
{
    int found = users_exists(conf->users_file, address);
    if (found < 0)
        snprintf(why, why_size, "%.300s: %s", conf->users_file, strerror(errno));
    return found;
}

void route_ctx_free(struct route_ctx *ctx)
{
    if (ctx->aliases_state == 1)
        aliases_free(&ctx->aliases);
    ctx->aliases_state = 0;
    srs_clear(&ctx->srs);
    ctx->srs_state = 0;
}

void route_free(struct route *r)
{
    free(r->local);
    free(r->remote);
    r->local = r->remote = NULL;
    r->n_local = r->n_remote = 0;
}

int route_plain_local(const struct addr *a)
{
    return !a->quoted && a->local[0] != '.' && a->local[0] != '\0' &&
           strpbrk(a->local, "%!/@\"\\") == NULL;
}

static enum route_kind refuse(struct route *r, const char *code, const struct addr *a,
                              const char *text)
{
    r->kind = ROUTE_REFUSED;
    snprintf(r->reply, sizeof r->reply, "%s <%s>: %s", code, a->text, text);
    if (r->why[0] == '\0')
        snprintf(r->why, sizeof r->why, "%s", text);
    return r->kind;
}

/* A temporary failure; why NULL keeps what r->why already says. */
static enum route_kind tempfail(struct route *r, const char *why)
{
    r->kind = ROUTE_TEMPFAIL;
    snprintf(r->reply, sizeof r->reply, "451 4.3.0 temporary failure, try again later");
    if (why != NULL)
        snprintf(r->why, sizeof r->why, "%s", why);
    return r->kind;
}

/* Appends address to a list unless it is there (case-insensitive). 0 or -1 (no memory). */
static int list_add(char (**list)[ADDR_SIZE], size_t *n, const char *address, int lower)
{
    for (size_t i = 0; i < *n; i++)
        if (str_ieq((*list)[i], address))
            return 0;
    void *p = realloc(*list, (*n + 1) * sizeof **list);
    if (p == NULL)
        return -1;
    *list = p;
    if (str_copy((*list)[*n], ADDR_SIZE, address) != 0)
        return -1;
    if (lower)
        str_lower((*list)[*n]);
    (*n)++;
    return 0;
}

/* A local mailbox: 1 added, 0 no such mailbox, -1 temporary failure (why set). */
static int add_mailbox(struct route_ctx *ctx, struct route *r, const struct addr *a)
{
    if (!route_plain_local(a))
        return 0;
    int found = ctx->mailbox_exists(ctx->conf, a->text, r->why, sizeof r->why);
    if (found < 0)
        return -1;
    if (found == 0)
        return 0;
    if (list_add(&r->local, &r->n_local, a->text, 1) != 0) {
        snprintf(r->why, sizeof r->why, "out of memory");
        return -1;
    }
    return 1;
}

static void note(struct route *r, const char *what, const char *address)
{
    size_t used = strlen(r->why);
    if (used + 1 < sizeof r->why)
        snprintf(r->why + used, sizeof r->why - used, "%s%s %s", used ? "; " : "", what, address);
}

/* The members of an expanded alias: local ones must be mailboxes, remote ones are kept. */
static enum route_kind route_members(struct route_ctx *ctx, const struct addr *rcpt,
                                     const struct aliases_result *x, struct route *r)
{
    for (size_t i = 0; i < x->n_targets; i++) {
        struct addr m;
        if (addr_parse_mailbox(x->targets[i], &m) != ADDR_OK) {
            note(r, "bad member", x->targets[i]);
        } else if (conf_is_local_domain(ctx->conf, m.domain)) {
            int rc = add_mailbox(ctx, r, &m);
            if (rc < 0)
                return tempfail(r, NULL);
            if (rc == 0)
                note(r, "no such member", m.text);
        } else if (list_add(&r->remote, &r->n_remote, m.text, 0) != 0) {
            return tempfail(r, "out of memory");
        } else {
            r->forward = 1;
        }
    }
    if (x->loops > 0 && r->n_local + r->n_remote == 0)
        note(r, "alias loop at", rcpt->text);
    if (r->n_local + r->n_remote == 0)
        return refuse(r, "550 5.1.1", rcpt, "no such user here");
    aliases_owner(&ctx->aliases, rcpt->text, r->owner, sizeof r->owner);
    return r->kind = ROUTE_LOCAL;
}

/* Loads the aliases file once. 0, or -1 (ctx->aliases_err says why). */
static int load_aliases(struct route_ctx *ctx)
{
    if (ctx->aliases_state == 0) {
        ctx->aliases_state = aliases_load(&ctx->aliases, ctx->conf->aliases_file, ctx->aliases_err,
                                          sizeof ctx->aliases_err) == 0
                                 ? 1
                                 : -1;
    }
    return ctx->aliases_state < 0 ? -1 : 0;
}

static enum route_kind route_local(struct route_ctx *ctx, const struct addr *a, struct route *r)
{
    if (!route_plain_local(a)) {
        snprintf(r->why, sizeof r->why, "a local part that never routes");
        return refuse(r, "550 5.1.1", a, "no such user here");
    }
    if (load_aliases(ctx) != 0)
        return tempfail(r, ctx->aliases_err);
    struct aliases_result x;
    int rc = aliases_expand(&ctx->aliases, a->text, &x);
    enum route_kind kind;
    if (rc == ALIASES_NOT_ALIAS) {
        int found = add_mailbox(ctx, r, a);
        kind = found < 0   ? tempfail(r, NULL)
               : found > 0 ? (r->kind = ROUTE_LOCAL)
                           : refuse(r, "550 5.1.1", a, "no such user here");
    } else if (rc == ALIASES_EXPANDED) {
        kind = route_members(ctx, a, &x, r);
    } else if (rc == ALIASES_TOO_DEEP) {
        kind = refuse(r, "550 5.4.6", a, "aliases nested too deep");
    } else if (rc == ALIASES_TOO_MANY) {
        kind = refuse(r, "550 5.5.3", a, "alias has too many members");
    } else {
        kind = tempfail(r, "out of memory expanding an alias");
    }
    aliases_result_free(&x);
    return kind;
}

/* ---- SRS ---------------------------------------------------------------------------------- */

static const char *srs_domain(const struct yubin_conf *c)
{
    return c->srs_domain[0] != '\0' ? c->srs_domain : c->local_domains[0];
}

/* Is domain one whose SRS addresses we take back: a local domain, or srs_domain? */
static int srs_ours(const struct route_ctx *ctx, const char *domain)
{
    return conf_is_local_domain(ctx->conf, domain) || str_ieq(domain, srs_domain(ctx->conf));
}

/* Reads the secret file once. 1 on, 0 off (the file is missing), -1 failed (srs_err). */
static int load_srs(struct route_ctx *ctx)
{
    if (ctx->srs_state == 0) {
        srs_init(&ctx->srs, srs_domain(ctx->conf), ctx->conf->srs_max_age);
        if (srs_load(&ctx->srs, ctx->conf->srs_secret_file, ctx->srs_err, sizeof ctx->srs_err) == 0)
            ctx->srs_state = 1;
        else
            ctx->srs_state = errno == ENOENT ? 2 : -1;
    }
    return ctx->srs_state == 2 ? 0 : ctx->srs_state;
}

static time_t srs_now(const struct route_ctx *ctx)
{
    return ctx->now ? ctx->now : time(NULL);
}

/* A recipient SRS0=... or SRS1=... at one of our domains: to the address it stands for, or
 * refused. -1 when SRS is off (it is then routed as any other name). */
static int route_srs(struct route_ctx *ctx, const struct addr *a, struct route *r)
{
    char orig[ADDR_SIZE];
    struct addr o;
    int on = load_srs(ctx);
    if (on <= 0)
        return on == 0 ? -1 : (int)tempfail(r, ctx->srs_err);
    enum srs_result rc = srs_reverse(&ctx->srs, a->local, srs_now(ctx), orig, sizeof orig);
    if (rc == SRS_OK && addr_parse_mailbox(orig, &o) != ADDR_OK)
        rc = SRS_SYNTAX;
    if (rc == SRS_BAD_HASH)
        return refuse(r, "550 5.7.1", a,
                      "SRS address with a bad hash: not made here (forged or damaged)");
    if (rc == SRS_EXPIRED) {
        snprintf(r->why, sizeof r->why, "SRS address older than srs_max_age (%u days)",
                 ctx->conf->srs_max_age);
        return refuse(r, "550 5.1.1", a, "SRS address expired: no longer valid here");
    }
    if (rc != SRS_OK)
        return refuse(r, "550 5.1.1", a, "malformed SRS address");
    if (conf_is_local_domain(ctx->conf, o.domain))
        return route_local(ctx, &o, r);
    if (list_add(&r->remote, &r->n_remote, o.text, 0) != 0)
        return tempfail(r, "out of memory");
    r->forward = 1;
    return r->kind = ROUTE_LOCAL;
}

int route_forward_sender(struct route_ctx *ctx, const char *sender, char *out, size_t size,
                         char *why, size_t whylen)
{
    struct addr a;
    char srs[ADDR_SIZE];
    why[0] = '\0';
    if (str_copy(out, size, sender) != 0)
        return snprintf(why, whylen, "no room for the sender"), -1;
    if (sender[0] == '\0' || addr_parse_mailbox(sender, &a) != ADDR_OK || srs_ours(ctx, a.domain))
        return 0;
    int on = load_srs(ctx);
    if (on < 0)
        return snprintf(why, whylen, "%s", ctx->srs_err), -1;
    if (on == 0)
        return snprintf(why, whylen, "sender not rewritten: SRS is off (%s)", ctx->srs_err), 0;
    enum srs_result rc = srs_forward(&ctx->srs, sender, srs_now(ctx), srs, sizeof srs);
    if (rc != SRS_OK || str_copy(out, size, srs) != 0)
        return str_copy(out, size, sender),
               snprintf(why, whylen, "sender not rewritten: %s", srs_error_text(rc)), 0;
    return 0;
}

int route_srs_reverse(struct route_ctx *ctx, const char *address, char *out, size_t size)
{
    struct addr a;
    out[0] = '\0';
    if (addr_parse_mailbox(address, &a) != ADDR_OK || !srs_is_srs(a.local) ||
        !srs_ours(ctx, a.domain) || load_srs(ctx) != 1)
        return 0;
    return srs_reverse(&ctx->srs, a.local, srs_now(ctx), out, size) == SRS_OK;
}

int route_sender_ok(struct route_ctx *ctx, const char *sender, const char *login)
{
    struct aliases_result x;
    if (str_ieq(sender, login))
        return 1;
    if (sender[0] == '\0' || load_aliases(ctx) != 0)
        return sender[0] == '\0' ? 0 : -1;
    int ok = 0;
    if (aliases_expand(&ctx->aliases, sender, &x) == ALIASES_EXPANDED)
        for (size_t i = 0; i < x.n_targets && !ok; i++)
            ok = str_ieq(x.targets[i], login);
    aliases_result_free(&x);
    return ok;
}

enum route_kind route_rcpt(struct route_ctx *ctx, const struct addr *rcpt, int may_relay,
                           struct route *r)
{
    struct addr pm;
    memset(r, 0, sizeof *r);
    if (rcpt->domain[0] == '\0') {
        /* "<Postmaster>": RFC 5321 §4.1.1.3 says it must work without a domain. */
        char text[ADDR_SIZE];
        if (str_format(text, sizeof text, "postmaster@%s", ctx->conf->local_domains[0]) < 0 ||
            addr_parse_mailbox(text, &pm) != ADDR_OK)
            return refuse(r, "550 5.1.1", rcpt, "no such user here");
        rcpt = &pm;
    }
    if (srs_is_srs(rcpt->local) && srs_ours(ctx, rcpt->domain)) {
        int kind = route_srs(ctx, rcpt, r);
        if (kind >= 0)
            return (enum route_kind)kind;
    }
    if (conf_is_local_domain(ctx->conf, rcpt->domain))
        return route_local(ctx, rcpt, r);
    if (!may_relay) {
        snprintf(r->why, sizeof r->why, "relaying denied");
        return refuse(r, "554 5.7.1", rcpt, "relaying denied");
    }
    if (list_add(&r->remote, &r->n_remote, rcpt->text, 0) != 0)
        return tempfail(r, "out of memory");
    return r->kind = ROUTE_RELAY;
}
