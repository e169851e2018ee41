/*
 * queue: outbound queue entries on disk (DESIGN.md §3, yubin-queue(5)).
 *
 * An entry <id> is two files in state_dir/queue/:
 *   <id>.msg  the message data, a HARD LINK of a file already written and fsynced (the
 *             state_dir/tmp/ file of lib/maildir), immutable, LF line ends. Its first `skip`
 *             bytes (the Return-Path line meant for local delivery) are not relayed.
 *   <id>.env  the envelope, a small text file: sender, flags, and per recipient its state
 *             (pending/done/failed), attempts, next attempt time and last reply.
 * An entry exists once its .env exists. Every .env write is write-new (<id>.new) + fsync +
 * rename + fsync of queue/, so a crash leaves the old envelope or the new one, never a mix.
 * A run locks an entry with flock on <id>.msg (which is never replaced) before reading the
 * envelope, so two runs never work on one entry at once.
 *
 * It never changes a .msg file, never holds a message in memory, and never touches an
 * entry's envelope without holding its lock (creation excepted: nobody can see it yet).
 * Results: 0 success, 1 temporary failure, -1 permanent failure; errno is kept.
 */
#ifndef YUBIN_QUEUE_H
#define YUBIN_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "addr.h"

#define QUEUE_ID_SIZE 160     /* an id is a unique_name(): "<sec>.<usec>R<hex>.<host>" */
#define QUEUE_REPLY_SIZE 512  /* last reply kept per recipient (longer ones are cut) */
#define QUEUE_MAX_RCPTS 10000 /* recipients per entry */
#define QUEUE_HOST_SIZE 256   /* the host that gave the last reply */
#define QUEUE_TLS_SIZE 160    /* its TLS, as lib/tlsc describes it */

/* A failed recipient is reported to the sender (bounce) and then marked bounced; an entry
 * whose recipients are all done or bounced is removed. */
enum queue_state { QUEUE_PENDING = 0, QUEUE_DONE = 1, QUEUE_FAILED = 2, QUEUE_BOUNCED = 3 };

#define QUEUE_F_WARNED 1u /* a delay warning was sent for this entry */
#define QUEUE_F_BOUNCE 2u /* the message is itself a bounce/warning we made (sender <>) */
#define QUEUE_F_HELD 4u   /* on hold (yubin-queue hold): no recipient is due until released */

struct queue_rcpt {
    char addr[ADDR_SIZE]; /* "local@domain" as in the forward-path */
    enum queue_state state;
    unsigned attempts;            /* delivery attempts so far */
    time_t next_attempt;          /* pending: not before this time (0 = at once) */
    char reply[QUEUE_REPLY_SIZE]; /* last reply or failure text ("" if none yet) */
    char host[QUEUE_HOST_SIZE];   /* the host that gave it ("" if none: DNS, no connection) */
    char tls[QUEUE_TLS_SIZE];     /* the TLS of that connection: "none", or "TLSv1.3
                                   * TLS_AES_256_GCM_SHA384 dane" (lib/tlsc); "" if unknown */
};

struct queue_entry {
    char id[QUEUE_ID_SIZE];
    char dir[4096]; /* state_dir/queue */
    time_t created;
    char sender[ADDR_SIZE]; /* reverse-path without <>; "" for the null sender */
    uint64_t skip;          /* leading bytes of <id>.msg not relayed */
    unsigned flags;         /* QUEUE_F_* */
    size_t n_rcpts;
    size_t rcpts_alloc;
    struct queue_rcpt *rcpts;
    int lock_fd; /* <id>.msg while locked, else -1 */
};

/* Creating an entry (smtp-in, queue-run's bounces):
 *
 *     struct queue_entry e;
 *     queue_entry_init(&e, conf.state_dir, sender, skip);
 *     queue_entry_add(&e, "a@remote.test"); ...
 *     rc = queue_create(&e, msg.tmp_path, conf.hostname);   after maildir_msg_commit
 *     queue_entry_free(&e);
 *     if (rc == 0) queue_start_run(conf.path, e.id);        after the 250, detached
 *
 * queue_create links data_path (already fsynced, on the state_dir filesystem) to
 * queue/<id>.msg, writes and fsyncs the envelope, renames it to <id>.env and fsyncs queue/:
 * when it returns 0 the entry is durable and e->id names it. On failure nothing of it is
 * left in queue/. The caller still removes its own data_path (maildir_msg_end). */

/* Starts an empty entry; sender "" is the null path. 0, or -1 if an argument is too long. */
int queue_entry_init(struct queue_entry *e, const char *state_dir, const char *sender,
                     uint64_t skip);
/* Adds a pending recipient (an address already added is kept once, compared without
 * case). 0, or -1 (too long, too many, out of memory; errno set). */
int queue_entry_add(struct queue_entry *e, const char *addr);
/* Makes the entry durable (see above). 0 / 1 temporary (e.g. ENOSPC: 452) / -1. */
int queue_create(struct queue_entry *e, const char *data_path, const char *host);
/* Frees the recipients and releases the lock if held. */
void queue_entry_free(struct queue_entry *e);

/* Starts "<directory of this program>/queue-run -C conf_path -i id" detached (double fork,
 * new session, stdio on /dev/null) and returns without waiting: queue-run lives next to
 * smtp-in in sbindir (and in bin/ of a build tree). 0, or -1 if the fork failed. */
int queue_start_run(const char *conf_path, const char *id);

/* Reading and working on entries (queue-run, mailq). */

/* Calls fn(id, arg) for each entry in state_dir/queue (each <id>.env), in no order; stops
 * early when fn returns non-zero and returns that. 0 when done, -1 if queue/ cannot be
 * read (a missing queue/ is an empty queue). */
int queue_each(const char *state_dir, int (*fn)(const char *id, void *arg), void *arg);
/* Loads an entry without locking it (mailq). 0, 1 if it vanished meanwhile, -1 on error
 * (errno set; EINVAL for a malformed envelope). */
int queue_load(struct queue_entry *e, const char *state_dir, const char *id);
/* Locks the entry (flock LOCK_EX|LOCK_NB on <id>.msg) and then loads its envelope.
 * 0 locked and loaded; 1 busy (another run holds it); 2 gone (removed); -1 on error. Release with
 * queue_entry_free (or by exiting). */
int queue_lock(struct queue_entry *e, const char *state_dir, const char *id);
/* Writes the envelope of a locked entry durably (write new, fsync, rename, fsync dir). */
int queue_save(struct queue_entry *e);
/* Removes a locked entry: <id>.env first (then it no longer exists), then <id>.msg, then
 * fsyncs queue/. 0 or -1. */
int queue_remove(struct queue_entry *e);
/* Opens <id>.msg for reading, positioned after the skipped bytes; *size gets the bytes left
 * to relay. The descriptor or -1 (errno set). */
int queue_open_data(const struct queue_entry *e, uint64_t *size);

/* Removes what crashed creations and saves left behind: an <id>.msg without <id>.env, and
 * an <id>.new, when older than max_age seconds (a creation in progress is younger). Returns
 * how many files were removed, or -1 if queue/ cannot be read. */
int queue_clean(const char *state_dir, unsigned max_age);

/* Counts of recipients in a state. */
size_t queue_count(const struct queue_entry *e, enum queue_state state);
/* Records the result of one attempt for recipient i: 0 -> done; -1 -> failed; 1 -> stays
 * pending with attempts+1 and next_attempt = now + queue_retry_delay(attempts). reply and
 * host (the remote host that replied, or NULL) are copied (cut to fit, CR/LF and control
 * bytes turned into spaces; spaces in host too). Not saved: call
 * queue_save after a transaction's results are all recorded. */
void queue_set_result(struct queue_entry *e, size_t i, int result, const char *reply,
                      const char *host, time_t now);
/* Seconds to wait after the n-th failed attempt (n >= 1): 5 min, 15 min, 30 min, 1 h, 2 h,
 * then 4 h for every later one. */
unsigned queue_retry_delay(unsigned n);
/* "pending", "done", "failed", "bounced". */
const char *queue_state_name(enum queue_state s);

/* Envelope text, shared with the unit test: formats e into a new *buf of *len bytes (free
 * it; 0, or -1 with errno ENOMEM) and parses text back into e (id and dir are not touched;
 * 0, or -1 with errno EINVAL). */
int queue_env_format(const struct queue_entry *e, char **buf, size_t *len);
int queue_env_parse(struct queue_entry *e, const char *text, size_t len);

#endif
