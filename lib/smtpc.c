/*
 * smtpc: the SMTP client (see smtpc.h). Reads and writes on a non-blocking socket, each bounded
 * by poll and a deadline; replies parsed strictly; the message streamed from its file with
 * CRLF and dot-stuffing. It must never send a bare CR or LF or a NUL byte, never wait without a
 * timeout, never hold a message in memory, and never print.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <sodium.h>

#include "smtpc.h"
#include "tls.h"
#include "tlsc.h"
#include "util.h"

enum { RD_EOF = -1, RD_TIMEOUT = -2, RD_TOOLONG = -3, RD_BARELF = -4, RD_ERROR = -5 };

/* ---- made-up replies and the transcript ---- */

static void trace(struct smtpc *c, char dir, const char *s, size_t len)
{
    if (c->opts.transcript != NULL)
        c->opts.transcript(c->opts.transcript_arg, dir, s, len);
}

static void tracef(struct smtpc *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tracef(struct smtpc *c, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    if (c->opts.transcript == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    trace(c, '*', buf, (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

/* A reply no server sent: code given (0 = none), enhanced code and text. */
static void made_up(struct smtpc_reply *r, int code, const char *enh, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void made_up(struct smtpc_reply *r, int code, const char *enh, const char *fmt, ...)
{
    char what[600];
    va_list ap;
    va_start(ap, fmt);
    if (vsnprintf(what, sizeof what, fmt, ap) < 0)
        what[0] = '\0';
    va_end(ap);
    r->code = code;
    if (str_copy(r->enhanced, sizeof r->enhanced, enh) < 0)
        r->enhanced[0] = '\0';
    if (code != 0)
        (void)snprintf(r->text, sizeof r->text, "%d %s %s", code, enh, what);
    else
        (void)snprintf(r->text, sizeof r->text, "%s %s", enh, what);
}

int smtpc_reply_result(const struct smtpc_reply *r)
{
    if (r->code >= 200 && r->code < 400)
        return SMTPC_OK;
    if (r->code >= 500 && r->code < 600)
        return SMTPC_PERM;
    return SMTPC_TEMP;
}

/* ---- time and the socket ---- */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The deadline of one wait of `seconds`, cut at the end of the session's time unless
 * uncapped (the reply to the final ".", see smtpc.h). */
static long long deadline_for(const struct smtpc *c, unsigned seconds, int capped)
{
    long long d = now_ms() + (long long)seconds * 1000;
    return capped && c->session_end > 0 && c->session_end < d ? c->session_end : d;
}

static int session_over(const struct smtpc *c)
{
    return c->session_end > 0 && now_ms() >= c->session_end;
}

/* Waits for events until the deadline: 1 ready, 0 timed out, -1 error. */
static int wait_until(int fd, short events, long long deadline)
{
    struct pollfd p = {.fd = fd, .events = events};
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return 0;
        int rc = poll(&p, 1, left > 600000 ? 600000 : (int)left);
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

static void close_fd(struct smtpc *c)
{
    if (c->ssl != NULL) {
        if (c->fd >= 0 && !c->dead && SSL_is_init_finished(c->ssl))
            (void)SSL_shutdown(c->ssl); /* close_notify, without waiting for the peer's */
        SSL_free(c->ssl);
        c->ssl = NULL;
        ERR_clear_error();
    }
    c->tls_up = 0;
    if (c->fd >= 0)
        (void)close(c->fd);
    c->fd = -1;
    c->dead = 1;
}

/* What a failed SSL_read/SSL_write/SSL_connect asks for: 1 wait (*events set), or RD_EOF /
 * RD_ERROR. */
static int tls_want(struct smtpc *c, int rc, short *events)
{
    int e = SSL_get_error(c->ssl, rc);
    if (e == SSL_ERROR_WANT_READ)
        return *events = POLLIN, 1;
    if (e == SSL_ERROR_WANT_WRITE)
        return *events = POLLOUT, 1;
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && errno == 0))
        return RD_EOF;
    if (e == SSL_ERROR_SYSCALL && errno == EINTR)
        return *events = POLLIN | POLLOUT, 1;
    if (e == SSL_ERROR_SSL)
        errno = EPROTO;
    return RD_ERROR;
}

/* One send or recv, through TLS once it is up: bytes, or -1 with errno (EAGAIN with *events
 * telling what to wait for), or 0 for EOF on a read. */
static ssize_t io(struct smtpc *c, int out, void *buf, size_t len, short *events)
{
    *events = out ? POLLOUT : POLLIN;
    if (!c->tls_up)
        return out ? send(c->fd, buf, len, MSG_NOSIGNAL) : recv(c->fd, buf, len, 0);
    errno = 0;
    int n = out ? SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len)
                : SSL_read(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
    if (n > 0)
        return n;
    int w = tls_want(c, n, events);
    if (w == RD_EOF && !out)
        return 0;
    errno = w == 1 ? EAGAIN : (errno ? errno : EPIPE);
    return -1;
}

/* Sends the output buffer within timeout seconds. 0, or RD_TIMEOUT / RD_ERROR. */
static int out_flush(struct smtpc *c, unsigned timeout)
{
    long long deadline = deadline_for(c, timeout, 1);
    size_t done = 0;
    while (done < c->out_len) {
        short ev;
        ssize_t n = io(c, 1, c->out + done, c->out_len - done, &ev);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int w = wait_until(c->fd, ev, deadline);
            if (w == 0)
                return RD_TIMEOUT;
            if (w < 0)
                return RD_ERROR;
            continue;
        }
        return RD_ERROR;
    }
    c->out_len = 0;
    return 0;
}

static int out_put(struct smtpc *c, const char *data, size_t len, unsigned timeout)
{
    while (len > 0) {
        if (c->out_len == sizeof c->out) {
            int rc = out_flush(c, timeout);
            if (rc < 0)
                return rc;
        }
        size_t room = sizeof c->out - c->out_len;
        size_t n = len < room ? len : room;
        memcpy(c->out + c->out_len, data, n);
        c->out_len += n;
        data += n;
        len -= n;
    }
    return 0;
}

/* Fills the input buffer (after sending what is queued). >0 bytes, or RD_*. */
static int in_fill(struct smtpc *c, long long deadline)
{
    if (c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    for (;;) {
        short ev;
        ssize_t n = io(c, 0, c->in + c->in_len, sizeof c->in - c->in_len, &ev);
        if (n > 0) {
            c->in_len += (size_t)n;
            return (int)n;
        }
        if (n == 0)
            return RD_EOF;
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK)
            return RD_ERROR;
        int w = wait_until(c->fd, ev, deadline);
        if (w == 0)
            return RD_TIMEOUT;
        if (w < 0)
            return RD_ERROR;
    }
}

/* Reads one line ending in CRLF; stores it without the CRLF (NUL-terminated; it may hold NUL
 * bytes). Returns its length or RD_*. */
static long in_line(struct smtpc *c, char *line, size_t size, long long deadline)
{
    for (;;) {
        char *start = c->in + c->in_pos;
        size_t avail = c->in_len - c->in_pos;
        char *lf = memchr(start, '\n', avail);
        if (lf != NULL) {
            size_t len = (size_t)(lf - start);
            c->in_pos += len + 1;
            if (len == 0 || start[len - 1] != '\r')
                return RD_BARELF;
            len--;
            if (len >= size || len + 2 > SMTPC_LINE_MAX)
                return RD_TOOLONG;
            memcpy(line, start, len);
            line[len] = '\0';
            return (long)len;
        }
        if (avail >= SMTPC_LINE_MAX)
            return RD_TOOLONG;
        int rc = in_fill(c, deadline);
        if (rc < 0)
            return rc;
    }
}

/* ---- replies ---- */

static int is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* Length of an RFC 3463 code "c.sss.ddd" at s whose class is cls, followed by a space or the
 * end; 0 if there is none. */
static size_t enhanced_len(const char *s, size_t len, char cls)
{
    size_t i = 0;
    if (len < 5 || s[0] != cls || s[1] != '.')
        return 0;
    i = 2;
    for (int part = 0; part < 2; part++) {
        size_t digits = 0;
        while (i < len && is_digit(s[i]) && digits < 4) {
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3)
            return 0;
        if (part == 0) {
            if (i >= len || s[i] != '.')
                return 0;
            i++;
        }
    }
    if (i < len && s[i] != ' ')
        return 0;
    return i;
}

/* Appends text to the reply's text, printable ASCII only, "..." when it is full. */
static void text_add(struct smtpc_reply *r, size_t *tlen, const char *s, size_t len)
{
    const size_t cap = sizeof r->text - 4; /* room for "..." and the NUL */
    for (size_t i = 0; i < len; i++) {
        if (*tlen >= cap) {
            memcpy(r->text + cap, "...", 4);
            *tlen = sizeof r->text; /* full: nothing more is added */
            return;
        }
        unsigned char ch = (unsigned char)s[i];
        r->text[(*tlen)++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (*tlen < sizeof r->text)
        r->text[*tlen] = '\0';
}

/* One line of a reply: checks its form and code; appends its text. Returns 1 if more lines
 * follow, 0 if it was the last, -1 if it is malformed. */
static int reply_line(struct smtpc_reply *r, size_t *tlen, const char *line, size_t len, int first)
{
    if (len < 3 || !is_digit(line[0]) || !is_digit(line[1]) || !is_digit(line[2]))
        return -1;
    if (line[0] < '2' || line[0] > '5')
        return -1;
    if (len > 3 && line[3] != ' ' && line[3] != '-')
        return -1;
    int code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (!first && code != r->code)
        return -1;
    const char *rest = len > 4 ? line + 4 : "";
    size_t rlen = len > 4 ? len - 4 : 0;
    size_t elen = enhanced_len(rest, rlen, line[0]);
    if (first) {
        r->code = code;
        r->enhanced[0] = '\0';
        if (elen > 0 && elen < sizeof r->enhanced) {
            memcpy(r->enhanced, rest, elen);
            r->enhanced[elen] = '\0';
        }
        text_add(r, tlen, line, 3);
        if (rlen > 0) {
            text_add(r, tlen, " ", 1);
            text_add(r, tlen, rest, rlen);
        }
    } else {
        if (elen > 0 && r->enhanced[0] != '\0' && strncmp(rest, r->enhanced, elen) == 0) {
            rest += elen;
            rlen -= elen;
            while (rlen > 0 && *rest == ' ') {
                rest++;
                rlen--;
            }
        }
        if (rlen > 0) {
            text_add(r, tlen, " ", 1);
            text_add(r, tlen, rest, rlen);
        }
    }
    return (len > 3 && line[3] == '-') ? 1 : 0;
}

/* The connection failed while waiting for the reply to what: a made-up temporary reply. */
static void failed(struct smtpc *c, struct smtpc_reply *r, int rd, const char *what)
{
    switch (rd) {
    case RD_TIMEOUT:
        if (session_over(c))
            made_up(r, 0, "4.4.2", "session time limit (%u s) reached talking to %s (%s)",
                    c->opts.session_limit, c->peer, what);
        else
            made_up(r, 0, "4.4.2", "timeout talking to %s (%s)", c->peer, what);
        break;
    case RD_EOF:
        made_up(r, 0, "4.4.2", "connection closed by %s (%s)", c->peer, what);
        break;
    case RD_ERROR:
        made_up(r, 0, "4.4.2", "connection to %s failed (%s): %s", c->peer, what, strerror(errno));
        break;
    default:
        made_up(r, 0, "4.5.0", "protocol error from %s (%s): malformed reply", c->peer, what);
        break;
    }
    tracef(c, "%s", r->text);
    close_fd(c);
}

/* The mechanisms of "250-AUTH PLAIN LOGIN" (from after the keyword). */
static void ehlo_auth(struct smtpc *c, const char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        while (i < len && s[i] == ' ')
            i++;
        size_t start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i - start == 5 && strncasecmp(s + start, "PLAIN", 5) == 0)
            c->ext |= SMTPC_EXT_AUTH_PLAIN;
        else if (i - start == 5 && strncasecmp(s + start, "LOGIN", 5) == 0)
            c->ext |= SMTPC_EXT_AUTH_LOGIN;
    }
}

/* One EHLO keyword line ("250-SIZE 10240000" after the first line): notes the extension. */
static void ehlo_keyword(struct smtpc *c, const char *line, size_t len)
{
    char kw[64], arg[32];
    size_t i = 4, k = 0, a = 0;
    if (len < 5 || line[0] != '2')
        return;
    while (i < len && line[i] != ' ' && k + 1 < sizeof kw)
        kw[k++] = line[i++];
    kw[k] = '\0';
    while (i < len && line[i] == ' ')
        i++;
    size_t rest = i;
    while (i < len && line[i] != ' ' && a + 1 < sizeof arg)
        arg[a++] = line[i++];
    arg[a] = '\0';
    if (str_ieq(kw, "PIPELINING"))
        c->ext |= SMTPC_EXT_PIPELINING;
    else if (str_ieq(kw, "8BITMIME"))
        c->ext |= SMTPC_EXT_8BITMIME;
    else if (str_ieq(kw, "ENHANCEDSTATUSCODES"))
        c->ext |= SMTPC_EXT_ENHANCEDSTATUSCODES;
    else if (str_ieq(kw, "SMTPUTF8"))
        c->ext |= SMTPC_EXT_SMTPUTF8;
    else if (str_ieq(kw, "STARTTLS"))
        c->ext |= SMTPC_EXT_STARTTLS;
    else if (str_ieq(kw, "DSN"))
        c->ext |= SMTPC_EXT_DSN;
    else if (str_ieq(kw, "AUTH"))
        ehlo_auth(c, line + rest, len - rest);
    else if (str_ieq(kw, "SIZE")) {
        uint64_t n = 0;
        c->ext |= SMTPC_EXT_SIZE;
        c->max_size = (a > 0 && parse_u64(arg, &n) == 0) ? n : 0;
    }
}

/* Reads one whole reply (all its lines) into r by the deadline; with ehlo set, its lines after
 * the first are EHLO keywords. 0, or -1 when there was none (r is then a made-up reply and c
 * is closed). A 421 closes c but returns 0. */
static int read_reply_x(struct smtpc *c, struct smtpc_reply *r, long long deadline,
                        const char *what, int ehlo)
{
    char line[SMTPC_LINE_MAX];
    size_t tlen = 0;
    if (c->fd < 0) {
        made_up(r, 0, "4.4.2", "connection to %s already closed (%s)", c->peer, what);
        return -1;
    }
    if (c->out_len > 0) {
        int rc = out_flush(c, c->opts.command_timeout);
        if (rc < 0) {
            failed(c, r, rc, what);
            return -1;
        }
    }
    r->text[0] = '\0';
    for (int i = 0; i < SMTPC_MAX_LINES; i++) {
        long n = in_line(c, line, sizeof line, deadline);
        if (n < 0) {
            failed(c, r, (int)n, what);
            return -1;
        }
        trace(c, 'S', line, (size_t)n);
        int more = reply_line(r, &tlen, line, (size_t)n, i == 0);
        if (more < 0)
            break;
        if (ehlo && i > 0)
            ehlo_keyword(c, line, (size_t)n);
        if (more == 0) {
            if (r->code == 421) {
                tracef(c, "%s closes the connection (421)", c->peer);
                close_fd(c);
            }
            return 0;
        }
    }
    failed(c, r, RD_TOOLONG, what);
    return -1;
}

static int read_reply(struct smtpc *c, struct smtpc_reply *r, unsigned timeout, const char *what)
{
    return read_reply_x(c, r, deadline_for(c, timeout, 1), what, 0);
}

/* Queues one command line (CRLF added) and shows it in the transcript. */
static int put_cmd(struct smtpc *c, const char *cmd)
{
    trace(c, 'C', cmd, strlen(cmd));
    int rc = out_put(c, cmd, strlen(cmd), c->opts.command_timeout);
    if (rc == 0)
        rc = out_put(c, "\r\n", 2, c->opts.command_timeout);
    return rc;
}

/* Sends one command and reads its reply. 0, or -1 (r made up, c closed). */
static int command(struct smtpc *c, const char *cmd, struct smtpc_reply *r, const char *what)
{
    int rc = put_cmd(c, cmd);
    if (rc == 0)
        rc = out_flush(c, c->opts.command_timeout);
    if (rc < 0) {
        failed(c, r, rc, what);
        return -1;
    }
    return read_reply(c, r, c->opts.command_timeout, what);
}

/* ---- the session ---- */

static void set_opts(struct smtpc *c, const struct smtpc_opts *o)
{
    c->opts = *o;
    c->ssl = o->tls; /* c's now, freed by close_fd */
    c->opts.tls = NULL;
    if (c->opts.connect_timeout == 0)
        c->opts.connect_timeout = 30;
    if (c->opts.command_timeout == 0)
        c->opts.command_timeout = 300;
    if (c->opts.data_timeout == 0)
        c->opts.data_timeout = 600;
    if (c->opts.helo == NULL || c->opts.helo[0] == '\0')
        c->opts.helo = "localhost";
    c->session_end = o->session_limit ? now_ms() + (long long)o->session_limit * 1000 : 0;
}

static void reset_state(struct smtpc *c, int fd)
{
    c->fd = fd;
    c->dead = 0;
    c->esmtp = 0;
    c->ext = 0;
    c->max_size = 0;
    c->n_sent = 0;
    c->tls_failed = 0;
    c->tls_up = 0;
    (void)str_copy(c->tls, sizeof c->tls, "none");
    c->in_pos = c->in_len = c->out_len = 0;
}

/* Is s safe inside a command line: printable ASCII (a space only where space_ok: quoted local
 * parts), no '<' or '>', at most max octets? */
static int cmd_safe_sp(const char *s, size_t max, int space_ok)
{
    size_t i = 0;
    for (; s[i] != '\0'; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < (space_ok ? 0x20 : 0x21) || ch >= 0x7f || ch == '<' || ch == '>' || i >= max)
            return 0;
    }
    return 1;
}

static int cmd_safe(const char *s, size_t max)
{
    return cmd_safe_sp(s, max, 0);
}

/* EHLO, or HELO after a 5xx to it. 0 ready, 1 temporary, -1 permanent (c closed on failure). */
static int ehlo(struct smtpc *c, struct smtpc_reply *why)
{
    char cmd[300];
    (void)str_format(cmd, sizeof cmd, "EHLO %s", c->opts.helo);
    int rc = put_cmd(c, cmd);
    if (rc < 0) {
        failed(c, why, rc, "EHLO");
        return 1;
    }
    if (read_reply_x(c, why, deadline_for(c, c->opts.command_timeout, 1), "EHLO", 1) < 0)
        return 1;
    if (why->code == 250) {
        c->esmtp = 1;
        return 0;
    }
    if (why->code < 500 || c->fd < 0) { /* 4xx (421 has closed c already): try later */
        smtpc_close(c);
        return 1;
    }
    c->ext = 0;
    c->max_size = 0;
    (void)str_format(cmd, sizeof cmd, "HELO %s", c->opts.helo);
    if (command(c, cmd, why, "HELO") < 0)
        return 1;
    if (why->code == 250)
        return 0;
    int res = (c->fd >= 0 && smtpc_reply_result(why) == SMTPC_PERM) ? -1 : 1;
    smtpc_quit(c);
    return res;
}

/* The TLS handshake on c->fd within command_timeout, then tlsc_check. 0, or 1 (why made up;
 * c closed; tls_failed set when TLSC_MAY may try again in clear). */
static int handshake(struct smtpc *c, struct smtpc_reply *why)
{
    char err[256];
    long long deadline = deadline_for(c, c->opts.command_timeout, 1);
    const char *what = NULL;
    tracef(c, "TLS handshake with %s", c->peer);
    if (SSL_set_fd(c->ssl, c->fd) != 1)
        what = tls_error_text(err, sizeof err, "SSL_set_fd failed");
    while (what == NULL) {
        short ev;
        errno = 0;
        int rc = SSL_connect(c->ssl);
        if (rc == 1)
            break;
        int w = tls_want(c, rc, &ev);
        if (w == 1 && (w = wait_until(c->fd, ev, deadline)) > 0)
            continue;
        what = w == 0            ? "timeout"
               : w == RD_EOF     ? "connection closed"
               : errno == EPROTO ? tls_error_text(err, sizeof err, "protocol error")
                                 : strerror(errno);
    }
    if (what != NULL) {
        made_up(why, 0, "4.7.0", "TLS handshake with %s failed: %s", c->peer, what);
        tracef(c, "%s", why->text);
        c->dead = 1; /* no close_notify on a broken handshake */
        close_fd(c);
        c->tls_failed = c->opts.tls_level == TLSC_MAY && !c->opts.tls_implicit;
        return 1;
    }
    c->tls_up = 1;
    tlsc_describe(c->ssl, c->tls, sizeof c->tls);
    tracef(c, "TLS: %s", c->tls);
    if (tlsc_check(c->ssl, c->opts.tls_level, err, sizeof err) < 0) {
        made_up(why, 0, "4.7.5", "TLS with %s (%s): %s", c->peer,
                tlsc_level_name(c->opts.tls_level), err);
        tracef(c, "%s", why->text);
        smtpc_quit(c);
        return 1;
    }
    return 0;
}

/* TLS is not to be had from c: on in clear under TLSC_MAY (0), else QUIT and 1. */
static int no_tls(struct smtpc *c, struct smtpc_reply *why, const char *what)
{
    if (c->opts.tls_level <= TLSC_MAY) {
        tracef(c, "%s: going on without TLS", what);
        SSL_free(c->ssl);
        c->ssl = NULL;
        return 0;
    }
    made_up(why, 0, "4.7.4", "%s (%s), and TLS is required for it (%s)", what, c->peer,
            tlsc_level_name(c->opts.tls_level));
    tracef(c, "%s", why->text);
    smtpc_quit(c);
    return 1;
}

/* STARTTLS (RFC 3207) after the first EHLO, the handshake, and EHLO again. 0, 1 or -1. */
static int starttls(struct smtpc *c, struct smtpc_reply *why)
{
    char was[SMTPC_TEXT_SIZE / 2];
    if (!(c->ext & SMTPC_EXT_STARTTLS))
        return no_tls(c, why, "no STARTTLS offered");
    if (command(c, "STARTTLS", why, "STARTTLS") < 0)
        return 1;
    if (why->code != 220 && c->fd >= 0) {
        (void)str_copy_n(was, sizeof was, why->text, strnlen(why->text, sizeof was - 1));
        char what[sizeof was + 32];
        (void)str_format(what, sizeof what, "STARTTLS refused: %s", was);
        return no_tls(c, why, what);
    }
    if (why->code != 220)
        return 1;
    if (c->in_pos != c->in_len) { /* never read plaintext as if it came through TLS */
        made_up(why, 0, "4.5.0", "protocol error from %s: data after the 220 to STARTTLS", c->peer);
        tracef(c, "%s", why->text);
        close_fd(c);
        return 1;
    }
    if (handshake(c, why) != 0)
        return 1;
    c->ext = 0;
    c->max_size = 0;
    c->esmtp = 0;
    return ehlo(c, why);
}

/* Sends a command holding a secret: the transcript shows what instead. 0, or -1 (r made up). */
static int secret_command(struct smtpc *c, const char *cmd, const char *shown,
                          struct smtpc_reply *r)
{
    trace(c, 'C', shown, strlen(shown));
    int rc = out_put(c, cmd, strlen(cmd), c->opts.command_timeout);
    if (rc == 0)
        rc = out_put(c, "\r\n", 2, c->opts.command_timeout);
    if (rc == 0)
        rc = out_flush(c, c->opts.command_timeout);
    if (rc < 0) {
        failed(c, r, rc, "AUTH");
        return -1;
    }
    return read_reply(c, r, c->opts.command_timeout, "AUTH");
}

/* "prefix" + base64(data) into out (wiped by the caller). 0 or -1 when it does not fit. */
static int b64_cmd(char *out, size_t size, const char *prefix, const void *data, size_t len)
{
    size_t plen = strlen(prefix);
    if (plen + sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL) > size)
        return -1;
    memcpy(out, prefix, plen);
    sodium_bin2base64(out + plen, size - plen, data, len, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* AUTH PLAIN (RFC 4616) or LOGIN. 0 on 235, 1 (why made up, c closed) otherwise. */
static int auth(struct smtpc *c, struct smtpc_reply *why)
{
    const char *user = c->opts.auth_user, *pass = c->opts.auth_pass ? c->opts.auth_pass : "";
    size_t ulen = strlen(user), plen = strlen(pass);
    char raw[1024], cmd[1500];
    int rc = -1;
    if (!c->tls_up) {
        made_up(why, 0, "4.7.10", "%s: no TLS, so the credentials are not sent", c->peer);
    } else if (!(c->ext & (SMTPC_EXT_AUTH_PLAIN | SMTPC_EXT_AUTH_LOGIN))) {
        made_up(why, 0, "4.7.8", "%s offers no AUTH PLAIN or LOGIN", c->peer);
    } else if (ulen + plen + 2 > sizeof raw) {
        made_up(why, 0, "4.7.8", "credentials too long");
    } else if (c->ext & SMTPC_EXT_AUTH_PLAIN) {
        raw[0] = '\0';
        memcpy(raw + 1, user, ulen);
        raw[ulen + 1] = '\0';
        memcpy(raw + ulen + 2, pass, plen);
        if (b64_cmd(cmd, sizeof cmd, "AUTH PLAIN ", raw, ulen + plen + 2) == 0)
            rc = secret_command(c, cmd, "AUTH PLAIN <credentials>", why);
    } else if (command(c, "AUTH LOGIN", why, "AUTH") == 0 && why->code == 334 &&
               b64_cmd(cmd, sizeof cmd, "", user, ulen) == 0 &&
               secret_command(c, cmd, "<user name>", why) == 0 && why->code == 334 &&
               b64_cmd(cmd, sizeof cmd, "", pass, plen) == 0) {
        rc = secret_command(c, cmd, "<password>", why);
    }
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(cmd, sizeof cmd);
    if (rc == 0 && why->code == 235)
        return 0;
    if (rc == 0 || (c->fd >= 0 && why->code != 0)) {
        char was[SMTPC_TEXT_SIZE / 2];
        (void)str_copy_n(was, sizeof was, why->text, strnlen(why->text, sizeof was - 1));
        made_up(why, 0, "4.7.8", "authentication at %s failed: %s", c->peer, was);
    }
    tracef(c, "%s", why->text);
    smtpc_quit(c);
    return 1;
}

/* [TLS,] greeting, then EHLO or HELO [, STARTTLS, EHLO]. 0 ready, 1 temporary, -1 permanent (c
 * closed on failure). */
static int greet(struct smtpc *c, struct smtpc_reply *why)
{
    if (!cmd_safe(c->opts.helo, 255)) {
        made_up(why, 0, "5.3.5", "bad local host name for EHLO");
        close_fd(c);
        return -1;
    }
    if (c->ssl != NULL && c->opts.tls_implicit && handshake(c, why) != 0)
        return 1;
    if (read_reply(c, why, c->opts.command_timeout, "greeting") < 0)
        return 1;
    if (why->code != 220) {
        int res = smtpc_reply_result(why) == SMTPC_PERM ? -1 : 1;
        if (res < 0)
            smtpc_quit(c);
        close_fd(c);
        return res;
    }
    int rc = ehlo(c, why);
    if (rc == 0 && c->ssl != NULL && !c->opts.tls_implicit)
        rc = starttls(c, why);
    if (rc == 0 && c->opts.auth_user != NULL)
        rc = auth(c, why);
    return rc;
}

static void name_peer(struct smtpc *c, const struct sockaddr *sa)
{
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        (void)inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
        (void)snprintf(c->peer, sizeof c->peer, "%s:%u", host, port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        (void)inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
        (void)snprintf(c->peer, sizeof c->peer, "[%s]:%u", host, port);
    } else {
        (void)str_copy(c->peer, sizeof c->peer, "?");
    }
}

/* The non-blocking TCP connect within connect_timeout. 0, or -1 (why made up). */
static int tcp_connect(struct smtpc *c, const struct sockaddr *sa, socklen_t salen,
                       struct smtpc_reply *why)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        made_up(why, 0, "4.4.1", "cannot make a socket for %s: %s", c->peer, strerror(errno));
        return -1;
    }
    c->fd = fd;
    if (connect(fd, sa, salen) < 0) {
        int err = errno;
        if (err == EINPROGRESS || err == EINTR) {
            int w = wait_until(fd, POLLOUT, deadline_for(c, c->opts.connect_timeout, 1));
            socklen_t len = sizeof err;
            if (w == 0)
                err = ETIMEDOUT;
            else if (w < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                err = errno;
        }
        if (err != 0 && err != EISCONN) {
            made_up(why, 0, "4.4.1", "cannot connect to %s: %s", c->peer, strerror(err));
            tracef(c, "%s", why->text);
            close_fd(c);
            return -1;
        }
    }
    return 0;
}

int smtpc_connect(struct smtpc *c, const struct sockaddr *sa, socklen_t salen,
                  const struct smtpc_opts *o, struct smtpc_reply *why)
{
    set_opts(c, o);
    reset_state(c, -1);
    name_peer(c, sa);
    tracef(c, "connecting to %s", c->peer);
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        made_up(why, 0, "4.4.1", "cannot connect: not an IP address");
        close_fd(c);
        return 1;
    }
    if (tcp_connect(c, sa, salen, why) < 0)
        return 1;
    return greet(c, why);
}

int smtpc_start(struct smtpc *c, int fd, const char *peer, const struct smtpc_opts *o,
                struct smtpc_reply *why)
{
    set_opts(c, o);
    reset_state(c, fd);
    if (str_copy(c->peer, sizeof c->peer, peer != NULL ? peer : "?") < 0)
        (void)str_copy(c->peer, sizeof c->peer, "?");
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        made_up(why, 0, "4.4.2", "cannot use the connection to %s: %s", c->peer, strerror(errno));
        close_fd(c);
        return 1;
    }
    return greet(c, why);
}

void smtpc_close(struct smtpc *c)
{
    close_fd(c);
}

void smtpc_quit(struct smtpc *c)
{
    struct smtpc_reply r;
    unsigned t = c->opts.command_timeout < 10 ? c->opts.command_timeout : 10;
    if (c->fd >= 0 && !c->dead) {
        c->opts.command_timeout = t;
        (void)command(c, "QUIT", &r, "QUIT");
    }
    close_fd(c);
}

/* ---- the message ---- */

/* The way out of a stored message: LF, CR LF and a lone CR all become CRLF; the last line
 * gets one if it lacks it. The state carries across reads. */
struct body_state {
    int bol; /* at the beginning of a line */
    int pending_cr;
};

int smtpc_measure(int fd, off_t offset, uint64_t *crlf_size, int *eightbit, int *nul)
{
    char buf[65536];
    struct body_state st = {1, 0};
    uint64_t size = 0;
    int eight = 0, zero = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, offset);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        offset += n;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char ch = (unsigned char)buf[i];
            if (st.pending_cr) {
                st.pending_cr = 0;
                size += 2;
                st.bol = 1;
                if (ch == '\n')
                    continue;
            }
            if (ch == '\r') {
                st.pending_cr = 1;
            } else if (ch == '\n') {
                size += 2;
                st.bol = 1;
            } else {
                size++;
                st.bol = 0;
                eight |= ch >= 0x80;
                zero |= ch == '\0';
            }
        }
    }
    if (st.pending_cr || !st.bol)
        size += 2;
    *crlf_size = size;
    *eightbit = eight;
    if (nul != NULL)
        *nul = zero;
    return 0;
}

/* Appends one byte to the output buffer, flushing it when full. 0 or RD_*. */
static int out_byte(struct smtpc *c, char ch)
{
    if (c->out_len == sizeof c->out) {
        int rc = out_flush(c, c->opts.data_timeout);
        if (rc < 0)
            return rc;
    }
    c->out[c->out_len++] = ch;
    return 0;
}

static int out_crlf(struct smtpc *c, struct body_state *st)
{
    st->bol = 1;
    int rc = out_byte(c, '\r');
    return rc < 0 ? rc : out_byte(c, '\n');
}

/* One piece of the stored message onto the wire. 0 or RD_*. */
static int body_piece(struct smtpc *c, struct body_state *st, const char *p, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char ch = p[i];
        if (st->pending_cr) {
            st->pending_cr = 0;
            rc = out_crlf(c, st);
            if (rc < 0 || ch == '\n')
                continue;
        }
        if (ch == '\r') {
            st->pending_cr = 1;
        } else if (ch == '\n') {
            rc = out_crlf(c, st);
        } else {
            if (st->bol && ch == '.')
                rc = out_byte(c, '.');
            st->bol = 0;
            if (rc == 0)
                rc = out_byte(c, ch);
        }
    }
    return rc;
}

/* Streams the message from m->fd and ends it with ".". 0, RD_* for the connection, or
 * RD_ERROR with errno saved in *read_errno when reading the file failed. */
static int send_body(struct smtpc *c, const struct smtpc_msg *m, uint64_t size, int *read_err)
{
    char buf[65536];
    struct body_state st = {1, 0};
    off_t off = m->offset;
    char what[64];
    (void)snprintf(what, sizeof what, "<message: %llu octets>", (unsigned long long)size);
    trace(c, 'C', what, strlen(what));
    *read_err = 0;
    for (;;) {
        ssize_t n = pread(m->fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *read_err = errno;
            return RD_ERROR;
        }
        if (n == 0)
            break;
        off += n;
        int rc = body_piece(c, &st, buf, (size_t)n);
        if (rc < 0)
            return rc;
    }
    if (st.pending_cr || !st.bol) {
        int rc = out_crlf(c, &st);
        if (rc < 0)
            return rc;
    }
    trace(c, 'C', ".", 1);
    int rc = out_put(c, ".\r\n", 3, c->opts.data_timeout);
    return rc < 0 ? rc : out_flush(c, c->opts.data_timeout);
}

/* ---- one transaction ---- */

enum { R_PENDING, R_ACCEPTED, R_SETTLED, R_BAD /* refused before sending */ };

struct txn {
    struct smtpc *c;
    const struct smtpc_msg *m;
    struct smtpc_reply *res;
    unsigned char st[SMTPC_MAX_RCPTS];
    size_t n_accepted;
};

/* Every recipient not settled yet gets r. */
static void settle_rest(struct txn *t, const struct smtpc_reply *r)
{
    for (size_t i = 0; i < t->m->n_rcpts; i++) {
        if (t->st[i] != R_SETTLED && t->st[i] != R_BAD) {
            if (&t->res[i] != r)
                t->res[i] = *r;
            t->st[i] = R_SETTLED;
        }
    }
}

/* The connection is gone (r says why): settle the rest, return 1. */
static int lost(struct txn *t, const struct smtpc_reply *r)
{
    close_fd(t->c);
    settle_rest(t, r);
    return 1;
}

/* After a reply that settles what is left (MAIL or DATA refused, the final reply). */
static int settled(struct txn *t, const struct smtpc_reply *r)
{
    settle_rest(t, r);
    return t->c->fd < 0 ? 1 : 0;
}

/* The RSET reply: anything but 2xx leaves the session in an unknown state: give up on it. */
static int check_rset(struct txn *t, struct smtpc_reply *r)
{
    if (smtpc_reply_result(r) == SMTPC_OK)
        return 0;
    if (t->c->fd >= 0) {
        char was[SMTPC_TEXT_SIZE / 2];
        (void)str_copy_n(was, sizeof was, r->text, strnlen(r->text, sizeof was - 1));
        made_up(r, 0, "4.5.0", "%s refused RSET: %s", t->c->peer, was);
    }
    return -1;
}

/* A RCPT reply for recipient i. 0 to go on, 1 when the connection is gone. */
static int rcpt_reply(struct txn *t, size_t i, struct smtpc_reply *r, int mail_ok)
{
    if (mail_ok && smtpc_reply_result(r) == SMTPC_OK) {
        t->st[i] = R_ACCEPTED;
        t->n_accepted++;
    } else if (mail_ok) {
        t->res[i] = *r;
        t->st[i] = R_SETTLED;
    }
    if (t->c->fd < 0)
        return lost(t, r);
    return 0;
}

/* DATA was answered with 354: the message, ".", the final reply. */
static int data_and_end(struct txn *t, uint64_t size)
{
    struct smtpc *c = t->c;
    struct smtpc_reply r;
    int read_err = 0;
    int rc = send_body(c, t->m, size, &read_err);
    if (rc < 0) {
        if (read_err != 0) {
            made_up(&r, 0, "4.3.0", "cannot read the queued message: %s", strerror(read_err));
            tracef(c, "%s", r.text);
        } else {
            failed(c, &r, rc, "sending the message");
        }
        return lost(t, &r); /* no "." after a partial message: the server drops it */
    }
    /* uncapped: cutting this wait is what sends a message twice (RFC 5321 §4.5.3.2.6) */
    if (read_reply_x(c, &r, deadline_for(c, c->opts.data_timeout, 0), "end of data", 0) < 0)
        return lost(t, &r);
    return settled(t, &r);
}

/* 354 to a DATA without any accepted recipient (pipelining): end it empty, drop the reply. */
static int data_nobody(struct txn *t)
{
    struct smtpc_reply r;
    trace(t->c, 'C', ".", 1);
    if (out_put(t->c, ".\r\n", 3, t->c->opts.command_timeout) < 0 ||
        read_reply(t->c, &r, t->c->opts.data_timeout, "empty data") < 0)
        return 1;
    return t->c->fd < 0 ? 1 : 0;
}

static int send_lockstep(struct txn *t, const char *mail, uint64_t size)
{
    struct smtpc *c = t->c;
    struct smtpc_reply r;
    char cmd[SMTPC_ADDR_MAX + 16];
    if (c->n_sent++ > 0) {
        if (command(c, "RSET", &r, "RSET") < 0 || check_rset(t, &r) < 0)
            return lost(t, &r);
    }
    if (command(c, mail, &r, "MAIL FROM") < 0)
        return lost(t, &r);
    if (smtpc_reply_result(&r) != SMTPC_OK)
        return settled(t, &r);
    for (size_t i = 0; i < t->m->n_rcpts; i++) {
        if (t->st[i] != R_PENDING)
            continue;
        (void)str_format(cmd, sizeof cmd, "RCPT TO:<%s>", t->m->rcpts[i]);
        if (command(c, cmd, &r, "RCPT TO") < 0 || rcpt_reply(t, i, &r, 1) != 0)
            return lost(t, &r);
    }
    if (t->n_accepted == 0)
        return 0;
    if (command(c, "DATA", &r, "DATA") < 0)
        return lost(t, &r);
    if (r.code != 354)
        return settled(t, &r);
    return data_and_end(t, size);
}

/* RFC 2920: [RSET] MAIL, every RCPT and DATA in one write, then the replies in order. */
static int send_pipelined(struct txn *t, const char *mail, uint64_t size)
{
    struct smtpc *c = t->c;
    struct smtpc_reply r;
    char cmd[SMTPC_ADDR_MAX + 16];
    int rset = c->n_sent++ > 0, rc = 0;
    if (rset)
        rc = put_cmd(c, "RSET");
    if (rc == 0)
        rc = put_cmd(c, mail);
    for (size_t i = 0; i < t->m->n_rcpts && rc == 0; i++) {
        if (t->st[i] != R_PENDING)
            continue;
        (void)str_format(cmd, sizeof cmd, "RCPT TO:<%s>", t->m->rcpts[i]);
        rc = put_cmd(c, cmd);
    }
    if (rc == 0)
        rc = put_cmd(c, "DATA");
    if (rc < 0) {
        failed(c, &r, rc, "sending commands");
        return lost(t, &r);
    }
    if (rset && (read_reply(c, &r, c->opts.command_timeout, "RSET") < 0 || check_rset(t, &r) < 0))
        return lost(t, &r);
    if (read_reply(c, &r, c->opts.command_timeout, "MAIL FROM") < 0)
        return lost(t, &r);
    int mail_ok = smtpc_reply_result(&r) == SMTPC_OK;
    if (!mail_ok)
        settle_rest(t, &r);
    if (c->fd < 0)
        return 1;
    for (size_t i = 0; i < t->m->n_rcpts; i++) {
        if (t->st[i] == R_BAD)
            continue;
        if (read_reply(c, &r, c->opts.command_timeout, "RCPT TO") < 0 ||
            rcpt_reply(t, i, &r, mail_ok) != 0)
            return lost(t, &r);
    }
    if (read_reply(c, &r, c->opts.command_timeout, "DATA") < 0)
        return lost(t, &r);
    if (r.code == 354 && t->n_accepted == 0)
        return data_nobody(t);
    if (r.code != 354)
        return t->n_accepted == 0 ? (c->fd < 0 ? 1 : 0) : settled(t, &r);
    return data_and_end(t, size);
}

/* Every recipient of the message gets r. */
static void all_get(const struct smtpc_msg *m, struct smtpc_reply *results,
                    const struct smtpc_reply *r)
{
    for (size_t i = 0; i < m->n_rcpts; i++)
        results[i] = *r;
}

/* Checks the recipients: a bad one gets a permanent made-up reply and is never sent. Returns
 * how many are good. */
static size_t check_rcpts(struct txn *t)
{
    size_t good = 0;
    for (size_t i = 0; i < t->m->n_rcpts; i++) {
        const char *a = t->m->rcpts[i];
        if (a == NULL || a[0] == '\0' || !cmd_safe_sp(a, SMTPC_ADDR_MAX, 1)) {
            made_up(&t->res[i], 553, "5.1.3", "bad recipient address (not sent)");
            t->st[i] = R_BAD;
        } else {
            t->st[i] = R_PENDING;
            good++;
        }
    }
    return good;
}

static int mail_command(struct smtpc *c, char *cmd, size_t size, const char *sender,
                        uint64_t msg_size, int eightbit)
{
    char size_param[40] = "";
    if (c->ext & SMTPC_EXT_SIZE)
        (void)snprintf(size_param, sizeof size_param, " SIZE=%llu", (unsigned long long)msg_size);
    return str_format(cmd, size, "MAIL FROM:<%s>%s%s", sender, size_param,
                      (eightbit && (c->ext & SMTPC_EXT_8BITMIME)) ? " BODY=8BITMIME" : "");
}

int smtpc_send(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *results)
{
    struct txn t;
    struct smtpc_reply r;
    char mail[SMTPC_ADDR_MAX + 80];
    uint64_t size = 0;
    int eightbit = 0, nul = 0;
    if (m->n_rcpts == 0)
        return -1;
    if (m->n_rcpts > SMTPC_MAX_RCPTS) {
        made_up(&r, 0, "4.5.3", "too many recipients for one transaction (not sent)");
        all_get(m, results, &r);
        return -1;
    }
    if (c->fd < 0 || c->dead) {
        made_up(&r, 0, "4.4.2", "connection to %s is closed", c->peer);
        all_get(m, results, &r);
        return 1;
    }
    if (session_over(c)) {
        made_up(&r, 0, "4.4.2", "session time limit (%u s) reached with %s (not sent)",
                c->opts.session_limit, c->peer);
        tracef(c, "%s", r.text);
        all_get(m, results, &r);
        smtpc_quit(c);
        return 1;
    }
    if (m->sender == NULL || !cmd_safe_sp(m->sender, SMTPC_ADDR_MAX, 1)) {
        made_up(&r, 553, "5.1.7", "bad sender address (not sent)");
        all_get(m, results, &r);
        return -1;
    }
    t.c = c;
    t.m = m;
    t.res = results;
    t.n_accepted = 0;
    if (check_rcpts(&t) == 0)
        return -1;
    if (smtpc_measure(m->fd, m->offset, &size, &eightbit, &nul) < 0) {
        made_up(&r, 0, "4.3.0", "cannot read the queued message: %s", strerror(errno));
        settle_rest(&t, &r);
        return -1;
    }
    if (nul) {
        made_up(&r, 554, "5.6.0", "message contains a NUL byte, which is never relayed (not sent)");
        tracef(c, "%s", r.text);
        settle_rest(&t, &r);
        return 0;
    }
    if ((c->ext & SMTPC_EXT_SIZE) && c->max_size > 0 && size > c->max_size) {
        made_up(&r, 552, "5.3.4", "message of %llu octets exceeds the limit of %llu of %s",
                (unsigned long long)size, (unsigned long long)c->max_size, c->peer);
        tracef(c, "%s", r.text);
        settle_rest(&t, &r);
        return 0;
    }
    if (mail_command(c, mail, sizeof mail, m->sender, size, eightbit) < 0) {
        made_up(&r, 553, "5.1.7", "sender address too long (not sent)");
        settle_rest(&t, &r);
        return -1;
    }
    if (c->ext & SMTPC_EXT_PIPELINING)
        return send_pipelined(&t, mail, size);
    return send_lockstep(&t, mail, size);
}

/* Refused at RCPT for the server's limit on recipients per transaction (RFC 5321
 * §4.5.3.1.10: 452, or the 552 of RFC 821, which is temporary as well when it says 5.5.3)? */
static int too_many(const struct smtpc_reply *r)
{
    return r->code == 452 || (r->code == 552 && strcmp(r->enhanced, "5.5.3") == 0);
}

/* One transaction for the recipients idx[0..n) of m; their results go to results by
 * recipient. The ones refused as too many move to the front of idx, *again of them, unless
 * the transaction delivered to nobody (then they keep their reply: a 552 5.5.3 as a 452). */
static int send_part(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *results,
                     size_t *idx, size_t n, const char **list, struct smtpc_reply *part,
                     size_t *again)
{
    struct smtpc_msg sub = *m;
    size_t delivered = 0;
    for (size_t k = 0; k < n; k++)
        list[k] = m->rcpts[idx[k]];
    sub.rcpts = list;
    sub.n_rcpts = n;
    int rc = smtpc_send(c, &sub, part);
    *again = 0;
    for (size_t k = 0; k < n; k++) {
        results[idx[k]] = part[k];
        delivered += smtpc_reply_result(&part[k]) == SMTPC_OK;
    }
    for (size_t k = 0; k < n; k++) {
        struct smtpc_reply *r = &results[idx[k]];
        if (too_many(r) && delivered > 0)
            idx[(*again)++] = idx[k];
        else if (too_many(r) && r->code == 552) {
            r->code = 452;
            (void)str_copy(r->enhanced, sizeof r->enhanced, "4.5.3");
        }
    }
    return rc;
}

int smtpc_send_all(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *results,
                   unsigned max_rcpts)
{
    size_t n = m->n_rcpts,
           max = max_rcpts && max_rcpts < SMTPC_MAX_RCPTS ? max_rcpts : SMTPC_MAX_RCPTS;
    if (n == 0 || n > SMTPC_MAX_RCPTS)
        return smtpc_send(c, m, results); /* its refusal */
    if (max > n)
        max = n;
    size_t *idx = malloc(n * sizeof *idx), left = n; /* idx[0..left): not settled yet */
    const char **list = malloc(max * sizeof *list);
    struct smtpc_reply *part = malloc(max * sizeof *part), r;
    int rc = 0;
    if (!idx || !list || !part) {
        made_up(&r, 0, "4.3.0", "out of memory (not sent)");
        all_get(m, results, &r);
        rc = -1;
        left = 0;
    }
    for (size_t i = 0; i < left; i++)
        idx[i] = i;
    while (left > 0 && rc != 1) {
        size_t take = left < max ? left : max, again;
        rc = send_part(c, m, results, idx, take, list, part, &again);
        memmove(idx + again, idx + take, (left - take) * sizeof *idx);
        left = again + left - take;
    }
    if (left > 0)
        made_up(&r, 0, "4.4.2", "connection to %s lost before this recipient's turn", c->peer);
    for (size_t i = 0; i < left; i++)
        results[idx[i]] = r;
    free(idx);
    free(list);
    free(part);
    return rc;
}

int smtpc_auth_load(const char *path, char *user, size_t usize, char *pass, size_t psize, char *err,
                    size_t errlen)
{
    char buf[1024];
    struct stat st;
    ssize_t n = -1;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) < 0) {
        (void)str_format(err, errlen, "%s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode) || (st.st_mode & 077) != 0)
        (void)str_format(err, errlen, "%s: must be a file only its owner can read (0600)", path);
    else if ((n = read(fd, buf, sizeof buf - 1)) < 0)
        (void)str_format(err, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    int rc = -1;
    if (n >= 0) {
        buf[n] = '\0';
        buf[strcspn(buf, "\r\n")] = '\0';
        char *colon = strchr(buf, ':');
        if (colon == NULL || colon == buf)
            (void)str_format(err, errlen, "%s: expected one line \"user:password\"", path);
        else if (str_copy_n(user, usize, buf, (size_t)(colon - buf)) < 0 ||
                 str_copy(pass, psize, colon + 1) < 0)
            (void)str_format(err, errlen, "%s: user name or password too long", path);
        else
            rc = 0;
    }
    sodium_memzero(buf, sizeof buf);
    return rc;
}
