/*
 * queue-admin: what yubin-queue(8) does to one queue entry, under the entry's lock (the
 * flock of lib/queue that queue-run takes): delete it or some of its recipients, hold it,
 * release it, or make its pending recipients due now. An address or a domain selects the
 * recipients (and so the entries) it applies to; an id or "all" selects whole entries.
 *
 * It never touches an entry without holding its lock, never removes a recipient that was
 * delivered or bounced (those are history, and queue-run removes the entry), never sends a
 * bounce for what it deletes, and never leaves a half-written envelope (queue_save).
 */
#ifndef YUBIN_QUEUE_ADMIN_H
#define YUBIN_QUEUE_ADMIN_H

#include <stddef.h>

#include "queue.h"

enum qadmin_action { QADMIN_DELETE, QADMIN_HOLD, QADMIN_RELEASE, QADMIN_REQUEUE };

/* Which recipients: address (any case) or domain (any case), or every one when both are
 * NULL (a whole entry, chosen by id, or all of them). */
struct qadmin_select {
    const char *address;
    const char *domain;
};

/* What one call did, for the report. */
struct qadmin_result {
    int removed;           /* the entry is gone (deleted) */
    size_t n_changed;      /* recipients deleted or requeued; 1 for an entry held or released */
    char first[ADDR_SIZE]; /* the first recipient deleted or requeued, "" for a whole entry */
};

/* Does recipient r match sel? */
int qadmin_match(const struct qadmin_select *sel, const struct queue_rcpt *r);

/* Locks entry id of state_dir (waiting up to wait_ms for a queue-run that holds it), applies
 * action to what sel selects, saves or removes it durably, and unlocks it.
 * 0 done (res says what changed; n_changed 0: nothing matched), 1 busy: still locked after
 * wait_ms, 2 no such entry (or it went meanwhile), -1 error (errno set). */
int qadmin_apply(const char *state_dir, const char *id, enum qadmin_action action,
                 const struct qadmin_select *sel, unsigned wait_ms, struct qadmin_result *res);

/* "deleted", "held", "released", "requeued". */
const char *qadmin_done_name(enum qadmin_action action);

#endif
