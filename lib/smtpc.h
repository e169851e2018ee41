/*
 * smtpc: the SMTP client queue-run relays with (RFC 5321, RFC 2920 PIPELINING, RFC 1870 SIZE,
 * RFC 6152 8BITMIME). One connection to one host: connect with a timeout, greeting, EHLO (HELO
 * when EHLO gets a 5xx), any number of transactions (RSET before each but the first), QUIT.
 *
 * The message is streamed from a file descriptor holding a stored message (LF line ends, as on
 * disk), starting at a byte offset (the stored file begins with a Return-Path: line that is
 * never relayed). On the way out every LF becomes CRLF, a CR LF pair stays one CRLF, a lone CR
 * becomes CRLF as well, a last line without LF gets its CRLF, and a line starting with '.'
 * gets one more '.': a bare CR or LF is never sent. The message is never
 * held in memory (a fixed buffer; pread).
 *
 * Time: every read and write has a timeout (the socket is non-blocking; poll), and with
 * session_limit the connection has a wall-clock limit as well: no wait lasts past it, and no
 * transaction starts after it (smtpc_send then says QUIT and fails with a made-up 4.4.2), so
 * a server that answers one byte a minute holds a connection for session_limit, not for
 * hours. The one wait it does not cut is the reply to the final "." (data_timeout): the
 * message has been sent by then, and a client that hangs up there sends it twice
 * (RFC 5321 §4.5.3.2.6).
 *
 * Replies are parsed strictly: three digits, then ' ' (last line) or '-' (continuation), the same
 * code on every line, at most SMTPC_MAX_LINES lines of at most SMTPC_LINE_MAX octets ending in
 * CRLF. Anything else is a protocol error, which is a temporary failure: the connection is closed.
 * A 421 at any point closes the connection as well.
 *
 * 8-bit messages to a server that does not offer 8BITMIME are sent anyway, as they are,
 * without BODY= (the common practice; Postfix does the same). With 8BITMIME offered, an 8-bit
 * message gets BODY=8BITMIME and a 7-bit one gets no BODY= parameter.
 *
 * A message larger than the server's advertised SIZE limit is not sent: every recipient gets
 * a made-up "552 5.3.4" (permanent) reply without any command being sent. Nor is a message
 * holding a NUL byte: "554 5.6.0" (permanent). A next hop that drops NULs would see a stored
 * "<CRLF><NUL>.<CRLF>" as the end of DATA and run what follows it as commands, so no NUL
 * ever goes out, whatever let it into a queue.
 *
 * Results follow DESIGN.md: 0 success, 1 temporary, -1 permanent. A missing reply (timeout,
 * connection lost, refused, protocol error) is temporary: the caller tries the next MX.
 *
 * TLS (opts.tls): after EHLO, STARTTLS (RFC 3207) when the server offers it, the handshake,
 * tlsc_check against opts.tls_level, and EHLO again (everything learnt before is
 * forgotten); with tls_implicit the handshake comes first. A level above TLSC_MAY fails
 * temporarily ("4.7.4 ... offers no STARTTLS", "4.7.5 ... certificate ...") and never goes on
 * in clear; TLSC_MAY goes on in clear when STARTTLS is not offered or refused, and when the
 * handshake fails it sets tls_failed (the caller retries in clear, once).
 *
 * AUTH (RFC 4954, a smarthost): with opts.auth_user, after the (last) EHLO, AUTH PLAIN when
 * offered, else AUTH LOGIN; the credentials go out only through TLS (else a temporary "4.7.10",
 * nothing sent) and never into the transcript ("<credentials>"). A 535 or any other refusal is
 * a temporary "4.7.8" failure (the password may be fixed before the mail expires).
 *
 * It never prints and never logs: the dialogue goes to the optional transcript callback, the
 * outcome into struct smtpc_reply values. It never sends a command holding a CR or LF (such
 * addresses are refused with a made-up reply). Addresses must be ASCII: there is no SMTPUTF8.
 */
#ifndef YUBIN_SMTPC_H
#define YUBIN_SMTPC_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#define SMTPC_LINE_MAX 2048  /* one reply line with its CRLF (RFC 5321 asks 512; be lenient) */
#define SMTPC_MAX_LINES 64   /* lines in one multi-line reply */
#define SMTPC_TEXT_SIZE 1024 /* struct smtpc_reply.text */
#define SMTPC_BUFSIZE 16384  /* input and output buffers */
#define SMTPC_MAX_RCPTS 1024 /* recipients in one smtpc_send */
#define SMTPC_ADDR_MAX 512   /* longest address accepted in MAIL FROM / RCPT TO */

enum { SMTPC_OK = 0, SMTPC_TEMP = 1, SMTPC_PERM = -1 };

/* The server's answer to one command, or a made-up one when there was none. */
struct smtpc_reply {
    int code;          /* 200..599 as sent; 0 = no reply (timeout, connection lost, refused,
                        * protocol error): then enhanced is "4.4.1"/"4.4.2"/"4.5.0" etc. */
    char enhanced[16]; /* "5.1.1" when the reply had one (or made up), else "" */
    char text[SMTPC_TEXT_SIZE]; /* for people and DSN Diagnostic-Code: "550 5.1.1 no such user",
                                 * lines of a multi-line reply joined with ' ', control and
                                 * 8-bit bytes replaced by '?'. Remote text longer than the
                                 * buffer is cut and ends in "..." (the only truncation
                                 * here: it is for display). For code 0: "4.4.1 connection
                                 * refused by 192.0.2.1:25" and the like. */
};

/* 0 for 2xx/3xx, 1 for 4xx and code 0 (no reply), -1 for 5xx. */
int smtpc_reply_result(const struct smtpc_reply *r);

/* The transcript: dir is 'C' for a line we sent (without CRLF; the message body appears as
 * one line "<message: N octets>"), 'S' for a line the server sent (without CRLF), '*' for an
 * event ("connecting to 192.0.2.1:25", "timeout"). */
typedef void (*smtpc_transcript_fn)(void *arg, char dir, const char *line, size_t len);

struct smtpc_opts {
    const char *helo;               /* our name for EHLO/HELO (conf.hostname); required */
    unsigned connect_timeout;       /* seconds for the TCP connect (0 = 30) */
    unsigned command_timeout;       /* seconds for greeting, each command reply, each write
                                     * (0 = 300, RFC 5321 §4.5.3.2) */
    unsigned data_timeout;          /* seconds for each write of the body and for the reply to the
                                     * final "." (0 = 600) */
    unsigned session_limit;         /* seconds for the whole connection, from connect (0 = no
                                     * limit): see "Time" above */
    smtpc_transcript_fn transcript; /* may be NULL */
    void *transcript_arg;
    SSL *tls;              /* NULL: no TLS. Else a fresh SSL object (lib/tlsc's tlsc_ssl_new) that
                            * the connection takes over: it is freed with it, on failure too */
    int tls_level;         /* enum tlsc_level: TLSC_MAY takes STARTTLS when offered and goes on in
                            * clear without it; a higher level requires TLS and tlsc_check */
    int tls_implicit;      /* TLS from the first byte (RFC 8314, port 465), no STARTTLS */
    const char *auth_user; /* with auth_pass: AUTH PLAIN (or LOGIN) after EHLO, over TLS only */
    const char *auth_pass;
};

/* Extensions from the EHLO reply (bits of struct smtpc.ext). */
enum {
    SMTPC_EXT_PIPELINING = 1 << 0,
    SMTPC_EXT_SIZE = 1 << 1,
    SMTPC_EXT_8BITMIME = 1 << 2,
    SMTPC_EXT_ENHANCEDSTATUSCODES = 1 << 3,
    SMTPC_EXT_SMTPUTF8 = 1 << 4,
    SMTPC_EXT_STARTTLS = 1 << 5,
    SMTPC_EXT_DSN = 1 << 6,
    SMTPC_EXT_AUTH_PLAIN = 1 << 7,
    SMTPC_EXT_AUTH_LOGIN = 1 << 8,
};

#define SMTPC_TLS_SIZE 160

/* One connection. Fields are read-only for callers (ext and max_size are useful for -v). It
 * holds two buffers of SMTPC_BUFSIZE: allocate it with malloc or keep it static. */
struct smtpc {
    int fd;                   /* -1 once closed */
    int dead;                 /* the connection is unusable (421, timeout, protocol error, EOF) */
    int esmtp;                /* EHLO was accepted (else HELO) */
    unsigned ext;             /* SMTPC_EXT_* */
    uint64_t max_size;        /* SIZE n from EHLO; 0 = no limit given */
    unsigned n_sent;          /* transactions started on this connection (RSET before the next) */
    long long session_end;    /* CLOCK_MONOTONIC ms when session_limit runs out; 0 = never */
    char peer[80];            /* "192.0.2.1:25" or "[2001:db8::1]:25" for messages */
    SSL *ssl;                 /* the TLS layer: opts.tls until the handshake, then in use */
    int tls_up;               /* the handshake is done: every byte goes through ssl */
    int tls_failed;           /* under TLSC_MAY, the handshake failed: c is closed, and the caller
                               * tries the same address once more without TLS */
    char tls[SMTPC_TLS_SIZE]; /* "none", or "TLSv1.3 TLS_AES_256_GCM_SHA384 dane" (tlsc) */
    struct smtpc_opts opts;
    size_t in_pos, in_len, out_len;
    char in[SMTPC_BUFSIZE];
    char out[SMTPC_BUFSIZE];
};

/* Connects to sa (AF_INET/AF_INET6 with the port set) within connect_timeout, reads the
 * greeting and says EHLO (HELO after any 5xx to EHLO; a 4xx to EHLO fails). Returns 0 when the
 * connection is ready for smtpc_send; else 1 (temporary: refused, timeout, 4xx or 421
 * greeting, protocol error) or -1 (a 5xx greeting, or 5xx to both EHLO and HELO) with the
 * reason in *why, and c closed (no smtpc_close needed, but it is harmless). A host that
 * answers -1 refuses all mail at connection level: RFC 5321 §3.9 lets the caller try the
 * next MX, and only fail the recipients for good when every MX did so. */
int smtpc_connect(struct smtpc *c, const struct sockaddr *sa, socklen_t salen,
                  const struct smtpc_opts *o, struct smtpc_reply *why);
/* The same on an already connected socket (tests use a socketpair). fd becomes c's: it is
 * set non-blocking and closed by smtpc_close or on failure. peer names it in messages. */
int smtpc_start(struct smtpc *c, int fd, const char *peer, const struct smtpc_opts *o,
                struct smtpc_reply *why);

/* One message. */
struct smtpc_msg {
    const char *sender;       /* envelope sender without <>; "" for the null path */
    const char *const *rcpts; /* n_rcpts addresses without <> */
    size_t n_rcpts;           /* 1..SMTPC_MAX_RCPTS */
    int fd;                   /* the stored message, LF line ends (read with pread) */
    off_t offset;             /* first byte to relay (just after the Return-Path: line) */
};

/* Sends one transaction: [RSET] MAIL FROM (SIZE= when offered, BODY=8BITMIME when offered and
 * the message has a byte >= 0x80), RCPT TO for every recipient, DATA, the message, ".". With
 * PIPELINING, [RSET] MAIL, all RCPTs and DATA go out in one write and the replies are read
 * after it (RFC 2920 §3.1); without it, one command at a time.
 *
 * Before sending anything it reads the message once (pread, from offset to end of file) to
 * learn its size with CRLF line ends (for SIZE=) and whether it is 8-bit.
 *
 * Fills results[i] (n_rcpts of them) with the outcome for recipient i: the RCPT reply when
 * that was not 2xx, the MAIL reply when MAIL failed, the DATA reply when DATA was refused,
 * else the reply to the final "." — or a made-up code-0 reply when the connection failed on
 * the way. smtpc_reply_result(&results[i]) is then 0 (delivered), 1 (retry: another MX or
 * later) or -1 (bounce).
 *
 * Returns 0 when the connection can carry another message (call smtpc_send again, or
 * smtpc_quit), 1 when it cannot (lost, 421, timeout, protocol error: c is closed; results
 * of recipients not yet settled are temporary), -1 when nothing was sent because of the
 * arguments (c stays usable): no recipient (results untouched); more than SMTPC_MAX_RCPTS
 * (each gets a temporary "4.5.3": split the list); a bad sender (each gets "553 5.1.7"); every
 * recipient bad; the file unreadable (each gets a temporary "4.3.0").
 * A bad address is empty, longer than SMTPC_ADDR_MAX, or holds a control byte, a byte >= 0x7f,
 * '<' or '>'; a bad recipient among good ones gets a permanent "553 5.1.3" and is not sent,
 * the others go on. */
int smtpc_send(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *results);

/* Sends one message to all its recipients (up to SMTPC_MAX_RCPTS) in as many transactions
 * on c as it takes: at most max_rcpts recipients each (0 = SMTPC_MAX_RCPTS; RFC 5321
 * §4.5.3.1.8 asks every server to take 100), and the recipients that a transaction refused
 * with "too many recipients" (452, or 552 5.5.3: RFC 5321 §4.5.3.1.10) again in the next one,
 * after the first one's DATA, as long as each delivers to somebody. What is refused so in a
 * transaction that delivered nothing keeps its reply, temporary (a 552 5.5.3 is made 452
 * 4.5.3). results and the return value as for smtpc_send (the last transaction's); when the
 * connection is lost, recipients whose turn had not come get a code-0 (temporary) reply. */
int smtpc_send_all(struct smtpc *c, const struct smtpc_msg *m, struct smtpc_reply *results,
                   unsigned max_rcpts);

/* Sends QUIT, waits (at most command_timeout, capped at 10 s) for the reply and closes. */
void smtpc_quit(struct smtpc *c);
/* Closes without QUIT (after a failure). Harmless on a closed connection. */
void smtpc_close(struct smtpc *c);

/* Reads smarthost credentials from path: one line "user:password" (the password is the rest of
 * the line). The file must be a regular file that neither its group nor others may read (it is
 * read as root, before privileges drop). 0, or -1 with the reason in err (never the contents).
 * The caller wipes pass with sodium_memzero when done. */
int smtpc_auth_load(const char *path, char *user, size_t usize, char *pass, size_t psize, char *err,
                    size_t errlen);

/* Measures a stored message from offset to end of file: its size with CRLF line ends, as
 * smtpc_send will send it without the dot-stuffing (RFC 1870 §4), whether it has any byte >=
 * 0x80, and whether it has a NUL byte (*nul; may be NULL). 0, or -1 (errno set). Shared with
 * the tests. */
int smtpc_measure(int fd, off_t offset, uint64_t *crlf_size, int *eightbit, int *nul);

#endif
