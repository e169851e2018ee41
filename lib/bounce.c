/*
 * bounce.c: what the results of a queue entry come to (see bounce.h): bounces and delay
 * warnings as new entries from <> (lib/dsn writes them), expiry, removal. It never bounces
 * to <>, and never changes an entry it does not hold locked.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bounce.h"
#include "dsn.h"
#include "log.h"
#include "maildir.h"
#include "route.h"
#include "util.h"

/* A line for the caller's -v output. */
static void tell(const struct bounce_ctx *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void tell(const struct bounce_ctx *b, const char *fmt, ...)
{
    char line[1200];
    va_list ap;
    if (b->say == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    b->say(b->arg, line);
}

/* Splits a stored reply into what lib/dsn wants: "550 5.1.1 text" is a remote reply,
 * "5.1.10 text" (DNS, expiry) is our own status and reason. */
static void dsn_fields(const char *reply, struct dsn_rcpt *r, char *status, size_t ssize)
{
    status[0] = '\0';
    const char *p = reply;
    if (reply[0] >= '2' && reply[0] <= '5' && reply[1] >= '0' && reply[1] <= '9' &&
        reply[2] >= '0' && reply[2] <= '9' && (reply[3] == ' ' || reply[3] == '\0')) {
        r->reply_code = (reply[0] - '0') * 100 + (reply[1] - '0') * 10 + (reply[2] - '0');
        r->diagnostic = reply;
        p = reply[3] ? reply + 4 : reply + 3;
    } else {
        const char *last = strstr(reply, "; last: ");
        r->reason = reply;
        if (last && last[8] >= '2' && last[8] <= '5' && last[9] && last[10] && last[11] == ' ')
            r->diagnostic = last + 8; /* expired after a remote reply */
    }
    size_t n = strspn(p, "0123456789.");
    if (n >= 5 && n < ssize && (p[0] == '4' || p[0] == '5') && p[1] == '.') {
        memcpy(status, p, n);
        status[n] = '\0';
        r->status = status;
    }
}

/* A report for an SRS address of ours goes straight to the address it stands for: sent to
 * the SRS address, it would only come back here to be forwarded (lib/route, lib/srs). */
static const char *report_to(const struct bounce_ctx *b, const char *to, char *buf, size_t size)
{
    static struct route_ctx ctx;
    static int ready;
    if (!ready) {
        route_init(&ctx, b->conf);
        ready = 1;
    }
    return route_srs_reverse(&ctx, to, buf, size) == 1 ? buf : to;
}

/* Stores a report about e (recipients in state `which`) as a new entry from <> to `to`. */
static int inject_report(const struct bounce_ctx *b, struct queue_entry *e, enum queue_state which,
                         int action, const char *to, time_t now)
{
    char srs_to[ADDR_SIZE];
    to = report_to(b, to, srs_to, sizeof srs_to);
    size_t n = queue_count(e, which), k = 0;
    if (n > DSN_MAX_RCPTS)
        n = DSN_MAX_RCPTS;
    struct dsn_rcpt *rs = calloc(n ? n : 1, sizeof *rs);
    char(*st)[16] = calloc(n ? n : 1, 16);
    if (!rs || !st) {
        free(rs);
        free(st);
        return -1;
    }
    for (size_t i = 0; i < e->n_rcpts && k < n; i++) {
        if (e->rcpts[i].state != which)
            continue;
        struct dsn_rcpt *r = &rs[k];
        r->addr = e->rcpts[i].addr;
        r->action = action;
        r->last_attempt = now;
        r->remote_mta = e->rcpts[i].host[0] ? e->rcpts[i].host : NULL;
        if (action == DSN_DELAYED)
            r->retry_until = e->created + (time_t)b->conf->queue_lifetime;
        dsn_fields(e->rcpts[i].reply, r, st[k], sizeof st[k]);
        k++;
    }
    struct dsn d = {.hostname = b->conf->hostname,
                    .to = to,
                    .queue_id = e->id,
                    .arrival = e->created,
                    .now = now,
                    .rcpts = rs,
                    .n_rcpts = k};
    uint64_t size;
    d.msg_fd = queue_open_data(e, &size);
    d.msg_offset = d.msg_fd >= 0 ? lseek(d.msg_fd, 0, SEEK_CUR) : 0;

    struct maildir_msg m;
    struct queue_entry r;
    static const char rp[] = "Return-Path: <>\n";
    int rc = maildir_msg_begin(&m, b->conf->state_dir, b->conf->hostname);
    if (rc == 0)
        rc = maildir_msg_write(&m, rp, sizeof rp - 1);
    if (rc == 0)
        rc = dsn_write_maildir(&d, &m) == 0 ? 0 : 1;
    if (rc == 0)
        rc = maildir_msg_commit(&m);
    if (rc == 0 && (rc = queue_entry_init(&r, b->conf->state_dir, "", sizeof rp - 1)) == 0) {
        r.flags = QUEUE_F_BOUNCE;
        rc = queue_entry_add(&r, to);
        if (rc == 0)
            rc = queue_create(&r, m.tmp_path, b->conf->hostname);
        if (rc == 0) {
            if (b->made != NULL)
                b->made(b->arg, r.id);
            log_msg(LOG_INFO, "%s: %s report to <%s> queued as %s", e->id,
                    action == DSN_DELAYED ? "delay" : "bounce", log_field(to), r.id);
            tell(b, "%s: %s report to <%s> queued as %s", e->id,
                 action == DSN_DELAYED ? "delay" : "bounce", to, r.id);
        }
        queue_entry_free(&r);
    }
    maildir_msg_end(&m, 0);
    if (d.msg_fd >= 0)
        close(d.msg_fd);
    free(rs);
    free(st);
    return rc;
}

/* The postmaster of the first local domain. */
static void postmaster(const struct bounce_ctx *b, char *dst, size_t size)
{
    if (str_format(dst, size, "postmaster@%s", b->conf->local_domains[0]) < 0)
        dst[0] = '\0';
}

/* Failed recipients: bounce to the sender, a failed bounce of ours to the postmaster, and
 * nothing for any other <> sender. Then they are marked bounced. */
static int report_failed(const struct bounce_ctx *b, struct queue_entry *e, time_t now)
{
    char pm[ADDR_SIZE];
    const char *to = e->sender;
    postmaster(b, pm, sizeof pm);
    if (to[0] == '\0' && (e->flags & QUEUE_F_BOUNCE) && pm[0] && b->conf->n_local_domains &&
        !(e->n_rcpts == 1 && str_ieq(e->rcpts[0].addr, pm)))
        to = pm;
    if (to[0] != '\0' && inject_report(b, e, QUEUE_FAILED, DSN_FAILED, to, now) != 0) {
        log_msg(LOG_ERR, "%s: cannot queue the bounce: %s", e->id, strerror(errno));
        return 1;
    }
    for (size_t i = 0; i < e->n_rcpts; i++) {
        if (e->rcpts[i].state != QUEUE_FAILED)
            continue;
        if (to[0] == '\0')
            log_msg(LOG_NOTICE, "%s: <%s> failed, no bounce for a null sender: %s", e->id,
                    log_field(e->rcpts[i].addr), log_field(e->rcpts[i].reply));
        e->rcpts[i].state = QUEUE_BOUNCED;
    }
    return 0;
}

static int want_warning(const struct bounce_ctx *b, const struct queue_entry *e, time_t now)
{
    if (!b->conf->delay_warning || (e->flags & (QUEUE_F_WARNED | QUEUE_F_BOUNCE)) ||
        e->sender[0] == '\0' || now - e->created < (time_t)b->conf->delay_warning)
        return 0;
    for (size_t i = 0; i < e->n_rcpts; i++)
        if (e->rcpts[i].state == QUEUE_PENDING && e->rcpts[i].attempts > 0)
            return 1;
    return 0;
}

void bounce_finish(const struct bounce_ctx *b, struct queue_entry *e, time_t now)
{
    int changed = 0;
    if (queue_count(e, QUEUE_FAILED) > 0 && report_failed(b, e, now) == 0)
        changed = 1;
    if (want_warning(b, e, now) &&
        inject_report(b, e, QUEUE_PENDING, DSN_DELAYED, e->sender, now) == 0) {
        e->flags |= QUEUE_F_WARNED;
        changed = 1;
    }
    if (queue_count(e, QUEUE_PENDING) == 0 && queue_count(e, QUEUE_FAILED) == 0) {
        if (queue_remove(e) != 0)
            log_msg(LOG_ERR, "%s: cannot remove: %s", e->id, strerror(errno));
        else
            tell(b, "%s: complete, removed", e->id);
        return;
    }
    if (changed && queue_save(e) != 0)
        log_msg(LOG_ERR, "%s: cannot save the envelope: %s", e->id, strerror(errno));
}

void bounce_record(const struct bounce_ctx *b, struct queue_entry *e, size_t i, int result,
                   const char *reply, const char *host, time_t now)
{
    queue_set_result(e, i, result, reply, host, now);
    struct queue_rcpt *r = &e->rcpts[i];
    char tls[QUEUE_TLS_SIZE]; /* "TLSv1.3/TLS_AES_256_GCM_SHA384/dane": one log field */
    str_copy(tls, sizeof tls, r->tls);
    for (char *sp = strchr(tls, ' '); sp; sp = strchr(sp, ' '))
        *sp = '/';
    log_msg(result == 0 ? LOG_INFO : LOG_NOTICE, "%s: to=<%s> %s attempt=%u%s%s: %s", e->id,
            log_field(r->addr),
            result == 0  ? "delivered"
            : result < 0 ? "failed"
                         : "deferred",
            r->attempts, tls[0] ? " tls=" : "", tls[0] ? log_field(tls) : "", log_field(r->reply));
    tell(b, "%s: <%s> %s: %s", e->id, r->addr,
         result == 0  ? "delivered"
         : result < 0 ? "failed"
                      : "deferred",
         r->reply);
    if (r->state == QUEUE_PENDING && now - e->created >= (time_t)b->conf->queue_lifetime) {
        char why[QUEUE_REPLY_SIZE];
        if (str_format(why, sizeof why, "4.4.7 delivery time expired; last: %s", r->reply) < 0)
            str_copy(why, sizeof why, "4.4.7 delivery time expired");
        str_copy(r->reply, sizeof r->reply, why);
        r->state = QUEUE_FAILED;
        log_msg(LOG_NOTICE, "%s: to=<%s> expired", e->id, log_field(r->addr));
    }
}
