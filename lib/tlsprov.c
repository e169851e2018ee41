/*
 * tlsprov: a filtered view of libcrypto's default provider for server TLS (tlsprov.h).
 * It must never offer an algorithm the default provider does not offer, nor alter one.
 */
#include "config.h"

#include <string.h>

#include <openssl/core.h>
#include <openssl/core_dispatch.h>
#include <openssl/crypto.h>
#include <openssl/provider.h>

#include "tlsprov.h"
#include "util.h"

/* libcrypto's built-in default provider; reachable when libcrypto.a is linked in. */
extern OSSL_provider_init_fn ossl_default_provider_init __attribute__((weak));

/* What TLS can use: the bulk ciphers of every TLS cipher suite OpenSSL has (tls_ciphers may
 * name any of them), AES-256-CTR and -ECB for the random generator (CTR-DRBG), the handshake
 * digests, and the decoders of the key types a certificate can have. Every other operation is
 * passed whole. */
static const char *const ciphers[] = {"AES-128-GCM",
                                      "AES-256-GCM",
                                      "ChaCha20-Poly1305",
                                      "AES-128-CCM",
                                      "AES-256-CCM",
                                      "AES-128-CBC",
                                      "AES-256-CBC",
                                      "AES-128-CBC-HMAC-SHA1",
                                      "AES-256-CBC-HMAC-SHA1",
                                      "AES-128-CBC-HMAC-SHA256",
                                      "AES-256-CBC-HMAC-SHA256",
                                      "AES-256-CTR",
                                      "AES-256-ECB",
                                      "DES-EDE3-CBC",
                                      "CAMELLIA-128-CBC",
                                      "CAMELLIA-256-CBC",
                                      "ARIA-128-GCM",
                                      "ARIA-256-GCM",
                                      NULL};
static const char *const digests[] = {"SHA1",     "SHA2-224", "SHA2-256", "SHA2-384",
                                      "SHA2-512", "MD5",      "MD5-SHA1", NULL};
static const char *const decoders[] = {"RSA",     "RSA-PSS", "EC",  "X25519", "X448",
                                       "ED25519", "ED448",   "DER", NULL};

#define KEPT_MAX 64

static OSSL_FUNC_provider_query_operation_fn *default_query;
static OSSL_DISPATCH dispatch[32];
static struct {
    int made;
    OSSL_ALGORITHM alg[KEPT_MAX + 1];
} kept[3];

/* Whether the first of the names "A:B:C" is in list. */
static int listed(const char *names, const char *const *list)
{
    size_t n = strcspn(names, ":");
    for (; *list != NULL; list++)
        if (strlen(*list) == n && strncmp(names, *list, n) == 0)
            return 1;
    return 0;
}

static const OSSL_ALGORITHM *query(void *provctx, int op, int *no_cache)
{
    const OSSL_ALGORITHM *all = default_query(provctx, op, no_cache);
    int i = op == OSSL_OP_CIPHER ? 0 : op == OSSL_OP_DIGEST ? 1 : op == OSSL_OP_DECODER ? 2 : -1;
    if (i < 0 || all == NULL)
        return all;
    const char *const *list = i == 0 ? ciphers : i == 1 ? digests : decoders;
    if (!kept[i].made) {
        size_t n = 0;
        for (const OSSL_ALGORITHM *a = all; a->algorithm_names != NULL && n < KEPT_MAX; a++)
            if (listed(a->algorithm_names, list))
                kept[i].alg[n++] = *a;
        kept[i].made = 1;
    }
    *no_cache = 0;
    return kept[i].alg;
}

static int init(const OSSL_CORE_HANDLE *handle, const OSSL_DISPATCH *in, const OSSL_DISPATCH **out,
                void **provctx)
{
    const OSSL_DISPATCH *d;
    if (ossl_default_provider_init(handle, in, &d, provctx) != 1)
        return 0;
    size_t n = 0;
    for (; d[n].function_id != 0 && n + 1 < ARRAY_LEN(dispatch); n++) {
        dispatch[n] = d[n];
        if (d[n].function_id == OSSL_FUNC_PROVIDER_QUERY_OPERATION) {
            default_query = OSSL_FUNC_provider_query_operation(&d[n]);
            dispatch[n].function = (void (*)(void))query;
        }
    }
    dispatch[n].function_id = 0;
    *out = dispatch;
    return default_query != NULL && d[n].function_id == 0;
}

static OSSL_LIB_CTX *ctx;

OSSL_LIB_CTX *tls_libctx(void)
{
    if (ctx != NULL || ossl_default_provider_init == NULL)
        return ctx;
    OSSL_LIB_CTX *c = OSSL_LIB_CTX_new();
    if (c == NULL)
        return NULL;
    if (OSSL_PROVIDER_add_builtin(c, "yubin-tls", init) == 1 &&
        OSSL_PROVIDER_load(c, "yubin-tls") != NULL) {
        return ctx = c;
    }
    OSSL_LIB_CTX_free(c);
    return NULL;
}
