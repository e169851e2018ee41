/*
 * tlsc: the client side of lib/tls, for outbound SMTP (queue-run through lib/smtpc): the
 * client context, one SSL object per connection prepared for a destination's TLS policy
 * (opportunistic, mandatory, PKIX with the MX name, DANE with TLSA records), the tls_policy
 * file, and what a finished handshake came to ("TLSv1.3 TLS_AES_256_GCM_SHA384 dane").
 *
 * It never touches the connection (smtpc does the I/O and the handshake), never makes a
 * DNS query (lib/mx finds the TLSA records), and never lets a policy that requires TLS or
 * authentication be met by less: the caller asks tlsc_check after every handshake.
 */
#ifndef YUBIN_TLSC_H
#define YUBIN_TLSC_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Policy levels, as Postfix's smtp_tls_security_level. */
enum tlsc_level {
    TLSC_NONE = 0, /* never TLS */
    TLSC_MAY,      /* STARTTLS when offered, no certificate check; a failed handshake is retried
                    * in clear; but authenticated TLSA records (DANE) make it TLSC_DANE */
    TLSC_ENCRYPT,  /* TLS required, no certificate check */
    TLSC_DANE,     /* TLS required and the certificate must match an authenticated TLSA
                    * record; without one the mail waits */
    TLSC_VERIFY,   /* TLS required, certificate checked against the system trust store and
                    * the MX host name (PKIX) */
};

/* "none", "may", "encrypt", "dane", "verify" -> level, or -1. */
int tlsc_level_parse(const char *s);
const char *tlsc_level_name(int level);

#define TLSC_MAX_POLICIES 1024

/* The tls_policy file: lines "destination level", '#' comments; a destination is a domain
 * ("example.org"), a domain and its subdomains (".example.org"), or a smarthost's host name. */
struct tlsc_policy {
    size_t n;
    struct {
        char dest[256];
        int level;
    } e[TLSC_MAX_POLICIES];
};

/* Loads path into p ("" = no file: every destination is `may`). A missing file is an error
 * when a path is given. 0, or -1 with "file:line: what" in err. */
int tlsc_policy_load(struct tlsc_policy *p, const char *path, char *err, size_t errlen);
/* The level for domain (any case): an exact line first, then the longest ".suffix" line,
 * else TLSC_MAY. */
int tlsc_policy_level(const struct tlsc_policy *p, const char *domain);

/* The client context: the house policy of lib/tls (tls_policy) with yubin.conf's
 * tls_protocols and tls_ciphers, as smtp-in has it; the system trust store (for verify),
 * DANE enabled. NULL with err set. */
SSL_CTX *tlsc_ctx_new(const char *protocols, const char *ciphers, char *err, size_t errlen);

/* One connection's SSL object for host (the MX host name: SNI, and the name PKIX and DANE-TA
 * check; nexthop, the mail domain, is a second name DANE-TA accepts, RFC 7672 §3.2.2). With
 * dane, TLSA records are added with tlsc_dane_add before the handshake. NULL with err. */
SSL *tlsc_ssl_new(SSL_CTX *ctx, int level, const char *host, const char *nexthop, char *err,
                  size_t errlen);
/* Adds one TLSA record (RFC 6698). 1 if usable, 0 if not (PKIX-TA/PKIX-EE usages, which RFC
 * 7672 §3.1.3 says SMTP must not use, an unknown type, a bad digest length), -1 on error. */
int tlsc_dane_add(SSL *ssl, unsigned usage, unsigned selector, unsigned mtype,
                  const unsigned char *data, size_t len);

/* After the handshake: does the result meet level? 0 yes; -1 no, with the reason in why
 * ("certificate matches no TLSA record (...)", "certificate verify failed: ..."). */
int tlsc_check(SSL *ssl, int level, char *why, size_t whylen);
/* "none" (no TLS), "untrusted", "dane" or "verified", for a finished handshake. */
const char *tlsc_trust(SSL *ssl);
/* "TLSv1.3 TLS_AES_256_GCM_SHA384 dane" for a finished handshake. */
void tlsc_describe(SSL *ssl, char *out, size_t size);

#endif
