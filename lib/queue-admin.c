/*
 * queue-admin: one queue entry changed under its lock for yubin-queue (see queue-admin.h).
 * queue-run re-reads an envelope after it takes the lock and checks each planned recipient
 * by index and address, so a recipient removed here is never delivered, and a held entry
 * has no recipient due. It never writes an envelope it does not hold the lock of.
 */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "queue-admin.h"
#include "util.h"

const char *qadmin_done_name(enum qadmin_action action)
{
    return action == QADMIN_DELETE    ? "deleted"
           : action == QADMIN_HOLD    ? "held"
           : action == QADMIN_RELEASE ? "released"
                                      : "requeued";
}

int qadmin_match(const struct qadmin_select *sel, const struct queue_rcpt *r)
{
    const char *at = strrchr(r->addr, '@');
    if (sel->address != NULL && !str_ieq(sel->address, r->addr))
        return 0;
    if (sel->domain != NULL && (at == NULL || !str_ieq(sel->domain, at + 1)))
        return 0;
    return 1;
}

static int selects_all(const struct qadmin_select *sel)
{
    return sel->address == NULL && sel->domain == NULL;
}

static void note(struct qadmin_result *res, const char *addr)
{
    if (res->n_changed++ == 0)
        str_copy(res->first, sizeof res->first, addr);
}

/* Removes the selected recipients that are still to be delivered (pending, or failed and
 * not yet bounced); a whole entry, or one left with nothing to deliver, is removed. */
static int delete_rcpts(struct queue_entry *e, const struct qadmin_select *sel,
                        struct qadmin_result *res)
{
    size_t kept = 0;
    if (selects_all(sel)) {
        res->removed = 1;
        res->n_changed = 1;
        return queue_remove(e);
    }
    for (size_t i = 0; i < e->n_rcpts; i++) {
        struct queue_rcpt *r = &e->rcpts[i];
        int live = r->state == QUEUE_PENDING || r->state == QUEUE_FAILED;
        if (live && qadmin_match(sel, r))
            note(res, r->addr);
        else
            e->rcpts[kept++] = *r;
    }
    if (res->n_changed == 0)
        return 0;
    e->n_rcpts = kept;
    if (queue_count(e, QUEUE_PENDING) == 0 && queue_count(e, QUEUE_FAILED) == 0) {
        res->removed = 1;
        return queue_remove(e);
    }
    return queue_save(e);
}

/* Hold or release: the entry's flag, when a pending recipient is selected. */
static int set_held(struct queue_entry *e, const struct qadmin_select *sel, int held,
                    struct qadmin_result *res)
{
    int hit = 0;
    for (size_t i = 0; i < e->n_rcpts && !hit; i++)
        hit = e->rcpts[i].state == QUEUE_PENDING && qadmin_match(sel, &e->rcpts[i]);
    if (!hit || !(e->flags & QUEUE_F_HELD) == !held)
        return 0;
    e->flags = held ? (e->flags | QUEUE_F_HELD) : (e->flags & ~QUEUE_F_HELD);
    res->n_changed = 1;
    return queue_save(e);
}

/* The selected pending recipients are due at once. */
static int requeue(struct queue_entry *e, const struct qadmin_select *sel,
                   struct qadmin_result *res)
{
    for (size_t i = 0; i < e->n_rcpts; i++) {
        struct queue_rcpt *r = &e->rcpts[i];
        if (r->state == QUEUE_PENDING && qadmin_match(sel, r)) {
            r->next_attempt = 0;
            note(res, r->addr);
        }
    }
    return res->n_changed ? queue_save(e) : 0;
}

/* queue_lock, retried every 100 ms while another process holds the entry. */
static int lock_waiting(struct queue_entry *e, const char *state_dir, const char *id,
                        unsigned wait_ms)
{
    for (unsigned waited = 0;; waited += 100) {
        int rc = queue_lock(e, state_dir, id);
        if (rc != 1 || waited >= wait_ms)
            return rc;
        sleep_ms(100);
    }
}

int qadmin_apply(const char *state_dir, const char *id, enum qadmin_action action,
                 const struct qadmin_select *sel, unsigned wait_ms, struct qadmin_result *res)
{
    struct queue_entry e;
    memset(res, 0, sizeof *res);
    int rc = lock_waiting(&e, state_dir, id, wait_ms);
    if (rc != 0)
        return rc;
    if (action == QADMIN_DELETE)
        rc = delete_rcpts(&e, sel, res);
    else if (action == QADMIN_REQUEUE)
        rc = requeue(&e, sel, res);
    else
        rc = set_held(&e, sel, action == QADMIN_HOLD, res);
    int saved = errno;
    queue_entry_free(&e);
    errno = saved;
    return rc == 0 ? 0 : -1;
}
