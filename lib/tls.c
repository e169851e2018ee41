/*
 * tls: the house policy on OpenSSL contexts, a handler's handshake, and what a handshake chose
 * (see tls.h; a server's certificate and key are lib/tlsserver's). It must never touch the
 * connection but through netio.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>

#include "conf.h"
#include "log.h"
#include "netio.h"
#include "tls.h"
#include "tlsserver.h"
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
    SSL_CTX_set_read_ahead(ctx, 1);
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

SSL_CTX *tls_server_ready(struct tls_server *t, const char *client)
{
    char why[700];
    SSL_CTX *ctx = tls_server_get(t, why, sizeof why);
    if (ctx == NULL)
        log_msg(LOG_ERR, "client=%s TLS cannot serve: %s", client, why);
    return ctx;
}

int tls_serve(struct netio *n, struct tls_server *t, const char *client, char *desc, size_t size)
{
    char why[256];
    SSL_CTX *ctx = tls_server_ready(t, client);
    if (ctx == NULL)
        return -1;
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
