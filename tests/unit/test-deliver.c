/*
 * test-deliver: lib/deliver against a real state directory (a mkdtemp directory): the three
 * modes (smtp-in's queue-for-retry, maildir-deliver's all-or-nothing, queue-run's result per
 * target), a list owner's own copy, the queue entries and their skip, the text scanner
 * (NUL, bare CR, across chunk boundaries), and the lib/util helpers written once for every
 * program (mem_grow, str_trim, self_sibling; lib/peer has its own test). It never touches anything
 * outside its own temporary directory.
 */
#include "config.h"

#include "deliver.h"
#include "queue.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[PATH_MAX];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Entries in dir (without . and ..), -1 if it cannot be opened; the last name into name. */
static int entries(const char *dir, char *name, size_t size)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        n++;
        if (name != NULL)
            str_copy(name, size, e->d_name);
    }
    closedir(d);
    return n;
}

/* Messages in new/ of user@domain under state; the first one's content into buf. */
static int in_new(const char *state, const char *user, const char *domain, char *buf, size_t size)
{
    char dir[PATH_MAX], name[300], path[PATH_MAX + 300];
    str_format(dir, sizeof dir, "%s/mail/%s/%s/new", state, domain, user);
    int n = entries(dir, name, sizeof name);
    if (n == 1 && buf != NULL) {
        str_format(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_RDONLY);
        ssize_t got = fd >= 0 ? read(fd, buf, size - 1) : -1;
        buf[got > 0 ? got : 0] = '\0';
        if (fd >= 0)
            close(fd);
    }
    return n;
}

static int tmp_empty(const char *state)
{
    char dir[PATH_MAX];
    str_format(dir, sizeof dir, "%s/tmp", state);
    int n = entries(dir, NULL, 0);
    return n <= 0;
}

static void fresh_state(char *state, size_t size, const char *name)
{
    str_format(state, size, "%s/%s", top, name);
    mkdir(state, 0700);
}

/* A route as lib/route gives it: mailboxes and remote addresses. */
static void route_of(struct route *r, char (*local)[ADDR_SIZE], size_t n_local,
                     char (*remote)[ADDR_SIZE], size_t n_remote)
{
    memset(r, 0, sizeof *r);
    r->kind = ROUTE_LOCAL;
    r->local = local;
    r->n_local = n_local;
    r->remote = remote;
    r->n_remote = n_remote;
}

/* Blocks the Maildirs of a domain: a file where its directory would be. */
static void block_domain(const char *state, const char *domain)
{
    char path[PATH_MAX];
    str_format(path, sizeof path, "%s/mail", state);
    mkdir(path, 0700);
    str_format(path, sizeof path, "%s/mail/%s", state, domain);
    int fd = open(path, O_WRONLY | O_CREAT, 0600);
    if (fd >= 0)
        close(fd);
}

struct queued {
    const char *state;
    size_t n;
    struct queue_entry e[4];
};

static int load_one(const char *id, void *arg)
{
    struct queued *q = arg;
    if (q->n < ARRAY_LEN(q->e) && queue_load(&q->e[q->n], q->state, id) == 0)
        q->n++;
    return 0;
}

/* smtp-in's mode: local mailboxes linked, a remote address and a blocked mailbox queued in
 * one entry that skips our Return-Path line; a list owner's local member gets its own copy. */
static void test_queue_retry(void)
{
    static struct deliver d;
    char state[PATH_MAX], buf[2000];
    static char local[2][ADDR_SIZE] = {"one@example.test", "two@example.test"};
    static char remote[1][ADDR_SIZE] = {"far@remote.test"};
    static char member[1][ADDR_SIZE] = {"three@example.test"};
    struct route r;
    fresh_state(state, sizeof state, "retry");
    block_domain(state, "blocked.test");
    deliver_init(&d, state, "host.test", DELIVER_QUEUE_RETRY);
    deliver_reset(&d, "author@remote.test");
    route_of(&r, local, 2, remote, 1);
    CHECK(deliver_new_targets(&d, &r) == 3, "three new targets");
    CHECK(deliver_add_route(&d, &r, 0, 0) == 0, "route added");
    CHECK(deliver_new_targets(&d, &r) == 0, "then none is new");
    CHECK(deliver_add_route(&d, &r, 0, 1) == 0 && d.n_targets == 3, "each target once");
    CHECK(deliver_add(&d, "ONE@example.test", 0, 0, 2) == 0 && d.n_targets == 3,
          "a target under another case is the same target");
    CHECK(deliver_add(&d, "x@blocked.test", 0, 0, 3) == 0, "a blocked mailbox");
    int g = deliver_group(&d, "owner@example.test");
    CHECK(g == 1 && deliver_group(&d, "OWNER@example.test") == 1, "list owner's group");
    route_of(&r, member, 1, NULL, 0);
    CHECK(deliver_add_route(&d, &r, (unsigned)g, 4) == 0, "a list member");

    CHECK(deliver_begin(&d, 1) == 0, "begin");
    CHECK(d.skip == strlen("Return-Path: <author@remote.test>\n"), "skip is the Return-Path line");
    CHECK(deliver_write(&d, "Subject: t\n\nbody\n", 17) == 0, "write");
    CHECK(deliver_commit(&d) == 0, "commit: accepted although one mailbox is blocked");
    deliver_end(&d, 0);
    CHECK(in_new(state, "one", "example.test", buf, sizeof buf) == 1 &&
              strcmp(buf, "Return-Path: <author@remote.test>\nSubject: t\n\nbody\n") == 0,
          "one got it with the author's Return-Path");
    CHECK(in_new(state, "two", "example.test", NULL, 0) == 1, "two got it");
    CHECK(in_new(state, "three", "example.test", buf, sizeof buf) == 1 &&
              strcmp(buf, "Return-Path: <owner@example.test>\nSubject: t\n\nbody\n") == 0,
          "the list member's copy has the owner's Return-Path");
    CHECK(tmp_empty(state), "tmp/ is empty");
    CHECK(d.targets[3].retry == 1 && d.targets[0].retry == 0, "the blocked one is for retry");
    CHECK(d.n_queued == 1, "one queue entry (group 0); the owner's group had no remote");

    struct queued q = {.state = state};
    queue_each(state, load_one, &q);
    CHECK(q.n == 1 && q.e[0].n_rcpts == 2 && strcmp(q.e[0].sender, "author@remote.test") == 0,
          "the entry has the remote and the blocked recipient, from the author");
    CHECK(q.n == 1 && q.e[0].skip == d.skip, "the entry skips our Return-Path line");
    CHECK(q.n == 1 && strcmp(q.e[0].rcpts[0].addr, "far@remote.test") == 0 &&
              strcmp(q.e[0].rcpts[1].addr, "x@blocked.test") == 0,
          "recipients in order");
    for (size_t i = 0; i < q.n; i++)
        queue_entry_free(&q.e[i]);
    deliver_free(&d);
}

/* A forwarded route (an alias with a member elsewhere): the local copy keeps the author as
 * sender, the forwarded one is queued from the author's SRS address, sharing the data; <> and
 * a relayed recipient are not rewritten; a secret file that cannot be used is for later. */
static void test_forward(void)
{
    static struct deliver d;
    static char local[1][ADDR_SIZE] = {"one@example.test"};
    static char remote[1][ADDR_SIZE] = {"far@remote.test"};
    char state[PATH_MAX], secret[PATH_MAX], buf[2000], why[400];
    struct yubin_conf conf;
    struct route_ctx ctx;
    struct route r;
    fresh_state(state, sizeof state, "forward");
    str_format(secret, sizeof secret, "%s/srs-secret", top);
    int fd = open(secret, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0 && write(fd, "a secret of test-deliver\n", 25) == 25 && close(fd) == 0,
          "a secret file");
    conf_defaults(&conf);
    str_copy(conf.local_domains[0], sizeof conf.local_domains[0], "example.test");
    str_copy(conf.srs_secret_file, sizeof conf.srs_secret_file, secret);
    route_init(&ctx, &conf);
    ctx.mailbox_exists = route_read_users_file; /* no yubin-auth here */
    deliver_init(&d, state, "host.test", DELIVER_QUEUE_RETRY);
    deliver_reset(&d, "author@remote.test");
    route_of(&r, local, 1, remote, 1);
    r.forward = 1;
    CHECK(deliver_add_forward(&d, &ctx, &r, 0, 0, why, sizeof why) == 0 && why[0] == '\0',
          "forwarded route added (%s)", why);
    CHECK(d.n_groups == 2 && strncmp(d.groups[1], "SRS0=", 5) == 0 &&
              strstr(d.groups[1], "=remote.test=author@example.test") != NULL,
          "a group from the SRS address: %s", d.groups[1]);
    CHECK(d.targets[0].group == 0 && d.targets[1].group == 1, "local in 0, forwarded in 1");
    CHECK(deliver_begin(&d, 1) == 0 && deliver_write(&d, "x\n", 2) == 0 && deliver_commit(&d) == 0,
          "accepted");
    deliver_end(&d, 0);
    CHECK(in_new(state, "one", "example.test", buf, sizeof buf) == 1 &&
              strncmp(buf, "Return-Path: <author@remote.test>\n", 34) == 0,
          "the local copy keeps the author");
    struct queued q = {.state = state};
    queue_each(state, load_one, &q);
    CHECK(q.n == 1 && strcmp(q.e[0].sender, d.groups[1]) == 0 && q.e[0].skip == d.skip,
          "one entry, from the SRS address, sharing the data");
    for (size_t i = 0; i < q.n; i++)
        queue_entry_free(&q.e[i]);

    deliver_reset(&d, "");
    CHECK(deliver_add_forward(&d, &ctx, &r, 0, 0, why, sizeof why) == 0 && d.n_groups == 1,
          "<> stays <>");
    r.forward = 0;
    deliver_reset(&d, "author@remote.test");
    CHECK(deliver_add_forward(&d, &ctx, &r, 0, 0, why, sizeof why) == 0 && d.n_groups == 1,
          "not forwarded (relayed): the sender stays");
    route_ctx_free(&ctx);
    chmod(secret, 0644);
    route_init(&ctx, &conf);
    ctx.mailbox_exists = route_read_users_file; /* no yubin-auth here */
    r.forward = 1;
    deliver_reset(&d, "author@remote.test");
    CHECK(deliver_add_forward(&d, &ctx, &r, 0, 0, why, sizeof why) == 1 && d.n_targets == 0 &&
              strstr(why, "0644") != NULL,
          "a secret file open to all: for later, nothing added (%s)", why);
    route_ctx_free(&ctx);
    deliver_free(&d);
}

/* smtp-in's RCPT: a list's owner becomes its members' sender (not for <>), and a message
 * can take only so many lists. */
static void test_take(void)
{
    static struct deliver d;
    static char member[1][ADDR_SIZE];
    char why[200];
    struct route r;
    deliver_init(&d, top, "host.test", DELIVER_QUEUE_RETRY);
    deliver_reset(&d, "author@remote.test");
    route_of(&r, member, 1, NULL, 0);
    int taken = 0;
    const char *no = NULL;
    for (int i = 0; i < DELIVER_MAX_GROUPS + 2 && no == NULL; i++) {
        str_format(member[0], ADDR_SIZE, "m%d@example.test", i);
        str_format(r.owner, sizeof r.owner, "owner-%d@example.test", i);
        if ((no = deliver_take(&d, NULL, &r, "author@remote.test", (size_t)i, why, sizeof why)) ==
            NULL)
            taken++;
    }
    CHECK(taken == DELIVER_MAX_GROUPS - 1 && d.n_groups == DELIVER_MAX_GROUPS,
          "a list owner's group each, up to %d senders (%d taken)", DELIVER_MAX_GROUPS, taken);
    CHECK(no != NULL && strncmp(no, "452 4.5.3", 9) == 0 && why[0] == '\0',
          "then 452 4.5.3, the message full (%s)", no ? no : "taken");
    CHECK(d.targets[0].group == 1 && strcmp(d.groups[1], "owner-0@example.test") == 0,
          "the first list's member goes with its owner as sender");
    deliver_reset(&d, "");
    str_copy(member[0], ADDR_SIZE, "m@example.test");
    CHECK(deliver_take(&d, NULL, &r, "", 0, why, sizeof why) == NULL && d.n_groups == 1 &&
              d.targets[0].group == 0,
          "from <> a list keeps <>");
    deliver_free(&d);
}

/* maildir-deliver's mode: one blocked mailbox and nothing is delivered at all. */
static void test_all_or_nothing(void)
{
    static struct deliver d;
    char state[PATH_MAX];
    fresh_state(state, sizeof state, "all");
    block_domain(state, "blocked.test");
    deliver_init(&d, state, "host.test", DELIVER_ALL);
    deliver_reset(&d, "");
    CHECK(deliver_add(&d, "one@example.test", 0, 0, 0) == 0, "one");
    CHECK(deliver_add(&d, "x@blocked.test", 0, 0, 1) == 0, "blocked");
    CHECK(deliver_begin(&d, 0) == 0 && d.skip == 0, "begin without Return-Path");
    CHECK(deliver_write(&d, "x\n", 2) == 0, "write");
    int rc = deliver_commit(&d);
    CHECK(rc == 1, "commit fails for now (%d)", rc);
    CHECK(strstr(d.what, "/mail/blocked.test/x") != NULL, "what names the Maildir (%s)", d.what);
    deliver_end(&d, 1);
    CHECK(in_new(state, "one", "example.test", NULL, 0) == 0, "one's link taken back");
    CHECK(tmp_empty(state), "tmp/ is empty");
    CHECK(d.n_queued == 0, "nothing queued");

    deliver_reset(&d, "");
    CHECK(deliver_begin(&d, 0) == 0 && deliver_commit(&d) == -1 && errno == EINVAL,
          "a message without targets is never accepted");
    deliver_end(&d, 1);
    deliver_free(&d);
}

/* queue-run's mode: each target its own result; the same mailbox twice is two targets. */
static void test_each(void)
{
    static struct deliver d;
    char state[PATH_MAX], buf[200];
    fresh_state(state, sizeof state, "each");
    block_domain(state, "blocked.test");
    deliver_init(&d, state, "host.test", DELIVER_EACH);
    deliver_reset(&d, "a@remote.test");
    CHECK(deliver_add(&d, "one@example.test", 0, 0, 0) == 0, "one (tag 0)");
    CHECK(deliver_add(&d, "x@blocked.test", 0, 0, 1) == 0, "blocked (tag 1)");
    CHECK(deliver_add(&d, "two@example.test", 0, 0, 1) == 0, "two (tag 1, after the failure)");
    CHECK(deliver_add(&d, "one@example.test", 0, 0, 2) == 0 && d.n_targets == 4,
          "one again (tag 2) is its own target");
    CHECK(deliver_begin(&d, 0) == 0 &&
              deliver_write(&d, "Return-Path: <a@remote.test>\nx\n", 31) == 0,
          "begin, write");
    CHECK(deliver_commit(&d) == 0, "commit");
    deliver_end(&d, 0);
    CHECK(d.targets[0].result == 0 && d.targets[3].result == 0, "one delivered, twice over");
    CHECK(d.targets[1].result == 1 && d.targets[1].err != 0, "blocked: temporary, errno kept");
    CHECK(in_new(state, "one", "example.test", buf, sizeof buf) == 1 &&
              strcmp(buf, "Return-Path: <a@remote.test>\nx\n") == 0,
          "one copy in one's Maildir, written as given");
    CHECK(in_new(state, "two", "example.test", NULL, 0) <= 0,
          "a recipient whose first mailbox failed gets no further links");
    CHECK(tmp_empty(state) && d.n_queued == 0, "tmp/ empty, nothing queued");
    deliver_free(&d);
}

/* A state directory that cannot be written: begin fails for now, what says so. */
static void test_begin_fails(void)
{
    static struct deliver d;
    char state[PATH_MAX];
    str_format(state, sizeof state, "%s/missing/state", top);
    deliver_init(&d, state, "host.test", DELIVER_QUEUE_RETRY);
    CHECK(deliver_begin(&d, 1) == 1 && errno == ENOENT, "begin: temporary, ENOENT");
    CHECK(strcmp(d.what, "creating the message file") == 0, "what: %s", d.what);
    deliver_end(&d, 1);
    deliver_free(&d);
}

/* A child that is sent SIGTERM: in the middle of a message (its tmp file goes, it dies of the
 * signal), or while it holds the signals back for an acceptance (the message is stored whole
 * first). */
static void test_sigterm(void)
{
    char state[PATH_MAX];
    fresh_state(state, sizeof state, "term");
    for (int hold = 0; hold <= 1; hold++) {
        pid_t pid = fork();
        if (pid == 0) {
            static struct deliver d;
            deliver_init(&d, state, "host.test", DELIVER_ALL);
            deliver_reset(&d, "");
            if (maildir_cleanup_on_signal(SIGTERM) != 0 ||
                deliver_add(&d, "one@example.test", 0, 0, 0) || deliver_begin(&d, 0) != 0 ||
                deliver_write(&d, "half a message\n", 15) != 0)
                _exit(2);
            if (hold)
                maildir_hold_signals(1);
            raise(SIGTERM);
            if (!hold)
                _exit(3); /* never reached: the signal ends the process */
            if (deliver_commit(&d) != 0)
                _exit(4);
            deliver_end(&d, 0);
            maildir_hold_signals(0);
            _exit(5); /* never reached either */
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGTERM, "%s: the child dies of SIGTERM (%#x)",
              hold ? "held" : "mid-message", (unsigned)st);
        CHECK(tmp_empty(state), "%s: no tmp file left", hold ? "held" : "mid-message");
        int n = in_new(state, "one", "example.test", NULL, 0);
        CHECK(hold ? n == 1 : n <= 0, "%s: %s", hold ? "held" : "mid-message",
              hold ? "the message was stored first" : "nothing delivered");
    }
}

static void test_text(void)
{
    struct deliver_text t = {0};
    CHECK(deliver_text_scan(&t, "plain\r\nline\n8-bit \xff\r\n", 21) == DELIVER_TEXT_OK &&
              deliver_text_end(&t) == DELIVER_TEXT_OK,
          "CRLF, LF and 8-bit text is fine");
    memset(&t, 0, sizeof t);
    CHECK(deliver_text_scan(&t, "ab\r", 3) == DELIVER_TEXT_OK, "a CR at a chunk's end waits");
    CHECK(deliver_text_scan(&t, "\ncd\r", 4) == DELIVER_TEXT_OK, "then LF: a line end");
    CHECK(deliver_text_scan(&t, "x", 1) == DELIVER_TEXT_BARE_CR && t.where == 6,
          "a CR then another octet across chunks is bare, at offset 6 (%llu)",
          (unsigned long long)t.where);
    CHECK(deliver_text_scan(&t, "\0", 1) == (DELIVER_TEXT_BARE_CR | DELIVER_TEXT_NUL) &&
              t.first == DELIVER_TEXT_BARE_CR && t.where == 6,
          "every fault is noted, the first one's kind and offset kept");
    memset(&t, 0, sizeof t);
    CHECK(deliver_text_scan(&t, "abc\r\n\0.\r\n", 9) == DELIVER_TEXT_NUL && t.where == 5,
          "a NUL is refused, at its offset");
    memset(&t, 0, sizeof t);
    CHECK(deliver_text_scan(&t, "a\r\r\n", 4) == DELIVER_TEXT_BARE_CR && t.where == 1,
          "CR CR LF: the first CR is bare");
    memset(&t, 0, sizeof t);
    CHECK(deliver_text_scan(&t, "end\r", 4) == DELIVER_TEXT_OK &&
              deliver_text_end(&t) == DELIVER_TEXT_BARE_CR && t.where == 3,
          "a CR as the very last octet is bare");
    CHECK(strstr(deliver_text_error(DELIVER_TEXT_NUL), "NUL") != NULL &&
              strstr(deliver_text_error(DELIVER_TEXT_BARE_CR), "bare CR") != NULL,
          "the faults have names");
}

static void test_util(void)
{
    char buf[64], path[PATH_MAX];
    int *a = NULL;
    size_t cap = 0;
    CHECK(mem_grow(&a, &cap, 1, sizeof *a) == 0 && cap == 8, "grow: 8 to start");
    CHECK(mem_grow(&a, &cap, 9, sizeof *a) == 0 && cap == 16, "grow: doubled");
    CHECK(mem_grow(&a, &cap, 5, sizeof *a) == 0 && cap == 16, "grow: enough already");
    CHECK(mem_grow(&a, &cap, SIZE_MAX / 2, sizeof *a) == -1 && cap == 16,
          "grow: an absurd size is refused, the array kept");
    free(a);
    str_copy(buf, sizeof buf, " \t key value \t\r\n");
    CHECK_STR(str_trim(buf), "key value", "trim both ends");
    unsigned port = 0;
    CHECK(parse_hostport("mx.test", buf, sizeof buf, &port, 25) == 0 &&
              strcmp(buf, "mx.test") == 0 && port == 25,
          "host alone: the default port");
    CHECK(parse_hostport("mx.test:2525", buf, sizeof buf, &port, 25) == 0 && port == 2525,
          "host:port");
    CHECK(parse_hostport("[2001:db8::1]:587", buf, sizeof buf, &port, 25) == 0 &&
              strcmp(buf, "2001:db8::1") == 0 && port == 587,
          "[v6]:port");
    CHECK(parse_hostport("2001:db8::1", buf, sizeof buf, &port, 25) == 0 && port == 25 &&
              strcmp(buf, "2001:db8::1") == 0,
          "a bare IPv6 address");
    CHECK(parse_hostport("mx.test:0", buf, sizeof buf, &port, 25) == -1 &&
              parse_hostport("mx.test:65536", buf, sizeof buf, &port, 25) == -1 &&
              parse_hostport("mx.test:", buf, sizeof buf, &port, 25) == -1 &&
              parse_hostport("[::1", buf, sizeof buf, &port, 25) == -1 &&
              parse_hostport(":25", buf, sizeof buf, &port, 25) == -1,
          "bad ports, an open bracket and an empty host are refused");
    CHECK(self_sibling(path, sizeof path, "x-y") == 0 && strstr(path, "/unit/x-y") != NULL,
          "self_sibling names a program next to this one (%s)", path);
}

int main(void)
{
    str_format(top, sizeof top, "%s/test-deliver.XXXXXX",
               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(top) == NULL)
        return 1;
    test_queue_retry();
    test_take();
    test_forward();
    test_all_or_nothing();
    test_each();
    test_begin_fails();
    test_text();
    test_sigterm();
    test_util();
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
