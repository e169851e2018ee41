/*
 * mx: where mail for a domain goes. MX, A and AAAA resolution with ldns, for queue-run only
 * (it lives in lib/libyubin-mx.a so that smtp-in and pop3-in never link ldns).
 *
 * Rules (RFC 5321 section 5.1, RFC 7505):
 *  - MX records are sorted by preference, lowest first; hosts of equal preference are put in a
 *    random order (libsodium randombytes) so load spreads over them.
 *  - Each exchange gets its A and AAAA addresses (A first), taken from the additional section
 *    of the MX answer when it has records of that family for the host, else asked for. An
 *    exchange without any address is skipped.
 *  - No MX record (NODATA) -> the domain's own A/AAAA as an implicit MX of preference 0.
 *  - A single MX `0 .` (null MX) -> permanent failure "5.1.10".
 *  - NXDOMAIN -> permanent "5.1.2". No MX and no address -> permanent "5.1.2".
 *  - SERVFAIL, REFUSED, any other error or a timeout -> temporary "4.4.3".
 *  - MX records exist but no exchange has an address: temporary "4.4.3" if any lookup failed
 *    temporarily, else permanent "5.4.4".
 *  - A domain literal "[192.0.2.1]" or "[IPv6:2001:db8::1]" is that address, without DNS.
 *  - One lookup of a domain per resolver (per run): results, failures included, are cached.
 *  - An MX of "." among other MX records is ignored (RFC 7505 forbids the mix).
 *  - Every lookup ends within the resolver's timeout (plus a fraction of a second); counts of
 *    hosts and addresses are bounded, extra records are ignored. After 3 lookups in a row in
 *    which no server answered anything (timeouts, network errors), every later lookup with
 *    that resolver fails at once with "4.4.3": a resolver lives for one queue run, so a dead
 *    DNS server costs three timeouts per run, not one per domain, while one domain whose
 *    servers are slow costs only its own timeout.
 *
 * Mail for a domain whose MX is this host is found by mx_drop_self (RFC 5321 §5.1: a host
 * that is itself an MX drops the exchanges at and above its own preference).
 *
 * DNSSEC: every query has the DO bit, and an answer counts as authenticated when the resolver
 * set AD in it (RFC 4035 §3.2.3). That means something only when dns_resolver is a
 * validating resolver on a trusted path (loopback), as Postfix's smtp_dns_support_level =
 * dnssec assumes: the AD bit is all we look at, we validate nothing ourselves.
 *
 * It never follows an MX to anything but an address, never hands out a port (the caller sets
 * smtp_port), and never prints: errors come back as text in the result.
 */
#ifndef YUBIN_MX_H
#define YUBIN_MX_H

#include <stddef.h>
#include <sys/socket.h>

#define MX_MAX_HOSTS 16 /* exchanges kept per domain, lowest preferences first */
#define MX_MAX_ADDRS 8  /* addresses kept per exchange */
#define MX_NAME_SIZE 256

enum { MX_OK = 0, MX_TEMPFAIL = 1, MX_PERMFAIL = -1 };

struct mx_host {
    char name[MX_NAME_SIZE]; /* exchange, lower case, no trailing dot ("[1.2.3.4]" for literals) */
    unsigned pref;           /* MX preference; 0 for implicit MX and literals */
    int dnssec;              /* every address answer had the AD bit (see "DNSSEC" below) */
    size_t n_addrs;
    struct sockaddr_storage addrs[MX_MAX_ADDRS]; /* AF_INET / AF_INET6, port 0 */
};

struct mx_result {
    int status;     /* MX_OK, MX_TEMPFAIL or MX_PERMFAIL */
    char why[256];  /* on failure: "<enhanced code> <text>", e.g. "5.1.10 null MX ..." */
    int implicit;   /* 1 if hosts[0] is the domain itself (no MX records) */
    int dnssec;     /* the MX answer (for an implicit MX: the domain's addresses) had AD */
    size_t n_hosts; /* > 0 when status is MX_OK */
    struct mx_host hosts[MX_MAX_HOSTS];
};

struct mx_resolver;

/* dns_resolver as in yubin.conf: "" (or NULL) = /etc/resolv.conf, else "addr", "addr:port",
 * "[v6addr]" or "[v6addr]:port". timeout_s bounds one mx_lookup (0 = 10 s; at most 600). Returns
 * NULL with a reason in err on failure. */
struct mx_resolver *mx_resolver_new(const char *dns_resolver, unsigned timeout_s, char *err,
                                    size_t errlen);
/* Resolves domain (any case, one trailing dot allowed) into out. Returns out->status. A
 * domain already looked up with this resolver is answered from the cache. */
int mx_lookup(struct mx_resolver *r, const char *domain, struct mx_result *out);
/* The addresses of one host, without MX (for a smarthost): a name's A/AAAA as one host of
 * preference 0, or a bare address "192.0.2.1" / "2001:db8::1", or a literal. NXDOMAIN or no
 * address is a permanent "5.1.2" failure; cached like mx_lookup, apart from it. */
int mx_lookup_host(struct mx_resolver *r, const char *host, struct mx_result *out);
void mx_resolver_free(struct mx_resolver *r);

/* TLSA records of _<port>._tcp.<host> (RFC 6698, for DANE, RFC 7672). */
#define MX_MAX_TLSA 8
#define MX_TLSA_DATA 64 /* SHA-256/512 digests; a full certificate (type 0) is skipped */
struct mx_tlsa {
    int status; /* MX_OK: n_seen records, n of them kept in rr (the others were too big or
                 * too many); MX_PERMFAIL: none (NXDOMAIN or NODATA);
                 * MX_TEMPFAIL: the lookup failed (why) */
    int dnssec; /* the answer (or the denial) had AD */
    char why[256];
    size_t n, n_seen;
    struct {
        unsigned char usage, selector, mtype;
        size_t len;
        unsigned char data[MX_TLSA_DATA];
    } rr[MX_MAX_TLSA];
};
/* Looks up the TLSA records of host at port (not cached). Returns out->status. */
int mx_lookup_tlsa(struct mx_resolver *r, const char *host, unsigned port, struct mx_tlsa *out);

/* Mail that would come back here (a loop), as Postfix finds it: when an exchange of out is
 * this host (its name is hostname, or one of its addresses is an address of this host's
 * interfaces, getifaddrs), the exchanges of that preference and above are dropped (we are
 * one of them: the better ones are where mail goes from here); when none is left, out fails
 * for good with "5.4.6 mail for <domain> loops back to myself". Only for MX lookups: a
 * smarthost on this host (a content filter on another port) is no loop. Returns
 * out->status. */
int mx_drop_self(struct mx_result *out, const char *domain, const char *hostname);

/* "192.0.2.1" or "2001:db8::1" for an address of a result. 0, or -1 if it does not fit. */
int mx_addr_format(const struct sockaddr_storage *sa, char *dst, size_t dstsize);

/* The pure parts, shared with the unit tests. */

/* Parses a dns_resolver string into sa (port set; 53 if absent). 0 or -1. */
int mx_parse_resolver(const char *s, struct sockaddr_storage *sa);
/* If domain is a literal "[...]", fills out (status and the one host) and returns 1; returns
 * 0 if it is not a literal. A malformed literal gives a permanent "5.1.3" failure. */
int mx_domain_literal(const char *domain, struct mx_result *out);
/* mx_drop_self with this host's addresses given (own[0..n_own); any port). */
int mx_drop_self_from(struct mx_result *out, const char *domain, const char *hostname,
                      const struct sockaddr_storage *own, size_t n_own);
/* This host's interface addresses (getifaddrs, port 0), at most max: how many, or -1. */
int mx_own_addrs(struct sockaddr_storage *own, size_t max);
#define MX_MAX_OWN 256

/* Sorts hosts by preference, shuffling hosts of equal preference. */
void mx_sort_hosts(struct mx_host *hosts, size_t n);

#endif
