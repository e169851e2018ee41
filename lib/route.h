/*
 * route: where one envelope recipient goes. A local domain's recipient is an alias (expanded
 * through lib/aliases) or a mailbox in the users file, or it is refused (550 5.1.1). Another
 * domain is relayed only when the session may relay (ROUTE_RELAY: the queue), else
 * refused (554 5.7.1). An SRS address of ours (SRS0=...@ a local domain or srs_domain, lib/srs)
 * with a good hash and age routes to the address it stands for, whoever the client is (the
 * hash proves we made it, so this relays nothing we did not forward); a bad or expired one is
 * refused (550 5.7.1, 550 5.1.1). Local parts with '%', '!', '/', a quoted string or a
 * source route never route anywhere: they are names that do not exist. It never writes
 * anything, never resolves names, and reads the aliases file at most once per context.
 */
#ifndef YUBIN_ROUTE_H
#define YUBIN_ROUTE_H

#include <stddef.h>

#include "addr.h"
#include "aliases.h"
#include "conf.h"
#include "srs.h"

enum route_kind {
    ROUTE_LOCAL,    /* local mailboxes (and, for an alias, perhaps remote members) */
    ROUTE_RELAY,    /* another domain, and the session may relay: remote[0] is the rcpt */
    ROUTE_REFUSED,  /* permanent: reply says why */
    ROUTE_TEMPFAIL, /* a file could not be read: reply says 451 */
};

struct route {
    enum route_kind kind;
    char reply[400]; /* for REFUSED / TEMPFAIL: "550 5.1.1 <a@b>: no such user here" */
    char why[400];   /* what the log should say (an alias loop, a file error, ...) */
    size_t n_local, n_remote;
    char (*local)[ADDR_SIZE];  /* mailboxes "local@domain", all lower case, each once */
    char (*remote)[ADDR_SIZE]; /* remote addresses (alias members, or the relayed rcpt) */
    char owner[ADDR_SIZE];     /* an alias list's owner, or "" */
    int forward; /* remote[] are forwarded (alias members, the sender behind an SRS address),
                    not relayed: their copy's sender comes from route_forward_sender */
};

/* Is address a mailbox? 1 yes, 0 no, -1 cannot tell now (why filled). */
typedef int (*route_lookup_fn)(const struct yubin_conf *conf, const char *address, char *why,
                               size_t why_size);

/* One per session: the configuration and the aliases table, loaded on first need. */
struct route_ctx {
    const struct yubin_conf *conf;
    route_lookup_fn mailbox_exists; /* route_init: ask yubin-auth (the handlers cannot read
                                     * the users file); root's tools may read it instead */
    int aliases_state; /* 0 not loaded, 1 loaded, -1 failed */
    char aliases_err[300];
    struct aliases aliases;
    int srs_state; /* 0 not loaded, 1 loaded, 2 off (no secret file), -1 failed */
    char srs_err[300];
    struct srs srs;
    time_t now; /* for SRS timestamps: 0 means the clock (tests set it) */
};

void route_init(struct route_ctx *ctx, const struct yubin_conf *conf);
/* The two lookups: through yubin-auth(8) (the default), or the users file read directly. */
int route_ask_service(const struct yubin_conf *conf, const char *address, char *why,
                      size_t why_size);
int route_read_users_file(const struct yubin_conf *conf, const char *address, char *why,
                          size_t why_size);
void route_ctx_free(struct route_ctx *ctx);

/* Routes rcpt (a parsed forward-path; "<Postmaster>" means postmaster@ the first local
 * domain). may_relay: the session may send to other domains. Returns r->kind; free r with
 * route_free whatever the kind. */
enum route_kind route_rcpt(struct route_ctx *ctx, const struct addr *rcpt, int may_relay,
                           struct route *r);
void route_free(struct route *r);

/* May a session logged in as login (an address of the users file) use sender as its
 * envelope sender? Yes when sender is login (any case) or an alias whose expansion contains
 * login ("team@" with member alice lets alice send as team@). The null sender "" is not.
 * 1 yes, 0 no, -1 the aliases file cannot be read. */
int route_sender_ok(struct route_ctx *ctx, const char *sender, const char *login);

/* The envelope sender for the copy of a message from sender that goes on to a route's
 * forwarded remote addresses: sender's SRS address, or sender itself when it needs none (<>,
 * a local domain or srs_domain, SRS off because the secret file is missing) or cannot have one
 * (too long, a quoted local part): then why says so for the log. 0, or -1 when the secret file
 * cannot be used (a temporary failure; why says why). */
int route_forward_sender(struct route_ctx *ctx, const char *sender, char *out, size_t size,
                         char *why, size_t whylen);

/* Is address an SRS address of ours (at a local domain or srs_domain) with a good hash and
 * age? Then 1, and the address it stands for is in out; else 0 (not one, SRS off, forged,
 * expired: out is ""). */
int route_srs_reverse(struct route_ctx *ctx, const char *address, char *out, size_t size);

/* Is local@domain (in a local domain) a name that may be a mailbox: no quoted string, no
 * '%', '!', '/', '@', no leading '.'? */
int route_plain_local(const struct addr *a);

#endif
