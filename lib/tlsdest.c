/*
 * tlsdest: a destination's TLS policy and DANE, for one connection (see tlsdest.h). It must
 * never lower a level that a policy line or authenticated TLSA records require, never use
 * TLSA records that were not authenticated, and never print.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "tlsdest.h"
#include "util.h"

/* DANE for h: 1 with *tl filled (authenticated TLSA records), 0 none, -1 the host must wait
 * (why set). */
static int dane_records(const struct tlsdest *t, const struct mx_result *mx,
                        const struct mx_host *h, unsigned port, int smarthost, struct mx_tlsa *tl,
                        char *why, size_t whylen)
{
    if (!h->dnssec || (!smarthost && !mx->dnssec) || h->name[0] == '[')
        return 0; /* RFC 7672 §2.2: an insecure MX or address RRset means no DANE */
    int rc = mx_lookup_tlsa(t->resolver, h->name, port, tl);
    if (rc == MX_TEMPFAIL) {
        (void)str_format(why, whylen,
                         "4.7.5 TLSA lookup for %s failed (%s): DANE cannot be ruled "
                         "out, so the mail waits",
                         h->name, tl->why);
        return -1;
    }
    return rc == MX_OK && tl->dnssec ? 1 : 0;
}

/* Adds the records to ssl: how many are usable. */
static size_t dane_add(SSL *ssl, const struct mx_tlsa *tl)
{
    size_t usable = 0;
    for (size_t i = 0; i < tl->n; i++)
        usable += tlsc_dane_add(ssl, tl->rr[i].usage, tl->rr[i].selector, tl->rr[i].mtype,
                                tl->rr[i].data, tl->rr[i].len) == 1;
    return usable;
}

int tlsdest_prepare(const struct tlsdest *t, const char *dest, const struct mx_result *mx,
                    const struct mx_host *h, unsigned port, int smarthost, int in_clear,
                    struct smtpc_opts *o, char *note, size_t notelen, char *why, size_t whylen)
{
    struct mx_tlsa tl;
    char err[300];
    int level = tlsc_policy_level(t->policy, dest);
    o->tls = NULL;
    o->tls_level = level;
    o->tls_implicit = smarthost && port == 465;
    (void)str_format(note, notelen, "policy %s", tlsc_level_name(level));
    if (level == TLSC_NONE || (in_clear && level == TLSC_MAY) ||
        (t->ctx == NULL && level == TLSC_MAY))
        return 0;
    if (t->ctx == NULL) {
        (void)str_format(why, whylen, "4.7.5 no TLS client context (tls_policy %s for %s)",
                         tlsc_level_name(level), dest);
        return 1;
    }
    int dane = 0;
    if (level == TLSC_MAY || level == TLSC_DANE) {
        dane = dane_records(t, mx, h, port, smarthost, &tl, why, whylen);
        if (dane < 0)
            return 1;
        if (dane == 0 && level == TLSC_DANE) {
            (void)str_format(why, whylen,
                             "4.7.5 no authenticated TLSA records for %s (tls_policy "
                             "dane for %s)",
                             h->name, dest);
            return 1;
        }
    }
    SSL *ssl = tlsc_ssl_new(t->ctx, dane ? TLSC_DANE : level, h->name, smarthost ? NULL : dest, err,
                            sizeof err);
    if (ssl == NULL) {
        (void)str_format(why, whylen, "4.7.5 %s", err);
        return 1;
    }
    if (dane) {
        size_t usable = dane_add(ssl, &tl);
        /* RFC 7672 §2.2: TLSA records, none of them usable: TLS without authentication */
        o->tls_level = usable > 0 ? TLSC_DANE : TLSC_ENCRYPT;
        (void)str_format(note, notelen, "policy %s, DANE: %zu usable TLSA record(s) of %zu",
                         tlsc_level_name(level), usable, tl.n_seen);
    }
    o->tls = ssl;
    return 0;
}
