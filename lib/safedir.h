/*
 * safedir: walking, creating and removing directories below a base that the mail account
 * owns, as root, without ever following a link it could plant (DESIGN.md §5.7). The base
 * (state_dir) is the administrator's path and is opened by name; every component below it
 * is opened with openat(O_NOFOLLOW | O_DIRECTORY), made with mkdirat, given away with fchown
 * on its own descriptor and removed with unlinkat on its parent's descriptor. A symbolic link
 * (or anything that is not a directory) where a directory is expected is refused, never
 * followed and never replaced. Nothing here takes a path below the base to a system call.
 */
#ifndef YUBIN_SAFEDIR_H
#define YUBIN_SAFEDIR_H

#include <stddef.h>
#include <sys/types.h>

#define SAFEDIR_CREATE 1 /* make a missing component (mkdirat, mode 0700) */

/* Who gets the directories safedir_open makes (fchown on their descriptors); NULL leaves them
 * to the caller. A directory that was already there keeps its owner. */
struct safedir_owner {
    uid_t uid;
    gid_t gid;
};

/* Opens base/rel, rel being components separated by '/' (none empty, "." or ".."), and
 * returns the descriptor of the last one (O_RDONLY | O_DIRECTORY | O_CLOEXEC), or -1 with
 * errno set and a message in err that names the component (ELOOP for a symbolic link, ENOTDIR
 * for another kind of file, ENOENT for a missing one without SAFEDIR_CREATE). */
int safedir_open(const char *base, const char *rel, int flags, const struct safedir_owner *owner,
                 char *err, size_t errlen);
/* The same from an open directory; what is named in messages is shown as under `shown`. */
int safedir_openat(int dirfd, const char *shown, const char *rel, int flags,
                   const struct safedir_owner *owner, char *err, size_t errlen);

/* Removes the directory `name` of dirfd and everything below it, by descriptor: a directory
 * is entered only through openat(O_NOFOLLOW | O_DIRECTORY), every entry is removed with
 * unlinkat, and a symbolic link inside is removed itself, never followed. `name` itself must
 * be a directory (a link there is refused: ELOOP). At most 32 levels. 0, or -1 with errno and
 * a message in err (what was removed before the error stays removed). */
int safedir_remove(int dirfd, const char *shown, const char *name, char *err, size_t errlen);

#endif
