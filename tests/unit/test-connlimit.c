/*
 * test-connlimit: lib/connlimit's slots in a scratch state_dir: max slots per address and
 * no more, other addresses apart, a released slot free again and its file gone, a slot held
 * by a process killed with SIGKILL free again (flock), a stale file taken over, and names
 * that are not addresses refused. It never touches anything outside its directory.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "connlimit.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[256];

static int files(void)
{
    char path[300];
    int n = 0;
    snprintf(path, sizeof path, "%s/conn", dir);
    DIR *d = opendir(path);
    if (d == NULL)
        return 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void test_slots(void)
{
    struct connlimit a, b, c, other;
    CHECK(connlimit_take(&a, dir, "192.0.2.7", 2) == 0 && a.fd >= 0, "first slot");
    CHECK(connlimit_take(&b, dir, "192.0.2.7", 2) == 0 && b.fd >= 0, "second slot");
    CHECK(connlimit_take(&c, dir, "192.0.2.7", 2) == 1 && c.fd < 0, "no third");
    CHECK(connlimit_take(&other, dir, "2001:db8::7", 2) == 0, "another address has its own");
    CHECK(files() == 3, "one file per held slot (%d)", files());
    connlimit_release(&a);
    CHECK(files() == 2, "a released slot's file is removed");
    CHECK(connlimit_take(&c, dir, "192.0.2.7", 2) == 0, "and the slot can be taken again");
    connlimit_release(&b);
    connlimit_release(&c);
    connlimit_release(&other);
    connlimit_release(&other);
    CHECK(files() == 0, "nothing left once all are released");
    CHECK(connlimit_take(&a, dir, "192.0.2.7", 0) == 0 && a.fd < 0 && files() == 0,
          "max 0: no limit, no file");
}

static void test_killed_holder(void)
{
    int ready[2];
    char byte;
    struct connlimit a, b;
    CHECK(pipe(ready) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        struct connlimit mine;
        char ok = connlimit_take(&mine, dir, "198.51.100.1", 1) == 0 ? 'y' : 'n';
        if (write(ready[1], &ok, 1) != 1)
            _exit(1);
        pause();
        _exit(0);
    }
    CHECK(read(ready[0], &byte, 1) == 1 && byte == 'y', "a child holds the only slot");
    CHECK(connlimit_take(&a, dir, "198.51.100.1", 1) == 1, "so we get none");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    CHECK(files() == 1, "the killed child left its file");
    CHECK(connlimit_take(&a, dir, "198.51.100.1", 1) == 0, "but not its lock: the slot is free");
    CHECK(connlimit_take(&b, dir, "198.51.100.1", 1) == 1, "and taken once only");
    connlimit_release(&a);
    CHECK(files() == 0, "the stale file went with the release");
    close(ready[0]);
    close(ready[1]);
}

static void test_names(void)
{
    struct connlimit a;
    CHECK(connlimit_take(&a, dir, "../etc/passwd", 3) == -1 && errno == EINVAL, "a path: -1");
    CHECK(connlimit_take(&a, dir, "local", 3) == -1, "not an address: -1");
    CHECK(connlimit_take(&a, dir, "", 3) == -1, "empty: -1");
    CHECK(connlimit_take(&a, "/nonexistent/state", "192.0.2.1", 3) == -1, "no state_dir: -1");
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/test-connlimit.XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(dir) == NULL)
        return 1;
    test_slots();
    test_killed_holder();
    test_names();
    if (tmpdir_remove(dir) != 0)
        return 1;
    return tap_done();
}
