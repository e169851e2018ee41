/*
 * test-maildir: lib/maildir delivery against a real directory tree (a mkdtemp directory).
 * Checks the names (S=, W=) against the files, LF on disk, one inode for all recipients,
 * Maildir creation with 0700/0600, refused path parts, and that a failure leaves nothing in
 * new/ or tmp/. It never touches anything outside its own temporary directory.
 */
#include "config.h"

#include "maildir.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

/* Number of entries in dir (without . and ..), -1 if it cannot be opened. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static int read_file(const char *path, char *buf, size_t size, size_t *len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;
    *len = 0;
    if (fd < 0)
        return -1;
    while ((n = read(fd, buf + *len, size - *len)) > 0)
        *len += (size_t)n;
    close(fd);
    return n < 0 ? -1 : 0;
}

/* Parses ",S=<s>,W=<w>" from the end of a name. */
static int name_sizes(const char *name, unsigned long long *s, unsigned long long *w)
{
    const char *p = strstr(name, ",S=");
    return p != NULL && sscanf(p, ",S=%llu,W=%llu", s, w) == 2 ? 0 : -1;
}

static void mkpath(char *dst, size_t size, const char *rel)
{
    if (str_format(dst, size, "%s/%s", top, rel) < 0)
        abort();
}

static void test_paths(void)
{
    char p[PATH_MAX];
    CHECK(maildir_path(p, sizeof p, "/s", "demo", "example.test") == 0, "plain path");
    CHECK_STR(p, "/s/mail/example.test/demo", "path layout");
    CHECK(maildir_path(p, sizeof p, "/S", "DeMo", "Example.TEST") == 0, "mixed case");
    CHECK_STR(p, "/S/mail/example.test/demo", "parts lower-cased, state_dir kept");
    static const char *const bad[] = {"", ".", "..", "a/b", ".hidden", "a\nb", "a\x7f", "/"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        CHECK(maildir_path(p, sizeof p, "/s", bad[i], "example.test") == -1 && errno == EINVAL,
              "local part %zu refused", i);
        CHECK(maildir_path(p, sizeof p, "/s", "demo", bad[i]) == -1 && p[0] == '\0',
              "domain %zu refused", i);
    }
    char small[16];
    CHECK(maildir_path(small, sizeof small, "/s", "demo", "example.test") == -1 &&
              errno == ENAMETOOLONG,
          "too long refused");
}

/* One message to three recipients, one of them twice and one under another spelling. */
static void test_deliver(const char *state)
{
    struct maildir_msg m;
    char md[3][PATH_MAX], name[256], path[PATH_MAX], other[PATH_MAX];
    static char big[20000], got[40000];
    const char head[] = "Return-Path: <a@b.test>\nSubject: t\xe9st\n\nline 1\n";
    size_t len, lfs = 0;
    struct stat st;

    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (i % 77 == 76) ? '\n' : (char)('a' + i % 26);
    for (size_t i = 0; i < sizeof big; i++)
        lfs += big[i] == '\n';
    CHECK(maildir_path(md[0], PATH_MAX, state, "one", "example.test") == 0, "path one");
    CHECK(maildir_path(md[1], PATH_MAX, state, "two", "example.test") == 0, "path two");
    CHECK(maildir_path(md[2], PATH_MAX, state, "three", "other.test") == 0, "path three");

    CHECK(maildir_msg_begin(&m, state, "host.test") == 0, "begin");
    CHECK(maildir_msg_link(&m, md[0], NULL, 0) == -1 && errno == EINVAL, "link before commit");
    CHECK(maildir_msg_write(&m, head, strlen(head)) == 0, "write head");
    CHECK(maildir_msg_write(&m, big, sizeof big) == 0, "write 20000 bytes");
    CHECK(maildir_msg_write(&m, "end\n", 4) == 0, "write end");
    CHECK(maildir_msg_commit(&m) == 0, "commit");
    CHECK(maildir_msg_write(&m, "x", 1) == -1, "write after commit refused");
    CHECK(maildir_msg_link(&m, md[0], name, sizeof name) == 0, "link one");
    CHECK(maildir_msg_link(&m, md[1], NULL, 0) == 0, "link two");
    CHECK(maildir_msg_link(&m, md[2], NULL, 0) == 0, "link three (other domain)");
    CHECK(maildir_msg_link(&m, md[0], NULL, 0) == 0, "link one again");
    CHECK(str_format(other, sizeof other, "%s/mail/example.test/./two", state) > 0,
          "other spelling");
    CHECK(maildir_msg_link(&m, other, NULL, 0) == 0, "link two under another spelling");
    CHECK(m.n_dirs == 3, "three new/ directories to sync (got %zu)", m.n_dirs);
    CHECK(maildir_msg_sync(&m) == 0, "sync");
    maildir_msg_end(&m, 0);

    unsigned long long s = 0, w = 0;
    size_t want = strlen(head) + sizeof big + 4;
    CHECK(name_sizes(name, &s, &w) == 0, "name %s has S= and W=", name);
    CHECK(strncmp(name, m.unique, strlen(m.unique)) == 0, "name starts with the unique part");
    CHECK(s == want, "S= is the size on disk (%llu)", s);
    CHECK(w == want + lfs + 5, "W= counts each LF as CRLF (%llu)", w);
    CHECK(str_format(path, sizeof path, "%s/new/%s", md[0], name) > 0, "path");
    CHECK(stat(path, &st) == 0 && (unsigned long long)st.st_size == s, "file size matches S=");
    CHECK((st.st_mode & 07777) == 0600, "file is 0600 (%o)", (unsigned)(st.st_mode & 07777));
    CHECK(st.st_nlink == 3, "three links, tmp removed (nlink %lu)", (unsigned long)st.st_nlink);
    CHECK(read_file(path, got, sizeof got, &len) == 0 && len == want &&
              memcmp(got, head, strlen(head)) == 0 &&
              memcmp(got + strlen(head), big, sizeof big) == 0 &&
              memcmp(got + want - 4, "end\n", 4) == 0,
          "content byte for byte, 8-bit kept");
    CHECK(memchr(got, '\r', len) == NULL, "no CR on disk");
    for (int i = 0; i < 3; i++) {
        struct stat s2;
        char p2[PATH_MAX];
        CHECK(str_format(p2, sizeof p2, "%s/new/%s", md[i], name) > 0 && stat(p2, &s2) == 0 &&
                  s2.st_ino == st.st_ino,
              "recipient %d shares the inode", i);
        static const char *const subs[] = {"", "/tmp", "/new", "/cur"};
        for (size_t j = 0; j < ARRAY_LEN(subs); j++) {
            CHECK(str_format(p2, sizeof p2, "%s%s", md[i], subs[j]) > 0 && stat(p2, &s2) == 0 &&
                      S_ISDIR(s2.st_mode) && (s2.st_mode & 07777) == 0700,
                  "maildir %d%s is a 0700 directory", i, subs[j]);
        }
    }
    CHECK(str_format(path, sizeof path, "%s/mail/other.test", state) > 0 && stat(path, &st) == 0 &&
              (st.st_mode & 07777) == 0700,
          "domain directory made 0700");
    CHECK(str_format(path, sizeof path, "%s/tmp", state) > 0 && count_entries(path) == 0,
          "state tmp/ is empty");
}

/* An empty message is a valid (if odd) file: S=0,W=0. */
static void test_empty(const char *state)
{
    struct maildir_msg m;
    char md[PATH_MAX], name[256];
    unsigned long long s = 1, w = 1;
    CHECK(maildir_path(md, sizeof md, state, "one", "example.test") == 0, "path");
    CHECK(maildir_msg_begin(&m, state, "host.test") == 0, "begin empty");
    CHECK(maildir_msg_commit(&m) == 0 && maildir_msg_link(&m, md, name, sizeof name) == 0 &&
              maildir_msg_sync(&m) == 0,
          "empty message delivered");
    maildir_msg_end(&m, 0);
    CHECK(name_sizes(name, &s, &w) == 0 && s == 0 && w == 0, "S=0,W=0 (%s)", name);
}

/* A missing state dir: begin fails (temporarily) and nothing appears. */
static void test_missing_state(void)
{
    struct maildir_msg m;
    char state[PATH_MAX];
    mkpath(state, sizeof state, "does-not-exist");
    CHECK(maildir_msg_begin(&m, state, "host.test") == 1 && errno == ENOENT,
          "missing state dir: temporary failure, ENOENT kept");
    maildir_msg_end(&m, 1);
    CHECK(access(state, F_OK) != 0, "nothing created");
}

/* The second recipient's Maildir cannot be made (a file is in the way): the caller ends with
 * remove_links and the first recipient's new/ is empty again, tmp/ too. */
static void test_failed_link(const char *state)
{
    struct maildir_msg m;
    char ok[PATH_MAX], blocked[PATH_MAX], file[PATH_MAX], dir[PATH_MAX];
    int fd, before;
    CHECK(maildir_path(ok, sizeof ok, state, "one", "example.test") == 0, "path one");
    CHECK(maildir_path(blocked, sizeof blocked, state, "x", "blocked.test") == 0, "path x");
    CHECK(str_format(file, sizeof file, "%s/mail/blocked.test", state) > 0, "blocker path");
    fd = open(file, O_WRONLY | O_CREAT | O_EXCL, 0600);
    CHECK(fd >= 0 && close(fd) == 0, "a file where a domain directory should be");
    CHECK(str_format(dir, sizeof dir, "%s/new", ok) > 0, "new path");
    before = count_entries(dir);

    CHECK(maildir_msg_begin(&m, state, "host.test") == 0, "begin");
    CHECK(maildir_msg_write(&m, "hello\n", 6) == 0 && maildir_msg_commit(&m) == 0, "commit");
    CHECK(maildir_msg_link(&m, ok, NULL, 0) == 0, "first link");
    CHECK(count_entries(dir) == before + 1, "linked into new/");
    CHECK(maildir_msg_link(&m, blocked, NULL, 0) == 1 && errno == ENOTDIR,
          "blocked Maildir: temporary failure, ENOTDIR kept");
    maildir_msg_end(&m, 1);
    CHECK(count_entries(dir) == before, "failure left nothing in new/");
    CHECK(str_format(dir, sizeof dir, "%s/tmp", state) > 0 && count_entries(dir) == 0,
          "failure left nothing in tmp/");
}

/* Without write permission on the state dir (not for root, who ignores modes). */
static void test_readonly_state(void)
{
    struct maildir_msg m;
    char state[PATH_MAX], tmp[PATH_MAX];
    if (geteuid() == 0) {
        printf("ok %d - # SKIP read-only state dir: root ignores modes\n", ++tap_count);
        return;
    }
    mkpath(state, sizeof state, "ro");
    CHECK(mkdir(state, 0500) == 0, "read-only state dir");
    CHECK(maildir_msg_begin(&m, state, "host.test") == 1 && errno == EACCES,
          "read-only: temporary failure, EACCES kept");
    maildir_msg_end(&m, 1);
    CHECK(str_format(tmp, sizeof tmp, "%s/tmp", state) > 0 && access(tmp, F_OK) != 0,
          "nothing created");
}

static void test_errors(const char *state)
{
    struct maildir_msg m;
    CHECK(maildir_errno_is_full(ENOSPC) && maildir_errno_is_full(EDQUOT) &&
              !maildir_errno_is_full(EIO),
          "ENOSPC and EDQUOT are a full disk, EIO is not");
    CHECK(maildir_msg_begin(&m, state, "host.test") == 0, "begin");
    maildir_msg_end(&m, 0);
    char tmp[PATH_MAX];
    CHECK(str_format(tmp, sizeof tmp, "%s/tmp", state) > 0 && count_entries(tmp) == 0,
          "end without commit removes the tmp file");
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    char state[PATH_MAX];
    umask(022);
    if (str_format(top, sizeof top, "%s/test-maildir-XXXXXX", base ? base : "/tmp") < 0 ||
        mkdtemp(top) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    mkpath(state, sizeof state, "state");
    CHECK(mkdir(state, 0700) == 0, "state dir");
    test_paths();
    test_deliver(state);
    test_empty(state);
    test_missing_state();
    test_failed_link(state);
    test_readonly_state();
    test_errors(state);
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
