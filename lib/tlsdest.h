/*
 * tlsdest: the TLS that queue-run asks of one connection to one host of a destination: the
 * tls_policy level of the destination, raised by DANE (RFC 7672) when the host's MX and
 * address records and its TLSA records (_25._tcp.<host>) are authenticated (AD from a
 * validating dns_resolver), and the smtpc options that carry it out. It lives in
 * lib/libyubin-mx.a (it asks lib/mx for TLSA records), so only queue-run links it.
 *
 * It never lets a destination whose policy or DANE requires TLS go without it: when it cannot
 * tell (a TLSA lookup that failed for a signed host), the host waits.
 */
#ifndef YUBIN_TLSDEST_H
#define YUBIN_TLSDEST_H

#include <stddef.h>

#include "mx.h"
#include "smtpc.h"
#include "tlsc.h"

struct tlsdest {
    SSL_CTX *ctx; /* tlsc_ctx_new */
    const struct tlsc_policy *policy;
    struct mx_resolver *resolver; /* for TLSA lookups */
};

/* Sets o->tls, o->tls_level and o->tls_implicit for a connection to host h (of mx) of dest
 * (the mail domain, or with smarthost set the smarthost's name, which its tls_policy line
 * names; port 465 there means implicit TLS). in_clear: the one retry after a handshake that
 * failed under `may`. Returns 0 to connect (what is in *note: "dane, 1 TLSA record" and the
 * like), or 1 when this host must wait, with the reason in why ("4.7.5 ..."). */
int tlsdest_prepare(const struct tlsdest *t, const char *dest, const struct mx_result *mx,
                    const struct mx_host *h, unsigned port, int smarthost, int in_clear,
                    struct smtpc_opts *o, char *note, size_t notelen, char *why, size_t whylen);

#endif
