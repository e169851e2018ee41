/*
 * bounce: what the results of a queue entry come to (queue-run): each attempt's result
 * recorded and logged, with expiry after queue_lifetime (4.4.7); failed recipients reported
 * to the sender in one bounce (RFC 3464, lib/dsn) injected as a new entry from <>; a delay
 * warning once after delay_warning; the entry removed when nothing is left to do.
 *
 * It never bounces a message whose sender is <> (a failed bounce of ours goes to the
 * postmaster once, and then no further), never touches an entry it does not hold locked, and
 * never holds a message in memory.
 */
#ifndef YUBIN_BOUNCE_H
#define YUBIN_BOUNCE_H

#include <stddef.h>
#include <time.h>

#include "conf.h"
#include "queue.h"

struct bounce_ctx {
    const struct yubin_conf *conf;
    void (*made)(void *arg, const char *id);  /* a report entry was queued (may be NULL) */
    void (*say)(void *arg, const char *line); /* a line for -v output (may be NULL) */
    void *arg;
};

/* One attempt's result for recipient i of a locked entry: 0 done, 1 deferred, -1 failed
 * (lib/queue's queue_set_result), logged; a deferred recipient past queue_lifetime fails
 * with 4.4.7. Not saved: the caller saves after a transaction. */
void bounce_record(const struct bounce_ctx *b, struct queue_entry *e, size_t i, int result,
                   const char *reply, const char *host, time_t now);
/* After results were recorded on a locked entry: the bounce, a delay warning, and removal
 * when no recipient is pending or failed; the envelope saved when it changed. */
void bounce_finish(const struct bounce_ctx *b, struct queue_entry *e, time_t now);

#endif
