/*
 * tlskey: a private key from PEM, RSA and EC decoded from their DER directly (tlskey.h).
 * It must never prompt for a passphrase, and never free the DER it decoded from PEM unwiped.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY and RSA: the direct DER decoders */
#include "config.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "tlskey.h"

int tls_no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf, (void)size, (void)rwflag, (void)arg;
    return 0;
}

static EVP_PKEY *from_rsa(RSA *rsa)
{
    EVP_PKEY *k = rsa != NULL ? EVP_PKEY_new() : NULL;
    if (k == NULL || EVP_PKEY_assign_RSA(k, rsa) != 1)
        return RSA_free(rsa), EVP_PKEY_free(k), NULL;
    return k;
}

static EVP_PKEY *from_ec(EC_KEY *ec)
{
    EVP_PKEY *k = ec != NULL ? EVP_PKEY_new() : NULL;
    if (k == NULL || EVP_PKEY_assign_EC_KEY(k, ec) != 1)
        return EC_KEY_free(ec), EVP_PKEY_free(k), NULL;
    return k;
}

/* An ECPrivateKey (SEC 1) of the named curve `curve` (NID_undef: the curve is in it), with
 * its public point computed when it is left out. */
static EVP_PKEY *ec_key(const unsigned char *der, long len, int curve, OSSL_LIB_CTX *libctx)
{
    EC_KEY *ec = curve != NID_undef ? EC_KEY_new_by_curve_name_ex(libctx, NULL, curve) : NULL;
    if (curve != NID_undef && ec == NULL)
        return NULL;
    if (d2i_ECPrivateKey(&ec, &der, len) == NULL)
        return NULL; /* d2i_ECPrivateKey freed ec */
    if (EC_KEY_get0_public_key(ec) == NULL) {
        const EC_GROUP *g = EC_KEY_get0_group(ec);
        EC_POINT *pub = EC_POINT_new(g);
        if (pub == NULL ||
            EC_POINT_mul(g, pub, EC_KEY_get0_private_key(ec), NULL, NULL, NULL) != 1 ||
            EC_KEY_set_public_key(ec, pub) != 1)
            return EC_POINT_free(pub), EC_KEY_free(ec), NULL;
        EC_POINT_free(pub);
    }
    return from_ec(ec);
}

/* A PKCS#8 PrivateKeyInfo of RSA or EC (of a named curve). NULL: another type, or bad. */
static EVP_PKEY *pkcs8_key(const unsigned char *der, long len, OSSL_LIB_CTX *libctx)
{
    PKCS8_PRIV_KEY_INFO *p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &der, len);
    const ASN1_OBJECT *type;
    const unsigned char *inner;
    int inner_len, ptype;
    const void *param;
    const X509_ALGOR *alg;
    EVP_PKEY *k = NULL;
    if (p8 != NULL && PKCS8_pkey_get0(&type, &inner, &inner_len, &alg, p8) == 1) {
        X509_ALGOR_get0(NULL, &ptype, &param, alg);
        if (OBJ_obj2nid(type) == NID_rsaEncryption)
            k = from_rsa(d2i_RSAPrivateKey(NULL, &inner, inner_len));
        else if (OBJ_obj2nid(type) == NID_X9_62_id_ecPublicKey && ptype == V_ASN1_OBJECT)
            k = ec_key(inner, inner_len, OBJ_obj2nid(param), libctx);
    }
    PKCS8_PRIV_KEY_INFO_free(p8);
    return k;
}

/* The DER of the first PEM block named `name` in pem, decoded; NULL when there is none or it
 * does not decode (the caller falls back to the generic decoder). */
static EVP_PKEY *direct(const char *pem, size_t len, const char *name, OSSL_LIB_CTX *libctx)
{
    char *got_name = NULL, *header = NULL;
    unsigned char *der = NULL;
    long der_len = 0;
    EVP_PKEY *k = NULL;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    if (b == NULL || PEM_read_bio_ex(b, &got_name, &header, &der, &der_len,
                                     PEM_FLAG_SECURE | PEM_FLAG_EAY_COMPATIBLE) != 1)
        goto done;
    if (strcmp(got_name, name) == 0 && strcmp(header, "") == 0) {
        const unsigned char *p = der;
        if (strcmp(name, "PRIVATE KEY") == 0)
            k = pkcs8_key(p, der_len, libctx);
        else if (strcmp(name, "RSA PRIVATE KEY") == 0)
            k = from_rsa(d2i_RSAPrivateKey(NULL, &p, der_len));
        else
            k = ec_key(p, der_len, NID_undef, libctx);
    }
done:
    OPENSSL_secure_clear_free(der, (size_t)der_len);
    OPENSSL_free(got_name);
    OPENSSL_free(header);
    BIO_free(b);
    return k;
}

/* Where the first PEM block of a private key in pem starts ("-----BEGIN "), its name
 * ("PRIVATE KEY", ...) in *name; NULL when there is none. */
static const char *key_block(const char *pem, size_t len, const char **name)
{
    static const char *const names[] = {"PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"};
    const char *p = pem, *end = pem + len;
    while ((p = memmem(p, (size_t)(end - p), "-----BEGIN ", 11)) != NULL) {
        const char *q = p + 11;
        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
            size_t n = strlen(names[i]);
            if ((size_t)(end - q) > n + 5 && memcmp(q, names[i], n) == 0 &&
                memcmp(q + n, "-----", 5) == 0)
                return *name = names[i], p;
        }
        p = q;
    }
    return NULL;
}

EVP_PKEY *tls_key_from_pem(const char *pem, size_t len, OSSL_LIB_CTX *libctx)
{
    const char *name = NULL;
    const char *start = len <= 0x7fffffff ? key_block(pem, len, &name) : NULL;
    EVP_PKEY *k = NULL;
    if (start != NULL) {
        ERR_set_mark();
        k = direct(start, len - (size_t)(start - pem), name, libctx);
        ERR_pop_to_mark();
    }
    if (k != NULL || len > 0x7fffffff)
        return k;
    BIO *b = BIO_new_mem_buf(pem, (int)len);
    k = b != NULL ? PEM_read_bio_PrivateKey_ex(b, NULL, tls_no_passphrase, NULL, libctx, NULL)
                  : NULL;
    BIO_free(b);
    return k;
}
