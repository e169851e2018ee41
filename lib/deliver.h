/*
 * deliver: one accepted message to its recipients (DESIGN.md §4), the one delivery path of
 * smtp-in, maildir-deliver and queue-run's local deliveries. The data is written once
 * (lib/maildir), every local mailbox gets a hard link of it, every touched new/ is fsynced,
 * and the rest goes into the queue (lib/queue) as entries that link the same data.
 *
 * A message has targets, each once: a local mailbox ("local@domain", lower case) or a remote
 * address. Each target belongs to a group, the envelope sender it is sent with: group 0 is
 * the message's sender; a list with an owner gets a group whose sender is the owner, so the
 * list's bounces go there. Local members of such a group see the owner in Return-Path, so the
 * group gets its own copy of the data (its Return-Path line, then the message after ours).
 * Copies forwarded to alias members in other domains get a group whose sender is the SRS
 * address of their group's sender (lib/srs); having no local members, it shares the data.
 *
 * What a local target whose link fails comes to depends on the mode:
 *   DELIVER_QUEUE_RETRY (smtp-in): it is queued for retry (§4.2) and the message goes on;
 *   DELIVER_ALL (maildir-deliver): the whole message fails, nothing stays delivered;
 *   DELIVER_EACH (queue-run): that target alone fails (result, err); nothing is queued.
 *
 * It also says which octets a message may hold at all (§5): no NUL, and no CR but one right
 * before LF. deliver_text_scan checks text as it streams, for every entry point (smtp-in,
 * maildir-deliver, sendmail).
 *
 * It never holds a message in memory, never returns 0 from deliver_commit before every copy
 * it reports delivered is durable, and never leaves a partial file in new/ or queue/ after
 * deliver_end(d, 1). Results are 0, 1 (temporary) or -1 (permanent), errno kept.
 */
#ifndef YUBIN_DELIVER_H
#define YUBIN_DELIVER_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "addr.h"
#include "maildir.h"
#include "queue.h"
#include "route.h"

#define DELIVER_MAX_GROUPS 16 /* envelope senders in one message: the original and list owners */

enum deliver_mode { DELIVER_QUEUE_RETRY, DELIVER_ALL, DELIVER_EACH };

struct deliver_target {
    char addr[ADDR_SIZE]; /* a local mailbox (lower case) or a remote address */
    unsigned group;       /* its envelope sender: groups[group] */
    int remote;           /* goes to the queue */
    size_t tag;           /* the caller's own number (queue-run: which recipient led here) */
    int retry;            /* DELIVER_QUEUE_RETRY: local, its link failed, queued for retry */
    int result;           /* after deliver_commit: 0, or 1 / -1 when its link failed */
    int err;              /* the errno of that failure */
};

struct deliver {
    const char *state_dir, *host;
    enum deliver_mode mode;
    size_t n_groups;
    char groups[DELIVER_MAX_GROUPS][ADDR_SIZE];
    size_t n_targets, cap_targets;
    struct deliver_target *targets;
    uint64_t skip;   /* length of group 0's Return-Path line (the queue does not relay it) */
    int began;       /* msg was begun: deliver_end has work to do */
    int synced_fail; /* deliver_commit failed at the fsync of the Maildirs */
    char what[PATH_MAX + 32]; /* after a failure: the step ("writing the message", a Maildir) */
    struct maildir_msg *copies[DELIVER_MAX_GROUPS]; /* a group's own copy, or NULL */
    size_t n_queued;
    char queued[DELIVER_MAX_GROUPS][QUEUE_ID_SIZE]; /* the entries deliver_commit made */
    struct maildir_msg msg; /* the data as received (group 0); last: init leaves it alone */
};

/* Once per program (state_dir and host are kept as pointers). */
void deliver_init(struct deliver *d, const char *state_dir, const char *host,
                  enum deliver_mode mode);
/* A new message from sender ("" for <>): no targets, one group. */
void deliver_reset(struct deliver *d, const char *sender);
/* Frees what deliver_add took (after deliver_end). */
void deliver_free(struct deliver *d);

/* The group whose envelope sender is sender (added if new), or -1 when there are too many. */
int deliver_group(struct deliver *d, const char *sender);
/* Is address a target already (compared without case)? */
int deliver_has(const struct deliver *d, const char *address);
/* How many of r's mailboxes and remote addresses are not targets yet. */
size_t deliver_new_targets(const struct deliver *d, const struct route *r);
/* Adds a target (one already there is kept once, with its first group; DELIVER_EACH keeps
 * every one, each with its own result). 0, or -1 out of memory. */
int deliver_add(struct deliver *d, const char *address, unsigned group, int remote, size_t tag);
/* Adds r's mailboxes and remote addresses: all of them, or none (-1 out of memory). */
int deliver_add_route(struct deliver *d, const struct route *r, unsigned group, size_t tag);
/* Adds r as deliver_add_route does, except that its forwarded remote addresses (r->forward:
 * an alias's members elsewhere, the sender behind an SRS address) go into the group of their
 * SRS sender (route_forward_sender of group's sender; lib/srs), so that the receiver's SPF
 * check sees our domain and their bounces come back here; the local copies keep group's
 * sender. 0 (why may still say, for the log, why the sender was kept as it is); 1 a temporary
 * failure (the SRS secret cannot be used, too many senders: why); -1 out of memory. */
int deliver_add_forward(struct deliver *d, struct route_ctx *ctx, const struct route *r,
                        unsigned group, size_t tag, char *why, size_t whylen);

/* Takes a routed recipient (ROUTE_LOCAL or ROUTE_RELAY) of a message from sender, as smtp-in
 * does at RCPT: a list with an owner goes with the owner as sender (unless sender is <>),
 * copies forwarded to members elsewhere with an SRS sender (deliver_add_forward), at most
 * MAILDIR_MAX_TARGETS targets in all. NULL when taken (why may then hold a note for the log),
 * else the reply that refuses it: a 452 when the message is full (why ""), a 451 with why
 * saying what failed. */
const char *deliver_take(struct deliver *d, struct route_ctx *ctx, const struct route *r,
                         const char *sender, size_t tag, char *why, size_t whylen);

/* Opens the data file; with return_path, group 0's "Return-Path: <sender>" line is written
 * first (its length in d->skip). After it, always call deliver_end. */
int deliver_begin(struct deliver *d, int return_path);
/* Appends message data, LF line ends. */
int deliver_write(struct deliver *d, const void *data, size_t len);
/* The durable acceptance: the data committed once (plus a copy per list owner with local
 * members), linked into every Maildir, the links synced, then the queue entries (each durable
 * when made). 0 when the message is accepted (DELIVER_EACH: see each target's result); else
 * the message failed as a whole: d->what says where, and the caller ends with failed = 1. */
int deliver_commit(struct deliver *d);
/* Removes the tmp files (the Maildirs and the queue have their own links) and, when failed,
 * takes the Maildir links back out of new/. */
void deliver_end(struct deliver *d, int failed);
/* The SMTP reply for a message that could not be stored (errno err): 452 4.3.1 for a full disk
 * or an exceeded quota, else 451 4.3.0. */
const char *deliver_failure_reply(int err);
/* Starts queue-run, detached, for each entry deliver_commit made (a failure is logged: the
 * timer will run it). */
void deliver_start_runs(struct deliver *d, const char *conf_path);

/* ---- queued local recipients (queue-run) ---- */

/* One recipient's result: i indexes e->rcpts; result 0, 1 or -1; reply "2.0.0 ...", "4.2.0
 * Maildir of ...: ...", or the router's refusal. */
typedef void deliver_record_fn(void *arg, size_t i, int result, const char *reply);

/* Delivers recipients idx[0..n) of the locked entry e (all in local domains) from its data:
 * one copy (Return-Path line included), a link per mailbox, one fsync per Maildir (d in
 * DELIVER_EACH mode). A recipient that is a mailbox of the users file is delivered as it is
 * (smtp-in expanded it already: expanding it again would give the other members of an
 * alias like "alice: alice, carol" a second copy); any other address (a bounce to a local
 * sender) is expanded by lib/route. record is called once for each recipient. */
void deliver_queued(struct deliver *d, struct route_ctx *ctx, struct queue_entry *e,
                    const size_t *idx, size_t n, deliver_record_fn *record, void *arg);

/* ---- what a message may hold (DESIGN.md §5) ---- */

enum { DELIVER_TEXT_OK = 0, DELIVER_TEXT_NUL = 1, DELIVER_TEXT_BARE_CR = 2 };

/* A scanner over message text in chunks cut anywhere; zero it before the first chunk. */
struct deliver_text {
    int cr;          /* the last chunk ended in CR */
    uint64_t offset; /* octets scanned so far */
    int faults;      /* every fault seen: DELIVER_TEXT_NUL | DELIVER_TEXT_BARE_CR */
    int first;       /* the first one */
    uint64_t where;  /* its offset */
};

/* Scans len octets; returns every fault seen so far (a NUL, a CR not followed by LF), 0 if
 * none. */
int deliver_text_scan(struct deliver_text *t, const void *data, size_t len);
/* The end of the text: a CR that was the last octet is bare. Returns t->faults. */
int deliver_text_end(struct deliver_text *t);
/* What a fault is, for a reply or an error message: "a NUL octet", "a bare CR". */
const char *deliver_text_error(int fault);

#endif
