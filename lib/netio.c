/*
 * netio: the client connection (see netio.h). Reads are bounded by the caller's buffer and by
 * a timeout; writes are buffered and checked. It must never block without a timeout and never
 * read before the replies already owed to the client are on their way.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sodium.h>

#include "netio.h"
#include "transcript.h"

void netio_init(struct netio *n, int in_fd, int out_fd, unsigned timeout_seconds)
{
    n->in_fd = in_fd;
    n->out_fd = out_fd;
    n->in_pos = n->in_len = 0;
    n->out_len = 0;
    n->write_failed = 0;
    n->toolong_crlf = 0;
    n->toolong_bare_cr = 0;
    n->ssl = NULL;
    n->transcript = NULL;
    n->limit_ms = 0;
    netio_set_timeout(n, timeout_seconds);
}

void netio_set_transcript(struct netio *n, struct transcript *t)
{
    n->transcript = t;
}

void netio_set_timeout(struct netio *n, unsigned timeout_seconds)
{
    n->timeout_ms = timeout_seconds > 2000000 ? 2000000000 : (int)timeout_seconds * 1000;
}

/* Now on the monotonic clock, in milliseconds. */
static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long long netio_limit(struct netio *n, unsigned seconds)
{
    long long previous = n->limit_ms, end = now_ms() + (long long)seconds * 1000;
    if (n->limit_ms == 0 || end < n->limit_ms)
        n->limit_ms = end;
    return previous;
}

void netio_limit_restore(struct netio *n, long long previous)
{
    n->limit_ms = previous;
}

int netio_limit_passed(const struct netio *n)
{
    return n->limit_ms != 0 && now_ms() >= n->limit_ms;
}

/* The end of one line or flush: the timeout from now, or the wall-clock limit if sooner. */
static long long deadline_of(const struct netio *n)
{
    long long d = now_ms() + n->timeout_ms;
    return n->limit_ms != 0 && n->limit_ms < d ? n->limit_ms : d;
}

/* Waits for events on fd until deadline (now_ms() time). A deadline, not a timeout per
 * read: a client trickling one byte a second must not keep a line (or a flush) going for
 * ever. */
static int wait_fd(int fd, short events, long long deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        long long left = deadline - now_ms();
        int rc = poll(&p, 1, left <= 0 ? 0 : left > 2000000000 ? 2000000000 : (int)left);
        if (rc > 0)
            return 0;
        if (rc == 0)
            return NETIO_TIMEOUT;
        if (errno != EINTR)
            return NETIO_ERROR;
    }
}

/* One write that never blocks on a socket (MSG_DONTWAIT: a client that stops reading must
 * not hang us in write); other descriptors (pipes, in tests) get a plain write. */
static ssize_t write_some(int fd, const char *buf, size_t len)
{
    ssize_t w = send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
    if (w < 0 && errno == ENOTSOCK)
        w = write(fd, buf, len);
    return w;
}

/* After an OpenSSL call returned r <= 0: waits for what it wants (WANT_READ, WANT_WRITE)
 * until deadline. 1 to call it again, or NETIO_EOF (0: the peer closed), NETIO_TIMEOUT or
 * NETIO_ERROR. */
static int tls_wait(struct netio *n, int r, long long deadline)
{
    int e = SSL_get_error(n->ssl, r), rc;
    if (e == SSL_ERROR_WANT_READ)
        return (rc = wait_fd(n->in_fd, POLLIN, deadline)) == 0 ? 1 : rc;
    if (e == SSL_ERROR_WANT_WRITE)
        return (rc = wait_fd(n->out_fd, POLLOUT, deadline)) == 0 ? 1 : rc;
    if (e == SSL_ERROR_ZERO_RETURN)
        return NETIO_EOF;
    if (e == SSL_ERROR_SYSCALL && errno == EINTR)
        return 1;
    if (e == SSL_ERROR_SYSCALL && errno == 0 && ERR_peek_error() == 0)
        return NETIO_EOF; /* closed without close_notify */
    return NETIO_ERROR;
}

/* One TLS write of what is owed; the same arguments again after a WANT_ (OpenSSL asks it). */
static ssize_t tls_write_some(struct netio *n, const char *buf, size_t len, long long deadline)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int w = SSL_write(n->ssl, buf, len > 1 << 30 ? 1 << 30 : (int)len);
        if (w > 0)
            return w;
        if (tls_wait(n, w, deadline) != 1)
            return -1;
    }
}

int netio_flush(struct netio *n)
{
    size_t done = 0;
    long long deadline = deadline_of(n);
    while (n->ssl != NULL && !n->write_failed && done < n->out_len) {
        ssize_t w = tls_write_some(n, n->out + done, n->out_len - done, deadline);
        if (w <= 0)
            n->write_failed = 1;
        else
            done += (size_t)w;
    }
    while (!n->write_failed && done < n->out_len) {
        ssize_t w = write_some(n->out_fd, n->out + done, n->out_len - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w < 0 && errno == EINTR) {
            continue;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (wait_fd(n->out_fd, POLLOUT, deadline) != 0)
                n->write_failed = 1;
        } else {
            n->write_failed = 1;
        }
    }
    n->out_len = 0;
    return n->write_failed ? -1 : 0;
}

/* Refills the input buffer from TLS: OpenSSL may hold decrypted bytes already, so it is
 * asked first and the descriptor waited for only when it wants more. */
static long tls_fill(struct netio *n, long long deadline)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_read(n->ssl, n->in, sizeof n->in);
        if (r > 0) {
            n->in_pos = 0;
            n->in_len = (size_t)r;
            return r;
        }
        int rc = tls_wait(n, r, deadline);
        if (rc != 1)
            return rc;
    }
}

/* Refills the input buffer; flushes owed output first. >0 bytes, or a NETIO_ code. */
static long fill(struct netio *n, long long deadline)
{
    if (n->out_len > 0 && netio_flush(n) != 0)
        return NETIO_ERROR;
    if (n->ssl != NULL)
        return n->write_failed ? NETIO_ERROR : tls_fill(n, deadline);
    int rc = wait_fd(n->in_fd, POLLIN, deadline);
    if (rc != 0)
        return rc;
    for (;;) {
        ssize_t r = read(n->in_fd, n->in, sizeof n->in);
        if (r >= 0) {
            n->in_pos = 0;
            n->in_len = (size_t)r;
            return r;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            rc = wait_fd(n->in_fd, POLLIN, deadline);
            if (rc != 0)
                return rc;
        } else if (errno != EINTR) {
            return NETIO_ERROR;
        }
    }
}

/* Copies buffered bytes up to and including a LF. Sets *done when the LF was copied. */
static size_t take(struct netio *n, char *line, size_t room, size_t used, int *done)
{
    const char *start = n->in + n->in_pos;
    size_t avail = n->in_len - n->in_pos;
    const char *lf = memchr(start, '\n', avail);
    size_t want = lf ? (size_t)(lf - start) + 1 : avail;
    size_t copy = want < room - used ? want : room - used;
    if (line != NULL)
        memcpy(line + used, start, copy);
    n->in_pos += copy;
    *done = lf != NULL && copy == want;
    return copy;
}

/* Is there a CR not followed by LF in p[0..len), *prev being the octet before p (updated)? */
static int bare_cr(const char *p, size_t len, char *prev)
{
    int bare = 0;
    for (size_t i = 0; i < len; i++) {
        bare |= *prev == '\r' && p[i] != '\n';
        *prev = p[i];
    }
    return bare;
}

long netio_getline(struct netio *n, char *line, size_t size)
{
    size_t used = 0;
    int done = 0;
    long long deadline = deadline_of(n); /* for the whole line */
    if (size < 2 || n->write_failed)
        return NETIO_ERROR; /* no reply can reach the client any more: stop reading it */
    if (netio_limit_passed(n))
        return NETIO_TIMEOUT; /* however busy the client is */
    while (!done) {
        if (n->in_pos == n->in_len) {
            long r = fill(n, deadline);
            if (r == 0 && used > 0)
                break; /* a last line without LF */
            if (r <= 0)
                return r;
        }
        if (used == size - 1) {
            /* full: discard through the LF, still under the timeout, noting the byte
             * before that LF (the caller must tell CR LF from a bare LF) and any CR that
             * is not right before LF (a bare CR, which ends the session all the same) */
            int skipped = 0;
            char last = line[used - 1], prev = '\0';
            n->toolong_crlf = 0;
            n->toolong_bare_cr = bare_cr(line, used, &prev);
            while (!skipped) {
                if (n->in_pos == n->in_len) {
                    long r = fill(n, deadline);
                    if (r <= 0)
                        return r == 0 ? NETIO_TOOLONG : r;
                }
                size_t start = n->in_pos;
                take(n, NULL, (size_t)-1, 0, &skipped);
                n->toolong_bare_cr |= bare_cr(n->in + start, n->in_pos - start, &prev);
                if (skipped)
                    n->toolong_crlf =
                        (n->in_pos - start >= 2 ? n->in[n->in_pos - 2] : last) == '\r';
                else
                    last = n->in[n->in_pos - 1];
            }
            if (n->transcript != NULL)
                transcript_line(n->transcript, '*', "(a line too long, discarded)", 28);
            return NETIO_TOOLONG;
        }
        used += take(n, line, size - 1, used, &done);
    }
    line[used] = '\0';
    if (n->transcript != NULL)
        transcript_line(n->transcript, 'C', line, used);
    return (long)used;
}

long netio_read(struct netio *n, void *buf, size_t len)
{
    size_t used = 0;
    long long deadline = now_ms() + n->timeout_ms;
    while (used < len) {
        if (n->in_pos == n->in_len) {
            long r = fill(n, deadline);
            if (r <= 0)
                return r;
        }
        size_t avail = n->in_len - n->in_pos, copy = len - used < avail ? len - used : avail;
        memcpy((char *)buf + used, n->in + n->in_pos, copy);
        n->in_pos += copy;
        used += copy;
    }
    return (long)used;
}

size_t netio_peek(struct netio *n, const char **data)
{
    if (n->in_pos == n->in_len && !n->write_failed)
        (void)fill(n, now_ms()); /* a deadline of now: only what is already there */
    if (n->in_pos == n->in_len)
        n->in_pos = n->in_len = 0;
    *data = n->in + n->in_pos;
    return n->in_len - n->in_pos;
}

int netio_pending(const struct netio *n)
{
    return n->in_pos < n->in_len;
}

int netio_write(struct netio *n, const char *buf, size_t len)
{
    if (n->transcript != NULL)
        transcript_write(n->transcript, 'S', buf, len);
    while (len > 0 && !n->write_failed) {
        if (n->out_len == sizeof n->out && netio_flush(n) != 0)
            break;
        size_t room = sizeof n->out - n->out_len;
        size_t copy = len < room ? len : room;
        memcpy(n->out + n->out_len, buf, copy);
        n->out_len += copy;
        buf += copy;
        len -= copy;
    }
    return n->write_failed ? -1 : 0;
}

int netio_puts(struct netio *n, const char *s)
{
    return netio_write(n, s, strlen(s));
}

int netio_vprintf(struct netio *n, const char *fmt, va_list ap)
{
    char tmp[2048];
    int len = vsnprintf(tmp, sizeof tmp, fmt, ap);
    if (len < 0 || (size_t)len >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return netio_write(n, tmp, (size_t)len);
}

int netio_printf(struct netio *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = netio_vprintf(n, fmt, ap);
    va_end(ap);
    return rc;
}

void netio_linger(struct netio *n)
{
    char junk[4096];
    if (n->ssl != NULL && !n->write_failed) {
        ERR_clear_error();
        (void)SSL_shutdown(n->ssl); /* our close_notify, once; no waiting for theirs */
    }
    if (shutdown(n->out_fd, SHUT_WR) != 0)
        close(n->out_fd);
    struct pollfd p = {.fd = n->in_fd, .events = POLLIN};
    for (int rounds = 0; rounds < 64; rounds++) {
        if (poll(&p, 1, 200) <= 0 || read(n->in_fd, junk, sizeof junk) <= 0)
            return;
    }
}

void netio_wipe_consumed(struct netio *n)
{
    sodium_memzero(n->in, n->in_pos);
}

/* Both descriptors non-blocking: OpenSSL's reads and writes must come back with WANT_ for
 * poll rather than block past a deadline. */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* In TLS 1.3 the client's Finished is the handshake's last message, and with no session
 * tickets (lib/tls) the server answers it with nothing: its ACK waits for the delayed-ACK
 * timer, and a client whose next record (EHLO, USER) goes out as a second small segment waits
 * for that ACK under Nagle's algorithm: 40 ms per connection on Linux. The ACK is sent now.
 * Not a TCP socket (a pipe or socketpair in tests): nothing to do. */
static void ack_now(int fd)
{
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &on, sizeof on);
}

int netio_tls_start(struct netio *n, SSL *ssl)
{
    int flushed = n->ssl == NULL ? netio_flush(n) : -1; /* the last plaintext reply */
    if (n->ssl != NULL)
        SSL_free(n->ssl);
    n->ssl = ssl;
    if (n->in_pos < n->in_len) {
        n->write_failed = 1; /* plaintext that came before TLS: never read as TLS */
        errno = EPROTO;
        return NETIO_ERROR;
    }
    if (flushed != 0 || set_nonblocking(n->in_fd) != 0 || set_nonblocking(n->out_fd) != 0 ||
        SSL_set_rfd(ssl, n->in_fd) != 1 || SSL_set_wfd(ssl, n->out_fd) != 1) {
        n->write_failed = 1;
        return NETIO_ERROR;
    }
    long long deadline = deadline_of(n);
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int r = SSL_do_handshake(ssl);
        if (r == 1)
            return ack_now(n->in_fd), 0;
        int rc = tls_wait(n, r, deadline);
        if (rc != 1) {
            n->write_failed = 1;
            if (rc == NETIO_EOF) /* 0 would say success */
                errno = ECONNRESET, rc = NETIO_ERROR;
            return rc;
        }
    }
}

int netio_tls_accept(struct netio *n, SSL_CTX *ctx)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        n->write_failed = 1;
        return NETIO_ERROR;
    }
    SSL_set_accept_state(ssl);
    return netio_tls_start(n, ssl);
}

SSL *netio_tls(const struct netio *n)
{
    return n->ssl;
}

void netio_free(struct netio *n)
{
    if (n->ssl == NULL)
        return;
    if (!n->write_failed) {
        ERR_clear_error();
        (void)SSL_shutdown(n->ssl);
    }
    SSL_free(n->ssl);
    n->ssl = NULL;
}
