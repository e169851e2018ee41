/*
 * test-queue: lib/queue against a real directory (mkdtemp): envelope text round trips
 * (odd addresses in xtext, replies with control bytes), malformed envelopes refused, entry
 * creation by hard link, locking (a second lock is refused while the first is held),
 * durable save, data opened after the skipped bytes, listing, removal, the retry schedule.
 * It never touches anything outside its own temporary directory.
 */
#include "config.h"

#include "queue.h"
#include "tap.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdlib.h>
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

static void test_schedule(void)
{
    CHECK(queue_retry_delay(1) == 300, "first retry after 5 min");
    CHECK(queue_retry_delay(2) == 900, "then 15 min");
    CHECK(queue_retry_delay(4) == 3600, "then 1 h");
    CHECK(queue_retry_delay(6) == 14400, "then 4 h");
    CHECK(queue_retry_delay(60) == 14400, "capped at 4 h");
}

static void test_roundtrip(void)
{
    struct queue_entry e, f;
    char *text;
    size_t len;
    queue_entry_init(&e, "/x", "", 17);
    str_copy(e.id, sizeof e.id, "123.4R00.host");
    e.created = 1763865600;
    e.flags = QUEUE_F_WARNED | QUEUE_F_HELD;
    CHECK(queue_entry_add(&e, "a@b.test") == 0, "add one");
    CHECK(queue_entry_add(&e, "A@B.TEST") == 0 && e.n_rcpts == 1, "same address once");
    CHECK(queue_entry_add(&e, "\"x y+z=\"@c.test") == 0, "add a quoted one");
    queue_set_result(&e, 1, 1, "451 4.3.0 try\r\nlater", "mx 1.test", 1000);
    CHECK(e.rcpts[1].attempts == 1 && e.rcpts[1].next_attempt == 1300, "retry in 5 min");
    CHECK_STR(e.rcpts[1].reply, "451 4.3.0 try  later", "control bytes become spaces");
    CHECK(queue_env_format(&e, &text, &len) == 0, "format");
    CHECK(strstr(text, "sender <>\n") != NULL, "null sender written <>");
    CHECK(strstr(text, " \"x+20y+2Bz+3D\"@c.test mx_1.test 451") != NULL, "xtext address, host");
    CHECK(strstr(text, " a@b.test - \n") != NULL, "no host yet: -");
    memset(&f, 0, sizeof f);
    CHECK(queue_env_parse(&f, text, len) == 0, "parse back");
    CHECK_STR(f.id, "123.4R00.host", "id");
    CHECK_STR(f.sender, "", "sender");
    CHECK(f.skip == 17 && f.created == 1763865600 && f.flags == (QUEUE_F_WARNED | QUEUE_F_HELD),
          "fields");
    CHECK(strstr(text, "flags warned held\n") != NULL, "the held flag is written");
    CHECK(f.n_rcpts == 2, "two recipients");
    CHECK(strstr(text, "rcpt bounced") == NULL, "no bounced state yet");
    if (f.n_rcpts == 2) {
        CHECK_STR(f.rcpts[1].addr, "\"x y+z=\"@c.test", "address back");
        CHECK_STR(f.rcpts[1].reply, "451 4.3.0 try  later", "reply back");
        CHECK_STR(f.rcpts[0].reply, "", "empty reply back");
        CHECK_STR(f.rcpts[0].host, "", "no host back");
        CHECK_STR(f.rcpts[1].host, "mx_1.test", "host back");
        CHECK(f.rcpts[1].next_attempt == 1300 && f.rcpts[1].attempts == 1, "times back");
    }
    text[len - 4] = 'x'; /* "end" damaged: a cut file */
    CHECK(queue_env_parse(&f, text, len) < 0 && errno == EINVAL, "no end line: refused");
    free(text);
    queue_entry_free(&f);
    queue_entry_free(&e);
}

static void test_malformed(void)
{
    static const char *bad[] = {
        "",
        "yubin-queue 2\nend\n",
        "yubin-queue 1\nbogus 1\nend\n",
        "yubin-queue 1\nrcpt maybe 0 0 a@b - x\nend\n",
        "yubin-queue 1\nrcpt pending x 0 a@b - x\nend\n",
        "yubin-queue 1\nrcpt pending 0 0 a+0@b - x\nend\n",
        "yubin-queue 1\nrcpt pending 0 0 a+00@b - x\nend\n",
        "yubin-queue 1\nskip 99999999999999999999\nend\n",
        "yubin-queue 1\nend\nrcpt pending 0 0 a@b - x\n",
        "yubin-queue 1\nrcpt pending 0 0 a@b - x\n",
        "yubin-queue 1\nrcpt pending 0 0 a@b\nend\n",
        "yubin-queue 1\nflags odd\nend\n",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct queue_entry f;
        memset(&f, 0, sizeof f);
        CHECK(queue_env_parse(&f, bad[i], strlen(bad[i])) < 0, "malformed envelope %zu refused", i);
        queue_entry_free(&f);
    }
}

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, text, strlen(text));
    return close(fd) == 0 ? rc : -1;
}

static int count_cb(const char *id, void *arg)
{
    (void)id;
    (*(int *)arg)++;
    return 0;
}

static void test_files(void)
{
    char data[PATH_MAX + 20], path[PATH_MAX + 300], buf[64];
    struct queue_entry e, l1, l2;
    str_format(data, sizeof data, "%s/data", top);
    CHECK(write_file(data, "Return-Path: <s@x>\nSubject: hi\n\nbody\n") == 0, "data file");
    queue_entry_init(&e, top, "s@x.test", 19);
    queue_entry_add(&e, "r1@remote.test");
    queue_entry_add(&e, "r2@remote.test");
    CHECK(queue_create(&e, data, "host.test") == 0, "create");
    struct stat a, b;
    str_format(path, sizeof path, "%s/queue/%s.msg", top, e.id);
    CHECK(stat(data, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino, "data linked");
    int n = 0;
    CHECK(queue_each(top, count_cb, &n) == 0 && n == 1, "one entry listed");
    CHECK(queue_lock(&l1, top, e.id) == 0, "lock");
    CHECK(queue_lock(&l2, top, e.id) == 1, "second lock refused while held");
    CHECK(l1.n_rcpts == 2 && strcmp(l1.sender, "s@x.test") == 0, "loaded");
    uint64_t size;
    int fd = queue_open_data(&l1, &size);
    ssize_t got = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    buf[got > 0 ? got : 0] = '\0';
    CHECK(size == 18 && strcmp(buf, "Subject: hi\n\nbody\n") == 0, "data after the skip");
    if (fd >= 0)
        close(fd);
    queue_set_result(&l1, 0, 0, "250 2.0.0 ok", NULL, time(NULL));
    CHECK(queue_save(&l1) == 0, "save");
    CHECK(queue_load(&l2, top, e.id) == 0 && l2.rcpts[0].state == QUEUE_DONE, "saved state read");
    queue_entry_free(&l2);
    str_format(path, sizeof path, "%s/queue/%s.new", top, e.id);
    CHECK(access(path, F_OK) != 0, "no .new left");
    CHECK(queue_remove(&l1) == 0, "remove");
    n = 0;
    CHECK(queue_each(top, count_cb, &n) == 0 && n == 0, "queue empty");
    CHECK(stat(data, &a) == 0 && a.st_nlink == 1, "only the caller's file is left");
    queue_entry_free(&l1);
    CHECK(queue_lock(&l1, top, e.id) == 2, "a removed entry is gone");
    CHECK(queue_lock(&l1, top, "../x") < 0, "an id with a slash is refused");
    str_format(data, sizeof data, "%s/missing", top);
    CHECK(queue_create(&e, data, "host.test") != 0, "create from a missing file fails");
    n = 0;
    CHECK(queue_each(top, count_cb, &n) == 0 && n == 0, "and leaves nothing");
    queue_entry_free(&e);
}

static void test_clean(void)
{
    char path[PATH_MAX + 40];
    struct timespec old[2] = {{1000, 0}, {1000, 0}};
    static const char *names[] = {"a.msg", "a.env", "b.msg", "c.new", "d.msg"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++) {
        str_format(path, sizeof path, "%s/queue/%s", top, names[i]);
        write_file(path, "x");
        if (i < 4)
            utimensat(AT_FDCWD, path, old, 0);
    }
    CHECK(queue_clean(top, 3600) == 2, "an old orphan .msg and an old .new removed");
    str_format(path, sizeof path, "%s/queue/a.msg", top);
    CHECK(access(path, F_OK) == 0, "a .msg with its .env kept");
    str_format(path, sizeof path, "%s/queue/d.msg", top);
    CHECK(access(path, F_OK) == 0, "a young orphan kept (a creation in progress)");
    str_format(path, sizeof path, "%s/queue/b.msg", top);
    CHECK(access(path, F_OK) != 0, "the old orphan is gone");
}

int main(void)
{
    str_format(top, sizeof top, "%s/test-queue.XXXXXX",
               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(top))
        return 99;
    test_schedule();
    test_roundtrip();
    test_malformed();
    test_files();
    test_clean();
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
