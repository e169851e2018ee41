/*
 * smtp-in: the SMTP server (RFC 5321) for one connection on stdin/stdout, started by inetd,
 * systemd (Accept=yes) or tcpserver. It reads top to bottom as the protocol: start-up, the
 * command table, one small function per command that checks state and syntax first and acts
 * second, then DATA, which streams the message line by line into lib/deliver and answers 250
 * only once lib/deliver has every recipient's copy durable: linked into its Maildir, or
 * (remote, or a local delivery that failed for now) in a queue entry that links the same
 * data. After the 250 it starts queue-run for the new entries, detached.
 *
 *     smtp-in [-s] [-T] [-C yubin.conf] [-X transcript-dir]
 *
 * -s is message submission (RFC 6409, port 587): AUTH PLAIN or LOGIN (RFC 4954) is required
 * before MAIL, except from submit_networks or relay_networks (RFC 6409 §6.1 allows other ways
 * to authorise), the sender must belong to the login (sender_login_match), and Date: and
 * Message-ID: are added when the header section lacks them. On a Unix-domain socket (the
 * local_socket sendmail(8) uses) it is submission without AUTH, the caller's uid from the
 * kernel (SO_PEERCRED) in the Received header and the log. Without -s (port 25) only a login
 * or relay_networks (empty by default) may relay.
 *
 * With tls_cert_file, STARTTLS (RFC 3207) is offered; after it everything the client said is
 * forgotten and it must EHLO again. -T is implicit TLS (RFC 8314, port 465). AUTH is offered
 * only over TLS (or on the local socket, or with auth_without_tls), and with
 * require_tls_submission -s takes MAIL only over TLS (but from submit_networks and
 * relay_networks). Received says ESMTPS / ESMTPSA (RFC 3848) with the protocol and cipher.
 *
 * It must never: read a byte of input before dropping root, or read the key after it; take
 * plaintext pipelined after STARTTLS as if it had come through TLS; write anything but the
 * protocol to stdout, or anything at all to stderr (under inetd both are the socket); accept a
 * bare CR or LF, or end DATA on anything but <CRLF>.<CRLF>; cut an over-long line instead of
 * refusing it; hold a whole message in memory; relay for a session that is neither authenticated
 * nor allowed to relay by relay_networks (or, in submission, submit_networks); log or keep a
 * password; resolve a name.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "conf.h"
#include "connlimit.h"
#include "deliver.h"
#include "esmtp.h"
#include "handler.h"
#include "log.h"
#include "maildir.h"
#include "netio.h"
#include "peer.h"
#include "privs.h"
#include "proxy.h"
#include "route.h"
#include "sasl.h"
#include "smtpauth.h"
#include "smtpdata.h"
#include "tls.h"
#include "tlsserver.h"
#include "trace.h"
#include "transcript.h"
#include "users.h"
#include "util.h"

#define CMD_LINE_MAX 512    /* octets, CRLF included (RFC 5321 §4.5.3.1.4) */
#define AUTH_LINE_MAX 12288 /* a SASL response line (RFC 4954 §4) */

enum { KEEP = 0, CLOSE_OK, CLOSE_ERROR };

struct session {
    struct yubin_conf conf;
    struct netio io;
    struct route_ctx route;
    struct peer peer;                         /* TCP, the local socket (uid) or a pipe */
    struct connlimit slot;                    /* this client's connection slot (lib/connlimit) */
    char client[INET6_ADDRSTRLEN + 8];        /* "192.0.2.1", "2001:db8::1" or "local" */
    char client_trace[INET6_ADDRSTRLEN + 16]; /* "[192.0.2.1]", "[IPv6:...]" or "local" */
    char helo[ESMTP_HELO_MAX + 1];
    int greeted; /* 0 not yet, 1 HELO, 2 EHLO */
    unsigned errors, messages;
    unsigned lines;             /* command lines read */
    unsigned junk;              /* NOOP, RSET, VRFY, EXPN, HELP since the last message accepted */
    int done;                   /* KEEP, CLOSE_OK, CLOSE_ERROR */
    int submission;             /* -s */
    int relay_client;           /* the client is inside relay_networks */
    int submit_client;          /* submit_networks, or the local socket: -s without AUTH */
    char uid_field[32];         /* " uid=1000" on the local socket, for the log; else "" */
    char login[SASL_NAME_SIZE]; /* the authenticated address, or "" */
    unsigned auth_failures;
    struct tls_server *tls_ctx; /* a certificate read: STARTTLS offered; else NULL */
    int implicit_tls;           /* -T: TLS from the first byte (RFC 8314, port 465) */
    char tls[160];              /* over TLS: "TLSv1.3 with cipher ..." (lib/tls); else "" */

    /* The envelope of the current transaction. */
    int in_mail;
    char sender[ADDR_SIZE];
    size_t rcpt_attempts;
    size_t n_rcpts, cap_rcpts;
    char (*rcpts)[ADDR_SIZE];     /* as given, for Received "for" and the log */
    struct deliver dl;            /* where the copies go: mailboxes, remote addresses, senders */
    char line[AUTH_LINE_MAX + 1]; /* a command: CMD_LINE_MAX, but AUTH up to AUTH_LINE_MAX */
};

/* ---- replies and the log ---------------------------------------------------------------- */

static int vreply(struct session *s, const char *fmt, va_list ap)
{
    char text[1024];
    int n = vsnprintf(text, sizeof text - 2, fmt, ap);
    if (n < 0)
        return -1;
    if ((size_t)n > sizeof text - 3)
        n = (int)sizeof text - 3;
    memcpy(text + n, "\r\n", 2);
    return netio_write(&s->io, text, (size_t)n + 2);
}

/* A reply; returns 0. */
static int reply(struct session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int reply(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
    return 0;
}

/* A 4xx/5xx reply to a command, counted towards max_errors; returns -1. */
static int reply_error(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int reply_error(struct session *s, const char *fmt, ...)
{
    va_list ap;
    s->errors++;
    va_start(ap, fmt);
    vreply(s, fmt, ap);
    va_end(ap);
    return -1;
}

/* The envelope recipients as "<a>,<b>" for the log, cut with "..." if very long. */
static void rcpt_list(const struct session *s, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < s->n_rcpts; i++) {
        int n = snprintf(out + used, size - used, "%s<%s>", i ? "," : "", log_field(s->rcpts[i]));
        if (n < 0 || (size_t)n >= size - used) {
            if (size > 4)
                str_copy(out + size - 4, 4, "...");
            return;
        }
        used += (size_t)n;
    }
}

/* ---- the envelope ----------------------------------------------------------------------- */

static void reset_envelope(struct session *s)
{
    s->in_mail = 0;
    s->sender[0] = '\0';
    s->rcpt_attempts = 0;
    s->n_rcpts = 0;
    deliver_reset(&s->dl, "");
}

/* May this session send to other domains (and, in submission, send at all)? A login, or
 * relay_networks; in submission also submit_networks and the local socket. Relaying without
 * AUTH and submitting without AUTH are two permissions (Postfix's mynetworks and
 * permit_sasl_authenticated on the submission service). */
static int may_relay(const struct session *s)
{
    return s->login[0] != '\0' || s->relay_client || (s->submission && s->submit_client);
}

/* Is AUTH offered: over TLS (either port), on the local socket, or with auth_without_tls. */
static int auth_offered(const struct session *s)
{
    return s->tls[0] != '\0' || s->peer.kind == PEER_UNIX || s->conf.auth_without_tls;
}

/* Submission with require_tls_submission and a certificate: MAIL only over TLS, but for
 * submit_networks, relay_networks and the local socket. */
static int needs_tls(const struct session *s)
{
    return s->submission && s->conf.require_tls_submission && s->tls_ctx != NULL &&
           s->tls[0] == '\0' && !s->submit_client && !s->relay_client;
}

/* ---- command arguments ------------------------------------------------------------------ */

/* Parses a path for MAIL or RCPT; replies and returns -1 on an error. */
static int parse_path(struct session *s, const char *arg, int flags, struct addr *a, char **rest,
                      const char *enhanced)
{
    const char *end;
    int rc = addr_parse_path(arg, flags, a, &end);
    if (rc != ADDR_OK) {
        reply_error(s, "501 %s %s", enhanced, addr_error_text(rc));
        return -1;
    }
    *rest = (char *)end;
    return 0;
}

/* ---- the commands ----------------------------------------------------------------------- */

static int cmd_ehlo(struct session *s, char *arg)
{
    if (!esmtp_helo_ok(arg))
        return reply_error(s, "501 5.5.4 syntax: EHLO hostname");
    reset_envelope(s);
    str_copy(s->helo, sizeof s->helo, arg);
    s->greeted = 2;
    reply(s, "250-%s Hello %s", s->conf.hostname, s->helo);
    reply(s, "250-PIPELINING");
    reply(s, "250-SIZE %llu", (unsigned long long)s->conf.max_message_size);
    reply(s, "250-8BITMIME");
    if (s->tls_ctx != NULL && s->tls[0] == '\0')
        reply(s, "250-STARTTLS");
    if (auth_offered(s))
        reply(s, "250-AUTH PLAIN LOGIN");
    return reply(s, "250 ENHANCEDSTATUSCODES");
}

static int cmd_helo(struct session *s, char *arg)
{
    if (!esmtp_helo_ok(arg))
        return reply_error(s, "501 5.5.4 syntax: HELO hostname");
    reset_envelope(s);
    str_copy(s->helo, sizeof s->helo, arg);
    s->greeted = 1;
    return reply(s, "250 %s", s->conf.hostname);
}

/* An authenticated session with sender_login_match sends only as its login or one of the
 * aliases that expand to it; not as <> either (bounces are an MTA's business, on port 25).
 * Replies and returns -1 when the sender is refused. */
static int check_sender(struct session *s, const char *sender)
{
    if (s->login[0] == '\0' || !s->conf.sender_login_match)
        return 0;
    int ok = route_sender_ok(&s->route, sender, s->login);
    if (ok < 0) {
        log_msg(LOG_ERR, "cannot read the aliases file %s", s->conf.aliases_file);
        return reply_error(s, "451 4.3.0 temporary failure, try again later");
    }
    if (ok == 0) {
        log_msg(LOG_NOTICE, "sender refused: from=<%s> login=<%s> client=%s", log_field(sender),
                log_field(s->login), s->client);
        return reply_error(s, "553 5.7.1 <%s>: sender address not owned by user %.100s", sender,
                           s->login);
    }
    return 0;
}

static int cmd_mail(struct session *s, char *arg)
{
    struct addr a;
    struct esmtp_params p;
    const char *bad;
    char *rest;
    const char *path = esmtp_after_keyword(arg, "FROM:");
    if (!s->greeted)
        return reply_error(s, "503 5.5.1 send EHLO or HELO first");
    if (s->in_mail)
        return reply_error(s, "503 5.5.1 nested MAIL command");
    if (needs_tls(s))
        return reply_error(s, "530 5.7.0 must issue a STARTTLS command first");
    if (s->submission && !may_relay(s))
        return reply_error(s, "530 5.7.0 authentication required");
    if (path == NULL)
        return reply_error(s, "501 5.5.4 syntax: MAIL FROM:<address>");
    if (parse_path(s, path, ADDR_NULL_OK, &a, &rest, "5.1.7") != 0)
        return -1;
    if ((bad = esmtp_mail_params(rest, s->greeted == 2, auth_offered(s), &p)) != NULL)
        return reply_error(s, "%s", bad);
    if (p.have_size && p.size > s->conf.max_message_size)
        return reply_error(s, "552 5.3.4 message size exceeds fixed maximum message size");
    if (check_sender(s, a.text) != 0)
        return -1;
    reset_envelope(s);
    s->in_mail = 1;
    str_copy(s->sender, sizeof s->sender, a.text);
    deliver_reset(&s->dl, a.text);
    return reply(s, "250 2.1.0 Ok");
}

/* Refuses a recipient the router turned down, or one that needs the queue (issue 4). */
static int refuse_rcpt(struct session *s, const char *rcpt, const char *text, const char *why)
{
    /* the reply repeats the address (logged in to=): only its codes go to the log */
    int codes = (int)strcspn(text, "<");
    codes -= codes > 0 && text[codes - 1] == ' ';
    log_msg(LOG_INFO, "refused from=<%s> to=<%s> client=%s reply=\"%.*s\" why=\"%s\"",
            log_field(s->sender), log_field(rcpt), s->client, codes, text, why);
    return reply_error(s, "%s", text);
}

/* Takes a routed recipient: its mailboxes and remote addresses (a relayed recipient, or an
 * alias's remote members, which the site's own aliases file may name whoever the client is).
 * A list with an owner (and a sender that is not <>) is sent with the owner as sender;
 * forwarded copies with an SRS sender (lib/deliver). */
static int accept_routed(struct session *s, const struct addr *a, struct route *r)
{
    char why[400];
    if (r->kind == ROUTE_REFUSED || r->kind == ROUTE_TEMPFAIL)
        return refuse_rcpt(s, a->text, r->reply, r->why);
    if (mem_grow(&s->rcpts, &s->cap_rcpts, s->n_rcpts + 1, sizeof *s->rcpts) != 0)
        return refuse_rcpt(s, a->text, "451 4.3.0 out of memory", "malloc");
    const char *no = deliver_take(&s->dl, &s->route, r, s->sender, s->n_rcpts, why, sizeof why);
    if (no != NULL && why[0] == '\0')
        return reply(s, "%s", no); /* full: the client may go on with what it has */
    if (no != NULL)
        return refuse_rcpt(s, a->text, no, why);
    str_copy(s->rcpts[s->n_rcpts++], ADDR_SIZE, a->text);
    if (why[0] != '\0')
        log_msg(LOG_INFO, "from=<%s> to=<%s> client=%s %s", log_field(s->sender),
                log_field(a->text), s->client, why);
    return reply(s, "250 2.1.5 Ok");
}

static int cmd_rcpt(struct session *s, char *arg)
{
    struct addr a;
    struct route r;
    char *rest;
    const char *path = esmtp_after_keyword(arg, "TO:");
    if (!s->in_mail)
        return reply_error(s, "503 5.5.1 need MAIL before RCPT");
    if (path == NULL)
        return reply_error(s, "501 5.5.4 syntax: RCPT TO:<address>");
    s->rcpt_attempts++;
    if (parse_path(s, path, ADDR_POSTMASTER_OK, &a, &rest, "5.1.3") != 0)
        return -1;
    if (*rest != '\0')
        return reply_error(s, *rest == ' ' ? "555 5.5.4 unsupported parameter"
                                           : "501 5.5.4 syntax: RCPT TO:<address>");
    if (s->n_rcpts >= s->conf.max_recipients)
        return reply(s, "452 4.5.3 too many recipients");
    route_rcpt(&s->route, &a, may_relay(s), &r);
    int rc = accept_routed(s, &a, &r);
    route_free(&r);
    return rc;
}

static int receive_message(struct session *s);
static int refuse_bare(struct session *s, const char *where);

static int cmd_data(struct session *s, char *arg)
{
    if (arg != NULL)
        return reply_error(s, "501 5.5.4 syntax: DATA");
    if (!s->in_mail)
        return reply_error(s, "503 5.5.1 need MAIL before DATA");
    if (s->n_rcpts == 0 && s->rcpt_attempts > 0)
        return reply_error(s, "554 5.5.1 no valid recipients");
    if (s->n_rcpts == 0)
        return reply_error(s, "503 5.5.1 need RCPT before DATA");
    return receive_message(s);
}

/* Counts a command that moves no mail (Postfix's junk commands); past max_junk_commands the
 * session is closed with 421, so NOOP every few minutes cannot hold a process for ever.
 * Returns -1 then (the caller returns at once), else 0. */
static int junk(struct session *s)
{
    if (++s->junk <= s->conf.max_junk_commands)
        return 0;
    reply(s, "421 4.7.0 %s too many commands that move no mail, closing connection",
          s->conf.hostname);
    log_msg(LOG_NOTICE, "client=%s too many junk commands (%u)", s->client, s->junk - 1);
    s->done = CLOSE_ERROR;
    return -1;
}

static int cmd_rset(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return -1;
    if (arg != NULL)
        return reply_error(s, "501 5.5.4 syntax: RSET");
    reset_envelope(s);
    return reply(s, "250 2.0.0 Ok");
}

static int cmd_noop(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return -1;
    return reply(s, "250 2.0.0 Ok");
}

static int cmd_quit(struct session *s, char *arg)
{
    if (arg != NULL)
        return reply_error(s, "501 5.5.4 syntax: QUIT");
    s->done = CLOSE_OK;
    return reply(s, "221 2.0.0 %s closing connection", s->conf.hostname);
}

static int cmd_vrfy(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return -1;
    if (arg == NULL || *arg == '\0')
        return reply_error(s, "501 5.5.4 syntax: VRFY address");
    return reply(s, "252 2.5.0 cannot VRFY, but will take a message and attempt delivery");
}

static int cmd_expn(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return -1;
    return reply_error(s, "502 5.5.1 EXPN not available");
}

static int cmd_help(struct session *s, char *arg)
{
    if (junk(s) != 0)
        return -1;
    return reply(s, "214 2.0.0 commands: EHLO HELO %s%sMAIL RCPT DATA RSET NOOP QUIT VRFY HELP",
                 s->tls_ctx != NULL && s->tls[0] == '\0' ? "STARTTLS " : "",
                 auth_offered(s) ? "AUTH " : "");
}

/* ---- AUTH (RFC 4954) -------------------------------------------------------------------- */

/* Wipes what the input buffer already handed out (it held a password). */
static void wipe_consumed_input(struct session *s)
{
    netio_wipe_consumed(&s->io);
}

static int cmd_auth(struct session *s, char *arg)
{
    static char line[AUTH_LINE_MAX + 1];
    if (!auth_offered(s))
        return reply_error(s, s->tls_ctx != NULL
                                  ? "538 5.7.11 encryption required: send STARTTLS first"
                                  : "502 5.5.1 AUTH not available without TLS");
    if (s->greeted != 2)
        return reply_error(s, "503 5.5.1 send EHLO first");
    if (s->login[0] != '\0')
        return reply_error(s, "503 5.5.1 already authenticated");
    if (s->in_mail)
        return reply_error(s, "503 5.5.1 AUTH is not allowed during a mail transaction");
    if (arg == NULL || *arg == '\0')
        return reply_error(s, "501 5.5.4 syntax: AUTH mechanism [initial-response]");
    char *initial = strchr(arg, ' ');
    if (initial != NULL)
        *initial++ = '\0';
    struct smtpauth a = {
        .io = &s->io, .conf = &s->conf, .client = s->client, .failures = s->auth_failures};
    enum smtpauth_result rc = smtpauth_run(&a, arg, initial, line, sizeof line);
    s->auth_failures = a.failures;
    if (rc == SMTPAUTH_OK)
        str_copy(s->login, sizeof s->login, a.login);
    else if (rc == SMTPAUTH_REFUSED)
        s->errors++;
    else if (rc == SMTPAUTH_CLOSE)
        s->done = CLOSE_ERROR;
    else if (rc == SMTPAUTH_EOF)
        s->done = CLOSE_OK;
    else
        refuse_bare(s, "in AUTH");
    sodium_memzero(line, sizeof line);
    sodium_memzero(s->line, sizeof s->line);
    wipe_consumed_input(s);
    return rc == SMTPAUTH_OK ? 0 : -1;
}

/* ---- STARTTLS (RFC 3207) ----------------------------------------------------------------- */

/* The handshake, on STARTTLS or at once with -T. 0, or -1: logged, the session ends (nothing
 * more can be said in plaintext, nor through a TLS that did not come up). */
static int start_tls(struct session *s)
{
    if (tls_serve(&s->io, s->tls_ctx, s->client, s->tls, sizeof s->tls) == 0)
        return 0;
    s->done = CLOSE_ERROR;
    return -1;
}

static int cmd_starttls(struct session *s, char *arg)
{
    if (arg != NULL)
        return reply_error(s, "501 5.5.4 syntax: STARTTLS");
    if (s->tls[0] != '\0')
        return reply_error(s, "503 5.5.1 TLS already active");
    if (s->tls_ctx == NULL)
        return reply_error(s, "502 5.5.1 STARTTLS not available (no certificate)");
    if (tls_server_ready(s->tls_ctx, s->client) == NULL) /* logged */
        return reply_error(s, "454 4.7.0 TLS not available due to temporary reason");
    if (netio_pending(&s->io)) { /* CVE-2011-0411: plaintext must not pass for TLS */
        reply(s, "554 5.5.1 commands pipelined after STARTTLS refused, closing connection");
        log_msg(LOG_NOTICE, "client=%s commands pipelined after STARTTLS: connection closed",
                s->client);
        s->done = CLOSE_ERROR;
        return -1;
    }
    reply(s, "220 2.0.0 ready to start TLS");
    if (start_tls(s) != 0)
        return -1;
    reset_envelope(s); /* RFC 3207 §4.2: forget everything the client said before */
    s->greeted = 0;
    s->helo[0] = '\0';
    s->login[0] = '\0';
    return 0;
}

struct command {
    const char *verb;
    int (*run)(struct session *s, char *arg); /* arg: after "VERB ", or NULL */
};

static const struct command commands[] = {
    {"EHLO", cmd_ehlo},         {"HELO", cmd_helo}, {"MAIL", cmd_mail}, {"RCPT", cmd_rcpt},
    {"DATA", cmd_data},         {"RSET", cmd_rset}, {"NOOP", cmd_noop}, {"QUIT", cmd_quit},
    {"VRFY", cmd_vrfy},         {"EXPN", cmd_expn}, {"HELP", cmd_help}, {"AUTH", cmd_auth},
    {"STARTTLS", cmd_starttls},
};

static int dispatch(struct session *s, char *line)
{
    size_t verb_len = strcspn(line, " ");
    char *arg = line[verb_len] == ' ' ? line + verb_len + 1 : NULL;
    for (size_t i = 0; i < ARRAY_LEN(commands); i++) {
        if (verb_len == strlen(commands[i].verb) && str_iprefix(line, commands[i].verb))
            return commands[i].run(s, arg);
    }
    return reply_error(s, "500 5.5.1 command not recognized");
}

/* ---- DATA ------------------------------------------------------------------------------- */

static void log_message(struct session *s, const char *id, uint64_t size, const char *result)
{
    char to[900];
    rcpt_list(s, to, sizeof to);
    log_msg(LOG_INFO, "id=%s from=<%s> to=%s client=%s%s size=%llu result=\"%s\"%s%s%s", id,
            log_field(s->sender), to, s->client, s->uid_field, (unsigned long long)size, result,
            s->tls[0] ? " tls=\"using " : "", s->tls, s->tls[0] ? "\"" : "");
}

/* Answers a bare CR or LF: refused, and the connection is closed (SMTP smuggling). */
static int refuse_bare(struct session *s, const char *where)
{
    reply(s, "554 5.5.2 bare CR or LF refused; only <CRLF> ends a line");
    log_msg(LOG_NOTICE, "client=%s bare CR or LF %s: connection closed", s->client, where);
    s->done = CLOSE_ERROR;
    return -1;
}

/* A timeout: of a line, or of the whole session or DATA (`limit`, from session_time_limit and
 * data_time_limit). 421 and the end of the session. */
static void timed_out(struct session *s, const char *limit, const char *where)
{
    if (limit != NULL)
        reply(s, "421 4.4.2 %s %s time limit reached, closing connection", s->conf.hostname, limit);
    else
        reply(s, "421 4.4.2 %s timeout, closing connection", s->conf.hostname);
    log_msg(LOG_NOTICE, "client=%s %s %s", s->client, limit ? limit : "timeout",
            limit ? "time limit reached" : where);
    s->done = CLOSE_ERROR;
}

static int receive_message(struct session *s)
{
    struct smtpdata m = {
        .io = &s->io,
        .dl = &s->dl,
        .conf = &s->conf,
        .submission = s->submission,
        .received = {.helo = s->helo,
                     .client = s->client_trace,
                     .hostname = s->conf.hostname,
                     .protocol = s->login[0]       ? (s->tls[0] ? "ESMTPSA" : "ESMTPA")
                                 : s->greeted == 2 ? (s->tls[0] ? "ESMTPS" : "ESMTP")
                                                   : "SMTP",
                     .tls = s->tls[0] ? s->tls : NULL,
                     .rcpt = s->n_rcpts == 1 ? s->rcpts[0] : NULL},
    };
    struct smtpdata_result r;
    enum smtpdata_end end = smtpdata_receive(&m, &r);
    if (end == SMTPDATA_STORED) {
        s->messages++;
        s->junk = 0; /* as Postfix: the count starts again after mail is accepted */
    } else if (end == SMTPDATA_REFUSED || end == SMTPDATA_NOT_BEGUN) {
        s->errors++;
    } else if (end == SMTPDATA_BARE) {
        refuse_bare(s, "in DATA");
    } else if (end == SMTPDATA_TIMEOUT) {
        timed_out(s, r.limit, "in DATA");
    }
    if (end >= SMTPDATA_BARE)
        s->done = CLOSE_ERROR;
    log_message(s, r.id, r.size, r.text);
    if (end == SMTPDATA_NOT_BEGUN)
        return -1;
    reset_envelope(s);
    return 0;
}

/* ---- the session ------------------------------------------------------------------------ */

/* A PROXY header from a peer outside proxy_networks (or one that came after the greeting):
 * refused, the connection closed without a reply. True when it is one. */
static int untrusted_proxy_header(struct session *s, long n)
{
    if (!proxy_first_line(&s->io, s->line, (size_t)n))
        return 0;
    log_msg(LOG_NOTICE,
            "client=%s PROXY header refused: not a trusted proxy (proxy_networks): "
            "connection closed",
            s->client);
    s->done = CLOSE_ERROR;
    return 1;
}

/* One command line as netio_getline returned it (n octets). */
static int command_line(struct session *s, long n)
{
    if (s->lines++ == 0 && untrusted_proxy_header(s, n))
        return 0;
    if (s->line[n - 1] != '\n') {
        s->done = CLOSE_OK; /* the client closed in the middle of a line */
        return 0;
    }
    if (n < 2 || s->line[n - 2] != '\r' || memchr(s->line, '\r', (size_t)n - 2) != NULL)
        return refuse_bare(s, "in a command");
    s->line[n - 2] = '\0';
    if (n > CMD_LINE_MAX && !str_iprefix(s->line, "AUTH "))
        return reply_error(s, "500 5.5.2 line too long (over %d octets)", CMD_LINE_MAX);
    if (strlen(s->line) != (size_t)n - 2)
        return reply_error(s, "500 5.5.2 NUL in command line");
    return dispatch(s, s->line);
}

static void serve(struct session *s)
{
    reply(s, "220 %s ESMTP yubin", s->conf.hostname);
    while (s->done == KEEP) {
        long n = netio_getline(&s->io, s->line, sizeof s->line);
        if (n == NETIO_EOF || n == NETIO_ERROR) {
            s->done = n == NETIO_EOF ? CLOSE_OK : CLOSE_ERROR;
        } else if (n == NETIO_TIMEOUT) {
            timed_out(s, netio_limit_passed(&s->io) ? "session" : NULL, "waiting for a command");
        } else if (n == NETIO_TOOLONG && (!s->io.toolong_crlf || s->io.toolong_bare_cr)) {
            refuse_bare(s, "after a long command line");
        } else if (n == NETIO_TOOLONG) {
            reply_error(s, "500 5.5.2 line too long");
        } else {
            command_line(s, n);
        }
        if (s->done == KEEP && s->errors >= s->conf.max_errors) {
            reply(s, "421 4.7.0 %s too many errors, closing connection", s->conf.hostname);
            log_msg(LOG_NOTICE, "client=%s too many errors (%u)", s->client, s->errors);
            s->done = CLOSE_ERROR;
        }
    }
}

/* The client (lib/peer) as the log and Received name it, and what it may do. */
static void set_client(struct session *s)
{
    const struct peer *p = &s->peer;
    str_copy(s->client, sizeof s->client, p->text);
    str_copy(s->client_trace, sizeof s->client_trace, p->trace);
    s->uid_field[0] = '\0';
    s->relay_client = p->kind == PEER_TCP && conf_in_networks(&s->conf.relay_networks, &p->addr);
    s->submit_client = p->kind == PEER_TCP && conf_in_networks(&s->conf.submit_networks, &p->addr);
    if (p->kind == PEER_UNIX) {
        s->submission = 1; /* sendmail(8) on local_socket: submission, without AUTH */
        s->submit_client = 1;
        str_format(s->uid_field, sizeof s->uid_field, " uid=%lu", p->uid);
    }
}

/* At most max_connections_per_client at once from one address (lib/connlimit), under inetd
 * as under systemd: beyond that, 421 before the greeting. 0 to serve, 1 refused. */
static int take_slot(struct session *s)
{
    if (connlimit_check(&s->slot, &s->conf, &s->peer) == 0)
        return 0;
    reply(s, "421 4.7.0 %s too many connections from your address, try again later",
          s->conf.hostname);
    netio_flush(&s->io);
    netio_linger(&s->io);
    return 1;
}

/* Start-up failed: say 421 to the client, log why, exit 1. */
static int refuse_start(struct session *s, const char *why)
{
    log_startup("cannot serve: %s", why); /* and on stderr, at a terminal */
    reply(s, "421 4.3.0 %s mail system unavailable, try again later",
          s->conf.hostname[0] ? s->conf.hostname : "localhost");
    netio_flush(&s->io);
    return 1;
}

static struct session session;

#define USAGE "usage: smtp-in [-s] [-T] [-C yubin.conf] [-X transcript-dir]"

/* The certificate and key, read while still root (the key may be root's alone; lib/tlsserver
 * parses them only at STARTTLS or -T); then root goes. A file that cannot be read is one log
 * line and 421 for every client until it is fixed; with -T (no plaintext greeting can reach a
 * TLS client) the connection just closes. 0 to go on, 1 refused. */
static int load_tls_and_drop(struct session *s)
{
    char why[700];
    int rc = handler_tls_drop(&s->conf, s->implicit_tls, &s->tls_ctx, why, sizeof why);
    if (rc == 0)
        return 0;
    if (rc == -2 && s->implicit_tls)
        return log_startup("cannot serve: %s", why), 1;
    return refuse_start(s, why);
}

int main(int argc, char **argv)
{
    struct session *s = &session;
    const char *conf_path = NULL, *transcript_dir = NULL;
    char err[600];
    int opt;
    signal(SIGPIPE, SIG_IGN);
    s->slot.fd = -1;
    maildir_cleanup_on_signal(SIGTERM); /* systemd's RuntimeMaxSec, a shutdown: no tmp file left */
    netio_init(&s->io, 0, 1, 300);
    log_open("smtp-in", NULL);
    opterr = 0; /* getopt must not print to stderr: under inetd it is the socket */
    while ((opt = getopt(argc, argv, "C:sTX:")) != -1) {
        if (opt == 's')
            s->submission = 1;
        else if (opt == 'T')
            s->implicit_tls = 1;
        else if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'X')
            transcript_dir = optarg;
        else
            return refuse_start(s, USAGE);
    }
    if (optind != argc)
        return refuse_start(s, USAGE);
    if (conf_load(&s->conf, conf_path, err, sizeof err) != 0)
        return refuse_start(s, err);
    if (transcript_dir != NULL &&
        str_copy(s->conf.transcript_dir, sizeof s->conf.transcript_dir, transcript_dir) != 0)
        return refuse_start(s, "-X: path too long");
    log_open("smtp-in", s->conf.syslog_socket); /* now the configured socket */
    if (sodium_init() < 0)
        return refuse_start(s, "libsodium cannot start");
    if (load_tls_and_drop(s) != 0)
        return 1;
    netio_set_timeout(&s->io, s->conf.command_timeout);
    netio_limit(&s->io, s->conf.session_time_limit);
    if (peer_from_fd(&s->peer, 0) != 0)
        return refuse_start(s, "cannot read the local client's uid (SO_PEERCRED)");
    /* -T: no peeking for an untrusted PROXY header (the ClientHello must stay unread; the
     * handshake fails on such a header anyway) */
    if ((!s->implicit_tls || conf_in_networks(&s->conf.proxy_networks, &s->peer.addr)) &&
        proxy_accept(&s->io, &s->conf.proxy_networks, &s->peer) != 0)
        return 1;
    set_client(s);
    if (take_slot(s) != 0)
        return 1;
    route_init(&s->route, &s->conf);
    deliver_init(&s->dl, s->conf.state_dir, s->conf.hostname, DELIVER_QUEUE_RETRY);
    reset_envelope(s);
    log_msg(LOG_INFO, "connect from %s%s", s->client, s->uid_field);
    struct transcript *tr = transcript_start(s->conf.transcript_dir, s->conf.transcript_max_size,
                                             s->submission ? "smtp-in-587" : "smtp-in", s->client);
    netio_set_transcript(&s->io, tr);
    if (!s->implicit_tls || start_tls(s) == 0)
        serve(s);
    netio_flush(&s->io);
    netio_set_transcript(&s->io, NULL);
    transcript_close(tr);
    log_msg(LOG_INFO, "disconnect from %s messages=%u errors=%u%s%s%s", s->client, s->messages,
            s->errors, s->tls[0] ? " tls=\"using " : "", s->tls, s->tls[0] ? "\"" : "");
    if (s->done == CLOSE_ERROR)
        netio_linger(&s->io);
    netio_free(&s->io);
    tls_server_free(s->tls_ctx);
    connlimit_release(&s->slot);
    route_ctx_free(&s->route);
    free(s->rcpts);
    deliver_free(&s->dl);
    return s->done == CLOSE_ERROR ? 1 : 0;
}
