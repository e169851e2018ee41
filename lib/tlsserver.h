/*
 * tlsserver: a handler's certificate and key, read as root and made into an OpenSSL server
 * context only when a session asks for TLS (STARTTLS, STLS, or -T at once). A plain session
 * with a certificate configured then costs what it costs without one: OpenSSL's set-up (its
 * providers, every cipher fetched, the PEM decoders) is ~5 ms of CPU a process would pay for
 * nothing (bench/README.md).
 *
 * It must never open the files after the handler has dropped root (the key may be root's
 * alone: it keeps their bytes, bounded, not an open file), never keep the key's bytes once a
 * context is made from them, and never hand out a context whose certificate is expired or
 * whose key does not match.
 */
#ifndef YUBIN_TLSSERVER_H
#define YUBIN_TLSSERVER_H

#include <stddef.h>

#include <openssl/ssl.h>

struct yubin_conf;
struct tls_server;

/* The largest tls_cert_file (with its chain) or tls_key_file read. */
#define TLS_FILE_MAX (256 * 1024)

/* As root: the bytes of c's tls_cert_file and tls_key_file ("" = the key is in the certificate
 * file), nothing parsed yet. c must outlive the result (its tls_protocols, tls_ciphers are
 * used later). NULL with err[0] == '\0' when no certificate is configured; NULL with one line
 * in err (which file, and the OS's reason, or too large) when a file cannot be read. */
struct tls_server *tls_server_read(const struct yubin_conf *c, char *err, size_t errlen);

/* The server context, made on the first call from the bytes read (the key's bytes are then
 * wiped, whatever the outcome), with the house policy (lib/tls) and the server's cipher
 * preference; later calls give the same answer. NULL with one line in err when the pair
 * cannot serve: which file, and why (not PEM, the key does not match, expired, not yet
 * valid). The context stays t's. */
SSL_CTX *tls_server_get(struct tls_server *t, char *err, size_t errlen);

/* Frees t and its context, the key's bytes wiped first. t may be NULL. */
void tls_server_free(struct tls_server *t);

/* The certificate of a server context: its subject ("CN=mx.example.org"), its last valid
 * instant ("2027-03-01 12:00 UTC") and the whole days from now to it (negative once past).
 * 0, or -1 when ctx has no certificate. */
int tls_cert_info(SSL_CTX *ctx, char *subject, size_t subject_size, char *until, size_t until_size,
                  int *days_left);

#endif
