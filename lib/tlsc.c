/*
 * tlsc: outbound TLS contexts, per-connection SSL objects, DANE and the tls_policy file (see
 * tlsc.h). It must never accept a handshake for a level that requires more than it got, never
 * use a PKIX-TA/PKIX-EE TLSA record (RFC 7672 §3.1.3), and never print.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "tls.h"
#include "tlsc.h"
#include "util.h"

static const char *const level_names[] = {"none", "may", "encrypt", "dane", "verify"};

int tlsc_level_parse(const char *s)
{
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcmp(s, level_names[i]) == 0)
            return (int)i;
    return -1;
}

const char *tlsc_level_name(int level)
{
    if (level < 0 || (size_t)level >= sizeof level_names / sizeof level_names[0])
        return "?";
    return level_names[level];
}

/* ---- the policy file ---- */

/* One line "dest level" (already stripped of comments): 0, or -1 with what in err. */
static int policy_line(struct tlsc_policy *p, char *line, char *what, size_t wlen)
{
    char *dest = strtok(line, " \t"), *lvl = strtok(NULL, " \t"), *more = strtok(NULL, " \t");
    if (dest == NULL)
        return 0;
    if (lvl == NULL || more != NULL)
        return str_copy(what, wlen, "expected \"destination level\""), -1;
    int level = tlsc_level_parse(lvl);
    if (level < 0)
        return str_format(what, wlen, "unknown level \"%s\" (none, may, encrypt, dane, verify)",
                          lvl),
               -1;
    if (p->n == TLSC_MAX_POLICIES)
        return str_format(what, wlen, "more than %d lines", TLSC_MAX_POLICIES), -1;
    if (str_copy(p->e[p->n].dest, sizeof p->e[p->n].dest, dest) < 0)
        return str_copy(what, wlen, "destination too long"), -1;
    str_lower(p->e[p->n].dest);
    p->e[p->n++].level = level;
    return 0;
}

int tlsc_policy_load(struct tlsc_policy *p, const char *path, char *err, size_t errlen)
{
    char line[1024], what[200];
    unsigned lineno = 0;
    p->n = 0;
    if (path == NULL || path[0] == '\0')
        return 0;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        (void)str_format(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len > 0 && line[len - 1] != '\n' && !feof(f)) {
            (void)str_format(err, errlen, "%s:%u: line too long", path, lineno);
            fclose(f);
            return -1;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        line[strcspn(line, "\r\n")] = '\0';
        if (policy_line(p, line, what, sizeof what) < 0) {
            (void)str_format(err, errlen, "%s:%u: %s", path, lineno, what);
            fclose(f);
            return -1;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        (void)str_format(err, errlen, "%s: read error", path);
        return -1;
    }
    return 0;
}

int tlsc_policy_level(const struct tlsc_policy *p, const char *domain)
{
    size_t dlen = strlen(domain), best_len = 0;
    int best = TLSC_MAY;
    if (dlen > 0 && domain[dlen - 1] == '.')
        dlen--;
    for (size_t i = 0; i < p->n; i++) {
        const char *d = p->e[i].dest;
        size_t len = strlen(d);
        if (d[0] != '.' && len == dlen && strncasecmp(d, domain, dlen) == 0)
            return p->e[i].level;
        if (d[0] == '.' && len < dlen && len > best_len &&
            strncasecmp(d, domain + dlen - len, len) == 0) {
            best = p->e[i].level;
            best_len = len;
        }
    }
    return best;
}

/* ---- contexts and connections ---- */

SSL_CTX *tlsc_ctx_new(const char *protocols, const char *ciphers, char *err, size_t errlen)
{
    char buf[256], why[256];
    /* not openssl.cnf: the policy is ours, the same both ways */
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_dane_enable(ctx) <= 0) {
        (void)str_format(err, errlen, "TLS client context: %s",
                         tls_error_text(buf, sizeof buf, "failed"));
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (tls_policy(ctx, protocols, ciphers, why, sizeof why) != 0) {
        (void)str_format(err, errlen, "TLS client context: %s", why);
        SSL_CTX_free(ctx);
        return NULL;
    }
    /* The chain is checked by tlsc_check after the handshake, so that a failure gives the
     * reason and the level decides; the handshake itself never stops at verification. */
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_set_default_verify_paths(ctx) != 1)
        ERR_clear_error(); /* no trust store: `verify` destinations then fail, nothing else */
    return ctx;
}

SSL *tlsc_ssl_new(SSL_CTX *ctx, int level, const char *host, const char *nexthop, char *err,
                  size_t errlen)
{
    char buf[256];
    SSL *ssl = SSL_new(ctx);
    int ok = ssl != NULL;
    int literal = host[0] == '[' || strspn(host, "0123456789.:abcdefABCDEF") == strlen(host);
    if (ok && !literal)
        ok = SSL_set_tlsext_host_name(ssl, host) == 1;
    if (ok && level == TLSC_DANE) {
        ok = SSL_dane_enable(ssl, host) > 0;
        if (ok && nexthop != NULL && nexthop[0] != '\0' && strcasecmp(nexthop, host) != 0)
            ok = SSL_add1_host(ssl, nexthop) == 1;
        /* RFC 7672 §3.1.1: DANE-EE(3) binds the key itself; no name check. */
        if (ok)
            SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);
    } else if (ok && level == TLSC_VERIFY) {
        ok = SSL_set1_host(ssl, host) == 1;
    }
    if (!ok) {
        (void)str_format(err, errlen, "TLS for %s: %s", host,
                         tls_error_text(buf, sizeof buf, "failed"));
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

int tlsc_dane_add(SSL *ssl, unsigned usage, unsigned selector, unsigned mtype,
                  const unsigned char *data, size_t len)
{
    if (usage != 2 && usage != 3)
        return 0;
    int rc = SSL_dane_tlsa_add(ssl, (uint8_t)usage, (uint8_t)selector, (uint8_t)mtype, data, len);
    if (rc < 0) { /* a malformed record (bad digest length...): unusable, not fatal */
        ERR_clear_error();
        return 0;
    }
    return rc > 0 ? 1 : 0;
}

const char *tlsc_trust(SSL *ssl)
{
    if (ssl == NULL)
        return "none";
    if (SSL_get_verify_result(ssl) == X509_V_OK) {
        if (SSL_get0_dane_authority(ssl, NULL, NULL) >= 0)
            return "dane";
        if (SSL_get0_peername(ssl) != NULL) /* a name was asked for, and it matched */
            return "verified";
    }
    return "untrusted";
}

int tlsc_check(SSL *ssl, int level, char *why, size_t whylen)
{
    long v = SSL_get_verify_result(ssl);
    const char *trust = tlsc_trust(ssl);
    if (level == TLSC_DANE && strcmp(trust, "dane") != 0) {
        (void)str_format(why, whylen, "certificate matches no TLSA record (%s)",
                         v == X509_V_OK ? "no DANE match" : X509_verify_cert_error_string(v));
        return -1;
    }
    if (level == TLSC_VERIFY && strcmp(trust, "verified") != 0) {
        (void)str_format(why, whylen, "certificate verification failed: %s",
                         v == X509_V_OK ? "no name matched" : X509_verify_cert_error_string(v));
        return -1;
    }
    return 0;
}

void tlsc_describe(SSL *ssl, char *out, size_t size)
{
    if (ssl == NULL) {
        (void)str_copy(out, size, "none");
        return;
    }
    (void)str_format(out, size, "%s %s %s", SSL_get_version(ssl),
                     SSL_CIPHER_get_name(SSL_get_current_cipher(ssl)), tlsc_trust(ssl));
}
