/*
 * tlskey: a server's private key from PEM bytes, decoded for the key types a certificate has
 * (RSA, EC: PKCS#8 "PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY") straight from their
 * DER, without OpenSSL 3's generic decoder search: that search tries every decoder of every
 * provider and was a third of a handler's TLS set-up (bench/README.md). Any other key
 * (Ed25519, ...) goes through the generic PEM_read_bio_PrivateKey.
 * It must never prompt for a passphrase (an encrypted key just fails), and it wipes the DER
 * of the key it decoded.
 */
#ifndef YUBIN_TLSKEY_H
#define YUBIN_TLSKEY_H

#include <stddef.h>

#include <openssl/evp.h>

/* The first private key in the PEM bytes pem[0..len), made in libctx (NULL: OpenSSL's
 * default), or NULL with OpenSSL's error queued. */
EVP_PKEY *tls_key_from_pem(const char *pem, size_t len, OSSL_LIB_CTX *libctx);

/* A pem_password_cb that gives no passphrase: a prompt would read the socket under inetd, so
 * a protected key just fails. */
int tls_no_passphrase(char *buf, int size, int rwflag, void *arg);

#endif
