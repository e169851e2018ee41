/*
 * netio: bounded line reading and buffered writing on the client connection (stdin/stdout
 * under inetd and systemd). Every read has a timeout; buffered output is flushed before any
 * read that would block, which is exactly what SMTP PIPELINING (RFC 2920) asks of a server.
 * It never interprets the bytes: CR and LF checks belong to the protocol code.
 * The timeout is a deadline for a whole line (netio_getline) and for a whole flush, not for
 * each read or write: a client that sends one byte a second, or stops reading our replies,
 * is timed out all the same. Writes to a socket never block (MSG_DONTWAIT).
 *
 * The transport is the plain descriptors or, after netio_tls_start, TLS (lib/tls, OpenSSL)
 * over the same descriptors, made non-blocking: the same bounded lines, deadlines and
 * flush-before-read, with OpenSSL's WANT_READ/WANT_WRITE waited for with poll. Every byte a
 * handler reads or writes goes through here; plaintext buffered before TLS starts is never
 * handed out as if it had come through TLS (netio_tls_start refuses).
 */
#ifndef YUBIN_NETIO_H
#define YUBIN_NETIO_H

#include <stdarg.h>
#include <stddef.h>

#define NETIO_BUFSIZE 16384

enum {
    NETIO_EOF = 0,      /* the peer closed the connection */
    NETIO_ERROR = -1,   /* a read or write failed (errno set) */
    NETIO_TIMEOUT = -2, /* nothing arrived within the timeout */
    NETIO_TOOLONG = -3, /* the line did not fit; it was read and discarded through its LF */
};

struct transcript;
struct ssl_st;
struct ssl_ctx_st;

struct netio {
    int in_fd, out_fd;
    struct transcript *transcript; /* NULL: none (one test per line, nothing else) */
    int timeout_ms;
    long long limit_ms; /* the wall-clock end of every read and flush (monotonic ms), 0 none */
    size_t in_pos, in_len;
    size_t out_len;
    int write_failed;
    int toolong_crlf; /* after NETIO_TOOLONG: the discarded line ended in CR LF (not a bare LF) */
    int toolong_bare_cr; /* after NETIO_TOOLONG: it held a CR not right before LF */
    struct ssl_st *ssl;  /* NULL: plain; else every byte goes through this TLS connection */
    char in[NETIO_BUFSIZE];
    char out[NETIO_BUFSIZE];
};

void netio_init(struct netio *n, int in_fd, int out_fd, unsigned timeout_seconds);
void netio_set_timeout(struct netio *n, unsigned timeout_seconds);
/* A wall-clock limit on top of the timeout: no read or flush goes on past `seconds` from now
 * (a whole session, a whole DATA), however steadily the client trickles. It only ever
 * tightens the limit in force; the limit before is returned, for netio_limit_restore. A read
 * that runs into it returns NETIO_TIMEOUT, and netio_limit_passed then says so. */
long long netio_limit(struct netio *n, unsigned seconds);
void netio_limit_restore(struct netio *n, long long previous);
int netio_limit_passed(const struct netio *n);
/* Records every line read ('C') and written ('S') in t (lib/transcript); NULL stops. */
void netio_set_transcript(struct netio *n, struct transcript *t);

/* Reads one line, through and including its LF, into line (at most size-1 bytes, then a NUL).
 * Returns the number of bytes stored (> 0), or NETIO_EOF, NETIO_ERROR, NETIO_TIMEOUT,
 * NETIO_TOOLONG (then toolong_crlf says whether the discarded line ended in CR LF, and
 * toolong_bare_cr whether it held a CR anywhere else, so a bare CR or
 * bare LF is caught even in a line that was too long). A final line without LF at end of
 * input is returned as it is (no LF).
 * The line may contain NUL bytes: use the returned length, not strlen. After a failed write
 * (the client stopped taking our replies) it returns NETIO_ERROR at once. */
long netio_getline(struct netio *n, char *line, size_t size);

/* Reads exactly len octets (a binary header before the protocol starts: the PROXY protocol)
 * within the timeout. Returns len, or NETIO_EOF (closed first), NETIO_ERROR, NETIO_TIMEOUT. */
long netio_read(struct netio *n, void *buf, size_t len);

/* What the client has sent so far without waiting: the buffered input, after one read that
 * does not block when nothing is buffered yet. Sets *data; returns the number of octets. */
size_t netio_peek(struct netio *n, const char **data);

/* True when input is already buffered (the client pipelined more commands). */
int netio_pending(const struct netio *n);

/* Queue output; flushed when the buffer fills, on netio_flush and before a blocking read.
 * Return 0, or -1 once a write has failed (later calls keep failing). */
int netio_write(struct netio *n, const char *buf, size_t len);
int netio_puts(struct netio *n, const char *s);
int netio_printf(struct netio *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* As netio_printf with a va_list; a line over 2047 octets is -1 with errno ENAMETOOLONG. */
int netio_vprintf(struct netio *n, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
int netio_flush(struct netio *n);

/* After an error close: stops sending (a TLS close_notify, then shutdown), then reads and drops
 * what the client still sends for a moment (at most 64 reads, 200 ms apart), so the last reply is
 * not lost to a TCP reset. */
void netio_linger(struct netio *n);

/* Wipes the input already handed out (a password went through it); the pending rest stays. */
void netio_wipe_consumed(struct netio *n);

/* TLS from now on, over the same descriptors: flushes what is owed in plaintext (the "220
 * ready to start TLS"), then runs the handshake of ssl (SSL_set_accept_state or
 * SSL_set_connect_state already called; SNI, DANE and verification set by the caller) under
 * the timeout. netio owns ssl from here on (netio_free). Returns 0, NETIO_TIMEOUT or
 * NETIO_ERROR: the handshake failed (tls_error_text says why), the peer closed (errno
 * ECONNRESET), or plaintext input was still buffered, which is never read as TLS (errno
 * EPROTO). After a failure nothing more is read or written. */
int netio_tls_start(struct netio *n, struct ssl_st *ssl);
/* The server side of netio_tls_start with a new SSL of ctx (lib/tlsserver tls_server_get). */
int netio_tls_accept(struct netio *n, struct ssl_ctx_st *ctx);
/* The TLS connection, or NULL while plain. */
struct ssl_st *netio_tls(const struct netio *n);
/* Frees the TLS connection (after a close_notify when it is still up). */
void netio_free(struct netio *n);

#endif
