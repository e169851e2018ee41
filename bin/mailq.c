/*
 * mailq: lists the outbound queue (mailq(8)); `sendmail -bp` runs it.
 *
 *     mailq [-C conf]
 *
 * For each entry, oldest first: its id, the size that will be relayed, its age and sender,
 * then each recipient with its state, attempts, next attempt and last reply. It reads the
 * envelopes without locking them (a run in progress may be a step ahead of what it shows).
 *
 * It never changes anything in the queue, never reads message data (the size comes from
 * stat), and never runs as root past privs_drop.
 */
#include "config.h"

#include "conf.h"
#include "privs.h"
#include "queue.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

struct list {
    const char *state_dir;
    struct queue_entry *e;
    size_t n, alloc;
    int failed;
};

static int add(const char *id, void *arg)
{
    struct list *l = arg;
    if (l->n == l->alloc) {
        size_t na = l->alloc ? l->alloc * 2 : 64;
        struct queue_entry *p = realloc(l->e, na * sizeof *p);
        if (!p)
            return -1;
        l->e = p;
        l->alloc = na;
    }
    int r = queue_load(&l->e[l->n], l->state_dir, id);
    if (r == 0)
        l->n++;
    else
        queue_entry_free(&l->e[l->n]);
    if (r < 0) {
        fprintf(stderr, "mailq: %s: %s\n", id, strerror(errno));
        l->failed = 1;
    }
    return 0;
}

static int by_age(const void *a, const void *b)
{
    const struct queue_entry *x = a, *y = b;
    if (x->created != y->created)
        return x->created < y->created ? -1 : 1;
    return strcmp(x->id, y->id);
}

/* "3d4h", "2h5m", "4m", "12s". */
static void span(char *dst, size_t size, long long s)
{
    if (s < 0)
        s = 0;
    if (s >= 86400)
        str_format(dst, size, "%lldd%lldh", s / 86400, s % 86400 / 3600);
    else if (s >= 3600)
        str_format(dst, size, "%lldh%lldm", s / 3600, s % 3600 / 60);
    else if (s >= 60)
        str_format(dst, size, "%lldm", s / 60);
    else
        str_format(dst, size, "%llds", s);
}

static void show(const struct queue_entry *e, time_t now)
{
    char path[8192], age[32], next[32];
    struct stat st;
    long long size = -1;
    if (str_format(path, sizeof path, "%s/%s.msg", e->dir, e->id) > 0 && stat(path, &st) == 0)
        size = (long long)st.st_size - (long long)e->skip;
    span(age, sizeof age, (long long)(now - e->created));
    printf("%s  %lld bytes  age %s  from <%s>%s%s\n", e->id, size, age, e->sender,
           (e->flags & QUEUE_F_BOUNCE) ? "  (bounce)" : "",
           (e->flags & QUEUE_F_HELD) ? "  (held)" : "");
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const struct queue_rcpt *r = &e->rcpts[i];
        printf("    <%s>  %s  attempts %u", r->addr, queue_state_name(r->state), r->attempts);
        if (r->state == QUEUE_PENDING) {
            span(next, sizeof next, (long long)(r->next_attempt - now));
            printf("  next %s", (e->flags & QUEUE_F_HELD) ? "when released"
                                : r->next_attempt <= now  ? "now"
                                                          : next);
        }
        if (r->reply[0])
            printf("  last%s%s: %s", r->host[0] ? " from " : "", r->host, r->reply);
        if (r->tls[0])
            printf("\n      tls: %s", r->tls);
        putchar('\n');
    }
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    struct yubin_conf conf;
    char err[512];
    int opt;
    while ((opt = getopt(argc, argv, "C:")) != -1) {
        if (opt != 'C') {
            fprintf(stderr, "usage: mailq [-C conf]\n");
            return EX_USAGE;
        }
        conf_path = optarg;
    }
    if (optind != argc) {
        fprintf(stderr, "usage: mailq [-C conf]\n");
        return EX_USAGE;
    }
    if (conf_load(&conf, conf_path, err, sizeof err) != 0) {
        fprintf(stderr, "mailq: %s\n", err);
        return EX_CONFIG;
    }
    if (privs_drop(conf.user, err, sizeof err) != 0) {
        fprintf(stderr, "mailq: %s\n", err);
        return EX_NOPERM;
    }
    struct list l = {.state_dir = conf.state_dir};
    if (queue_each(conf.state_dir, add, &l) != 0) {
        fprintf(stderr, "mailq: cannot read %s/queue: %s\n", conf.state_dir, strerror(errno));
        return EX_NOPERM;
    }
    if (l.n > 1)
        qsort(l.e, l.n, sizeof *l.e, by_age);
    time_t now = time(NULL);
    if (l.n == 0)
        printf("Mail queue is empty\n");
    for (size_t i = 0; i < l.n; i++) {
        show(&l.e[i], now);
        queue_entry_free(&l.e[i]);
    }
    if (l.n > 0)
        printf("-- %zu %s\n", l.n, l.n == 1 ? "entry" : "entries");
    free(l.e);
    return l.failed ? EX_TEMPFAIL : 0;
}
