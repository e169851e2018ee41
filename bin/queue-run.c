/*
 * queue-run: one pass over the outbound queue, then exit (queue-run(8)).
 *
 *     queue-run [-C conf] [-v] [-f] [-X transcript-dir] [-i ID]...
 *
 * Plan: load every entry (or the -i ones), pick the recipients that are due (-f: every pending
 * one), group them by destination (the recipient's domain, the smarthost, or local delivery),
 * and cut each destination into jobs of at most MSGS_PER_CONN messages, or into more (up to
 * DEST_CONCURRENCY, messages spread evenly) while max_parallel leaves room. Run: up to
 * max_parallel jobs at once, one forked worker each, so one slow host (or one slow DNS zone)
 * holds up only its own job. Each domain is resolved once with lib/mx: by its worker, or by
 * the parent before the first of its jobs when it has several. A worker connects to the first
 * MX address that answers (next MX on connection failure; lower-preference MX hosts for
 * recipients that got a 4xx), sends its messages over that one connection (RSET between,
 * lib/smtpc), and for each message locks the entry, re-reads it, sends the recipients that
 * are still pending, and records the results durably right after the transaction. Failed
 * recipients become a bounce (lib/dsn) from <> injected as a new entry; the entries of this
 * run's bounces get a second pass at once.
 *
 * It never delivers a recipient that the envelope on disk does not show pending while it
 * holds the entry's lock, never holds a message in memory, never runs as root past
 * privs_drop, and never bounces a message whose sender is <> (a failed bounce of ours goes to
 * the postmaster once, and then no further).
 */
#define _GNU_SOURCE
#include "config.h"

#include "addr.h"
#include "bounce.h"
#include "conf.h"
#include "deliver.h"
#include "dsn.h"
#include "deadline.h"
#include "log.h"
#include "maildir.h"
#include "mx.h"
#include "privs.h"
#include "queue.h"
#include "relay.h"
#include "route.h"
#include "users.h"
#include "smtpc.h"
#include "tmpsweep.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define MSGS_PER_CONN 100   /* messages of one destination per job (connection) */
#define DEST_CONCURRENCY 20 /* most jobs (connections) for one destination, as Postfix's */
#define MAX_IDS 1000        /* -i options */
#define LOCK_WAIT_MS 30000  /* how long a worker waits for an entry another worker holds */
#define MAX_PASSES 3        /* the first pass, and passes for the bounces it made */

static const char *prog = "queue-run";

static struct yubin_conf conf;
static int verbose, force;
static int new_ids_fd = -1; /* memfd: ids of the entries this run injected, one per line */
static struct mx_resolver *resolver;
static struct tlsc_policy tls_policy;       /* tls_policy_file */
static SSL_CTX *tls_ctx;                    /* outbound TLS; NULL: none could be made */
static char auth_user[256], auth_pass[512]; /* smarthost_auth_file, read as root */

/* One recipient to try: entry e (index into the plan's entries), recipient r. */
struct item {
    size_t e, r;
    size_t dest;
};

struct dest {
    char name[CONF_DOMAIN_SIZE]; /* domain, "" for local delivery, the smarthost */
    int local;
    unsigned port;        /* smtp_port, or the smarthost's */
    size_t n_jobs;        /* jobs (connections) planned for it */
    struct mx_result *mx; /* resolved in the parent before the workers start */
    long long deadline;   /* lib/deadline: its time in this pass ends (0: not started yet) */
};

struct plan {
    struct queue_entry *entries;
    size_t n_entries, entries_alloc;
    struct item *items;
    size_t n_items, items_alloc;
    struct dest *dests;
    size_t n_dests, dests_alloc;
};

/* A job: items[first .. first+count) of one destination, sorted by entry. */
struct job {
    size_t dest, first, count;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void say(const char *fmt, ...)
{
    if (!verbose)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s[%ld]: ", prog, (long)getpid());
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Room for element n of the array *p; out of memory ends the run (the queue stays). */
static void grow(void *p, size_t *alloc, size_t n, size_t size)
{
    if (mem_grow(p, alloc, n + 1, size) != 0) {
        log_msg(LOG_ERR, "out of memory");
        exit(EX_TEMPFAIL);
    }
}

static const char *domain_of(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

/* ---------------- results and bounces ---------------- */

/* Records that an id was made by this run (for the second pass). */
static void note_new_id(void *arg, const char *id)
{
    char line[QUEUE_ID_SIZE + 1];
    (void)arg;
    if (new_ids_fd >= 0 && str_format(line, sizeof line, "%s\n", id) > 0)
        (void)write_all(new_ids_fd, line, strlen(line));
}

static void say_line(void *arg, const char *line)
{
    (void)arg;
    say("%s", line);
}

/* Results, bounces and removal: lib/bounce. */
static const struct bounce_ctx bounces = {&conf, note_new_id, say_line, NULL};

static void save_results(struct queue_entry *e)
{
    if (queue_save(e) != 0)
        log_msg(LOG_ERR, "%s: cannot save results: %s", e->id, strerror(errno));
}

/* ---------------- local delivery ---------------- */

struct local_job {
    struct queue_entry *e;
    time_t now;
};

/* One local recipient's result (lib/deliver calls back for each). */
static void record_local(void *arg, size_t i, int result, const char *reply)
{
    struct local_job *j = arg;
    bounce_record(&bounces, j->e, i, result, reply, NULL, j->now);
}

/* Local recipients: lib/deliver, one copy and a link per mailbox. */
static void deliver_local(struct route_ctx *ctx, struct queue_entry *e, const size_t *idx, size_t n,
                          time_t now)
{
    static struct deliver d;
    struct local_job j = {e, now};
    deliver_init(&d, conf.state_dir, conf.hostname, DELIVER_EACH);
    deliver_queued(&d, ctx, e, idx, n, record_local, &j);
}

/* ---------------- workers ---------------- */

static int rcpt_due(const struct queue_entry *e, const struct queue_rcpt *r, time_t now)
{
    return r->state == QUEUE_PENDING && !(e->flags & QUEUE_F_HELD) &&
           (force || r->next_attempt <= now || now - e->created >= (time_t)conf.queue_lifetime);
}

/* Locks the entry of items[s..t) and delivers what is still pending and due. 1 if another
 * process holds the entry (try again later), else 0. */
static int work_entry(struct plan *p, struct relay *k, struct route_ctx *ctx, size_t s, size_t t)
{
    const struct queue_entry *pe = &p->entries[p->items[s].e];
    struct queue_entry e;
    int r = queue_lock(&e, conf.state_dir, pe->id);
    if (r != 0) {
        if (r < 0)
            log_msg(LOG_ERR, "%s: cannot lock: %s", pe->id, strerror(errno));
        return r == 1;
    }
    size_t *idx = malloc((t - s) * sizeof *idx), n = 0;
    time_t now = time(NULL);
    for (size_t u = s; idx && u < t; u++) {
        size_t i = p->items[u].r;
        if (i < e.n_rcpts && str_ieq(e.rcpts[i].addr, pe->rcpts[i].addr) &&
            rcpt_due(&e, &e.rcpts[i], now))
            idx[n++] = i;
    }
    if (n > 0) {
        if (k == NULL)
            deliver_local(ctx, &e, idx, n, now);
        else
            relay_deliver(k, &e, idx, n, now);
        save_results(&e);
    }
    bounce_finish(&bounces, &e, time(NULL));
    free(idx);
    queue_entry_free(&e);
    return 0;
}

static void resolve(struct dest *d);

/* A worker: one job, over one connection (or local delivery). */
static void run_job(struct plan *p, const struct job *j)
{
    struct dest *d = &p->dests[j->dest];
    if (!d->local && !d->mx)
        resolve(d); /* in the worker: a slow lookup holds up only this destination */
    const struct relay_env env = {.conf = &conf,
                                  .prog = prog,
                                  .verbose = verbose,
                                  .say = say_line,
                                  .tls_ctx = tls_ctx,
                                  .tls_policy = &tls_policy,
                                  .resolver = resolver,
                                  .bounces = &bounces,
                                  .auth_user = auth_user,
                                  .auth_pass = auth_pass};
    const struct relay_dest rd = {d->name, d->port, d->mx, d->deadline};
    struct relay *k = d->local ? NULL : relay_new(&env, &rd);
    struct route_ctx ctx;
    size_t end = j->first + j->count, n_deferred = 0;
    size_t *deferred = malloc(j->count * 2 * sizeof *deferred);
    unsigned conns = 0, msgs = 0;
    if ((!k && !d->local) || !deferred) {
        log_msg(LOG_ERR, "%s: out of memory", d->name);
        relay_free(k, &conns, &msgs);
        free(deferred);
        return;
    }
    route_init(&ctx, &conf);
    for (size_t s = j->first; s < end;) {
        size_t t = s;
        while (t < end && p->items[t].e == p->items[s].e)
            t++;
        if (work_entry(p, k, &ctx, s, t) == 1) {
            deferred[n_deferred++] = s;
            deferred[n_deferred++] = t;
        }
        s = t;
    }
    for (unsigned waited = 0;
         n_deferred > 0 && waited < LOCK_WAIT_MS && deadline_left(d->deadline, 1); waited += 200) {
        size_t left = 0;
        sleep_ms(200);
        for (size_t i = 0; i < n_deferred; i += 2)
            if (work_entry(p, k, &ctx, deferred[i], deferred[i + 1]) == 1) {
                deferred[left++] = deferred[i];
                deferred[left++] = deferred[i + 1];
            }
        n_deferred = left;
    }
    relay_free(k, &conns, &msgs);
    if (!d->local) {
        log_msg(LOG_INFO, "%s: %u messages over %u connections", d->name, msgs, conns);
        say("%s: %u messages over %u connections", d->name, msgs, conns);
    }
    route_ctx_free(&ctx);
    free(deferred);
}

/* Runs the jobs, at most max_parallel at once, each in its own process, until they are done
 * or queue_run_limit has passed: then it returns, and the workers still running (each bound
 * by relay_destination_limit) finish on their own, holding the locks of their entries. */
static void run_jobs(struct plan *p, const struct job *jobs, size_t n_jobs)
{
    size_t next = 0, running = 0;
    while ((next < n_jobs || running > 0) && !deadline_run_over()) {
        while (running < conf.max_parallel && next < n_jobs && !deadline_run_over()) {
            struct dest *d = &p->dests[jobs[next].dest];
            if (!d->local && !d->mx && d->n_jobs > 1)
                resolve(d); /* once for all its jobs; one job resolves in its own worker */
            deadline_start(&d->deadline, conf.relay_destination_limit);
            fflush(stderr);
            pid_t pid = fork();
            if (pid == 0) {
                deadline_run_child();
                run_job(p, &jobs[next]);
                _exit(0);
            }
            if (pid < 0) {
                log_msg(LOG_ERR, "fork: %s", strerror(errno));
                if (running == 0)
                    run_job(p, &jobs[next]);
                else
                    break;
            } else {
                running++;
            }
            next++;
        }
        int st;
        if (running > 0 && wait(&st) > 0)
            running--;
        else if (running > 0 && errno != EINTR)
            running = 0;
    }
    if (deadline_run_over()) {
        log_msg(LOG_NOTICE, "run time limit (%u s) reached: %zu jobs left running, %zu not started",
                conf.queue_run_limit, running, n_jobs - next);
        say("run time limit (%u s) reached: %zu jobs left running, %zu not started",
            conf.queue_run_limit, running, n_jobs - next);
    }
}

/* ---------------- the plan ---------------- */

static int add_entry(const char *id, void *arg)
{
    struct plan *p = arg;
    grow(&p->entries, &p->entries_alloc, p->n_entries, sizeof *p->entries);
    struct queue_entry *e = &p->entries[p->n_entries];
    int r = queue_load(e, conf.state_dir, id);
    if (r == 0)
        p->n_entries++;
    else if (r < 0)
        log_msg(LOG_ERR, "%s: cannot read the envelope: %s", id, strerror(errno));
    if (r != 0)
        queue_entry_free(e);
    return 0;
}

static void resolve(struct dest *d)
{
    char err[256], host[300];
    d->mx = calloc(1, sizeof *d->mx);
    if (!d->mx) {
        log_msg(LOG_ERR, "out of memory");
        exit(EX_TEMPFAIL);
    }
    d->port = conf.smtp_port;
    if (!resolver && !(resolver = mx_resolver_new(conf.dns_resolver, 0, err, sizeof err))) {
        d->mx->status = MX_TEMPFAIL;
        str_format(d->mx->why, sizeof d->mx->why, "4.4.3 %s", err);
    } else if (conf.smarthost[0]) {
        if (parse_hostport(conf.smarthost, host, sizeof host, &d->port, conf.smtp_port) < 0) {
            d->mx->status = MX_TEMPFAIL;
            str_copy(d->mx->why, sizeof d->mx->why, "4.3.5 smarthost setting unusable");
        } else {
            mx_lookup_host(resolver, host, d->mx);
        }
    } else if (mx_lookup(resolver, d->name, d->mx) == MX_OK) {
        mx_drop_self(d->mx, d->name, conf.hostname); /* a loop: 5.4.6 */
    }
    if (d->mx->status == MX_OK)
        say("%s: %zu MX host(s), first %s%s", d->name, d->mx->n_hosts, d->mx->hosts[0].name,
            d->mx->implicit ? " (implicit MX)" : "");
    else
        say("%s: %s", d->name, d->mx->why);
}

static size_t dest_for(struct plan *p, const char *rcpt)
{
    const char *dom = domain_of(rcpt);
    int local = conf_is_local_domain(&conf, dom);
    const char *name = local ? "" : conf.smarthost[0] ? conf.smarthost : dom;
    for (size_t i = 0; i < p->n_dests; i++)
        if (p->dests[i].local == local && str_ieq(p->dests[i].name, name))
            return i;
    grow(&p->dests, &p->dests_alloc, p->n_dests, sizeof *p->dests);
    struct dest *d = &p->dests[p->n_dests];
    memset(d, 0, sizeof *d);
    d->local = local;
    if (str_copy(d->name, sizeof d->name, name) < 0)
        str_copy(d->name, sizeof d->name, "(too long)");
    str_lower(d->name);
    return p->n_dests++;
}

static int item_cmp(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    if (x->dest != y->dest)
        return x->dest < y->dest ? -1 : 1;
    if (x->e != y->e)
        return x->e < y->e ? -1 : 1;
    return x->r < y->r ? -1 : x->r > y->r;
}

/* Picks the due recipients; entries with nothing due but failed recipients (or nothing left
 * at all) are finished here in the parent. */
static void plan_items(struct plan *p, time_t now)
{
    for (size_t ei = 0; ei < p->n_entries; ei++) {
        struct queue_entry *e = &p->entries[ei];
        size_t due = 0;
        for (size_t r = 0; r < e->n_rcpts; r++) {
            if (!rcpt_due(e, &e->rcpts[r], now))
                continue;
            grow(&p->items, &p->items_alloc, p->n_items, sizeof *p->items);
            p->items[p->n_items++] = (struct item){ei, r, dest_for(p, e->rcpts[r].addr)};
            due++;
        }
        if (due == 0 && (queue_count(e, QUEUE_FAILED) || !queue_count(e, QUEUE_PENDING))) {
            struct queue_entry le;
            if (queue_lock(&le, conf.state_dir, e->id) == 0)
                bounce_finish(&bounces, &le, now);
            queue_entry_free(&le);
        }
    }
    if (p->n_items > 1)
        qsort(p->items, p->n_items, sizeof *p->items, item_cmp);
}

/* Distinct entries (messages) in items[s..) of s's destination; *end: where it stops. */
static size_t dest_msgs(const struct plan *p, size_t s, size_t *end)
{
    size_t t = s, msgs = 0;
    for (; t < p->n_items && p->items[t].dest == p->items[s].dest; t++)
        if (t == s || p->items[t].e != p->items[t - 1].e)
            msgs++;
    *end = t;
    return msgs;
}

/* How many jobs (connections) a remote destination of msgs messages gets: enough for at most
 * MSGS_PER_CONN each, more while max_parallel leaves room for them, never more than
 * DEST_CONCURRENCY nor one per message. Local delivery: MSGS_PER_CONN each. */
static size_t jobs_for(const struct plan *p, const struct dest *d, size_t msgs)
{
    size_t need = (msgs + MSGS_PER_CONN - 1) / MSGS_PER_CONN;
    if (d->local)
        return need;
    size_t room = conf.max_parallel / (p->n_dests ? p->n_dests : 1), k = need > room ? need : room;
    if (k > DEST_CONCURRENCY)
        k = DEST_CONCURRENCY;
    if (k > msgs)
        k = msgs;
    return k ? k : 1;
}

/* Cuts the items into jobs: one destination each, its messages spread evenly over
 * jobs_for() jobs, a message's items never split between two jobs. */
static struct job *make_jobs(struct plan *p, size_t *n_jobs)
{
    struct job *jobs = NULL;
    size_t alloc = 0, n = 0;
    for (size_t s = 0; s < p->n_items;) {
        size_t end, msgs = dest_msgs(p, s, &end);
        struct dest *d = &p->dests[p->items[s].dest];
        size_t k = jobs_for(p, d, msgs);
        for (size_t j = 0; j < k && s < end; j++) {
            size_t want = msgs / k + (j < msgs % k), t = s, got = 0;
            while (t < end) {
                if (t == s || p->items[t].e != p->items[t - 1].e) {
                    if (got == want)
                        break;
                    got++;
                }
                t++;
            }
            grow(&jobs, &alloc, n, sizeof *jobs);
            jobs[n++] = (struct job){p->items[s].dest, s, t - s};
            d->n_jobs++;
            s = t;
        }
    }
    *n_jobs = n;
    return jobs;
}

static void plan_free(struct plan *p)
{
    for (size_t i = 0; i < p->n_entries; i++)
        queue_entry_free(&p->entries[i]);
    for (size_t i = 0; i < p->n_dests; i++)
        free(p->dests[i].mx);
    free(p->entries);
    free(p->items);
    free(p->dests);
    memset(p, 0, sizeof *p);
}

/* One pass over ids (or the whole queue when ids is NULL). */
static int pass(char **ids, size_t n_ids)
{
    struct plan p = {0};
    if (ids) {
        for (size_t i = 0; i < n_ids; i++)
            add_entry(ids[i], &p);
    } else if (queue_each(conf.state_dir, add_entry, &p) < 0) {
        log_msg(LOG_ERR, "cannot read %s/queue: %s", conf.state_dir, strerror(errno));
        fprintf(stderr, "%s: cannot read %s/queue: %s\n", prog, conf.state_dir, strerror(errno));
        return -1;
    }
    say("%zu entries in the queue", p.n_entries);
    plan_items(&p, time(NULL));
    size_t n_jobs;
    struct job *jobs = make_jobs(&p, &n_jobs);
    say("%zu recipients due, %zu destinations, %zu jobs", p.n_items, p.n_dests, n_jobs);
    run_jobs(&p, jobs, n_jobs);
    free(jobs);
    plan_free(&p);
    return 0;
}

/* The ids this run injected since offset *done, as an argv-like list (free with free). */
static char **new_ids(off_t *done, size_t *n)
{
    off_t end = lseek(new_ids_fd, 0, SEEK_END);
    *n = 0;
    if (end <= *done)
        return NULL;
    size_t len = (size_t)(end - *done);
    char *text = malloc(len + 1);
    char **ids = malloc((len / 2 + 1) * sizeof *ids + len + 1);
    if (!text || !ids || pread(new_ids_fd, text, len, *done) != (ssize_t)len) {
        free(text);
        free(ids);
        return NULL;
    }
    char *store = (char *)(ids + len / 2 + 1);
    memcpy(store, text, len);
    store[len] = '\0';
    free(text);
    for (char *line = strtok(store, "\n"); line; line = strtok(NULL, "\n"))
        ids[(*n)++] = line;
    *done = end;
    return ids;
}

static int usage(void)
{
    fprintf(stderr, "usage: queue-run [-C conf] [-v] [-f] [-X transcript-dir] [-i ID]...\n");
    return EX_USAGE;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL, *transcript_dir = NULL;
    char *ids[MAX_IDS], err[512];
    size_t n_ids = 0;
    int opt;
    while ((opt = getopt(argc, argv, "C:vfi:X:")) != -1) {
        if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'X')
            transcript_dir = optarg;
        else if (opt == 'v')
            verbose = 1;
        else if (opt == 'f')
            force = 1;
        else if (opt == 'i' && n_ids < MAX_IDS)
            ids[n_ids++] = optarg;
        else
            return usage();
    }
    if (optind != argc)
        return usage();
    if (sodium_init() < 0)
        return EX_SOFTWARE;
    signal(SIGPIPE, SIG_IGN); /* ldns writes to TCP without MSG_NOSIGNAL */
    if (conf_load(&conf, conf_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return EX_CONFIG;
    }
    if (transcript_dir != NULL &&
        str_copy(conf.transcript_dir, sizeof conf.transcript_dir, transcript_dir) != 0) {
        fprintf(stderr, "%s: -X: path too long\n", prog);
        return EX_USAGE;
    }
    log_open(prog, conf.syslog_socket);
    if (tlsc_policy_load(&tls_policy, conf.tls_policy_file, err, sizeof err) != 0) {
        fprintf(stderr, "%s: tls_policy_file %s\n", prog, err);
        log_msg(LOG_ERR, "tls_policy_file %s", err);
        return EX_CONFIG;
    }
    if (conf.smarthost[0] && conf.smarthost_auth_file[0] &&
        smtpc_auth_load(conf.smarthost_auth_file, auth_user, sizeof auth_user, auth_pass,
                        sizeof auth_pass, err, sizeof err) != 0) {
        fprintf(stderr, "%s: smarthost_auth_file %s\n", prog, err);
        log_msg(LOG_ERR, "smarthost_auth_file %s", err);
        return EX_CONFIG;
    }
    if (!(tls_ctx = tlsc_ctx_new(conf.tls_protocols, conf.tls_ciphers, err, sizeof err)))
        log_msg(LOG_ERR, "%s: no outbound TLS (destinations that require it wait)", err);
    if (privs_drop(conf.user, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return EX_NOPERM;
    }
    if (n_ids == 0 && queue_clean(conf.state_dir, 3600) > 0)
        log_msg(LOG_NOTICE, "removed the leftovers of interrupted queue writes");
    int swept = n_ids == 0 ? tmpsweep_due(conf.state_dir, TMPSWEEP_EVERY, TMPSWEEP_MAX_AGE) : 0;
    if (swept > 0)
        log_msg(LOG_NOTICE, "removed %d stale tmp files (untouched for 36 hours)", swept);
    deadline_run_alarm(conf.queue_run_limit);
    new_ids_fd = memfd_create("queue-run-ids", MFD_CLOEXEC);
    if (new_ids_fd >= 0)
        fcntl(new_ids_fd, F_SETFL, O_APPEND);
    int rc = pass(n_ids ? ids : NULL, n_ids);
    off_t done = 0;
    for (int i = 1; rc == 0 && i < MAX_PASSES && new_ids_fd >= 0 && !deadline_run_over(); i++) {
        size_t n;
        char **more = new_ids(&done, &n);
        if (!more)
            break;
        force = 0;
        rc = pass(more, n);
        free(more);
    }
    if (resolver)
        mx_resolver_free(resolver);
    log_close();
    return rc == 0 ? 0 : EX_TEMPFAIL;
}
