/*
 * safedir: directories below a base the mail account owns, walked by descriptor (see
 * safedir.h). It must never hand a path below the base to a system call, never follow a
 * symbolic link, and never change the owner of a directory it did not make.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "safedir.h"
#include "util.h"

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
#define MAX_DEPTH 32

/* What went wrong with where/name, into err; returns -1 with errno = e. */
static int refuse(char *err, size_t errlen, const char *where, const char *name, int e)
{
    const char *why = e == ELOOP     ? "is a symbolic link: refused (links below the state "
                                       "directory are never followed)"
                      : e == ENOTDIR ? "is not a directory: refused"
                                     : NULL;
    if (why != NULL)
        str_format(err, errlen, "%s%s%s %s", where, name[0] ? "/" : "", name, why);
    else
        str_format(err, errlen, "%s%s%s: %s", where, name[0] ? "/" : "", name, strerror(e));
    errno = e;
    return -1;
}

/* openat of a directory that must be one: a link gives ELOOP, any other file ENOTDIR. */
static int open_dir(int dirfd, const char *name)
{
    int fd = openat(dirfd, name, DIR_FLAGS);
    if (fd < 0 && errno == ENOTDIR) {
        struct stat st;
        int saved = errno;
        errno = fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode) ? ELOOP
                                                                                           : saved;
    }
    return fd;
}

/* One component below dirfd, made (and given to owner) if missing and flags say so. */
static int open_component(int dirfd, const char *name, int flags, const struct safedir_owner *owner)
{
    int fd = open_dir(dirfd, name), made = 0;
    if (fd < 0 && errno == ENOENT && (flags & SAFEDIR_CREATE)) {
        if (mkdirat(dirfd, name, 0700) == 0)
            made = 1;
        else if (errno != EEXIST)
            return -1;
        fd = open_dir(dirfd, name);
    }
    if (fd >= 0 && made && owner != NULL && fchown(fd, owner->uid, owner->gid) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int bad_name(const char *name, size_t len)
{
    return len == 0 || len > NAME_MAX || (len == 1 && name[0] == '.') ||
           (len == 2 && name[0] == '.' && name[1] == '.');
}

int safedir_openat(int dirfd, const char *shown, const char *rel, int flags,
                   const struct safedir_owner *owner, char *err, size_t errlen)
{
    char where[PATH_MAX], name[NAME_MAX + 1];
    if (str_copy(where, sizeof where, shown) != 0)
        return refuse(err, errlen, "", "a path", ENAMETOOLONG);
    int fd = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        return refuse(err, errlen, where, "", errno);
    for (const char *p = rel; *p != '\0';) {
        size_t len = strcspn(p, "/");
        if (bad_name(p, len) || str_copy_n(name, sizeof name, p, len) != 0) {
            close(fd);
            return refuse(err, errlen, where, "", EINVAL);
        }
        int next = open_component(fd, name, flags, owner);
        int saved = errno;
        close(fd);
        if (next < 0)
            return refuse(err, errlen, where, name, saved);
        fd = next;
        size_t used = strlen(where);
        str_format(where + used, sizeof where - used, "/%s", name); /* messages only */
        p += len;
        p += *p == '/';
    }
    return fd;
}

int safedir_open(const char *base, const char *rel, int flags, const struct safedir_owner *owner,
                 char *err, size_t errlen)
{
    int basefd = open(base, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (basefd < 0)
        return refuse(err, errlen, base, "", errno);
    int fd = safedir_openat(basefd, base, rel, flags, owner, err, errlen);
    int saved = errno;
    close(basefd);
    errno = saved;
    return fd;
}

/* ---- removal ------------------------------------------------------------------------ */

struct walk {
    char where[PATH_MAX]; /* the directory being emptied, for messages */
    char *err;
    size_t errlen;
};

static int remove_dir(struct walk *w, int dirfd, const char *name, int depth);

/* Removes one entry of fd (the directory w->where): a directory by descent, anything else
 * (a symbolic link too) with unlinkat. A name already gone is fine. */
static int remove_entry(struct walk *w, int fd, const char *name, int depth)
{
    struct stat st;
    if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT ? 0 : refuse(w->err, w->errlen, w->where, name, errno);
    if (S_ISDIR(st.st_mode))
        return remove_dir(w, fd, name, depth + 1);
    if (unlinkat(fd, name, 0) != 0 && errno != ENOENT)
        return refuse(w->err, w->errlen, w->where, name, errno);
    return 0;
}

/* One pass over fd's entries. Returns how many were seen (0: it is empty), or -1. */
static long empty_pass(struct walk *w, int fd, int depth)
{
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (d == NULL) {
        int saved = errno;
        if (dfd >= 0)
            close(dfd);
        return refuse(w->err, w->errlen, w->where, "", saved);
    }
    long seen = 0;
    struct dirent *e;
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        seen++;
        if (remove_entry(w, fd, e->d_name, depth) != 0) {
            closedir(d);
            return -1;
        }
        errno = 0;
    }
    int saved = errno;
    closedir(d);
    return saved != 0 ? refuse(w->err, w->errlen, w->where, "", saved) : seen;
}

static int remove_dir(struct walk *w, int dirfd, const char *name, int depth)
{
    if (depth > MAX_DEPTH)
        return refuse(w->err, w->errlen, w->where, name, EMLINK);
    int fd = open_dir(dirfd, name);
    if (fd < 0)
        return refuse(w->err, w->errlen, w->where, name, errno);
    size_t used = strlen(w->where);
    str_format(w->where + used, sizeof w->where - used, "/%s", name); /* messages only */
    long seen = 1;
    for (int pass = 0; seen > 0 && pass < 3; pass++) /* a pass again: readdir during unlink */
        seen = empty_pass(w, fd, depth);
    w->where[used] = '\0';
    close(fd);
    if (seen < 0)
        return -1;
    if (unlinkat(dirfd, name, AT_REMOVEDIR) != 0)
        return refuse(w->err, w->errlen, w->where, name, errno);
    return 0;
}

int safedir_remove(int dirfd, const char *shown, const char *name, char *err, size_t errlen)
{
    struct walk w = {.err = err, .errlen = errlen};
    if (str_copy(w.where, sizeof w.where, shown) != 0 || bad_name(name, strlen(name)) ||
        strchr(name, '/') != NULL)
        return refuse(err, errlen, shown, name, EINVAL);
    return remove_dir(&w, dirfd, name, 0);
}
