/*
 * test-safedir: lib/safedir on a scratch tree: components made and opened by descriptor, a
 * symbolic link or a plain file where a directory should be refused (ELOOP, ENOTDIR) with
 * the path named, bad components refused, and removal that takes links out without
 * following them.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safedir.h"
#include "tap.h"

static char base[] = "/tmp/test-safedir-XXXXXX";
static char outside[] = "/tmp/test-safedir-out-XXXXXX";

static void path(char *buf, size_t size, const char *dir, const char *rel)
{
    snprintf(buf, size, "%s/%s", dir, rel);
}

static int is_dir(const char *dir, const char *rel)
{
    char p[600];
    struct stat st;
    path(p, sizeof p, dir, rel);
    return lstat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static void put(const char *dir, const char *rel)
{
    char p[600];
    path(p, sizeof p, dir, rel);
    FILE *f = fopen(p, "w");
    if (f != NULL) {
        fputs("keep\n", f);
        fclose(f);
    }
}

static void link_to(const char *target, const char *rel)
{
    char p[600];
    path(p, sizeof p, base, rel);
    if (symlink(target, p) != 0)
        perror("symlink");
}

static void test_open(void)
{
    char err[800];
    int fd = safedir_open(base, "a/b/c", 0, NULL, err, sizeof err);
    CHECK(fd < 0 && errno == ENOENT && strstr(err, "/a: ") != NULL, "missing without CREATE: %s",
          err);
    fd = safedir_open(base, "a/b/c", SAFEDIR_CREATE, NULL, err, sizeof err);
    CHECK(fd >= 0 && is_dir(base, "a/b/c"), "made a/b/c");
    if (fd >= 0)
        close(fd);
    fd = safedir_open(base, "a/b", 0, NULL, err, sizeof err);
    CHECK(fd >= 0, "opens what is there");
    if (fd >= 0) {
        int sub = safedir_openat(fd, "shown", "c", 0, NULL, err, sizeof err);
        CHECK(sub >= 0, "openat from a descriptor");
        if (sub >= 0)
            close(sub);
        close(fd);
    }
    const char *bad[] = {"a//b", "a/../a", "./a", "a/.", "/a"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fd = safedir_open(base, bad[i], SAFEDIR_CREATE, NULL, err, sizeof err);
        CHECK(fd < 0 && errno == EINVAL, "refuses the component list '%s'", bad[i]);
    }
}

static void test_links_refused(void)
{
    char err[800];
    link_to(outside, "a/link");
    int fd = safedir_open(base, "a/link/x", SAFEDIR_CREATE, NULL, err, sizeof err);
    CHECK(fd < 0 && errno == ELOOP && strstr(err, "a/link is a symbolic link: refused"),
          "a link in the middle is refused: %s", err);
    CHECK(!is_dir(outside, "x"), "nothing made where the link points");
    fd = safedir_open(base, "a/link", 0, NULL, err, sizeof err);
    CHECK(fd < 0 && errno == ELOOP, "a link at the end is refused");
    link_to("nowhere", "a/dangling");
    fd = safedir_open(base, "a/dangling", SAFEDIR_CREATE, NULL, err, sizeof err);
    CHECK(fd < 0 && errno == ELOOP, "a dangling link is refused, not made");
    put(base, "a/file");
    fd = safedir_open(base, "a/file/x", SAFEDIR_CREATE, NULL, err, sizeof err);
    CHECK(fd < 0 && errno == ENOTDIR && strstr(err, "a/file is not a directory"),
          "a file is refused: %s", err);
}

static void test_remove(void)
{
    char err[800], p[600];
    put(outside, "precious");
    if (mkdir(strcat(strcpy(p, outside), "/dir"), 0700) != 0)
        perror("mkdir");
    link_to(strcat(strcpy(p, outside), "/precious"), "a/b/c/file-link");
    link_to(strcat(strcpy(p, outside), "/dir"), "a/b/dir-link");
    put(base, "a/b/c/mail");
    int fd = safedir_open(base, "a", 0, NULL, err, sizeof err);
    CHECK(fd >= 0, "open a");
    CHECK(safedir_remove(fd, "a", "link", err, sizeof err) == -1 && errno == ELOOP,
          "removing a link as the top is refused");
    CHECK(safedir_remove(fd, "a", "b", err, sizeof err) == 0, "removes a/b");
    CHECK(!is_dir(base, "a/b") && is_dir(base, "a"), "a/b is gone, a stays");
    struct stat st;
    CHECK(stat(strcat(strcpy(p, outside), "/precious"), &st) == 0 && is_dir(outside, "dir"),
          "what the links pointed to is still there");
    CHECK(safedir_remove(fd, "a", "..", err, sizeof err) == -1 && errno == EINVAL, "refuses ..");
    if (fd >= 0)
        close(fd);
}

int main(void)
{
    if (mkdtemp(base) == NULL || mkdtemp(outside) == NULL)
        return 99;
    test_open();
    test_links_refused();
    test_remove();
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", base, outside);
    if (system(cmd) != 0)
        printf("# could not clean up\n");
    return tap_done();
}
