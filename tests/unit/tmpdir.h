/*
 * tmpdir.h: what the unit tests that work in a scratch directory share: a file put into a
 * maildir's subdirectory, a check that one is there, and the directory removed at the end.
 * Only ever used on the directory a test made itself with mkdtemp(3).
 */
#ifndef YUBIN_TMPDIR_H
#define YUBIN_TMPDIR_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Writes data to md/sub/name (the test's check catches a failure). */
static inline void tmpdir_put(const char *md, const char *sub, const char *name, const char *data)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", md, sub, name);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return;
    fputs(data, f);
    fclose(f);
}

/* 1 if md/sub/name exists, else 0. */
static inline int tmpdir_exists(const char *md, const char *sub, const char *name)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s/%s", md, sub, name);
    return access(path, F_OK) == 0;
}

/* Removes dir and all in it: 0, or nonzero if that failed. */
static inline int tmpdir_remove(const char *dir)
{
    char cmd[PATH_MAX + 16];
    if (snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir) >= (int)sizeof cmd)
        return -1;
    return system(cmd);
}

#endif
