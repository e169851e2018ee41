/*
 * yubin-queue: queue management from the command line (yubin-queue(8)), as Postfix's
 * postsuper and postqueue.
 *
 *     yubin-queue [-C conf] delete|hold|release|requeue ID... | -r address | -d domain | -a
 *     yubin-queue [-C conf] flush domain
 *
 * delete removes entries (by id, or all) or recipients (by address or domain) without a
 * bounce; hold keeps an entry from being tried until release; requeue makes pending
 * recipients due now; flush requeues a domain's recipients and runs queue-run for their
 * entries at once. Each entry is changed under the flock queue-run takes (lib/queue-admin),
 * waiting for a run that holds it, so a deleted recipient is never delivered and none is
 * delivered twice.
 *
 * It never runs as root past privs_drop, never sends a bounce, and never changes an entry it
 * has not locked.
 */
#include "config.h"

#include "conf.h"
#include "privs.h"
#include "queue-admin.h"
#include "queue.h"
#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#define LOCK_WAIT_MS 30000 /* how long to wait for a queue-run that holds an entry */
#define FLUSH_IDS 1000     /* -i options for queue-run (its own limit) */

static const char *prog = "yubin-queue";
static struct yubin_conf conf;

struct run {
    enum qadmin_action action;
    struct qadmin_select sel;
    char **ids; /* the entries changed, for flush */
    size_t n_ids, alloc;
    char **later; /* entries a run held at the first try */
    size_t n_later, later_alloc;
    int waiting; /* the second try: wait for the lock */
    unsigned changed, busy, failed;
};

static int usage(void)
{
    return cli_fail(prog, EX_USAGE,
                    "usage: yubin-queue [-C conf] delete|hold|release|requeue ID... | -r address "
                    "| -d domain | -a; yubin-queue [-C conf] flush domain");
}

static void keep(char ***list, size_t *n, size_t *alloc, const char *id)
{
    if (mem_grow(list, alloc, *n + 1, sizeof **list) == 0 && ((*list)[*n] = strdup(id)) != NULL)
        (*n)++;
}

static void free_list(char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* One entry; for a whole-queue selection a missing entry is not an error. */
static void one(struct run *r, const char *id, int by_id)
{
    struct qadmin_result res;
    int rc =
        qadmin_apply(conf.state_dir, id, r->action, &r->sel, r->waiting ? LOCK_WAIT_MS : 0, &res);
    if (rc == 1 && !r->waiting) {
        keep(&r->later, &r->n_later, &r->later_alloc, id); /* the others first */
    } else if (rc == 1) {
        fprintf(stderr, "%s: %s: busy (a queue run has held it for %u s); try again\n", prog, id,
                LOCK_WAIT_MS / 1000);
        r->busy++;
    } else if (rc == 2) {
        if (by_id) {
            fprintf(stderr, "%s: %s: no such entry\n", prog, id);
            r->failed++;
        }
    } else if (rc < 0) {
        fprintf(stderr, "%s: %s: %s\n", prog, id, strerror(errno));
        r->failed++;
    } else if (res.n_changed > 0) {
        r->changed++;
        keep(&r->ids, &r->n_ids, &r->alloc, id);
        if (res.first[0] == '\0')
            printf("%s %s\n", qadmin_done_name(r->action), id);
        else
            printf("%s %s: <%s>%s%s\n", qadmin_done_name(r->action), id, res.first,
                   res.n_changed > 1 ? " and others" : "", res.removed ? " (entry removed)" : "");
    }
}

static int each(const char *id, void *arg)
{
    one(arg, id, 0);
    return 0;
}

/* queue-run -C conf -i ID... for the flushed entries, waited for. */
static int run_queue(const struct run *r, const char *conf_path)
{
    char path[PATH_MAX];
    char **argv = calloc(r->n_ids * 2 + 6, sizeof *argv);
    size_t n = 0;
    if (argv == NULL || self_sibling(path, sizeof path, "queue-run") != 0)
        return cli_fail(prog, EX_SOFTWARE, "cannot name the queue-run program");
    argv[n++] = (char *)"queue-run";
    if (conf_path != NULL) {
        argv[n++] = (char *)"-C";
        argv[n++] = (char *)conf_path;
    }
    for (size_t i = 0; i < r->n_ids && r->n_ids <= FLUSH_IDS; i++) {
        argv[n++] = (char *)"-i";
        argv[n++] = r->ids[i];
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        execv(path, argv);
        _exit(EX_UNAVAILABLE);
    }
    int st = 0;
    free(argv);
    if (pid < 0 || waitpid(pid, &st, 0) != pid)
        return cli_fail(prog, EX_OSERR, "cannot run %s: %s", path, strerror(errno));
    return WIFEXITED(st) ? WEXITSTATUS(st) : EX_SOFTWARE;
}

static int parse_action(const char *word, enum qadmin_action *a)
{
    static const struct {
        const char *name;
        enum qadmin_action action;
    } names[] = {{"delete", QADMIN_DELETE},
                 {"hold", QADMIN_HOLD},
                 {"release", QADMIN_RELEASE},
                 {"requeue", QADMIN_REQUEUE},
                 {"flush", QADMIN_REQUEUE}};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strcmp(word, names[i].name) == 0)
            return *a = names[i].action, 0;
    return -1;
}

static int load(const char *conf_path)
{
    char err[512];
    if (conf_load(&conf, conf_path, err, sizeof err) != 0)
        return cli_fail(prog, EX_CONFIG, "%s", err);
    if (privs_drop(conf.user, err, sizeof err) != 0)
        return cli_fail(prog, EX_NOPERM, "%s", err);
    return 0;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    struct run r = {0};
    int opt, all = 0, rc;
    while ((opt = getopt(argc, argv, "C:r:d:a")) != -1) {
        if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'r')
            r.sel.address = optarg;
        else if (opt == 'd')
            r.sel.domain = optarg;
        else if (opt == 'a')
            all = 1;
        else
            return usage();
    }
    if (optind >= argc || parse_action(argv[optind], &r.action) != 0)
        return usage();
    int flush = strcmp(argv[optind++], "flush") == 0, n_ids = argc - optind;
    if (flush && n_ids == 1 && !r.sel.domain && !r.sel.address && !all)
        r.sel.domain = argv[optind], n_ids = 0;
    int selectors = (r.sel.address != NULL) + (r.sel.domain != NULL) + all + (n_ids > 0);
    if (selectors != 1 || (flush && r.sel.domain == NULL))
        return usage();
    if ((rc = load(conf_path)) != 0)
        return rc;
    for (int i = 0; i < n_ids; i++)
        one(&r, argv[optind + i], 1);
    if (n_ids == 0 && queue_each(conf.state_dir, each, &r) != 0)
        return cli_fail(prog, EX_NOPERM, "cannot read %s/queue: %s", conf.state_dir,
                        strerror(errno));
    r.waiting = 1;
    for (size_t i = 0; i < r.n_later; i++)
        one(&r, r.later[i], n_ids > 0);
    free_list(r.later, r.n_later);
    if (r.changed == 0 && r.busy == 0 && r.failed == 0)
        fprintf(stderr, "%s: nothing in the queue matched\n", prog);
    rc = r.failed ? EX_NOINPUT : r.busy ? EX_TEMPFAIL : r.changed ? 0 : EX_NOINPUT;
    if (flush && r.n_ids > 0 && rc == 0)
        rc = run_queue(&r, conf_path);
    free_list(r.ids, r.n_ids);
    return rc;
}
