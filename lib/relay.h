/*
 * relay: queue-run's remote delivery to one destination (a domain's MX hosts, or the
 * smarthost): the connection to the first address that answers (next address on a failure,
 * the TLS lib/tlsdest asks for, one retry in clear after a failed handshake under `may`), the
 * messages sent over it (lib/smtpc), lower-preference MX hosts for recipients that got a 4xx
 * (RFC 5321 §5.1), and each recipient's result recorded on its locked entry (lib/bounce). It
 * lives in lib/libyubin-mx.a, beside lib/tlsdest; only queue-run links it.
 *
 * It must never decide which recipients are due or lock an entry (queue-run does both, and
 * hands it only recipients still pending under the lock), never hold a message in memory,
 * send in clear to a host whose policy requires TLS, or go on past the destination's deadline.
 */
#ifndef YUBIN_RELAY_H
#define YUBIN_RELAY_H

#include <stddef.h>
#include <time.h>

#include "bounce.h"
#include "conf.h"
#include "mx.h"
#include "queue.h"
#include "tlsc.h"

/* What every connection of a run shares. */
struct relay_env {
    const struct yubin_conf *conf;
    const char *prog;                         /* transcript file names, -v lines */
    int verbose;                              /* -v: the dialogue on stderr as well */
    void (*say)(void *arg, const char *line); /* a -v line (may be NULL) */
    void *say_arg;
    SSL_CTX *tls_ctx; /* outbound TLS; NULL: none could be made */
    const struct tlsc_policy *tls_policy;
    struct mx_resolver *resolver; /* for TLSA lookups */
    const struct bounce_ctx *bounces;
    const char *auth_user; /* smarthost_auth_file: the login, "" for none */
    const char *auth_pass;
};

/* One destination of a pass. */
struct relay_dest {
    const char *name;           /* the domain, or the smarthost */
    unsigned port;              /* smtp_port, or the smarthost's */
    const struct mx_result *mx; /* resolved */
    long long deadline;         /* lib/deadline: its time in this pass ends */
};

struct relay;

/* A connection (not opened yet) to d; env and d->name must outlive it. NULL: out of memory. */
struct relay *relay_new(const struct relay_env *env, const struct relay_dest *d);
/* Says QUIT where connected and frees it; adds its counts to *conns and *msgs. */
void relay_free(struct relay *k, unsigned *conns, unsigned *msgs);
/* Sends recipients idx[0..n) of the locked entry e and records each one's result (with the
 * TLS of the connection that answered) through env->bounces. */
void relay_deliver(struct relay *k, struct queue_entry *e, const size_t *idx, size_t n, time_t now);

#endif
