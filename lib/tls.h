/*
 * tls: the OpenSSL side of yubin (used through lib/netio, which owns the connection, and
 * lib/smtpc). It puts the house policy on contexts (SSL_CTX), runs a handler's handshake, and
 * names what a finished handshake chose, for Received and the log.
 * It never reads or writes the connection itself (netio does), never prompts for a passphrase,
 * and never lets a context fall back to SSLv3, TLS 1.0/1.1 (unless tls_protocols says so),
 * compression, renegotiation or a cipher without forward secrecy (unless tls_ciphers says so).
 *
 * A server's certificate and key are read while the handler is still root (the key can stay
 * 0600 root, as certbot writes it) and made into a context only when a session asks for TLS
 * (lib/tlsserver); each connection is a new process, so a renewed certificate is used from the
 * next connection on. Client contexts (outbound STARTTLS, DANE) are lib/tlsc's.
 */
#ifndef YUBIN_TLS_H
#define YUBIN_TLS_H

#include <stddef.h>

#include <openssl/ssl.h>

struct yubin_conf;
struct netio;
struct tls_server;

/* The house policy on any context, server or client: the protocol versions named in
 * `protocols` ("TLSv1.2 TLSv1.3": the lowest and highest given bound the range), the TLS 1.2
 * cipher list `ciphers` (OpenSSL syntax; TLS 1.3's suites are all forward secret), no
 * compression, no renegotiation, no session tickets or cache (one process per connection has
 * no use for them), partial writes for non-blocking netio. 0, or -1 with why in err. */
int tls_policy(SSL_CTX *ctx, const char *protocols, const char *ciphers, char *err, size_t errlen);

/* What a finished handshake chose, as Postfix writes it in Received:
 * "TLSv1.3 with cipher TLS_AES_256_GCM_SHA384 (256/256 bits)". */
void tls_describe(const SSL *ssl, char *out, size_t size);

/* t's server context (lib/tlsserver: made now, on the first call), or NULL when its pair
 * cannot serve, logged: "client=C TLS cannot serve: tls_key_file ...: why". A handler asks
 * before it answers STARTTLS or STLS, and refuses them (454, -ERR, NO) on NULL. */
SSL_CTX *tls_server_ready(struct tls_server *t, const char *client);

/* A handler's side of a handshake on n (STARTTLS, STLS, or -T at once) with t's context,
 * logged either way: "client=C TLS: using <tls_describe>" into desc as well, or "client=C TLS
 * handshake failed: why" (timeout, the client closed, OpenSSL's reason), or as
 * tls_server_ready when t cannot serve. 0, or -1: the session must end. */
int tls_serve(struct netio *n, struct tls_server *t, const char *client, char *desc, size_t size);

/* The oldest queued OpenSSL error as text (and the queue cleared), or `fallback`. */
const char *tls_error_text(char *buf, size_t size, const char *fallback);

#endif
