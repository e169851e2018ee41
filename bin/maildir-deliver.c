/*
 * maildir-deliver: the local delivery agent for other MTAs, fetchmail and procmail users.
 *
 *     maildir-deliver [-C conf] [-f sender] address...
 *
 * Reads one message from stdin (LF or CRLF line ends; stored with LF; a NUL octet or a CR
 * that is not right before LF refuses it, EX_DATAERR, DESIGN.md §5), prepends
 * "Return-Path: <sender>" when -f is given, and delivers it durably to the Maildir of every
 * address through lib/deliver (all or nothing): written once, fsynced once, hard-linked into
 * each new/, every new/ fsynced, and exit 0 only after all of that. Exit codes come from
 * <sysexits.h> so the calling MTA knows whether to retry (EX_TEMPFAIL) or bounce.
 *
 * It must never deliver to some recipients and fail for others (all or nothing), never leave
 * a partial file in new/ or tmp/, never hold the message in memory, never run as root past
 * privs_drop, and never pass an address to a shell. Errors go to stderr as one line.
 */
#include "config.h"

#include "addr.h"
#include "conf.h"
#include "deliver.h"
#include "log.h"
#include "maildir.h"
#include "privs.h"
#include "route.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#define MAX_RECIPIENTS 1000
#define PATH_SIZE 257 /* RFC 5321 path, without the brackets */

static const char *prog = "maildir-deliver";

static int usage(void)
{
    return cli_fail(prog, EX_USAGE, "usage: maildir-deliver [-C conf] [-f sender] address...");
}

/* An address as an MTA passes it: "local@domain" or "<local@domain>", RFC 5321 syntax and
 * limits (lib/addr). A quoted local part or an address literal names no mailbox here. */
static int parse_address(const char *arg, struct addr *a, const char **why)
{
    const char *end;
    int rc = arg[0] == '<' ? addr_parse_path(arg, 0, a, &end) : addr_parse_mailbox(arg, a);
    if (rc == ADDR_OK && arg[0] == '<' && *end != '\0')
        rc = ADDR_ERR_SYNTAX;
    *why = addr_error_text(rc);
    if (rc == ADDR_OK && (a->quoted || a->literal)) {
        *why = a->quoted ? "a quoted local part names no mailbox" : "an address literal";
        rc = ADDR_ERR_SYNTAX;
    }
    return rc == ADDR_OK ? 0 : -1;
}

/* Adds a mailbox as a target (each once, at most MAX_RECIPIENTS after alias expansion). */
static int add_rcpt(const struct yubin_conf *c, struct deliver *list, const char *arg,
                    const char *mailbox)
{
    struct addr a;
    char dir[PATH_MAX];
    if (deliver_has(list, mailbox))
        return 0;
    if (list->n_targets == MAX_RECIPIENTS)
        return cli_fail(prog, EX_USAGE, "%s: more than %d mailboxes in all", arg, MAX_RECIPIENTS);
    if (addr_parse_mailbox(mailbox, &a) != ADDR_OK ||
        maildir_path(dir, sizeof dir, c->state_dir, a.local, a.domain) != 0)
        return cli_fail(prog, EX_DATAERR, "%s: %s cannot be a mailbox name", arg, mailbox);
    str_lower(a.text);
    if (deliver_add(list, a.text, 0, 0, 0) != 0)
        return cli_fail(prog, EX_TEMPFAIL, "out of memory");
    return 0;
}

/* What a refused route means for the calling MTA: an unknown user, or a permanent failure. */
static int refused(const char *arg, const struct route *rt)
{
    int nouser = strncmp(rt->reply, "550 5.1.", 8) == 0;
    return cli_fail(prog, nouser ? EX_NOUSER : EX_UNAVAILABLE, "%s: %s", arg, rt->why);
}

/* Resolves one command-line address (a mailbox, or an alias of local mailboxes) through
 * lib/route, as smtp-in does at RCPT; a sysexits code on failure. */
static int resolve(struct route_ctx *ctx, const char *arg, struct deliver *list)
{
    struct addr a;
    struct route rt;
    const char *why;
    char dir[PATH_MAX];
    int rc = 0;
    if (parse_address(arg, &a, &why) != 0)
        return cli_fail(prog, EX_DATAERR, "%s: malformed address: %s", arg, why);
    if (maildir_path(dir, sizeof dir, ctx->conf->state_dir, a.local, a.domain) != 0)
        return cli_fail(prog, EX_DATAERR, "%s: malformed address: cannot be a mailbox name", arg);
    if (!conf_is_local_domain(ctx->conf, a.domain))
        return cli_fail(prog, EX_NOUSER, "%s: %s is not a local domain", arg, a.domain);
    switch (route_rcpt(ctx, &a, 0, &rt)) {
    case ROUTE_LOCAL:
        if (rt.n_remote > 0) {
            rc = cli_fail(prog, EX_UNAVAILABLE,
                          "%s: an alias with members elsewhere (%s); "
                          "maildir-deliver delivers to local mailboxes only",
                          arg, rt.remote[0]);
            break;
        }
        for (size_t i = 0; rc == 0 && i < rt.n_local; i++)
            rc = add_rcpt(ctx->conf, list, arg, rt.local[i]);
        break;
    case ROUTE_TEMPFAIL:
        rc = cli_fail(prog, EX_TEMPFAIL, "%s: %s", arg, rt.why);
        break;
    default:
        rc = refused(arg, &rt);
        break;
    }
    route_free(&rt);
    return rc;
}

/* A sender for Return-Path, as "a@b", "<a@b>", "" or "<>": printable, no spaces, no '<' '>'
 * inside, at most a path long. Copied without the brackets into out. */
static int unbracket(char *out, size_t size, const char *s)
{
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
        s++;
        len -= 2;
    }
    if (str_copy_n(out, size, s, len) != 0)
        return -1;
    for (const unsigned char *p = (const unsigned char *)out; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '<' || *p == '>')
            return -1;
    return 0;
}

/* Copies stdin into the message, CRLF turned into LF, and ends it with LF if it does not.
 * Every octet goes through t (lib/deliver): a NUL or a CR not before LF stops the copy, and
 * -1 refuses the message (t->faults says why). 0, 1 (temporary) or -1; *read_err set on a
 * read error. */
static int copy_stdin(struct deliver *d, struct deliver_text *t, int *read_err)
{
    char in[8192], out[8192];
    int rc;
    char last = '\n';
    ssize_t n;
    *read_err = 0;
    while ((n = read(0, in, sizeof in)) != 0) {
        size_t o = 0;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *read_err = errno;
            return 1;
        }
        if (deliver_text_scan(t, in, (size_t)n) != DELIVER_TEXT_OK)
            return -1;
        for (ssize_t i = 0; i < n; i++) /* every CR is one before LF now */
            if (in[i] != '\r')
                last = out[o++] = in[i];
        if (o > 0 && (rc = deliver_write(d, out, o)) != 0)
            return rc;
    }
    if (deliver_text_end(t) != DELIVER_TEXT_OK)
        return -1;
    return (last != '\n' && d->msg.size > 0) ? deliver_write(d, "\n", 1) : 0;
}

static int exit_for(int rc)
{
    return rc > 0 ? EX_TEMPFAIL : EX_CANTCREAT;
}

/* Delivers stdin to every target of d, or to none: on failure nothing stays in new/ or tmp/. */
static int deliver_stdin(struct deliver *d, const char *sender)
{
    struct deliver_text t = {0};
    int read_err = 0;
    int rc = deliver_begin(d, sender != NULL);
    if (rc == 0 && (rc = copy_stdin(d, &t, &read_err)) != 0 && read_err != 0)
        str_copy(d->what, sizeof d->what, "reading standard input");
    if (rc == 0)
        rc = deliver_commit(d);
    int err = read_err ? read_err : errno;
    deliver_end(d, rc != 0);
    if (t.faults != DELIVER_TEXT_OK) {
        log_msg(LOG_NOTICE, "refused: the message holds %s at octet %llu",
                deliver_text_error(t.first), (unsigned long long)t.where + 1);
        return cli_fail(prog, EX_DATAERR,
                        "the message holds %s at octet %llu: refused, nothing delivered",
                        deliver_text_error(t.first), (unsigned long long)t.where + 1);
    }
    if (rc != 0) {
        log_msg(LOG_ERR, "delivery failed: %s: %s", d->what, strerror(err));
        return cli_fail(prog, exit_for(rc), "%s: %s%s; nothing delivered", d->what, strerror(err),
                        maildir_errno_is_full(err) ? " (disk full)" : "");
    }
    for (size_t i = 0; i < d->n_targets; i++)
        log_msg(LOG_INFO, "delivered id=%s from=<%s> to=<%s> size=%llu", d->msg.unique,
                log_field(sender), log_field(d->targets[i].addr), (unsigned long long)d->msg.size);
    return 0;
}

int main(int argc, char **argv)
{
    static struct yubin_conf conf;
    static struct deliver rcpts;
    struct route_ctx ctx;
    const char *conf_path = NULL, *sender = NULL;
    char err[512], sender_buf[PATH_SIZE];
    int opt, rc;

    maildir_cleanup_on_signal(SIGTERM); /* killed while reading: no tmp file left */
    maildir_cleanup_on_signal(SIGINT);
    while ((opt = getopt(argc, argv, "C:f:")) != -1) {
        if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'f')
            sender = optarg;
        else
            return usage();
    }
    if (optind >= argc)
        return usage();
    if (sender != NULL && unbracket(sender_buf, sizeof sender_buf, sender) != 0)
        return cli_fail(prog, EX_DATAERR, "-f %s: malformed sender", sender);
    if (sender != NULL)
        sender = sender_buf;
    if (conf_load(&conf, conf_path, err, sizeof err) != 0)
        return cli_fail(prog, EX_CONFIG, "%s", err);
    if (sodium_init() < 0)
        return cli_fail(prog, EX_OSERR, "libsodium cannot be initialised");
    log_open(prog, conf.syslog_socket);
    if (privs_drop(conf.user, err, sizeof err) != 0)
        return cli_fail(prog, EX_CONFIG, "%s", err);
    route_init(&ctx, &conf);
    deliver_init(&rcpts, conf.state_dir, conf.hostname, DELIVER_ALL);
    deliver_reset(&rcpts, sender ? sender : "");
    rc = 0;
    for (int i = optind; rc == 0 && i < argc; i++)
        rc = resolve(&ctx, argv[i], &rcpts);
    route_ctx_free(&ctx);
    if (rc != 0)
        return rc;
    rc = deliver_stdin(&rcpts, sender);
    deliver_free(&rcpts);
    return rc;
}
