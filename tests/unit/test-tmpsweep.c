/*
 * test-tmpsweep: lib/tmpsweep on a scratch state_dir: old files in tmp/ and in a Maildir's
 * tmp/ go, fresh ones and dot files stay, a symbolic link (to a directory or a file) is never
 * followed, and tmpsweep_due sweeps at most once per interval.
 */
#include "config.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tap.h"
#include "tmpsweep.h"

static char base[] = "/tmp/test-tmpsweep-XXXXXX";

static const char *at(const char *rel)
{
    static char path[4][512];
    static int i;
    i = (i + 1) % 4;
    snprintf(path[i], sizeof path[i], "%s/%s", base, rel);
    return path[i];
}

static void file(const char *rel, int age_hours)
{
    int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, "x\n", 2) != 2 || close(fd) != 0)
        exit(2);
    time_t t = time(NULL) - (time_t)age_hours * 3600;
    struct timespec ts[2] = {{t, 0}, {t, 0}};
    if (utimensat(AT_FDCWD, at(rel), ts, 0) != 0)
        exit(2);
}

static int exists(const char *rel)
{
    struct stat st;
    return lstat(at(rel), &st) == 0;
}

int main(void)
{
    if (!mkdtemp(base))
        return 2;
    const char *dirs[] = {"tmp",
                          "mail",
                          "mail/d.test",
                          "mail/d.test/u",
                          "mail/d.test/u/tmp",
                          "mail/d.test/u/.Sent",
                          "mail/d.test/u/.Sent/tmp",
                          "out",
                          "out/tmp"};
    for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++)
        if (mkdir(at(dirs[i]), 0700) != 0)
            return 2;
    file("tmp/old", 40);
    file("tmp/fresh", 1);
    file("tmp/.dot", 40);
    file("mail/d.test/u/tmp/old", 40);
    file("mail/d.test/u/.Sent/tmp/old", 40);
    file("out/tmp/old", 40);
    file("out/old", 40);
    if (symlink(at("out"), at("mail/link.test")) != 0 || mkdir(at("mail/d.test/v"), 0700) != 0 ||
        symlink(at("out/tmp"), at("mail/d.test/v/tmp")) != 0 ||
        symlink(at("out/old"), at("tmp/link")) != 0)
        return 2;
    CHECK(tmpsweep(base, TMPSWEEP_MAX_AGE) == 3, "three stale files removed");
    CHECK(!exists("tmp/old") && !exists("mail/d.test/u/tmp/old") &&
              !exists("mail/d.test/u/.Sent/tmp/old"),
          "from tmp/, a Maildir's tmp/ and a folder's tmp/");
    CHECK(exists("tmp/fresh") && exists("tmp/.dot"), "a fresh file and a dot file stay");
    CHECK(exists("out/tmp/old") && exists("out/old") && exists("tmp/link"),
          "links to a domain, a tmp/ and a file: nothing followed, the link itself kept");
    file("tmp/old", 40);
    CHECK(tmpsweep_due(base, 3600, TMPSWEEP_MAX_AGE) == 1, "due: no sweep yet");
    file("tmp/old", 40);
    CHECK(tmpsweep_due(base, 3600, TMPSWEEP_MAX_AGE) == 0 && exists("tmp/old"),
          "not due again within the hour");
    CHECK(tmpsweep("/nonexistent/state", 60) == -1, "a missing state_dir is an error");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    if (system(cmd) != 0)
        return 2;
    return tap_done();
}
