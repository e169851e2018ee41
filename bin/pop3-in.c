/*
 * pop3-in: a POP3 server (RFC 1939, CAPA from RFC 2449, AUTH PLAIN from RFC 5034) for one
 * connection on stdin/stdout, started by inetd or systemd. It reads top to bottom as the
 * protocol: start-up, the command table, one function per command (check, then act).
 *
 * With tls_cert_file it offers STLS (RFC 2595); -T is implicit TLS (RFC 8314, port 995). USER,
 * PASS and AUTH are taken only over TLS, from loopback (127.0.0.0/8, ::1) or a pipe, or with
 * auth_without_tls; before that CAPA does not list them and they get -ERR [AUTH].
 *
 * It must never read a byte of input as root (nor the TLS key after root is gone), never take
 * plaintext pipelined after STLS as if it had come through TLS, never log or keep a password,
 * never show a
 * message that arrived after the login, never delete anything unless the client says QUIT in
 * the TRANSACTION state, and never hold a message in memory: RETR and TOP stream the file.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "authc.h"
#include "conf.h"
#include "connlimit.h"
#include "handler.h"
#include "log.h"
#include "mailbox.h"
#include "maildir.h"
#include "netio.h"
#include "sasl.h"
#include "tls.h"
#include "tlsserver.h"
#include "transcript.h"
#include "users.h"
#include "util.h"

#define POP3_LINE_MAX 255       /* RFC 2449: a command line, CRLF included */
#define POP3_AUTH_LINE_MAX 2048 /* a SASL client response (RFC 5034 lifts the limit) */

enum state { AUTHORIZATION = 1, TRANSACTION = 2 };

struct session {
    struct yubin_conf conf;
    struct netio io;
    enum state state;
    char client[INET6_ADDRSTRLEN + 8];
    struct connlimit slot;         /* this client's connection slot (lib/connlimit) */
    char user[USERS_ADDRESS_SIZE]; /* from USER, or the logged-in mailbox */
    int have_user;
    unsigned auth_failures, errors;
    unsigned junk; /* NOOP, RSET, CAPA so far */
    int lock_fd;
    struct mailbox mb; /* the INBOX, through its UID index (lib/mailbox) */
    unsigned long retrieved;
    int done;
    int local_client;           /* loopback or a pipe: plaintext logins allowed */
    int implicit_tls;           /* -T */
    struct tls_server *tls_ctx; /* a certificate read: STLS offered; else NULL */
    char tls[160];              /* over TLS: "TLSv1.3 with cipher ..." (lib/tls); else "" */
};

static void reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void reply(struct session *s, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line - 2)
        n = (int)strlen(strcpy(line, "-ERR [SYS/TEMP] internal error"));
    memcpy(line + n, "\r\n", 2);
    netio_write(&s->io, line, (size_t)n + 2);
}

/* A protocol error: counted, and the session ends after max_errors of them. */
static void error_reply(struct session *s, const char *text)
{
    reply(s, "-ERR %s", text);
    if (++s->errors >= s->conf.max_errors) {
        reply(s, "-ERR too many errors, closing the connection");
        s->done = 1;
    }
}

/* Counts a command that fetches nothing (NOOP, RSET, CAPA); past max_junk_commands the session
 * ends (no UPDATE: nothing is deleted), so NOOP every few minutes cannot hold a process for
 * ever. Returns -1 then (the caller returns at once), else 0. */
static int junk(struct session *s)
{
    if (++s->junk <= s->conf.max_junk_commands)
        return 0;
    reply(s, "-ERR too many commands that fetch nothing, closing the connection");
    log_msg(LOG_NOTICE, "client=%s too many junk commands (%u)", s->client, s->junk - 1);
    s->done = 1;
    return -1;
}

/* ---- logging in ------------------------------------------------------------------- */

/* The client's address for the log and its connection slot (lib/handler): at most
 * max_connections_per_client at once from one address, under inetd as under systemd.
 * 0 to serve, 1 refused (-ERR said, or nothing for a refused PROXY header). */
static int client_address(struct session *s)
{
    int rc = handler_client(&s->io, &s->conf, s->implicit_tls, &s->slot, s->client,
                            sizeof s->client, &s->local_client);
    if (rc != 2)
        return rc;
    reply(s, "-ERR [SYS/TEMP] too many connections from your address, try again later");
    netio_flush(&s->io);
    return 1;
}

/* May the client log in now: over TLS, from loopback or a pipe, or with auth_without_tls
 * (RFC 2595 §4: a server may refuse plaintext logins). */
static int login_allowed(const struct session *s)
{
    return s->tls[0] != '\0' || s->local_client || s->conf.auth_without_tls;
}

/* Refuses a login command before TLS: -ERR [AUTH]. True when refused. */
static int needs_tls(struct session *s)
{
    if (login_allowed(s))
        return 0;
    error_reply(s, s->tls_ctx != NULL ? "[AUTH] TLS required: send STLS first"
                                      : "[AUTH] logins need TLS, and none is configured");
    return 1;
}

/* Wipes what the input buffer already handed out (it held a password). */
static void wipe_consumed_input(struct session *s)
{
    netio_wipe_consumed(&s->io);
}

/* A failed login: logged, delayed, and fatal after max_auth_failures. held_ms: how long
 * yubin-auth already held the answer back (its delays count across connections); a failure
 * it never saw (a malformed AUTH) is delayed here, doubling each time. */
static void auth_failed(struct session *s, const char *who, const char *why, long held_ms)
{
    authc_failed(&s->conf, &s->auth_failures, s->client, who, why, held_ms);
    s->have_user = 0;
    if (s->auth_failures >= s->conf.max_auth_failures) {
        reply(s, "-ERR [AUTH] invalid user name or password; too many failures, closing");
        s->done = 1;
        return;
    }
    reply(s, "-ERR [AUTH] invalid user name or password");
}

/* The mailbox of address: locked, new/ moved into cur/, listed from its UID index (the
 * special folders made at the first login). Replies either way. */
static void open_mailbox(struct session *s, const char *address)
{
    char local[USERS_ADDRESS_SIZE], maildir[PATH_MAX];
    const char *at = strrchr(address, '@');
    if (at == NULL || str_copy_n(local, sizeof local, address, (size_t)(at - address)) != 0 ||
        maildir_path(maildir, sizeof maildir, s->conf.state_dir, local, at + 1) != 0) {
        reply(s, "-ERR [SYS/PERM] this mailbox name cannot be served");
        return;
    }
    int rc = maildir_ensure(maildir) != 0 ? -1 : maildir_lock(maildir, &s->lock_fd);
    if (rc == 1) {
        log_msg(LOG_NOTICE, "mailbox in use: user=<%s> client=%s", log_field(address), s->client);
        reply(s, "-ERR [IN-USE] the mailbox is in use by another session");
        return;
    }
    if (rc != 0 || mailbox_open(&s->mb, maildir) != 0) {
        log_msg(LOG_ERR, "cannot open the mailbox %s: %s", maildir, strerror(errno));
        if (rc == 0)
            close(s->lock_fd);
        s->lock_fd = -1;
        reply(s, "-ERR [SYS/TEMP] cannot open the mailbox, try again later");
        return;
    }
    if (s->mb.created && mailbox_ensure_folders(maildir) != 0)
        log_msg(LOG_ERR, "cannot make the folders of %s: %s", maildir, strerror(errno));
    str_copy(s->user, sizeof s->user, address);
    s->state = TRANSACTION;
    log_msg(LOG_INFO, "login: user=<%s> client=%s messages=%zu", log_field(address), s->client,
            s->mb.count);
    reply(s, "+OK %s has %zu messages (%llu octets)", address, s->mb.count,
          (unsigned long long)s->mb.total_crlf);
}

/* Asks yubin-auth about the password of address, then opens the mailbox or counts a failure. */
static void login(struct session *s, const char *address, const char *password, size_t pwlen)
{
    struct authc_answer a;
    int ok = authc_login(&s->conf, "pop3", s->client, address, password, pwlen, &a);
    if (ok < 0) {
        log_msg(LOG_ERR, "cannot check a password: user=<%s> client=%s: %s", log_field(address),
                s->client, a.why);
        reply(s, "-ERR [SYS/TEMP] cannot check passwords now, try again later");
        return;
    }
    if (ok == 0) {
        auth_failed(s, address, "bad user name or password", (long)a.delay_ms);
        return;
    }
    open_mailbox(s, a.mailbox);
}

/* ---- message numbers and sending ---------------------------------------------------- */

/* The message named by text (1-based). NULL after an -ERR reply. */
static struct mailbox_msg *message_arg(struct session *s, const char *text)
{
    uint64_t n;
    if (text == NULL || parse_u64(text, &n) != 0) {
        int digits = text != NULL && text[0] != '\0' && strspn(text, "0123456789") == strlen(text);
        error_reply(s, digits ? "no such message" : "invalid message number");
        return NULL;
    }
    if (n == 0 || n > s->mb.count) {
        error_reply(s, "no such message");
        return NULL;
    }
    struct mailbox_msg *e = &s->mb.msgs[n - 1];
    if (e->deleted) {
        error_reply(s, "message already deleted");
        return NULL;
    }
    return e;
}

struct sender {
    struct netio *io;
    int line_start, in_header, pending_cr;
    size_t line_len;
    uint64_t body_lines;
    int64_t limit; /* body lines to send (TOP), -1 for all */
};

/* Sends one chunk of the file with LF -> CRLF and dot-stuffing. 1 when TOP's limit is met. */
static int send_chunk(struct sender *t, const char *p, const char *end)
{
    while (p < end) {
        if (t->line_start) {
            if (!t->in_header && t->limit >= 0 && t->body_lines >= (uint64_t)t->limit)
                return 1;
            if (*p == '.')
                netio_write(t->io, ".", 1);
            t->line_start = 0;
        }
        if (t->pending_cr && *p != '\n')
            netio_write(t->io, "\r", 1);
        t->pending_cr = 0;
        const char *lf = memchr(p, '\n', (size_t)(end - p));
        const char *seg_end = lf != NULL ? lf : end;
        size_t len = (size_t)(seg_end - p);
        if (len > 0 && seg_end[-1] == '\r') {
            len--;
            t->pending_cr = lf == NULL;
        }
        netio_write(t->io, p, len);
        t->line_len += len;
        if (lf == NULL)
            return 0;
        netio_write(t->io, "\r\n", 2);
        if (t->in_header && t->line_len == 0)
            t->in_header = 0;
        else if (!t->in_header)
            t->body_lines++;
        t->line_start = 1;
        t->line_len = 0;
        p = lf + 1;
    }
    return 0;
}

/* RETR (limit -1) and TOP: "+OK", the message, ".". 0, or -1 when the session must end. */
static int send_message(struct session *s, struct mailbox_msg *e, int64_t limit)
{
    int fd = mailbox_open_msg(&s->mb, e);
    if (fd < 0) {
        log_msg(LOG_ERR, "cannot open message UID %lu for %s: %s", (unsigned long)e->uid, s->user,
                strerror(errno));
        reply(s, "-ERR [SYS/TEMP] cannot read that message now");
        return 0;
    }
    char buf[32768];
    struct sender t = {.io = &s->io, .line_start = 1, .in_header = 1, .limit = limit};
    ssize_t n;
    reply(s, "+OK %llu octets", (unsigned long long)e->crlf_size);
    while ((n = read(fd, buf, sizeof buf)) > 0)
        if (send_chunk(&t, buf, buf + n))
            break;
    int saved = errno;
    close(fd);
    if (n < 0) {
        log_msg(LOG_ERR, "read error in message UID %lu for %s: %s", (unsigned long)e->uid, s->user,
                strerror(saved));
        return -1; /* the answer is cut: the client must not take it for the message */
    }
    if (t.pending_cr)
        netio_write(&s->io, "\r", 1);
    if (!t.line_start)
        netio_write(&s->io, "\r\n", 2);
    netio_write(&s->io, ".\r\n", 3);
    return 0;
}

/* ---- the commands ------------------------------------------------------------------- */

static void cmd_capa(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return;
    if (arg != NULL) {
        error_reply(s, "CAPA takes no argument");
        return;
    }
    int login = login_allowed(s);
    reply(s, "+OK capability list follows");
    netio_puts(&s->io, "TOP\r\nUIDL\r\n");
    if (login)
        netio_puts(&s->io, "USER\r\n");
    if (s->tls_ctx != NULL && s->tls[0] == '\0' && s->state == AUTHORIZATION)
        netio_puts(&s->io, "STLS\r\n");
    netio_puts(&s->io, "RESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
    if (login)
        netio_puts(&s->io, "SASL PLAIN\r\n");
    netio_puts(&s->io, "IMPLEMENTATION yubin\r\n.\r\n");
}

static void cmd_user(struct session *s, char *arg)
{
    if (needs_tls(s))
        return;
    if (arg == NULL || arg[0] == '\0' || str_copy(s->user, sizeof s->user, arg) != 0) {
        error_reply(s, "USER needs a mailbox name (user@domain)");
        return;
    }
    s->have_user = 1;
    reply(s, "+OK send PASS");
}

static void cmd_pass(struct session *s, char *arg)
{
    if (needs_tls(s))
        return;
    if (!s->have_user) {
        error_reply(s, "send USER first");
        return;
    }
    if (arg == NULL || arg[0] == '\0') {
        s->have_user = 0;
        error_reply(s, "PASS needs a password");
        return;
    }
    char address[USERS_ADDRESS_SIZE];
    str_copy(address, sizeof address, s->user);
    s->have_user = 0;
    wipe_consumed_input(s);
    login(s, address, arg, strlen(arg));
}

/* The client's SASL response after "+ ": into line (wiped by the caller). 1 line, 0 the
 * client cancelled (replied), -1 the session must end. */
static int sasl_response(struct session *s, char *line, size_t size)
{
    netio_puts(&s->io, "+ \r\n");
    long n = netio_getline(&s->io, line, size);
    if (n == NETIO_TOOLONG) {
        error_reply(s, "SASL response too long");
        return 0;
    }
    if (n <= 0)
        return -1;
    size_t len = (size_t)n;
    if (len > 0 && line[len - 1] == '\n')
        line[--len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (memchr(line, '\0', len) != NULL || memchr(line, '\r', len) != NULL) {
        error_reply(s, "malformed SASL response");
        return 0;
    }
    if (sasl_is_cancel(line)) {
        reply(s, "-ERR authentication cancelled");
        return 0;
    }
    return 1;
}

static void auth_plain(struct session *s, const char *initial)
{
    char line[POP3_AUTH_LINE_MAX + 1];
    struct sasl_creds c;
    if (initial == NULL) {
        int rc = sasl_response(s, line, sizeof line);
        if (rc < 0)
            s->done = 1;
        if (rc <= 0) {
            sodium_memzero(line, sizeof line);
            return;
        }
        initial = line;
    }
    int bad = sasl_plain_decode(initial, &c) != 0;
    sodium_memzero(line, sizeof line);
    wipe_consumed_input(s);
    if (bad)
        auth_failed(s, "?", "malformed AUTH PLAIN response", -1);
    else if (c.authzid[0] != '\0' && !str_ieq(c.authzid, c.authcid))
        auth_failed(s, c.authcid, "authorization identity differs", -1);
    else
        login(s, c.authcid, c.passwd, c.passwd_len);
    sasl_creds_wipe(&c);
}

static void cmd_auth(struct session *s, char *arg)
{
    if (needs_tls(s))
        return;
    if (arg == NULL) {
        reply(s, "+OK SASL mechanisms follow");
        netio_puts(&s->io, "PLAIN\r\n.\r\n");
        return;
    }
    char *initial = strchr(arg, ' ');
    if (initial != NULL)
        *initial++ = '\0';
    if (!str_ieq(arg, "PLAIN")) {
        error_reply(s, "unsupported SASL mechanism (PLAIN is offered)");
        return;
    }
    s->have_user = 0;
    auth_plain(s, initial);
}

static void cmd_stat(struct session *s, char *arg)
{
    if (arg != NULL) {
        error_reply(s, "STAT takes no argument");
        return;
    }
    size_t n = 0;
    uint64_t octets = 0;
    for (size_t i = 0; i < s->mb.count; i++)
        if (!s->mb.msgs[i].deleted) {
            n++;
            octets += s->mb.msgs[i].crlf_size;
        }
    reply(s, "+OK %zu %llu", n, (unsigned long long)octets);
}

/* LIST and UIDL: one message with an argument, else every message not deleted. */
static void list_like(struct session *s, char *arg, int uidl)
{
    char uid[MAILBOX_UIDL_MAX + 1];
    if (arg != NULL) {
        struct mailbox_msg *e = message_arg(s, arg);
        if (e == NULL)
            return;
        if (uidl && mailbox_uidl(&s->mb, e, uid) != 0)
            reply(s, "-ERR [SYS/TEMP] cannot read the index now");
        else if (uidl)
            reply(s, "+OK %zu %s", (size_t)(e - s->mb.msgs) + 1, uid);
        else
            reply(s, "+OK %zu %llu", (size_t)(e - s->mb.msgs) + 1,
                  (unsigned long long)e->crlf_size);
        return;
    }
    reply(s, "+OK %s follows", uidl ? "unique-id listing" : "scan listing");
    for (size_t i = 0; i < s->mb.count; i++) {
        const struct mailbox_msg *e = &s->mb.msgs[i];
        if (e->deleted)
            continue;
        if (uidl && mailbox_uidl(&s->mb, e, uid) != 0)
            log_msg(LOG_ERR, "cannot read the index of %s: %s", s->user, strerror(errno));
        else if (uidl)
            netio_printf(&s->io, "%zu %s\r\n", i + 1, uid);
        else
            netio_printf(&s->io, "%zu %llu\r\n", i + 1, (unsigned long long)e->crlf_size);
    }
    netio_puts(&s->io, ".\r\n");
}

static void cmd_list(struct session *s, char *arg)
{
    list_like(s, arg, 0);
}

static void cmd_uidl(struct session *s, char *arg)
{
    list_like(s, arg, 1);
}

static void cmd_retr(struct session *s, char *arg)
{
    struct mailbox_msg *e = message_arg(s, arg);
    if (e == NULL)
        return;
    if (send_message(s, e, -1) != 0)
        s->done = 1;
    else
        s->retrieved++;
}

static void cmd_top(struct session *s, char *arg)
{
    char *lines = arg != NULL ? strchr(arg, ' ') : NULL;
    uint64_t n;
    if (lines == NULL) {
        error_reply(s, "TOP needs a message number and a line count");
        return;
    }
    *lines++ = '\0';
    struct mailbox_msg *e = message_arg(s, arg);
    if (e == NULL)
        return;
    if (parse_u64(lines, &n) != 0 || n > INT64_MAX) {
        error_reply(s, "invalid line count (a number of 0 or more)");
        return;
    }
    if (send_message(s, e, (int64_t)n) != 0)
        s->done = 1;
}

static void cmd_dele(struct session *s, char *arg)
{
    struct mailbox_msg *e = message_arg(s, arg);
    if (e == NULL)
        return;
    e->deleted = 1;
    reply(s, "+OK message %zu deleted", (size_t)(e - s->mb.msgs) + 1);
}

static void cmd_rset(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return;
    if (arg != NULL) {
        error_reply(s, "RSET takes no argument");
        return;
    }
    for (size_t i = 0; i < s->mb.count; i++)
        s->mb.msgs[i].deleted = 0;
    reply(s, "+OK %zu messages (%llu octets)", s->mb.count, (unsigned long long)s->mb.total_crlf);
}

static void cmd_noop(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return;
    if (arg != NULL)
        error_reply(s, "NOOP takes no argument");
    else
        reply(s, "+OK");
}

/* QUIT in TRANSACTION: the UPDATE state. Removes the marked messages, then fsyncs cur/. */
static void update(struct session *s)
{
    unsigned long removed = 0, failed = 0;
    for (size_t i = 0; i < s->mb.count; i++) {
        const struct mailbox_msg *e = &s->mb.msgs[i];
        if (!e->deleted)
            continue;
        if (mailbox_expunge(&s->mb, &s->mb.msgs[i]) == 0) {
            removed++;
        } else {
            failed++;
            log_msg(LOG_ERR, "cannot remove message UID %lu of %s: %s", (unsigned long)e->uid,
                    s->user, strerror(errno));
        }
    }
    if (removed > 0 && mailbox_sync(&s->mb) != 0) {
        failed += removed;
        log_msg(LOG_ERR, "cannot fsync cur/ of %s: %s", s->user, strerror(errno));
    }
    log_msg(LOG_INFO, "logout: user=<%s> client=%s retrieved=%lu deleted=%lu failed=%lu",
            log_field(s->user), s->client, s->retrieved, removed, failed);
    if (failed > 0)
        reply(s, "-ERR [SYS/TEMP] %lu deleted messages could not be removed", failed);
    else
        reply(s, "+OK bye, %lu messages deleted", removed);
}

static void cmd_quit(struct session *s, char *arg)
{
    if (s->state == TRANSACTION)
        update(s);
    else
        reply(s, "+OK bye");
    s->done = 1;
}

/* The handshake, on STLS or at once with -T. 0, or -1: logged, the session ends. */
static int start_tls(struct session *s)
{
    if (tls_serve(&s->io, s->tls_ctx, s->client, s->tls, sizeof s->tls) == 0)
        return 0;
    s->done = 1;
    return -1;
}

/* STLS (RFC 2595 §4): TLS, then the AUTHORIZATION state afresh. */
static void cmd_stls(struct session *s, char *arg)
{
    if (arg != NULL) {
        error_reply(s, "STLS takes no argument");
    } else if (s->tls[0] != '\0') {
        error_reply(s, "TLS already active");
    } else if (s->tls_ctx == NULL) {
        error_reply(s, "STLS not available (no certificate)");
    } else if (tls_server_ready(s->tls_ctx, s->client) == NULL) { /* logged */
        error_reply(s, "[SYS/TEMP] TLS not available due to temporary reason");
    } else if (netio_pending(&s->io)) { /* plaintext must never pass for TLS */
        reply(s, "-ERR commands pipelined after STLS refused, closing the connection");
        log_msg(LOG_NOTICE, "client=%s commands pipelined after STLS: connection closed",
                s->client);
        s->done = 1;
    } else {
        reply(s, "+OK begin TLS negotiation");
        if (start_tls(s) == 0)
            s->have_user = 0;
    }
}

struct command {
    const char *name;
    int states; /* where it is allowed */
    void (*run)(struct session *, char *);
};

static const struct command commands[] = {
    {"CAPA", AUTHORIZATION | TRANSACTION, cmd_capa},
    {"USER", AUTHORIZATION, cmd_user},
    {"PASS", AUTHORIZATION, cmd_pass},
    {"AUTH", AUTHORIZATION, cmd_auth},
    {"STLS", AUTHORIZATION, cmd_stls},
    {"QUIT", AUTHORIZATION | TRANSACTION, cmd_quit},
    {"STAT", TRANSACTION, cmd_stat},
    {"LIST", TRANSACTION, cmd_list},
    {"UIDL", TRANSACTION, cmd_uidl},
    {"RETR", TRANSACTION, cmd_retr},
    {"TOP", TRANSACTION, cmd_top},
    {"DELE", TRANSACTION, cmd_dele},
    {"RSET", TRANSACTION, cmd_rset},
    {"NOOP", TRANSACTION, cmd_noop},
};

/* ---- the session -------------------------------------------------------------------- */

/* One command line (CRLF or LF already removed, len bytes). */
static void dispatch(struct session *s, char *line, size_t len)
{
    if (memchr(line, '\0', len) != NULL) {
        error_reply(s, "NUL byte in the command line");
        return;
    }
    if (memchr(line, '\r', len) != NULL) {
        error_reply(s, "bare CR in the command line");
        return;
    }
    char *arg = strchr(line, ' ');
    if (arg != NULL)
        *arg++ = '\0';
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        if (!str_ieq(line, commands[i].name))
            continue;
        if ((commands[i].states & s->state) != 0)
            commands[i].run(s, arg);
        else if (s->state == AUTHORIZATION)
            error_reply(s, "log in first (USER and PASS, or AUTH PLAIN)");
        else
            error_reply(s, "already logged in");
        return;
    }
    error_reply(s, "unknown command");
}

static void serve(struct session *s)
{
    char line[POP3_LINE_MAX + 1];
    reply(s, "+OK yubin POP3 server ready");
    while (!s->done) {
        long n = netio_getline(&s->io, line, sizeof line);
        if (n == NETIO_TOOLONG) {
            error_reply(s, "line too long (255 octets at most)");
            continue;
        }
        if (n == NETIO_TIMEOUT && netio_limit_passed(&s->io)) {
            reply(s, "-ERR session time limit reached, closing the connection");
            log_msg(LOG_NOTICE, "client=%s session time limit reached", s->client);
            break;
        }
        if (n == NETIO_TIMEOUT) {
            reply(s, "-ERR autologout: idle for too long");
            log_msg(LOG_INFO, "timeout: client=%s", s->client);
            break;
        }
        if (n <= 0)
            break; /* the client went away: nothing is deleted */
        size_t len = (size_t)n;
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        if (len > 0 && line[len - 1] == '\r')
            line[--len] = '\0';
        dispatch(s, line, len);
        sodium_memzero(line, sizeof line);
    }
    netio_flush(&s->io);
}

/* Options, configuration, TLS context, privileges (lib/handler). 0, -1, -2 (-T: no reply). */
static int start(struct session *s, int argc, char **argv)
{
    struct handler_start h = {0};
    int rc = handler_start("pop3-in", argc, argv, &s->conf, &h);
    s->implicit_tls = h.implicit_tls;
    s->tls_ctx = h.tls_ctx;
    return rc;
}

int main(int argc, char **argv)
{
    static struct session s;
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    s.state = AUTHORIZATION;
    s.lock_fd = -1;
    s.slot.fd = -1;
    s.mb.cur_fd = -1;
    netio_init(&s.io, 0, 1, 300);
    int rc = start(&s, argc, argv);
    if (rc == -2)
        return 1;
    if (rc != 0) {
        reply(&s, "-ERR [SYS/TEMP] the server is not configured correctly");
        netio_flush(&s.io);
        return 1;
    }
    netio_set_timeout(&s.io, s.conf.pop3_timeout);
    netio_limit(&s.io, s.conf.session_time_limit);
    if (client_address(&s) != 0)
        return 1;
    struct transcript *tr =
        transcript_start(s.conf.transcript_dir, s.conf.transcript_max_size, "pop3-in", s.client);
    netio_set_transcript(&s.io, tr);
    if (!s.implicit_tls || start_tls(&s) == 0)
        serve(&s);
    netio_set_transcript(&s.io, NULL);
    transcript_close(tr);
    netio_free(&s.io);
    tls_server_free(s.tls_ctx);
    mailbox_close(&s.mb);
    if (s.lock_fd >= 0)
        close(s.lock_fd);
    connlimit_release(&s.slot);
    return 0;
}
