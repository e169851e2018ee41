/*
 * test-tlskey: lib/tlskey reads every PEM form of an RSA and an EC private key (PKCS#8,
 * PKCS#1, SEC 1 with and without its public point, after a certificate in the same file) into
 * the same key, one that signs; other types through the generic decoder; an encrypted key or
 * garbage gives NULL, never a prompt.
 */
#define OPENSSL_SUPPRESS_DEPRECATED /* EC_KEY: a SEC 1 key without its public point */
#include "config.h"

#include <string.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "tap.h"
#include "tlskey.h"

static char pem[16384];
static size_t pem_len;

/* What the BIO b holds into pem (after `before`), then b freed. */
static void take(BIO *b, const char *before)
{
    char *data;
    long n = BIO_get_mem_data(b, &data);
    size_t k = strlen(before);
    memcpy(pem, before, k);
    memcpy(pem + k, data, (size_t)n);
    pem_len = k + (size_t)n;
    BIO_free(b);
}

/* The key k signs, and key verifies what it signed. */
static int signs(EVP_PKEY *k, EVP_PKEY *key)
{
    unsigned char sig[1024];
    size_t sig_len = sizeof sig;
    EVP_MD_CTX *m = EVP_MD_CTX_new();
    int ok = EVP_DigestSignInit(m, NULL, EVP_sha256(), NULL, k) == 1 &&
             EVP_DigestSign(m, sig, &sig_len, (const unsigned char *)"abc", 3) == 1;
    EVP_MD_CTX_free(m);
    m = EVP_MD_CTX_new();
    ok = ok && EVP_DigestVerifyInit(m, NULL, EVP_sha256(), NULL, key) == 1 &&
         EVP_DigestVerify(m, sig, sig_len, (const unsigned char *)"abc", 3) == 1;
    EVP_MD_CTX_free(m);
    return ok;
}

static void expect(EVP_PKEY *key, const char *what)
{
    EVP_PKEY *k = tls_key_from_pem(pem, pem_len, NULL);
    CHECK(k != NULL && EVP_PKEY_eq(k, key) == 1, "%s: the same key", what);
    CHECK(k != NULL && signs(k, key), "%s: it signs", what);
    EVP_PKEY_free(k);
    ERR_clear_error();
}

static void forms(EVP_PKEY *key, const char *type)
{
    char what[100];
    static const char cert_first[] =
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        "junk -----BEGIN  PRIVATE KEY\n";
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    take(b, "");
    snprintf(what, sizeof what, "%s PKCS#8", type);
    expect(key, what);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL);
    take(b, cert_first);
    snprintf(what, sizeof what, "%s PKCS#8 after a certificate", type);
    expect(key, what);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey_traditional(b, key, NULL, NULL, 0, NULL, NULL);
    take(b, "");
    snprintf(what, sizeof what, "%s traditional (PKCS#1 / SEC 1)", type);
    expect(key, what);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, key, EVP_aes_128_cbc(), NULL, 0, NULL, (void *)"secret");
    take(b, "");
    snprintf(what, sizeof what, "%s encrypted: NULL, no prompt", type);
    CHECK(tls_key_from_pem(pem, pem_len, NULL) == NULL, "%s", what);
    ERR_clear_error();
}

/* SEC 1 and PKCS#8 without the public point (RFC 5915 makes it optional). */
static void without_public(EVP_PKEY *key)
{
    EC_KEY *ec = EC_KEY_dup(EVP_PKEY_get0_EC_KEY(key));
    EC_KEY_set_enc_flags(ec, EC_PKEY_NO_PUBKEY);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_ECPrivateKey(b, ec, NULL, NULL, 0, NULL, NULL);
    take(b, "");
    expect(key, "EC SEC 1 without its public point");
    EVP_PKEY *k = EVP_PKEY_new();
    EVP_PKEY_assign_EC_KEY(k, ec);
    b = BIO_new(BIO_s_mem());
    PEM_write_bio_PKCS8PrivateKey(b, k, NULL, NULL, 0, NULL, NULL);
    take(b, "");
    expect(key, "EC PKCS#8 without its public point");
    EVP_PKEY_free(k);
}

int main(void)
{
    EVP_PKEY *ec = EVP_EC_gen("P-256");
    EVP_PKEY *rsa = EVP_RSA_gen(2048);
    EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    forms(ec, "EC P-256");
    forms(rsa, "RSA 2048");
    without_public(ec);
    BIO *b = BIO_new(BIO_s_mem());
    PEM_write_bio_PrivateKey(b, ed, NULL, NULL, 0, NULL, NULL);
    take(b, "");
    EVP_PKEY *k = tls_key_from_pem(pem, pem_len, NULL);
    CHECK(k != NULL && EVP_PKEY_eq(k, ed) == 1, "Ed25519: through the generic decoder");
    EVP_PKEY_free(k);
    memcpy(pem, "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", 73);
    CHECK(tls_key_from_pem(pem, 73, NULL) == NULL, "garbage in a PRIVATE KEY block: NULL");
    CHECK(tls_key_from_pem("", 0, NULL) == NULL, "nothing: NULL");
    EVP_PKEY_free(ec);
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ed);
    return tap_done();
}
