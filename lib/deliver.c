/*
 * deliver.c: one accepted message to its recipients (see deliver.h): store once, link the
 * local copies, fsync, queue the rest; and the octets a message may hold.
 *
 * It must never acknowledge (return 0 from deliver_commit) before every copy is durable,
 * never leave a half-made queue entry (the entries of a failed commit are taken back), and
 * never read a message into memory: copies stream through a fixed buffer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deliver.h"
#include "log.h"
#include "trace.h"
#include "util.h"

void deliver_init(struct deliver *d, const char *state_dir, const char *host,
                  enum deliver_mode mode)
{
    memset(d, 0, offsetof(struct deliver, msg));
    d->state_dir = state_dir;
    d->host = host;
    d->mode = mode;
    deliver_reset(d, "");
}

void deliver_reset(struct deliver *d, const char *sender)
{
    d->n_targets = 0;
    d->n_groups = 1;
    str_copy(d->groups[0], ADDR_SIZE, sender);
    d->skip = 0;
    d->what[0] = '\0';
}

void deliver_free(struct deliver *d)
{
    free(d->targets);
    d->targets = NULL;
    d->n_targets = d->cap_targets = 0;
}

/* ---- the targets ---- */

int deliver_group(struct deliver *d, const char *sender)
{
    for (size_t g = 0; g < d->n_groups; g++)
        if (str_ieq(d->groups[g], sender))
            return (int)g;
    if (d->n_groups >= DELIVER_MAX_GROUPS || str_copy(d->groups[d->n_groups], ADDR_SIZE, sender))
        return -1;
    return (int)d->n_groups++;
}

int deliver_has(const struct deliver *d, const char *address)
{
    for (size_t i = 0; i < d->n_targets; i++)
        if (str_ieq(d->targets[i].addr, address))
            return 1;
    return 0;
}

size_t deliver_new_targets(const struct deliver *d, const struct route *r)
{
    size_t n = 0;
    for (size_t i = 0; i < r->n_local; i++)
        n += !deliver_has(d, r->local[i]);
    for (size_t i = 0; i < r->n_remote; i++)
        n += !deliver_has(d, r->remote[i]);
    return n;
}

/* Adds a target into room already there. */
static void push(struct deliver *d, const char *address, unsigned group, int remote, size_t tag)
{
    if (d->mode != DELIVER_EACH && deliver_has(d, address))
        return;
    struct deliver_target *t = &d->targets[d->n_targets++];
    memset(t, 0, sizeof *t);
    str_copy(t->addr, sizeof t->addr, address);
    t->group = group;
    t->remote = remote;
    t->tag = tag;
}

int deliver_add(struct deliver *d, const char *address, unsigned group, int remote, size_t tag)
{
    if (mem_grow(&d->targets, &d->cap_targets, d->n_targets + 1, sizeof *d->targets) != 0)
        return -1;
    push(d, address, group, remote, tag);
    return 0;
}

/* r's mailboxes in group, its remote addresses in remote_group. 0, or -1 out of memory. */
static int add_split(struct deliver *d, const struct route *r, unsigned group,
                     unsigned remote_group, size_t tag)
{
    if (mem_grow(&d->targets, &d->cap_targets, d->n_targets + r->n_local + r->n_remote,
                 sizeof *d->targets) != 0)
        return -1;
    for (size_t i = 0; i < r->n_local; i++)
        push(d, r->local[i], group, 0, tag);
    for (size_t i = 0; i < r->n_remote; i++)
        push(d, r->remote[i], remote_group, 1, tag);
    return 0;
}

int deliver_add_route(struct deliver *d, const struct route *r, unsigned group, size_t tag)
{
    return add_split(d, r, group, group, tag);
}

int deliver_add_forward(struct deliver *d, struct route_ctx *ctx, const struct route *r,
                        unsigned group, size_t tag, char *why, size_t whylen)
{
    char sender[ADDR_SIZE];
    int fg = (int)group;
    why[0] = '\0';
    if (r->forward && r->n_remote > 0) {
        if (route_forward_sender(ctx, d->groups[group], sender, sizeof sender, why, whylen) != 0)
            return 1;
        if ((fg = deliver_group(d, sender)) < 0)
            return snprintf(why, whylen, "too many envelope senders in one message"), 1;
    }
    if (add_split(d, r, group, (unsigned)fg, tag) != 0)
        return snprintf(why, whylen, "out of memory"), -1;
    return 0;
}

const char *deliver_take(struct deliver *d, struct route_ctx *ctx, const struct route *r,
                         const char *sender, size_t tag, char *why, size_t whylen)
{
    int group = 0;
    why[0] = '\0';
    if (r->owner[0] != '\0' && sender[0] != '\0' && (group = deliver_group(d, r->owner)) < 0)
        return "452 4.5.3 too many lists in one message";
    if (d->n_targets + deliver_new_targets(d, r) > MAILDIR_MAX_TARGETS)
        return "452 4.5.3 too many recipients";
    int rc = deliver_add_forward(d, ctx, r, (unsigned)group, tag, why, whylen);
    if (rc != 0 && why[0] == '\0')
        str_copy(why, whylen, "malloc");
    if (rc != 0)
        return rc > 0 ? "451 4.3.0 temporary failure, try again later" : "451 4.3.0 out of memory";
    return NULL;
}

/* ---- the data ---- */

/* Notes the step that failed; returns rc. */
static int failed(struct deliver *d, int rc, const char *what)
{
    int err = errno;
    str_copy(d->what, sizeof d->what, what);
    errno = err;
    return rc;
}

int deliver_begin(struct deliver *d, int return_path)
{
    char line[ADDR_SIZE + 32];
    d->began = 1;
    int rc = maildir_msg_begin(&d->msg, d->state_dir, d->host);
    if (rc != 0)
        return failed(d, rc, "creating the message file");
    if (!return_path)
        return 0;
    int n = trace_return_path(line, sizeof line, d->groups[0]);
    if (n < 0)
        return errno = EINVAL, failed(d, -1, "writing the message");
    d->skip = (uint64_t)n;
    return deliver_write(d, line, (size_t)n);
}

int deliver_write(struct deliver *d, const void *data, size_t len)
{
    int rc = maildir_msg_write(&d->msg, data, len);
    return rc == 0 ? 0 : failed(d, rc, "writing the message");
}

/* The data file of group g: its own copy, or the message as received. */
static struct maildir_msg *group_msg(struct deliver *d, size_t g)
{
    return d->copies[g] != NULL ? d->copies[g] : &d->msg;
}

/* Does group g have local mailboxes (so its copy needs its own Return-Path)? */
static int group_has_local(const struct deliver *d, size_t g)
{
    for (size_t i = 0; i < d->n_targets; i++)
        if (d->targets[i].group == g && !d->targets[i].remote)
            return 1;
    return 0;
}

/* Copies the committed message, after its Return-Path line, into m. 0, or 1 with errno. */
static int copy_body(struct deliver *d, struct maildir_msg *m)
{
    char buf[8192];
    int fd = open(d->msg.tmp_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 1;
    int rc = lseek(fd, (off_t)d->skip, SEEK_SET) < 0 ? 1 : 0;
    for (ssize_t n; rc == 0 && (n = read(fd, buf, sizeof buf)) != 0;) {
        if (n < 0 && errno != EINTR)
            rc = 1;
        else if (n > 0)
            rc = maildir_msg_write(m, buf, (size_t)n);
    }
    int err = errno;
    close(fd);
    errno = err;
    return rc;
}

/* A group with another sender and local mailboxes gets its own copy: its Return-Path line,
 * then the received message without ours. Remote-only groups share the received data (the
 * queue skips our Return-Path line when it relays). */
static int make_copies(struct deliver *d)
{
    char line[ADDR_SIZE + 32];
    for (size_t g = 1; g < d->n_groups; g++) {
        if (!group_has_local(d, g))
            continue;
        struct maildir_msg *m = calloc(1, sizeof *m);
        if (m == NULL)
            return 1;
        int rc = maildir_msg_begin(m, d->state_dir, d->host);
        if (rc != 0) {
            maildir_msg_end(m, 1);
            free(m);
            return rc;
        }
        d->copies[g] = m;
        int n = trace_return_path(line, sizeof line, d->groups[g]);
        if (n < 0)
            return errno = EINVAL, -1;
        if ((rc = maildir_msg_write(m, line, (size_t)n)) != 0 || (rc = copy_body(d, m)) != 0 ||
            (rc = maildir_msg_commit(m)) != 0)
            return rc;
    }
    return 0;
}

/* Has an earlier target of the same tag failed (DELIVER_EACH: that recipient has failed)? */
static int tag_failed(const struct deliver *d, size_t upto)
{
    for (size_t i = 0; i < upto; i++)
        if (d->targets[i].tag == d->targets[upto].tag && d->targets[i].result != 0)
            return 1;
    return 0;
}

/* Links target t into its Maildir. 0, 1 or -1 with errno. */
static int link_target(struct deliver *d, struct deliver_target *t, char *dir, size_t size)
{
    char local[ADDR_SIZE];
    const char *at = strrchr(t->addr, '@');
    dir[0] = '\0';
    if (at == NULL || str_copy_n(local, sizeof local, t->addr, (size_t)(at - t->addr)) != 0 ||
        maildir_path(dir, size, d->state_dir, local, at + 1) != 0)
        return errno = EINVAL, -1;
    return maildir_msg_link(group_msg(d, t->group), dir, NULL, 0);
}

/* Links every local target. What a failed link comes to depends on the mode (deliver.h). */
static int link_locals(struct deliver *d)
{
    char dir[PATH_MAX];
    for (size_t i = 0; i < d->n_targets; i++) {
        struct deliver_target *t = &d->targets[i];
        if (t->remote || (d->mode == DELIVER_EACH && tag_failed(d, i)))
            continue;
        int rc = link_target(d, t, dir, sizeof dir);
        if (rc == 0)
            continue;
        t->result = rc;
        t->err = errno;
        if (d->mode == DELIVER_ALL)
            return failed(d, rc, dir[0] ? dir : t->addr);
        if (d->mode == DELIVER_QUEUE_RETRY) {
            log_msg(LOG_WARNING, "to=<%s> local delivery failed for now (%s): queued for retry",
                    log_field(t->addr), strerror(t->err));
            t->retry = 1;
        }
    }
    return 0;
}

/* Takes back the queue entries made so far for this message (a later step failed). */
static void unqueue(struct deliver *d)
{
    int saved = errno;
    for (size_t i = 0; i < d->n_queued; i++) {
        struct queue_entry e = {.lock_fd = -1};
        int rc = queue_lock(&e, d->state_dir, d->queued[i]);
        if (rc == 0) {
            rc = queue_remove(&e) == 0 ? 2 : -1;
            queue_entry_free(&e);
        }
        if (rc != 2)
            log_msg(LOG_ERR, "%s: cannot take back the queue entry: %s", d->queued[i],
                    rc == 1 ? "a queue-run holds it" : strerror(errno));
    }
    d->n_queued = 0;
    errno = saved;
}

/* The queue entry of group g for its remote (or retried local) targets, if it has any. */
static int queue_group(struct deliver *d, size_t g)
{
    struct queue_entry e;
    size_t n = 0;
    uint64_t skip =
        d->copies[g] ? (uint64_t)strlen("Return-Path: <>\n") + strlen(d->groups[g]) : d->skip;
    if (queue_entry_init(&e, d->state_dir, d->groups[g], skip) != 0)
        return -1;
    for (size_t i = 0; i < d->n_targets; i++) {
        const struct deliver_target *t = &d->targets[i];
        if (t->group == g && (t->remote || t->retry) && ++n && queue_entry_add(&e, t->addr))
            return queue_entry_free(&e), 1;
    }
    int rc = n ? queue_create(&e, group_msg(d, g)->tmp_path, d->host) : 0;
    int err = errno;
    if (n && rc == 0)
        str_copy(d->queued[d->n_queued++], QUEUE_ID_SIZE, e.id);
    queue_entry_free(&e);
    errno = err;
    return rc;
}

int deliver_commit(struct deliver *d)
{
    int rc;
    d->n_queued = 0;
    d->synced_fail = 0;
    if (d->n_targets == 0) /* never acknowledge a message that went nowhere */
        return errno = EINVAL, failed(d, -1, "no recipients");
    if ((rc = maildir_msg_commit(&d->msg)) != 0)
        return failed(d, rc, "writing the message");
    if ((rc = make_copies(d)) != 0)
        return failed(d, rc, "writing a list owner's copy");
    if ((rc = link_locals(d)) != 0)
        return rc;
    for (size_t g = 0; g < d->n_groups; g++) {
        if ((g == 0 || d->copies[g]) && (rc = maildir_msg_sync(group_msg(d, g))) != 0) {
            d->synced_fail = 1;
            return failed(d, rc, "syncing the Maildirs");
        }
    }
    for (size_t g = 0; g < d->n_groups; g++) {
        if ((rc = queue_group(d, g)) != 0) {
            unqueue(d);
            return failed(d, rc, "queueing the message");
        }
    }
    return 0;
}

void deliver_end(struct deliver *d, int failed_msg)
{
    if (d->began)
        maildir_msg_end(&d->msg, failed_msg);
    d->began = 0;
    for (size_t g = 0; g < DELIVER_MAX_GROUPS; g++) {
        if (d->copies[g] != NULL) {
            maildir_msg_end(d->copies[g], failed_msg);
            free(d->copies[g]);
            d->copies[g] = NULL;
        }
    }
}

const char *deliver_failure_reply(int err)
{
    return maildir_errno_is_full(err) ? "452 4.3.1 insufficient system storage"
                                      : "451 4.3.0 local error in processing";
}

void deliver_start_runs(struct deliver *d, const char *conf_path)
{
    for (size_t i = 0; i < d->n_queued; i++)
        if (queue_start_run(conf_path, d->queued[i]) != 0)
            log_msg(LOG_WARNING, "%s: cannot start queue-run (%s); the timer will", d->queued[i],
                    strerror(errno));
    d->n_queued = 0;
}

/* ---- queued local recipients (queue-run) ---- */

/* Copies the whole stored message (Return-Path line included) into d's data. */
static int copy_data(struct queue_entry *e, struct deliver *d)
{
    uint64_t size;
    char buf[65536];
    int fd = queue_open_data(e, &size);
    if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0) {
        if (fd >= 0)
            close(fd);
        return 1;
    }
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? 1 : 0;
            break;
        }
        if ((rc = deliver_write(d, buf, (size_t)n)) != 0)
            break;
    }
    close(fd);
    return rc;
}

/* The mailboxes of one local address, as targets of d tagged tag. A queued local recipient
 * that is a mailbox was already expanded by smtp-in, so it is delivered as it is: expanding
 * it again would give the other members of an alias like "alice: alice, carol" a second copy.
 * Any other address (a bounce to a local sender, say) is expanded by lib/route. 0, or 1 / -1
 * with reply set when it has none. */
static int local_targets(struct route_ctx *ctx, struct deliver *d, const char *address, size_t tag,
                         char *reply, size_t rsize)
{
    struct addr a;
    struct route rt;
    if (addr_parse_mailbox(address, &a) != ADDR_OK)
        return str_format(reply, rsize, "5.1.3 bad address syntax"), -1;
    char why[300];
    if (ctx->mailbox_exists(ctx->conf, address, why, sizeof why) == 1)
        return deliver_add(d, address, 0, 0, tag) == 0
                   ? 0
                   : (str_copy(reply, rsize, "4.3.0 out of memory"), 1);
    int result = -1;
    switch (route_rcpt(ctx, &a, 0, &rt)) {
    case ROUTE_LOCAL:
        result = rt.n_local ? 0 : -1;
        str_copy(reply, rsize, "5.1.1 no local mailbox");
        for (size_t i = 0; i < rt.n_local && result == 0; i++)
            if (deliver_add(d, rt.local[i], 0, 0, tag) != 0)
                result = 1, str_copy(reply, rsize, "4.3.0 out of memory");
        if (rt.n_remote)
            log_msg(LOG_WARNING, "<%s>: %zu remote alias members not handled here",
                    log_field(address), rt.n_remote);
        break;
    case ROUTE_TEMPFAIL:
        result = 1;
        /* fall through */
    default:
        str_copy(reply, rsize, rt.reply);
    }
    route_free(&rt);
    return result;
}

/* What recipient tag came to: the first failed link of its mailboxes, else delivered. */
static int local_result(const struct deliver *d, size_t tag, char *reply, size_t rsize)
{
    for (size_t i = 0; i < d->n_targets; i++) {
        const struct deliver_target *t = &d->targets[i];
        if (t->tag == tag && t->result != 0) {
            str_format(reply, rsize, "%s Maildir of %s: %s", t->result > 0 ? "4.2.0" : "5.2.0",
                       t->addr, strerror(t->err));
            return t->result;
        }
    }
    str_copy(reply, rsize, "2.0.0 delivered to the Maildir");
    return 0;
}

void deliver_queued(struct deliver *d, struct route_ctx *ctx, struct queue_entry *e,
                    const size_t *idx, size_t n, deliver_record_fn *record, void *arg)
{
    char reply[QUEUE_REPLY_SIZE];
    unsigned char *routed = calloc(n ? n : 1, 1);
    deliver_reset(d, e->sender);
    for (size_t i = 0; routed && i < n; i++) {
        int r = local_targets(ctx, d, e->rcpts[idx[i]].addr, i, reply, sizeof reply);
        if (r != 0)
            record(arg, idx[i], r, reply);
        routed[i] = r == 0;
    }
    int rc = routed ? 0 : 1;
    if (rc == 0 && d->n_targets > 0 && (rc = deliver_begin(d, 0)) == 0 &&
        (rc = copy_data(e, d)) == 0)
        rc = deliver_commit(d);
    if (rc != 0)
        str_format(reply, sizeof reply, "4.3.0 cannot %s: %s",
                   d->synced_fail ? "sync the Maildir" : "store the message", strerror(errno));
    for (size_t i = 0; i < n; i++) {
        char own[QUEUE_REPLY_SIZE];
        int r = routed ? local_result(d, i, own, sizeof own) : 0;
        if (routed && !routed[i])
            continue; /* recorded above */
        if (r != 0 || rc == 0)
            record(arg, idx[i], r, own);
        else
            record(arg, idx[i], 1, reply);
    }
    deliver_end(d, rc != 0);
    deliver_free(d);
    free(routed);
}

/* ---- what a message may hold ---- */

/* Notes a fault at offset where. */
static void fault(struct deliver_text *t, int kind, uint64_t where)
{
    if (t->faults == DELIVER_TEXT_OK) {
        t->first = kind;
        t->where = where;
    }
    t->faults |= kind;
}

int deliver_text_scan(struct deliver_text *t, const void *data, size_t len)
{
    const unsigned char *p = data;
    if (!t->cr && memchr(p, '\r', len) == NULL && memchr(p, '\0', len) == NULL) {
        t->offset += len; /* the common case, at memchr speed */
        return t->faults;
    }
    for (size_t i = 0; i < len; i++) {
        if (t->cr && p[i] != '\n')
            fault(t, DELIVER_TEXT_BARE_CR, t->offset + i - 1);
        if (p[i] == '\0')
            fault(t, DELIVER_TEXT_NUL, t->offset + i);
        t->cr = p[i] == '\r';
    }
    t->offset += len;
    return t->faults;
}

int deliver_text_end(struct deliver_text *t)
{
    if (t->cr)
        fault(t, DELIVER_TEXT_BARE_CR, t->offset - 1);
    t->cr = 0;
    return t->faults;
}

const char *deliver_text_error(int fault)
{
    return fault == DELIVER_TEXT_NUL       ? "a NUL octet"
           : fault == DELIVER_TEXT_BARE_CR ? "a bare CR (one not followed by LF)"
                                           : "no fault";
}
