/*
 * tls: the OpenSSL side of yubin (used through lib/netio, which owns the connection, and
 * lib/smtpc). It makes contexts (SSL_CTX) with the house policy, loads and checks a server's
 * certificate and key, and names what a finished handshake chose, for Received and the log.
 * It never reads or writes the connection itself (netio does), never prompts for a passphrase,
 * and never lets a context fall back to SSLv3, TLS 1.0/1.1 (unless tls_protocols says so),
 * compression, renegotiation or a cipher without forward secrecy (unless tls_ciphers says so).
 *
 * Server contexts are made while the handler is still root (the key can stay 0600 root, as
 * certbot writes it); each connection is a new process, so a renewed certificate is used from
 * the next connection on. Client contexts (outbound STARTTLS, DANE) belong here as well.
 */
#ifndef YUBIN_TLS_H
#define YUBIN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct yubin_conf;
struct netio;

/* The house policy on any context, server or client: the protocol versions named in
 * `protocols` ("TLSv1.2 TLSv1.3": the lowest and highest given bound the range), the TLS 1.2
 * cipher list `ciphers` (OpenSSL syntax; TLS 1.3's suites are all forward secret), no
 * compression, no renegotiation, no session tickets or cache (one process per connection has
 * no use for them), partial writes for non-blocking netio. 0, or -1 with why in err. */
int tls_policy(SSL_CTX *ctx, const char *protocols, const char *ciphers, char *err, size_t errlen);

/* A server context from c's tls_cert_file (PEM, the certificate then its chain) and
 * tls_key_file ("" = the key is in the certificate file), with the house policy and the
 * server's cipher preference. Call it as root, before privileges drop. NULL with err[0] ==
 * '\0' when no certificate is configured (no TLS offered); NULL with one line in err (file,
 * and what is wrong: missing, unreadable, not PEM, expired, not yet valid, key does not
 * match) when one is configured but cannot be used. */
SSL_CTX *tls_server_ctx(const struct yubin_conf *c, char *err, size_t errlen);

/* The certificate of a server context: its subject ("CN=mx.example.org"), its last valid
 * instant ("2027-03-01 12:00 UTC") and the whole days from now to it (negative once past).
 * 0, or -1 when ctx has no certificate. */
int tls_cert_info(SSL_CTX *ctx, char *subject, size_t subject_size, char *until, size_t until_size,
                  int *days_left);

/* What a finished handshake chose, as Postfix writes it in Received:
 * "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
void tls_describe(const SSL *ssl, char *out, size_t size);

/* A handler's side of a handshake on n (STARTTLS, STLS, or -T at once), logged either way:
 * "client=C TLS: using <tls_describe>" into desc as well, or "client=C TLS handshake failed:
 * why" (timeout, the client closed, OpenSSL's reason). 0, or -1: the session must end. */
int tls_serve(struct netio *n, SSL_CTX *ctx, const char *client, char *desc, size_t size);

/* The oldest queued OpenSSL error as text (and the queue cleared), or `fallback`. */
const char *tls_error_text(char *buf, size_t size, const char *fallback);

#endif
