/*
 * bench/imap-search.d/search.c: what SEARCH costs yubin over one folder: opens the Maildir
 * with lib/mailbox and evaluates each criteria argument over every message with lib/imapsearch,
 * as imap4-in's SEARCH does (the file opened only when a key needs it), printing the hits and
 * the wall and CPU time of each, then the peak RSS. Only bench/imap-search builds and runs it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "imapsearch.h"
#include "mailbox.h"
#include "../mime-cost.d/hwm.h"

struct one {
    struct mailbox *mb;
    struct mailbox_msg *m;
};

static int open_one(void *arg)
{
    struct one *o = arg;
    return mailbox_open_msg(o->mb, o->m);
}

static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct mailbox mb;
    if (argc < 3 || mailbox_open(&mb, argv[1]) != 0) {
        fprintf(stderr, "usage: search MAILDIR CRITERIA...\n");
        return 2;
    }
    for (int a = 2; a < argc; a++) {
        struct imapsearch q;
        struct imaptok t;
        char err[128];
        size_t hits = 0;
        imaptok_init(&t, argv[a], strlen(argv[a]));
        if (imapsearch_parse(&t, &q, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", argv[a], err);
            return 2;
        }
        double t0 = now(), c0 = cpu();
        for (size_t i = 0; i < mb.count; i++) {
            char flags[64];
            struct one o = {&mb, &mb.msgs[i]};
            mailbox_flags(o.m, flags, sizeof flags);
            struct imapsearch_msg m = {.seq = (uint32_t)i + 1,
                                       .uid = o.m->uid,
                                       .max_seq = (uint32_t)mb.count,
                                       .max_uid = mb.count ? mb.msgs[mb.count - 1].uid : 0,
                                       .flags = flags,
                                       .size = o.m->crlf_size,
                                       .fd = -1,
                                       .open = open_one,
                                       .open_arg = &o};
            if (mailbox_internaldate(&mb, o.m, &m.internaldate) != 0)
                m.internaldate = 0; /* as imap4-in does */
            int rc = imapsearch_match(&q, &m);
            if (rc < 0) {
                perror(argv[a]);
                return 1;
            }
            hits += (size_t)rc;
        }
        printf("%s\t%zu hits\t%.1f ms\t%.1f ms CPU\n", argv[a], hits, (now() - t0) * 1000,
               (cpu() - c0) * 1000);
        imapsearch_free(&q);
    }
    mailbox_close(&mb);
    hwm();
    return 0;
}
