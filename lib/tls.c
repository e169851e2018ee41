/*
 * tls: OpenSSL contexts with the house policy, a server's certificate and key, and what a
 * handshake chose (see tls.h). It must never prompt for a passphrase (under inetd stdin is the
 * socket), never hand out a context whose certificate is expired or whose key does not match,
 * and never touch the connection.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "conf.h"
#include "log.h"
#include "netio.h"
#include "tls.h"
#include "util.h"

static const struct {
    const char *name;
    int version;
} protocols_known[] = {
    {"TLSv1", TLS1_VERSION},
    {"TLSv1.1", TLS1_1_VERSION},
    {"TLSv1.2", TLS1_2_VERSION},
    {"TLSv1.3", TLS1_3_VERSION},
};

/* "TLSv1.2 TLSv1.3" -> the lowest and highest version named. 0, or -1 with why in err. */
static int parse_protocols(const char *text, int *lo, int *hi, char *err, size_t errlen)
{
    char word[16];
    *lo = *hi = 0;
    for (const char *p = text; *p != '\0';) {
        p += strspn(p, " \t,:");
        size_t len = strcspn(p, " \t,:");
        if (len == 0)
            break;
        int v = 0;
        if (str_copy_n(word, sizeof word, p, len) == 0)
            for (size_t i = 0; i < ARRAY_LEN(protocols_known); i++)
                if (strcmp(word, protocols_known[i].name) == 0)
                    v = protocols_known[i].version;
        if (v == 0)
            return str_format(err, errlen,
                              "tls_protocols: unknown protocol \"%.*s\" (TLSv1, TLSv1.1, "
                              "TLSv1.2, TLSv1.3)",
                              (int)(len > 40 ? 40 : len), p),
                   -1;
        *lo = *lo == 0 || v < *lo ? v : *lo;
        *hi = v > *hi ? v : *hi;
        p += len;
    }
    if (*lo == 0)
        return str_format(err, errlen, "tls_protocols: no protocol named"), -1;
    return 0;
}

const char *tls_error_text(char *buf, size_t size, const char *fallback)
{
    unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0)
        return fallback;
    ERR_error_string_n(e, buf, size);
    return buf;
}

int tls_policy(SSL_CTX *ctx, const char *protocols, const char *ciphers, char *err, size_t errlen)
{
    int lo, hi;
    char why[256];
    if (parse_protocols(protocols, &lo, &hi, err, errlen) != 0)
        return -1;
    if (SSL_CTX_set_min_proto_version(ctx, lo) != 1 || SSL_CTX_set_max_proto_version(ctx, hi) != 1)
        return str_format(err, errlen, "tls_protocols: %s",
                          tls_error_text(why, sizeof why, "not supported")),
               -1;
    if (SSL_CTX_set_cipher_list(ctx, ciphers) != 1)
        return str_format(err, errlen, "tls_ciphers: no usable cipher in \"%.200s\"", ciphers), -1;
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_TICKET);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

/* A passphrase prompt would read the socket under inetd: a protected key just fails. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf, (void)size, (void)rwflag, (void)arg;
    return 0;
}

/* "2026-12-01 09:30 UTC" for a certificate date. */
static void asn1_date(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        str_copy(out, size, "(unreadable date)");
}

/* The leaf certificate is valid now. 0, or -1 with why in err. */
static int check_dates(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    char when[64];
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x == NULL)
        return str_format(err, errlen, "tls_cert_file %s: no certificate in it", path), -1;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        asn1_date(X509_get0_notAfter(x), when, sizeof when);
        return str_format(err, errlen, "tls_cert_file %s: the certificate expired on %s", path,
                          when),
               -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        asn1_date(X509_get0_notBefore(x), when, sizeof when);
        return str_format(err, errlen, "tls_cert_file %s: the certificate is not valid before %s",
                          path, when),
               -1;
    }
    return 0;
}

/* Can we open path (as root, now)? The OS's reason is clearer than OpenSSL's. */
static int readable(const char *key, const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return str_format(err, errlen, "%s %s: %s", key, path, strerror(errno)), -1;
    fclose(f);
    return 0;
}

/* Certificate chain, key, match and dates into ctx. 0, or -1 with why in err. */
static int load_pair(SSL_CTX *ctx, const struct yubin_conf *c, char *err, size_t errlen)
{
    char why[256];
    const char *cert = c->tls_cert_file;
    const char *key = c->tls_key_file[0] != '\0' ? c->tls_key_file : c->tls_cert_file;
    const char *key_name = c->tls_key_file[0] != '\0' ? "tls_key_file" : "tls_cert_file";
    if (readable("tls_cert_file", cert, err, errlen) != 0)
        return -1;
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return str_format(err, errlen, "tls_cert_file %s: no PEM certificate (%s)", cert,
                          tls_error_text(why, sizeof why, "?")),
               -1;
    if (readable(key_name, key, err, errlen) != 0)
        return -1;
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
        return str_format(err, errlen, "%s %s: the key does not match the certificate in %s",
                          key_name, key, cert),
               ERR_clear_error(), -1;
    if (SSL_CTX_get0_privatekey(ctx) == NULL)
        return str_format(err, errlen, "%s %s: no usable PEM private key (%s)", key_name, key,
                          tls_error_text(why, sizeof why, "?")),
               -1;
    if (SSL_CTX_check_private_key(ctx) != 1)
        return str_format(err, errlen, "%s %s: the key does not match the certificate in %s",
                          key_name, key, cert),
               ERR_clear_error(), -1;
    return check_dates(ctx, cert, err, errlen);
}

SSL_CTX *tls_server_ctx(const struct yubin_conf *c, char *err, size_t errlen)
{
    char why[256];
    err[0] = '\0';
    if (c->tls_cert_file[0] == '\0')
        return NULL;
    /* Not openssl.cnf: the policy is ours, and the handler starts faster without it. Not the
     * legacy tables of every cipher and digest by name (EVP_get_cipherbyname) either: libssl
     * fetches what it uses from the provider, and filling them was a third of the CPU time of
     * a handler's TLS set-up (bench/README.md). The first call decides; OPENSSL_init_ssl's
     * own request for them is then a no-op. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS |
                            OPENSSL_INIT_NO_LOAD_CONFIG,
                        NULL);
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        str_format(err, errlen, "cannot make a TLS context: %s",
                   tls_error_text(why, sizeof why, "out of memory"));
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (tls_policy(ctx, c->tls_protocols, c->tls_ciphers, err, errlen) != 0 ||
        load_pair(ctx, c, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;
}

int tls_cert_info(SSL_CTX *ctx, char *subject, size_t subject_size, char *until, size_t until_size,
                  int *days_left)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    int days = 0, seconds = 0;
    if (x == NULL)
        return -1;
    asn1_date(X509_get0_notAfter(x), until, until_size);
    if (ASN1_TIME_diff(&days, &seconds, NULL, X509_get0_notAfter(x)) != 1)
        days = -1;
    *days_left = days;
    subject[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, subject, subject_size > 1 ? (int)subject_size - 1 : 0);
        subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    return 0;
}

void tls_describe(const SSL *ssl, char *out, size_t size)
{
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    int alg_bits = 0;
    int bits = cipher != NULL ? SSL_CIPHER_get_bits(cipher, &alg_bits) : 0;
    str_format(out, size, "%s with cipher %s (%d/%d bits)", SSL_get_version(ssl),
               cipher != NULL ? SSL_CIPHER_get_name(cipher) : "none", bits, alg_bits);
}

int tls_serve(struct netio *n, SSL_CTX *ctx, const char *client, char *desc, size_t size)
{
    char why[256];
    errno = 0;
    int rc = netio_tls_accept(n, ctx);
    if (rc != 0) {
        log_msg(LOG_NOTICE, "client=%s TLS handshake failed: %s", client,
                rc == NETIO_TIMEOUT   ? "timeout"
                : errno == ECONNRESET ? "the client closed the connection"
                                      : tls_error_text(why, sizeof why, "connection error"));
        return -1;
    }
    tls_describe(netio_tls(n), desc, size);
    log_msg(LOG_INFO, "client=%s TLS: using %s", client, desc);
    return 0;
}
