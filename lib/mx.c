/*
 * mx: MX / A / AAAA resolution with ldns for queue-run (see mx.h for the rules).
 * It must never block past the resolver's timeout, never trust an answer to a question it did
 * not ask, never keep more records than its fixed bounds, and never be linked by a handler
 * (smtp-in, pop3-in): it lives in lib/libyubin-mx.a.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <ldns/ldns.h>
#include <sodium.h>

#include "mx.h"
#include "domain.h"
#include "util.h"

#define MX_CACHE_MAX 64       /* domains remembered per resolver */
#define MX_DEFAULT_TIMEOUT 10 /* seconds per lookup when the caller gives 0 */
#define MX_MAX_TIMEOUT 600    /* seconds; longer is taken as this */
#define MX_TRIES 2            /* UDP attempts per name server and query */
#define MX_MIN_ATTEMPT_MS 50  /* never ask ldns for a shorter wait than this */
#define MX_DEAD_AFTER 3       /* silent lookups in a row after which the server counts as dead */

struct mx_cache_entry {
    char domain[MX_NAME_SIZE];
    int host_only; /* from mx_lookup_host */
    struct mx_result result;
};

struct mx_resolver {
    ldns_resolver *res;
    unsigned timeout_ms;
    struct timespec deadline;  /* of the lookup in progress */
    int temp_seen;             /* a query of the lookup in progress failed temporarily */
    int ad;                    /* the last answer had the AD bit */
    int got_answer, no_answer; /* in the lookup in progress: some query was answered, or not */
    unsigned silent_lookups;   /* lookups in a row in which no server answered anything */
    size_t n_cache, next_evict;
    struct mx_cache_entry *cache[MX_CACHE_MAX];
};

/* ---- small helpers ---------------------------------------------------------------------- */

/* "<code> <text>", falling back to the code and a fixed text if it does not fit. */
static void set_result(struct mx_result *out, int status, const char *code, const char *what,
                       const char *name)
{
    out->status = status;
    if (str_format(out->why, sizeof out->why, "%s %s%s%s", code, name ? name : "", name ? ": " : "",
                   what) < 0)
        (void)str_format(out->why, sizeof out->why, "%s %s", code, "DNS lookup failed");
}

static long ms_until(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(t->tv_sec - now.tv_sec) * 1000 + (t->tv_nsec - now.tv_nsec) / 1000000;
}

int mx_addr_format(const struct sockaddr_storage *sa, char *dst, size_t dstsize)
{
    const void *a;
    if (sa->ss_family == AF_INET)
        a = &((const struct sockaddr_in *)sa)->sin_addr;
    else if (sa->ss_family == AF_INET6)
        a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
    else
        return -1;
    if (dstsize > 1024)
        dstsize = 1024;
    if (inet_ntop(sa->ss_family, a, dst, (socklen_t)dstsize) == NULL)
        return -1;
    return 0;
}

/* Fills sa from raw address bytes (4 or 16), port 0. */
static int sa_from_bytes(struct sockaddr_storage *sa, const unsigned char *b, size_t len)
{
    memset(sa, 0, sizeof *sa);
    if (len == 4) {
        struct sockaddr_in *in = (struct sockaddr_in *)sa;
        in->sin_family = AF_INET;
        memcpy(&in->sin_addr, b, 4);
        return 0;
    }
    if (len == 16) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
        in6->sin6_family = AF_INET6;
        memcpy(&in6->sin6_addr, b, 16);
        return 0;
    }
    return -1;
}

static int parse_port(const char *s, unsigned *port)
{
    uint64_t v;
    if (parse_u64(s, &v) < 0 || v == 0 || v > 65535)
        return -1;
    *port = (unsigned)v;
    return 0;
}

/* ---- the pure parts --------------------------------------------------------------------- */

static int sa_from_text(struct sockaddr_storage *sa, int family, const char *text, unsigned port)
{
    unsigned char b[16];
    if (inet_pton(family, text, b) != 1)
        return -1;
    if (sa_from_bytes(sa, b, family == AF_INET ? 4 : 16) < 0)
        return -1;
    if (family == AF_INET)
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
    return 0;
}

int mx_parse_resolver(const char *s, struct sockaddr_storage *sa)
{
    char host[64];
    unsigned port = 53;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (end == NULL || str_copy_n(host, sizeof host, s + 1, (size_t)(end - s - 1)) < 0)
            return -1;
        if (end[1] != '\0' && (end[1] != ':' || parse_port(end + 2, &port) < 0))
            return -1;
        return sa_from_text(sa, AF_INET6, host, port);
    }
    const char *colon = strchr(s, ':');
    if (colon != NULL && strchr(colon + 1, ':') != NULL) /* a bare IPv6 address */
        return sa_from_text(sa, AF_INET6, s, port);
    if (colon == NULL)
        return sa_from_text(sa, AF_INET, s, port);
    if (str_copy_n(host, sizeof host, s, (size_t)(colon - s)) < 0 ||
        parse_port(colon + 1, &port) < 0)
        return -1;
    return sa_from_text(sa, AF_INET, host, port);
}

int mx_domain_literal(const char *domain, struct mx_result *out)
{
    char inner[MX_NAME_SIZE];
    size_t len = strlen(domain);
    if (len == 0 || domain[0] != '[')
        return 0;
    memset(out, 0, sizeof *out);
    if (domain[len - 1] != ']' || str_copy_n(inner, sizeof inner, domain + 1, len - 2) < 0) {
        set_result(out, MX_PERMFAIL, "5.1.3", "malformed address literal", NULL);
        return 1;
    }
    int family = AF_INET;
    const char *text = inner;
    if (str_iprefix(inner, "IPv6:")) {
        family = AF_INET6;
        text = inner + 5;
    }
    struct mx_host *h = &out->hosts[0];
    if (sa_from_text(&h->addrs[0], family, text, 0) < 0 ||
        str_copy(h->name, sizeof h->name, domain) < 0) {
        set_result(out, MX_PERMFAIL, "5.1.3", "bad or unsupported address literal", NULL);
        return 1;
    }
    str_lower(h->name);
    h->n_addrs = 1;
    out->n_hosts = 1;
    out->implicit = 1;
    out->status = MX_OK;
    return 1;
}

/* Insertion sort on (pref, random key): n is at most MX_MAX_HOSTS. */
void mx_sort_hosts(struct mx_host *hosts, size_t n)
{
    uint32_t key[MX_MAX_HOSTS];
    struct mx_host tmp;
    if (n > MX_MAX_HOSTS)
        n = MX_MAX_HOSTS;
    for (size_t i = 0; i < n; i++)
        key[i] = randombytes_random();
    for (size_t i = 1; i < n; i++) {
        size_t j = i;
        uint32_t k = key[i];
        tmp = hosts[i];
        while (j > 0 && (hosts[j - 1].pref > tmp.pref ||
                         (hosts[j - 1].pref == tmp.pref && key[j - 1] > k))) {
            hosts[j] = hosts[j - 1];
            key[j] = key[j - 1];
            j--;
        }
        hosts[j] = tmp;
        key[j] = k;
    }
}

/* ---- resolver --------------------------------------------------------------------------- */

static int resolver_from_conf(struct mx_resolver *r, const char *spec, char *err, size_t errlen)
{
    struct sockaddr_storage sa;
    uint16_t port = 53;
    if (mx_parse_resolver(spec, &sa) < 0) {
        (void)str_format(err, errlen, "dns_resolver: cannot parse \"%.64s\"", spec);
        return -1;
    }
    r->res = ldns_resolver_new();
    ldns_rdf *ns = ldns_sockaddr_storage2rdf(&sa, &port);
    if (r->res == NULL || ns == NULL ||
        ldns_resolver_push_nameserver(r->res, ns) != LDNS_STATUS_OK) {
        ldns_rdf_deep_free(ns);
        (void)str_format(err, errlen, "dns_resolver: out of memory");
        return -1;
    }
    ldns_rdf_deep_free(ns);
    ldns_resolver_set_port(r->res, port);
    return 0;
}

static int resolver_from_file(struct mx_resolver *r, char *err, size_t errlen)
{
    ldns_status st = ldns_resolver_new_frm_file(&r->res, NULL);
    if (st != LDNS_STATUS_OK) {
        r->res = NULL;
        (void)str_format(err, errlen, "/etc/resolv.conf: %s", ldns_get_errorstr_by_id(st));
        return -1;
    }
    if (ldns_resolver_nameserver_count(r->res) == 0) { /* as the C library does */
        struct sockaddr_storage sa;
        uint16_t port;
        ldns_rdf *ns = NULL;
        if (sa_from_text(&sa, AF_INET, "127.0.0.1", 53) < 0 ||
            (ns = ldns_sockaddr_storage2rdf(&sa, &port)) == NULL ||
            ldns_resolver_push_nameserver(r->res, ns) != LDNS_STATUS_OK) {
            ldns_rdf_deep_free(ns);
            (void)str_format(err, errlen, "resolver: out of memory");
            return -1;
        }
        ldns_rdf_deep_free(ns);
    }
    return 0;
}

struct mx_resolver *mx_resolver_new(const char *dns_resolver, unsigned timeout_s, char *err,
                                    size_t errlen)
{
    if (sodium_init() < 0) {
        (void)str_format(err, errlen, "libsodium cannot start");
        return NULL;
    }
    struct mx_resolver *r = calloc(1, sizeof *r);
    if (r == NULL) {
        (void)str_format(err, errlen, "out of memory");
        return NULL;
    }
    int rc = (dns_resolver == NULL || dns_resolver[0] == '\0')
                 ? resolver_from_file(r, err, errlen)
                 : resolver_from_conf(r, dns_resolver, err, errlen);
    if (rc < 0) {
        mx_resolver_free(r);
        return NULL;
    }
    if (timeout_s == 0)
        timeout_s = MX_DEFAULT_TIMEOUT;
    r->timeout_ms = (timeout_s > MX_MAX_TIMEOUT ? MX_MAX_TIMEOUT : timeout_s) * 1000u;
    ldns_resolver_set_recursive(r->res, true);
    ldns_resolver_set_retry(r->res, MX_TRIES);
    ldns_resolver_set_retrans(r->res, 0);
    ldns_resolver_set_random(r->res, false);
    ldns_resolver_set_fallback(r->res, true); /* TCP when the UDP answer is truncated */
    ldns_resolver_set_usevc(r->res, false);
    ldns_resolver_set_dnssec(r->res, true); /* DO: a validating resolver then says AD */
    ldns_resolver_set_fail(r->res, false);
    return r;
}

void mx_resolver_free(struct mx_resolver *r)
{
    if (r == NULL)
        return;
    if (r->res != NULL)
        ldns_resolver_deep_free(r->res);
    for (size_t i = 0; i < r->n_cache; i++)
        free(r->cache[i]);
    free(r);
}

/* Sets ldns's wait per attempt so that all attempts fit in what is left of the deadline. */
static int arm_timeout(struct mx_resolver *r)
{
    long left = ms_until(&r->deadline);
    if (left <= 0)
        return -1;
    size_t n_ns = ldns_resolver_nameserver_count(r->res);
    long per = left / (long)(MX_TRIES * (n_ns > 0 ? n_ns : 1));
    if (per < MX_MIN_ATTEMPT_MS)
        per = MX_MIN_ATTEMPT_MS;
    struct timeval tv = {.tv_sec = per / 1000, .tv_usec = (per % 1000) * 1000};
    ldns_resolver_set_timeout(r->res, tv);
    return 0;
}

/* Is pkt the answer to the question q? */
static int answers(const ldns_pkt *pkt, const ldns_pkt *q)
{
    const ldns_rr_list *qa = ldns_pkt_question(pkt), *qq = ldns_pkt_question(q);
    if (ldns_pkt_id(pkt) != ldns_pkt_id(q) || !ldns_pkt_qr(pkt) || qa == NULL || qq == NULL ||
        ldns_rr_list_rr_count(qa) != 1 || ldns_rr_list_rr_count(qq) != 1)
        return 0;
    const ldns_rr *a = ldns_rr_list_rr(qa, 0), *b = ldns_rr_list_rr(qq, 0);
    return ldns_rr_get_type(a) == ldns_rr_get_type(b) &&
           ldns_dname_compare(ldns_rr_owner(a), ldns_rr_owner(b)) == 0;
}

/* Asks for (name, type). Returns 0 with *pkt for NOERROR, -1 (no packet) for NXDOMAIN, 1 for a
 * temporary failure (out->why set, r->temp_seen raised). */
static int query(struct mx_resolver *r, const ldns_rdf *name, ldns_rr_type type, ldns_pkt **pkt,
                 const char *text_name, struct mx_result *out)
{
    ldns_pkt *q = NULL;
    *pkt = NULL;
    if (arm_timeout(r) < 0) {
        set_result(out, MX_TEMPFAIL, "4.4.3", "DNS lookup timed out", text_name);
        r->temp_seen = 1;
        return 1;
    }
    ldns_status st =
        ldns_resolver_prepare_query_pkt(&q, r->res, name, type, LDNS_RR_CLASS_IN, LDNS_RD);
    if (st == LDNS_STATUS_OK)
        st = ldns_resolver_send_pkt(pkt, r->res, q);
    if (st == LDNS_STATUS_OK && (*pkt == NULL || !answers(*pkt, q)))
        st = LDNS_STATUS_ERR;
    ldns_pkt_free(q);
    if (st != LDNS_STATUS_OK) {
        ldns_pkt_free(*pkt);
        *pkt = NULL;
        char what[128];
        if (st != LDNS_STATUS_ERR)
            r->no_answer = 1;
        if (st == LDNS_STATUS_ERR)
            (void)str_copy(what, sizeof what, "DNS lookup failed (no answer or a bad one)");
        else if (str_format(what, sizeof what, "no answer from the DNS server (%s)",
                            ldns_get_errorstr_by_id(st)) < 0)
            (void)str_copy(what, sizeof what, "no answer from the DNS server");
        set_result(out, MX_TEMPFAIL, "4.4.3", what, text_name);
        r->temp_seen = 1;
        return 1;
    }
    r->got_answer = 1;
    r->ad = ldns_pkt_ad(*pkt);
    ldns_pkt_rcode rc = ldns_pkt_get_rcode(*pkt);
    if (rc == LDNS_RCODE_NOERROR)
        return 0;
    ldns_pkt_free(*pkt);
    *pkt = NULL;
    if (rc == LDNS_RCODE_NXDOMAIN)
        return -1;
    ldns_lookup_table *lt = ldns_lookup_by_id(ldns_rcodes, (int)rc);
    char what[64];
    (void)str_format(what, sizeof what, "DNS lookup failed: %s", lt ? lt->name : "error");
    set_result(out, MX_TEMPFAIL, "4.4.3", what, text_name);
    r->temp_seen = 1;
    return 1;
}

/* Adds the A or AAAA records of list (those owned by owner, if owner is not NULL) to h.
 * Returns how many records of that type the list had for the owner. */
static size_t add_addrs(struct mx_host *h, const ldns_rr_list *list, ldns_rr_type type,
                        const ldns_rdf *owner)
{
    size_t seen = 0;
    for (size_t i = 0; list != NULL && i < ldns_rr_list_rr_count(list); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(list, i);
        if (ldns_rr_get_type(rr) != type ||
            (owner != NULL && ldns_dname_compare(ldns_rr_owner(rr), owner) != 0))
            continue;
        seen++;
        const ldns_rdf *a = ldns_rr_a_address(rr);
        if (a == NULL || h->n_addrs >= MX_MAX_ADDRS)
            continue;
        if (sa_from_bytes(&h->addrs[h->n_addrs], ldns_rdf_data(a), ldns_rdf_size(a)) == 0)
            h->n_addrs++;
    }
    return seen;
}

/* Fills h's addresses: from the additional section of mxpkt (may be NULL) where it has them,
 * else by asking. A CNAME on the way is followed as the resolver gives it. */
static void resolve_host(struct mx_resolver *r, struct mx_host *h, const ldns_pkt *mxpkt,
                         struct mx_result *out)
{
    static const ldns_rr_type types[2] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_AAAA};
    char fq[MX_NAME_SIZE + 1];
    ldns_rdf *name = NULL;
    if (str_format(fq, sizeof fq, "%s.", h->name) < 0 ||
        (name = ldns_dname_new_frm_str(fq)) == NULL)
        return;
    h->dnssec = 1;
    for (size_t t = 0; t < 2; t++) {
        if (mxpkt != NULL && add_addrs(h, ldns_pkt_additional(mxpkt), types[t], name) > 0) {
            h->dnssec &= ldns_pkt_ad(mxpkt);
            continue;
        }
        ldns_pkt *pkt;
        int rc = query(r, name, types[t], &pkt, h->name, out);
        h->dnssec &= rc != 1 && r->ad;
        if (rc == 0)
            add_addrs(h, ldns_pkt_answer(pkt), types[t], NULL);
        ldns_pkt_free(pkt);
        if (rc < 0) /* NXDOMAIN: the name has no records of any type */
            break;
    }
    ldns_rdf_deep_free(name);
}

/* Keeps only hosts with addresses, in order. */
static void drop_addressless(struct mx_result *out)
{
    size_t k = 0;
    for (size_t i = 0; i < out->n_hosts; i++) {
        if (out->hosts[i].n_addrs == 0)
            continue;
        if (k != i)
            out->hosts[k] = out->hosts[i];
        k++;
    }
    out->n_hosts = k;
}

/* Adds one MX record to out->hosts, keeping the MX_MAX_HOSTS lowest preferences and one
 * entry per exchange. Returns 1 if the exchange is the root ("."), else 0. */
static int add_mx(struct mx_result *out, const ldns_rr *rr)
{
    const ldns_rdf *pref = ldns_rr_mx_preference(rr), *exch = ldns_rr_mx_exchange(rr);
    if (pref == NULL || exch == NULL)
        return 0;
    if (ldns_dname_label_count(exch) == 0)
        return 1;
    char *text = ldns_rdf2str(exch);
    char name[MX_NAME_SIZE];
    size_t len = text ? strlen(text) : 0;
    if (len > 1 && text[len - 1] == '.')
        len--;
    int bad = text == NULL || str_copy_n(name, sizeof name, text, len) < 0;
    free(text);
    if (bad)
        return 0;
    str_lower(name);
    unsigned p = ldns_rdf2native_int16(pref);
    for (size_t i = 0; i < out->n_hosts; i++) {
        if (strcmp(out->hosts[i].name, name) == 0) {
            if (p < out->hosts[i].pref)
                out->hosts[i].pref = p;
            return 0;
        }
    }
    size_t slot = out->n_hosts;
    if (slot == MX_MAX_HOSTS) { /* full: replace the worst, if this one is better */
        slot = 0;
        for (size_t i = 1; i < MX_MAX_HOSTS; i++)
            if (out->hosts[i].pref > out->hosts[slot].pref)
                slot = i;
        if (out->hosts[slot].pref <= p)
            return 0;
    } else {
        out->n_hosts++;
    }
    memset(&out->hosts[slot], 0, sizeof out->hosts[slot]);
    memcpy(out->hosts[slot].name, name, strlen(name) + 1);
    out->hosts[slot].pref = p;
    return 0;
}

/* No MX: the domain's own addresses, as one host of preference 0. */
static void implicit_mx(struct mx_resolver *r, const char *domain, struct mx_result *out,
                        const char *none_text)
{
    struct mx_host *h = &out->hosts[0];
    memset(h, 0, sizeof *h);
    memcpy(h->name, domain, strlen(domain) + 1);
    out->implicit = 1;
    out->n_hosts = 1;
    resolve_host(r, h, NULL, out);
    out->dnssec = h->dnssec;
    if (h->n_addrs > 0) {
        out->status = MX_OK;
        out->why[0] = '\0';
        return;
    }
    out->n_hosts = 0;
    if (!r->temp_seen)
        set_result(out, MX_PERMFAIL, "5.1.2", none_text, domain);
}

static void lookup_dns(struct mx_resolver *r, const char *domain, struct mx_result *out)
{
    char fq[MX_NAME_SIZE + 1];
    ldns_rdf *name = NULL;
    ldns_pkt *pkt = NULL;
    if (str_format(fq, sizeof fq, "%s.", domain) < 0 ||
        (name = ldns_dname_new_frm_str(fq)) == NULL) {
        set_result(out, MX_PERMFAIL, "5.1.3", "bad domain name", NULL);
        return;
    }
    int rc = query(r, name, LDNS_RR_TYPE_MX, &pkt, domain, out);
    ldns_rdf_deep_free(name);
    if (rc < 0) {
        set_result(out, MX_PERMFAIL, "5.1.2", "domain does not exist (NXDOMAIN)", domain);
        return;
    }
    if (rc > 0)
        return;
    out->dnssec = r->ad;
    size_t n_mx = 0, n_root = 0;
    const ldns_rr_list *ans = ldns_pkt_answer(pkt);
    for (size_t i = 0; i < ldns_rr_list_rr_count(ans); i++) {
        const ldns_rr *rr = ldns_rr_list_rr(ans, i);
        if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_MX)
            continue;
        n_mx++;
        n_root += (size_t)add_mx(out, rr);
    }
    if (n_mx == 0) {
        ldns_pkt_free(pkt);
        implicit_mx(r, domain, out, "no MX and no address records");
        return;
    }
    if (n_root == n_mx) {
        ldns_pkt_free(pkt);
        set_result(out, MX_PERMFAIL, "5.1.10", "domain accepts no mail (null MX)", domain);
        return;
    }
    mx_sort_hosts(out->hosts, out->n_hosts);
    for (size_t i = 0; i < out->n_hosts; i++)
        resolve_host(r, &out->hosts[i], pkt, out);
    ldns_pkt_free(pkt);
    drop_addressless(out);
    if (out->n_hosts > 0) {
        out->status = MX_OK;
        out->why[0] = '\0';
    } else if (!r->temp_seen) {
        set_result(out, MX_PERMFAIL, "5.4.4", "no MX host has an address", domain);
    }
}

/* ---- the cache and the entry points ----------------------------------------------------- */

static const struct mx_result *cache_find(const struct mx_resolver *r, const char *domain,
                                          int host_only)
{
    for (size_t i = 0; i < r->n_cache; i++)
        if (r->cache[i]->host_only == host_only && strcmp(r->cache[i]->domain, domain) == 0)
            return &r->cache[i]->result;
    return NULL;
}

/* Remembers a result; a full cache forgets its oldest entries first. Out of memory just
 * means no caching. */
static void cache_store(struct mx_resolver *r, const char *domain, int host_only,
                        const struct mx_result *res)
{
    struct mx_cache_entry *e;
    if (r->n_cache < MX_CACHE_MAX) {
        e = malloc(sizeof *e);
        if (e == NULL)
            return;
        r->cache[r->n_cache++] = e;
    } else {
        e = r->cache[r->next_evict];
        r->next_evict = (r->next_evict + 1) % MX_CACHE_MAX;
    }
    memcpy(e->domain, domain, strlen(domain) + 1);
    e->host_only = host_only;
    e->result = *res;
}

static void start_deadline(struct mx_resolver *r)
{
    clock_gettime(CLOCK_MONOTONIC, &r->deadline);
    r->deadline.tv_sec += r->timeout_ms / 1000;
    r->deadline.tv_nsec += (long)(r->timeout_ms % 1000) * 1000000;
    if (r->deadline.tv_nsec >= 1000000000) {
        r->deadline.tv_sec++;
        r->deadline.tv_nsec -= 1000000000;
    }
    r->temp_seen = r->got_answer = r->no_answer = 0;
    /* A server that timed out in an earlier lookup gets another chance. */
    for (size_t i = 0; i < ldns_resolver_nameserver_count(r->res); i++)
        ldns_resolver_set_nameserver_rtt(r->res, i, LDNS_RESOLV_RTT_MIN);
}

/* A bare IPv4 or IPv6 address as a host name (smarthost 127.0.0.1): 1 if it was one. */
static int bare_address(const char *host, struct mx_result *out)
{
    struct mx_host *h = &out->hosts[0];
    if (sa_from_text(&h->addrs[0], AF_INET, host, 0) < 0 &&
        sa_from_text(&h->addrs[0], AF_INET6, host, 0) < 0)
        return 0;
    if (str_copy(h->name, sizeof h->name, host) < 0)
        return 0;
    h->n_addrs = 1;
    out->n_hosts = 1;
    out->implicit = 1;
    out->status = MX_OK;
    return 1;
}

static int lookup(struct mx_resolver *r, const char *domain, int host_only, struct mx_result *out)
{
    char norm[MX_NAME_SIZE];
    if (mx_domain_literal(domain, out))
        return out->status;
    memset(out, 0, sizeof *out);
    if (host_only && bare_address(domain, out))
        return out->status;
    memset(out, 0, sizeof *out);
    if (domain_normalise(norm, sizeof norm, domain,
                         DOMAIN_TRAILING_DOT | (host_only ? DOMAIN_HOST_NAME : 0)) < 0) {
        set_result(out, MX_PERMFAIL, "5.1.3", "bad domain name", NULL);
        return out->status;
    }
    const struct mx_result *hit = cache_find(r, norm, host_only);
    if (hit != NULL) {
        *out = *hit;
        return out->status;
    }
    if (r->silent_lookups >= MX_DEAD_AFTER) {
        set_result(out, MX_TEMPFAIL, "4.4.3", "DNS server not answering (gave up for this run)",
                   norm);
        return out->status;
    }
    start_deadline(r);
    out->status = MX_TEMPFAIL;
    if (host_only)
        implicit_mx(r, norm, out, "no address records");
    else
        lookup_dns(r, norm, out);
    if (r->got_answer)
        r->silent_lookups = 0;
    else if (r->no_answer)
        r->silent_lookups++;
    cache_store(r, norm, host_only, out);
    return out->status;
}

int mx_lookup(struct mx_resolver *r, const char *domain, struct mx_result *out)
{
    return lookup(r, domain, 0, out);
}

int mx_lookup_host(struct mx_resolver *r, const char *host, struct mx_result *out)
{
    return lookup(r, host, 1, out);
}

/* ---- mail that would come back here --------------------------------------------------- */

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return memcmp(&((const struct sockaddr_in *)a)->sin_addr,
                      &((const struct sockaddr_in *)b)->sin_addr, 4) == 0;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, 16) == 0;
    return 0;
}

/* Is h this host: named hostname, or with one of our addresses? */
static int is_self(const struct mx_host *h, const char *hostname,
                   const struct sockaddr_storage *own, size_t n_own)
{
    if (hostname && hostname[0] && str_ieq(h->name, hostname))
        return 1;
    for (size_t i = 0; i < h->n_addrs; i++)
        for (size_t j = 0; j < n_own; j++)
            if (same_addr(&h->addrs[i], &own[j]))
                return 1;
    return 0;
}

int mx_drop_self_from(struct mx_result *out, const char *domain, const char *hostname,
                      const struct sockaddr_storage *own, size_t n_own)
{
    if (out->status != MX_OK)
        return out->status;
    size_t keep = out->n_hosts;
    for (size_t i = 0; i < out->n_hosts; i++)
        if (is_self(&out->hosts[i], hostname, own, n_own)) {
            unsigned best = out->hosts[i].pref; /* sorted: the first of ours is the best */
            for (keep = 0; keep < out->n_hosts && out->hosts[keep].pref < best; keep++)
                ;
            break;
        }
    out->n_hosts = keep;
    if (keep == 0) {
        out->status = MX_PERMFAIL;
        if (str_format(out->why, sizeof out->why, "5.4.6 mail for %s loops back to myself",
                       domain) < 0)
            (void)str_copy(out->why, sizeof out->why, "5.4.6 mail loops back to myself");
    }
    return out->status;
}

int mx_own_addrs(struct sockaddr_storage *own, size_t max)
{
    struct ifaddrs *list;
    size_t n = 0;
    if (getifaddrs(&list) != 0)
        return -1;
    for (struct ifaddrs *i = list; i && n < max; i = i->ifa_next) {
        if (!i->ifa_addr ||
            (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6))
            continue;
        memset(&own[n], 0, sizeof own[n]);
        memcpy(&own[n++], i->ifa_addr,
               i->ifa_addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                                 : sizeof(struct sockaddr_in6));
    }
    freeifaddrs(list);
    return (int)n;
}

int mx_drop_self(struct mx_result *out, const char *domain, const char *hostname)
{
    struct sockaddr_storage own[MX_MAX_OWN];
    int n = mx_own_addrs(own, MX_MAX_OWN);
    return mx_drop_self_from(out, domain, hostname, own, n > 0 ? (size_t)n : 0);
}

/* ---- TLSA (DANE) ------------------------------------------------------------------------ */

static void add_tlsa(struct mx_tlsa *out, const ldns_rr *rr)
{
    if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TLSA)
        return;
    out->n_seen++;
    if (ldns_rr_rd_count(rr) != 4 || out->n == MX_MAX_TLSA)
        return;
    const ldns_rdf *f[4];
    for (size_t i = 0; i < 4; i++)
        f[i] = ldns_rr_rdf(rr, i);
    if (ldns_rdf_size(f[0]) != 1 || ldns_rdf_size(f[1]) != 1 || ldns_rdf_size(f[2]) != 1 ||
        ldns_rdf_size(f[3]) > MX_TLSA_DATA)
        return;
    out->rr[out->n].usage = *ldns_rdf_data(f[0]);
    out->rr[out->n].selector = *ldns_rdf_data(f[1]);
    out->rr[out->n].mtype = *ldns_rdf_data(f[2]);
    out->rr[out->n].len = ldns_rdf_size(f[3]);
    memcpy(out->rr[out->n].data, ldns_rdf_data(f[3]), ldns_rdf_size(f[3]));
    out->n++;
}

int mx_lookup_tlsa(struct mx_resolver *r, const char *host, unsigned port, struct mx_tlsa *out)
{
    char fq[MX_NAME_SIZE + 32];
    struct mx_result res;
    ldns_rdf *name = NULL;
    ldns_pkt *pkt = NULL;
    memset(out, 0, sizeof *out);
    out->status = MX_TEMPFAIL;
    if (str_format(fq, sizeof fq, "_%u._tcp.%s.", port, host) < 0 ||
        (name = ldns_dname_new_frm_str(fq)) == NULL) {
        (void)str_copy(out->why, sizeof out->why, "4.4.3 bad name for a TLSA lookup");
        return out->status;
    }
    memset(&res, 0, sizeof res);
    start_deadline(r);
    int rc = query(r, name, LDNS_RR_TYPE_TLSA, &pkt, fq, &res);
    ldns_rdf_deep_free(name);
    if (rc > 0) {
        (void)str_copy(out->why, sizeof out->why, res.why);
        return out->status;
    }
    out->dnssec = r->ad;
    const ldns_rr_list *ans = rc == 0 ? ldns_pkt_answer(pkt) : NULL;
    for (size_t i = 0; ans != NULL && i < ldns_rr_list_rr_count(ans); i++)
        add_tlsa(out, ldns_rr_list_rr(ans, i));
    ldns_pkt_free(pkt);
    out->status = out->n_seen > 0 ? MX_OK : MX_PERMFAIL;
    return out->status;
}
