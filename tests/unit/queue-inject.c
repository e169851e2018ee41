/*
 * queue-inject: a test driver (never installed) that queues a message the way smtp-in does
 * for relay recipients: stdin (LF or CRLF) is written once through lib/maildir after a
 * "Return-Path: <sender>" line, fsynced, and queued with lib/queue by hard link.
 *
 *     queue-inject -C conf [-f sender] rcpt...     (prints the new entry's id)
 *
 * It must never be used outside tests; it drops privileges like every yubin program.
 */
#include "config.h"

#include "conf.h"
#include "maildir.h"
#include "privs.h"
#include "queue.h"
#include "trace.h"
#include "util.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

static int copy_stdin(struct maildir_msg *m)
{
    char buf[65536], out[65536];
    ssize_t n;
    while ((n = read(0, buf, sizeof buf)) > 0) {
        size_t o = 0;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != '\r')
                out[o++] = buf[i];
        if (maildir_msg_write(m, out, o) != 0)
            return -1;
    }
    return n < 0 ? -1 : 0;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL, *sender = "";
    int opt;
    struct yubin_conf conf;
    char err[512], rp[ADDR_SIZE + 32];
    while ((opt = getopt(argc, argv, "C:f:")) != -1) {
        if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'f')
            sender = optarg;
        else
            return EX_USAGE;
    }
    if (optind >= argc || sodium_init() < 0)
        return EX_USAGE;
    if (conf_load(&conf, conf_path, err, sizeof err) != 0 ||
        privs_drop(conf.user, err, sizeof err) != 0) {
        fprintf(stderr, "queue-inject: %s\n", err);
        return EX_CONFIG;
    }
    struct maildir_msg m;
    struct queue_entry e;
    int len = trace_return_path(rp, sizeof rp, sender);
    if (len < 0 || maildir_msg_begin(&m, conf.state_dir, conf.hostname) != 0)
        return EX_TEMPFAIL;
    int rc = maildir_msg_write(&m, rp, (size_t)len) == 0 && copy_stdin(&m) == 0 &&
                     maildir_msg_commit(&m) == 0 &&
                     queue_entry_init(&e, conf.state_dir, sender, (uint64_t)len) == 0
                 ? 0
                 : -1;
    for (int i = optind; rc == 0 && i < argc; i++)
        rc = queue_entry_add(&e, argv[i]);
    if (rc == 0)
        rc = queue_create(&e, m.tmp_path, conf.hostname);
    maildir_msg_end(&m, 0);
    if (rc != 0) {
        perror("queue-inject");
        return EX_TEMPFAIL;
    }
    printf("%s\n", e.id);
    fflush(stdout);
    queue_entry_free(&e);
    return 0;
}
