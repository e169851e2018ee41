/*
 * tmpsweep: the stale-file sweep of tmp directories (see tmpsweep.h). Directories are only
 * ever reached by descriptor (openat O_NOFOLLOW | O_DIRECTORY), files only looked at with
 * fstatat(AT_SYMLINK_NOFOLLOW) and removed with unlinkat: a link planted anywhere below
 * state_dir leads nowhere.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "tmpsweep.h"

#define STAMP ".tmp-swept"

static int open_sub(int dirfd, const char *name)
{
    return openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Calls fn(fd of the entry, arg) for every directory in dirfd whose name starts with a dot
 * (dots set) or does not (dots 0); "." and ".." never. */
static void each_dir(int dirfd, int dots, void (*fn)(int, time_t, int *), time_t cutoff, int *n)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        const char *name = de->d_name;
        if ((name[0] == '.') != (dots != 0) ||
            (name[0] == '.' && (name[1] == '\0' || (name[1] == '.' && !name[2]))))
            continue;
        int sub = open_sub(dirfd, name);
        if (sub >= 0) {
            fn(sub, cutoff, n);
            close(sub);
        }
    }
    closedir(d);
}

/* Removes the regular files of a tmp directory not read or written since cutoff. */
static void sweep_files(int dirfd, time_t cutoff, int *n)
{
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    struct dirent *de;
    struct stat st;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || st.st_atime >= cutoff || st.st_mtime >= cutoff)
            continue;
        if (unlinkat(dirfd, de->d_name, 0) == 0)
            (*n)++;
    }
    closedir(d);
}

/* The tmp/ of a Maildir or of one of its folders. */
static void sweep_tmp_of(int dirfd, time_t cutoff, int *n)
{
    int tmp = open_sub(dirfd, "tmp");
    if (tmp >= 0) {
        sweep_files(tmp, cutoff, n);
        close(tmp);
    }
}

static void sweep_maildir(int userfd, time_t cutoff, int *n)
{
    sweep_tmp_of(userfd, cutoff, n);
    each_dir(userfd, 1, sweep_tmp_of, cutoff, n); /* Maildir++ folders: .Sent/tmp */
}

static void sweep_domain(int domainfd, time_t cutoff, int *n)
{
    each_dir(domainfd, 0, sweep_maildir, cutoff, n);
}

static int sweep_at(int statefd, unsigned max_age)
{
    time_t cutoff = time(NULL) - (time_t)max_age;
    int n = 0, mail = open_sub(statefd, "mail");
    sweep_tmp_of(statefd, cutoff, &n);
    if (mail >= 0) {
        each_dir(mail, 0, sweep_domain, cutoff, &n);
        close(mail);
    }
    return n;
}

int tmpsweep(const char *state_dir, unsigned max_age)
{
    int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int n = sweep_at(fd, max_age);
    close(fd);
    return n;
}

int tmpsweep_due(const char *state_dir, unsigned every, unsigned max_age)
{
    struct stat st;
    int fd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstatat(fd, STAMP, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
        time(NULL) - st.st_mtime < (time_t)every) {
        close(fd);
        return 0;
    }
    int stamp = openat(fd, STAMP, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (stamp >= 0) {
        (void)futimens(stamp, NULL);
        close(stamp);
    }
    int n = sweep_at(fd, max_age);
    close(fd);
    return n;
}
