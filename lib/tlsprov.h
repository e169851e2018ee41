/*
 * tlsprov: the OpenSSL library context of a handler's server TLS: libcrypto's own default
 * provider, seen through a filter that offers only the ciphers, digests and key decoders a
 * TLS server can use. OpenSSL 3 builds a method for every algorithm of an operation the first
 * time one of them is fetched: SSL_CTX_new fetches every TLS cipher, so each handler process
 * built ~130 ciphers and 80 digests it never uses, a third of its TLS set-up (bench/README.md).
 * It must never offer an algorithm the default provider does not, nor change one, and never
 * keep the filter when the default provider's entry point cannot be reached (a dynamically
 * linked libcrypto hides it): then it is the plain default provider.
 */
#ifndef YUBIN_TLSPROV_H
#define YUBIN_TLSPROV_H

#include <openssl/types.h>

/* The library context for server contexts and what they decode (made on the first call; it
 * lives as long as the process), or NULL (out of memory): then OpenSSL's default one. */
OSSL_LIB_CTX *tls_libctx(void);

#endif
