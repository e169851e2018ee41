/*
 * imap4-in: an IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051, after ENABLE) server for one
 * connection on stdin/stdout, started by inetd or systemd. It reads top to bottom as the
 * protocol: start-up, the commands of the session itself (one function each: check, then
 * act), the command table, the loop. The session's plumbing (replies, reading commands with
 * their literals) is lib/imapsess; logging in lib/imapauth; the selected folder and IDLE
 * lib/imapsel;
 * the folder and message commands lib/imapcmd-*.c.
 *
 * With tls_cert_file it offers STARTTLS; -T is implicit TLS (RFC 8314, port 993). LOGIN and
 * AUTHENTICATE are taken only over TLS, from loopback (127.0.0.0/8, ::1) or a pipe, or with
 * auth_without_tls; before that CAPABILITY says LOGINDISABLED and they get NO.
 *
 * It must never read a byte of input as root (nor the TLS key after root is gone), never take
 * plaintext pipelined after STARTTLS as if it had come through TLS, never log or keep a
 * password, and never hold a message in memory.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "connlimit.h"
#include "handler.h"
#include "imapauth.h"
#include "imapcmd.h"
#include "imapsel.h"
#include "imapsess.h"
#include "log.h"
#include "tls.h"
#include "tlsserver.h"
#include "transcript.h"
#include "util.h"

static const struct imapcmd *lookup(const char *name, int uid);

/* ---- capabilities ---------------------------------------------------------------- */

/* Appends w to out (a capability list is far smaller than out). */
static void append(char *out, size_t size, const char *w)
{
    size_t n = strlen(out);
    str_copy(out + n, size - n, w);
}

/* Are all the commands named (space-separated) in the table? */
static int have(const char *names)
{
    char name[32];
    while (*names != '\0') {
        size_t n = strcspn(names, " ");
        if (n >= sizeof name)
            return 0;
        memcpy(name, names, n);
        name[n] = '\0';
        if (lookup(name, 0) == NULL)
            return 0;
        names += n + (names[n] == ' ');
    }
    return 1;
}

/* What CAPABILITY lists now: only what works (an extension is listed when the commands that
 * implement it are in the table), and the login forms only where they may be used. */
static void capabilities(const struct imapsess *s, char *out, size_t size)
{
    static const struct {
        const char *name, *needs;
    } ext[] = {
        {"IMAP4rev2",
         "ENABLE LIST STATUS SEARCH FETCH STORE COPY MOVE APPEND IDLE UNSELECT"}, /* first */
        {"LITERAL+", ""},
        {"ENABLE", "ENABLE"},
        {"ID", "ID"},
        {"NAMESPACE", "NAMESPACE"},
        {"IDLE", "IDLE"},
        {"UNSELECT", "UNSELECT"},
        {"UIDPLUS", "EXPUNGE APPEND COPY"},
        {"MOVE", "MOVE"},
        {"SPECIAL-USE", "LIST"},
        {"LIST-EXTENDED", "LIST"},
        {"LIST-STATUS", "LIST STATUS"},
        {"CHILDREN", "LIST"},
        {"ESEARCH", "SEARCH"},
        {"SEARCHRES", "SEARCH"},
        {"BINARY", "FETCH APPEND"},
        {"STATUS=SIZE", "STATUS"},
        {"CONDSTORE", "SELECT EXAMINE STATUS FETCH STORE SEARCH"}, /* RFC 7162 */
        {"QRESYNC", "ENABLE SELECT EXAMINE FETCH EXPUNGE"},
    };
    str_copy(out, size, "IMAP4rev1");
    if (have(ext[0].needs))
        append(out, size, " IMAP4rev2");
    if (s->tls_ctx != NULL && s->tls[0] == '\0' && s->state == IMAP_NOT_AUTH)
        append(out, size, " STARTTLS");
    if (s->state == IMAP_NOT_AUTH)
        append(out, size, imapauth_allowed(s) ? " AUTH=PLAIN SASL-IR" : " LOGINDISABLED");
    for (size_t i = 1; i < ARRAY_LEN(ext); i++)
        if (have(ext[i].needs)) {
            append(out, size, " ");
            append(out, size, ext[i].name);
        }
}

/* Counts a command that fetches nothing; past max_junk_commands since the last command that
 * did something, the session ends. -1 then (BYE sent), else 0. */
static int junk(struct imapsess *s)
{
    if (++s->junk <= s->conf.max_junk_commands)
        return 0;
    imapsess_untagged(s, "BYE too many commands that do nothing, closing the connection");
    log_msg(LOG_NOTICE, "client=%s too many junk commands (%u)", s->client, s->junk - 1);
    s->done = 1;
    return -1;
}

/* A command that takes no argument: BAD if it got one. 1 when refused. */
static int extra_args(struct imapsess *s, const struct imaptok *args)
{
    if (imaptok_at_end(args))
        return 0;
    imapsess_bad(s, "%s takes no argument", s->cmd);
    return 1;
}

/* ---- any state ------------------------------------------------------------------- */

static int cmd_capability(struct imapsess *s, struct imaptok *args)
{
    char caps[512];
    if (extra_args(s, args))
        return 0;
    capabilities(s, caps, sizeof caps);
    imapsess_untagged(s, "CAPABILITY %s", caps);
    return imapsess_ok(s, "CAPABILITY completed");
}

static int cmd_noop(struct imapsess *s, struct imaptok *args)
{
    if (extra_args(s, args))
        return 0;
    return imapsess_ok(s, "%s completed", s->cmd);
}

static int cmd_logout(struct imapsess *s, struct imaptok *args)
{
    if (extra_args(s, args))
        return 0;
    imapsess_untagged(s, "BYE logging out");
    s->state = IMAP_LOGOUT;
    s->done = 1;
    return imapsess_ok(s, "LOGOUT completed");
}

/* ID (RFC 2971): NIL or a list of up to 30 field/value pairs; we answer with our name. */
static int cmd_id(struct imapsess *s, struct imaptok *args)
{
    char field[32], value[1025];
    size_t n;
    int pairs = 0, ok = imaptok_word(args, "NIL") == 0;
    if (!ok && imaptok_char(args, '(') == 0) {
        ok = 1;
        while (ok && imaptok_char(args, ')') != 0) {
            ok = pairs++ < 30 && (pairs == 1 || imaptok_space(args) == 0) &&
                 imaptok_string(args, field, sizeof field, &n) == 0 && imaptok_space(args) == 0 &&
                 (imaptok_word(args, "NIL") == 0 ||
                  imaptok_string(args, value, sizeof value, &n) == 0);
        }
    }
    if (!ok || !imaptok_at_end(args))
        return imapsess_bad(s, "ID needs NIL or a list of field and value strings");
    imapsess_untagged(s, "ID (\"name\" \"yubin\" \"version\" \"%s\")", PACKAGE_VERSION);
    return imapsess_ok(s, "ID completed");
}

/* ---- not authenticated ----------------------------------------------------------- */

/* The handshake, on STARTTLS or at once with -T. 0, or -1: logged, the session ends. */
static int start_tls(struct imapsess *s)
{
    if (tls_serve(&s->io, s->tls_ctx, s->client, s->tls, sizeof s->tls) == 0)
        return 0;
    s->done = 1;
    return -1;
}

/* STARTTLS (RFC 9051 §6.2.1): TLS, then the NOT_AUTH state afresh (CAPABILITY again). */
static int cmd_starttls(struct imapsess *s, struct imaptok *args)
{
    if (extra_args(s, args))
        return 0;
    if (s->tls[0] != '\0')
        return imapsess_bad(s, "TLS already active");
    if (s->tls_ctx == NULL)
        return imapsess_no(s, "STARTTLS not available (no certificate)");
    if (tls_server_ready(s->tls_ctx, s->client) == NULL) /* logged */
        return imapsess_no(s, "[UNAVAILABLE] TLS not available due to temporary reason");
    if (netio_pending(&s->io)) { /* plaintext must never pass for TLS */
        imapsess_bad(s, "commands pipelined after STARTTLS refused");
        imapsess_untagged(s, "BYE closing the connection");
        log_msg(LOG_NOTICE, "client=%s commands pipelined after STARTTLS: connection closed",
                s->client);
        s->done = 1;
        return -1;
    }
    imapsess_ok(s, "begin TLS negotiation now");
    return start_tls(s);
}

/* LOGIN and AUTHENTICATE: the tagged OK carries the capabilities of the new state. */
static int logged_in(struct imapsess *s, int rc)
{
    char caps[512];
    if (rc <= 0)
        return rc;
    capabilities(s, caps, sizeof caps);
    return imapsess_ok(s, "[CAPABILITY %s] logged in", caps);
}

static int cmd_login(struct imapsess *s, struct imaptok *args)
{
    return logged_in(s, imapauth_login(s, args));
}

static int cmd_authenticate(struct imapsess *s, struct imaptok *args)
{
    return logged_in(s, imapauth_authenticate(s, args));
}

/* ---- authenticated --------------------------------------------------------------- */

static const struct enable_name {
    const char *name;
    unsigned bits; /* QRESYNC implies CONDSTORE (RFC 7162 §3.2.3) */
} enable_names[] = {{"IMAP4rev2", IMAP_EN_REV2},
                    {"CONDSTORE", IMAP_EN_CONDSTORE},
                    {"QRESYNC", IMAP_EN_QRESYNC | IMAP_EN_CONDSTORE}};

/* An ENABLE name CAPABILITY (caps) offers, or NULL. */
static const struct enable_name *enable_name(const char *caps, const char *w, size_t n)
{
    for (size_t i = 0; i < ARRAY_LEN(enable_names); i++)
        if (strlen(enable_names[i].name) == n && strncasecmp(w, enable_names[i].name, n) == 0 &&
            strstr(caps, enable_names[i].name) != NULL)
            return &enable_names[i];
    return NULL;
}

/* ENABLE (RFC 5161): IMAP4rev2, CONDSTORE and QRESYNC (RFC 7162) when they are offered; other
 * names are not enabled (and not listed in * ENABLED), nor one enabled before. */
static int cmd_enable(struct imapsess *s, struct imaptok *args)
{
    char caps[512], list[64] = "";
    const char *w;
    size_t n;
    int count = 0;
    capabilities(s, caps, sizeof caps);
    while (imaptok_space(args) == 0 || count == 0) {
        if (imaptok_atom(args, &w, &n) != 0)
            return imapsess_bad(s, "ENABLE needs capability names");
        count++;
        const struct enable_name *e = enable_name(caps, w, n);
        if (e != NULL && (s->enabled & e->bits) != e->bits) {
            s->enabled |= e->bits;
            append(list, sizeof list, " ");
            append(list, sizeof list, e->name);
        }
    }
    if (!imaptok_at_end(args))
        return imapsess_bad(s, "ENABLE needs capability names");
    imapsess_untagged(s, "ENABLED%s", list);
    return imapsess_ok(s, "ENABLE completed");
}

/* NAMESPACE (RFC 2342): one personal namespace "" with the delimiter ".". */
static int cmd_namespace(struct imapsess *s, struct imaptok *args)
{
    if (extra_args(s, args))
        return 0;
    imapsess_untagged(s, "NAMESPACE ((\"\" \".\")) NIL NIL");
    return imapsess_ok(s, "NAMESPACE completed");
}

/* ---- the command table ------------------------------------------------------------ */

static const struct imapcmd commands[] = {
    {"CAPABILITY", IMAP_ANY_STATE, cmd_capability, IMAPCMD_JUNK},
    {"NOOP", IMAP_ANY_STATE, cmd_noop, IMAPCMD_JUNK},
    {"LOGOUT", IMAP_ANY_STATE, cmd_logout, 0},
    {"ID", IMAP_ANY_STATE, cmd_id, IMAPCMD_JUNK},
    {"STARTTLS", IMAP_NOT_AUTH, cmd_starttls, 0},
    {"LOGIN", IMAP_NOT_AUTH, cmd_login, 0},
    {"AUTHENTICATE", IMAP_NOT_AUTH, cmd_authenticate, 0},
    {"ENABLE", IMAP_AUTH, cmd_enable, 0},
    {"NAMESPACE", IMAP_LOGGED_IN, cmd_namespace, IMAPCMD_JUNK},
    {"SELECT", IMAP_LOGGED_IN, imapsel_select, 0},
    {"EXAMINE", IMAP_LOGGED_IN, imapsel_select, 0},
    {"IDLE", IMAP_LOGGED_IN, imapsel_idle, 0},
    {"CHECK", IMAP_SELECTED, cmd_noop, IMAPCMD_JUNK},
    {"CLOSE", IMAP_SELECTED, imapsel_close, 0},
    {"UNSELECT", IMAP_SELECTED, imapsel_unselect, 0},
    {"EXPUNGE", IMAP_SELECTED, imapsel_expunge, IMAPCMD_UID},
    {"LIST", IMAP_LOGGED_IN, imapcmd_list, 0},
    {"LSUB", IMAP_LOGGED_IN, imapcmd_lsub, 0},
    {"STATUS", IMAP_LOGGED_IN, imapcmd_status, 0},
    {"CREATE", IMAP_LOGGED_IN, imapcmd_create, 0},
    {"DELETE", IMAP_LOGGED_IN, imapcmd_delete, 0},
    {"RENAME", IMAP_LOGGED_IN, imapcmd_rename, 0},
    {"SUBSCRIBE", IMAP_LOGGED_IN, imapcmd_subscribe, 0},
    {"UNSUBSCRIBE", IMAP_LOGGED_IN, imapcmd_unsubscribe, 0},
    {"APPEND", IMAP_LOGGED_IN, imapcmd_append, IMAPCMD_STREAM},
    {"FETCH", IMAP_SELECTED, imapcmd_fetch, IMAPCMD_UID | IMAPCMD_NO_EXPUNGE},
    {"STORE", IMAP_SELECTED, imapcmd_store, IMAPCMD_UID | IMAPCMD_NO_EXPUNGE},
    {"SEARCH", IMAP_SELECTED, imapcmd_search, IMAPCMD_UID | IMAPCMD_NO_EXPUNGE},
    {"COPY", IMAP_SELECTED, imapcmd_copy, IMAPCMD_UID},
    {"MOVE", IMAP_SELECTED, imapcmd_move, IMAPCMD_UID},
};

static const struct imapcmd *lookup(const char *name, int uid)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0 && (!uid || (commands[i].flags & IMAPCMD_UID)))
            return &commands[i];
    return NULL;
}

/* ---- the session ------------------------------------------------------------------ */

/* The command name after the tag (and "UID"), upper-cased into s->cmd. NULL after a BAD. */
static const struct imapcmd *command_name(struct imapsess *s, struct imaptok *t)
{
    const char *w;
    size_t n;
    for (int pass = 0; pass < 2; pass++) {
        if (imaptok_space(t) != 0 || imaptok_atom(t, &w, &n) != 0 || n >= sizeof s->cmd) {
            imapsess_bad(s, "command name expected");
            return NULL;
        }
        for (size_t i = 0; i < n; i++)
            s->cmd[i] = (char)(w[i] >= 'a' && w[i] <= 'z' ? w[i] - 32 : w[i]);
        s->cmd[n] = '\0';
        if (pass == 1 || strcmp(s->cmd, "UID") != 0)
            break;
        s->uid = 1;
    }
    const struct imapcmd *c = lookup(s->cmd, s->uid);
    if (c == NULL)
        imapsess_bad(s, "unknown command%s%s", s->uid ? " UID " : " ", s->cmd);
    return c;
}

/* Why a command is refused in this state. */
static const char *wrong_state(const struct imapcmd *c, unsigned state)
{
    if (state == IMAP_NOT_AUTH)
        return "needs a login first";
    if (c->states == IMAP_NOT_AUTH)
        return "is not valid after the login";
    if (state == IMAP_AUTH && (c->states & IMAP_SELECTED))
        return "needs a selected folder (SELECT first)";
    return "is not valid in this state";
}

/* One assembled command. */
static void dispatch(struct imapsess *s, char *buf, size_t len)
{
    struct imaptok t;
    imaptok_init(&t, buf, len);
    if (imapsess_take_tag(s, &t) != 0) {
        imapsess_bad(s, "invalid tag");
        return;
    }
    const struct imapcmd *c = command_name(s, &t);
    if (c == NULL)
        return;
    s->cmd_flags = c->flags;
    if ((c->states & s->state) == 0) {
        imapsess_bad(s, "%s %s", s->cmd, wrong_state(c, s->state));
        return;
    }
    if (!(c->flags & IMAPCMD_JUNK))
        s->junk = 0;
    else if (junk(s) != 0)
        return;
    if (!imaptok_at_end(&t) && imaptok_space(&t) != 0) {
        imapsess_bad(s, "a space expected after the command name");
        return;
    }
    if (c->run(s, &t) < 0)
        s->done = 1;
    if (!s->done && imapsess_literal_finish(s) != 0)
        s->done = 1;
    if (!s->replied && !s->done) {
        log_msg(LOG_ERR, "client=%s %s sent no tagged reply", s->client, s->cmd);
        imapsess_no(s, "[SERVERBUG] %s failed", s->cmd);
    }
}

static void serve(struct imapsess *s)
{
    static char buf[IMAP_CMD_MAX + 1];
    char caps[512];
    capabilities(s, caps, sizeof caps);
    imapsess_untagged(s, "OK [CAPABILITY %s] yubin IMAP server ready", caps);
    while (!s->done) {
        size_t len = 0;
        int rc = imapsess_read_command(s, buf, sizeof buf - 1, &len, lookup);
        if (rc == NETIO_TIMEOUT) {
            imapsess_untagged(s, "BYE autologout: idle for too long");
            log_msg(LOG_INFO, "timeout: client=%s", s->client);
            break;
        }
        if (rc < 0)
            break; /* the client went away */
        if (rc == 1) {
            buf[len] = '\0';
            dispatch(s, buf, len);
        }
        sodium_memzero(buf, len);
        netio_wipe_consumed(&s->io);
    }
    netio_flush(&s->io);
}

/* ---- start-up --------------------------------------------------------------------- */

/* The client's address and its connection slot (lib/handler). 0 to serve, 1 refused. */
static int client_address(struct imapsess *s)
{
    int rc = handler_client(&s->io, &s->conf, s->implicit_tls, &s->slot, s->client,
                            sizeof s->client, &s->local_client);
    if (rc == 2 && !s->implicit_tls) {
        imapsess_untagged(s, "BYE [UNAVAILABLE] too many connections from your address");
        netio_flush(&s->io);
    }
    return rc != 0;
}

/* Options, configuration, TLS context, privileges (lib/handler). 0, -1, -2 (-T: no reply). */
static int start(struct imapsess *s, int argc, char **argv)
{
    struct handler_start h = {0};
    int rc = handler_start("imap4-in", argc, argv, &s->conf, &h);
    s->implicit_tls = h.implicit_tls;
    s->tls_ctx = h.tls_ctx;
    return rc;
}

int main(int argc, char **argv)
{
    static struct imapsess s;
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    imapsess_init(&s, 0, 1);
    int rc = start(&s, argc, argv);
    if (rc == -2)
        return 1;
    if (rc != 0) {
        imapsess_untagged(&s, "BYE [UNAVAILABLE] the server is not configured correctly");
        netio_flush(&s.io);
        return 1;
    }
    netio_set_timeout(&s.io, s.conf.imap_timeout);
    if (client_address(&s) != 0)
        return 1;
    struct transcript *tr =
        transcript_start(s.conf.transcript_dir, s.conf.transcript_max_size, "imap4-in", s.client);
    netio_set_transcript(&s.io, tr);
    if (!s.implicit_tls || start_tls(&s) == 0)
        serve(&s);
    if (s.user[0] != '\0')
        log_msg(LOG_INFO, "logout: user=<%s> client=%s", log_field(s.user), s.client);
    netio_set_transcript(&s.io, NULL);
    transcript_close(tr);
    netio_free(&s.io);
    tls_server_free(s.tls_ctx);
    imapsess_free(&s);
    connlimit_release(&s.slot);
    return 0;
}
