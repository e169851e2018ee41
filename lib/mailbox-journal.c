/*
 * mailbox-journal: the journal of COPY, MOVE and EXPUNGE (its format is in mailbox-int.h),
 * written whole under the folder's index lock before any of its steps is done, and finished by
 * the next open after a kill -9; the unique host name and the kill hook of the store tests.
 * It must never do a step before the journal is durable, never remove a MOVE's original
 * before its copy is in the destination's cur/, and never remove a file for EXPUNGE whose
 * \Deleted flag another session has cleared.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "util.h"

#define JOURNAL_MAGIC "yubin-journal 1"
#define JOURNAL_LINE_MAX (3 * PATH_MAX)

const char *mbx_host(void)
{
    static char host[256];
    if (host[0] == '\0' && (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0'))
        str_copy(host, sizeof host, "localhost");
    return host;
}

void mbx_kill_point(void)
{
    static long at = -2, step;
    if (at == -2) {
        const char *v = getenv("YUBIN_TEST_STORE_KILL");
        at = v != NULL ? strtol(v, NULL, 10) : -1;
    }
    if (at >= 0 && step++ == at)
        raise(SIGKILL);
}

/* ---- the journal ---- */

static int journal_paths(const char *maildir, char *tmp, char *path)
{
    if (str_format(tmp, PATH_MAX, "%s/" MBX_JOURNAL_NAME ".new", maildir) < 0 ||
        str_format(path, PATH_MAX, "%s/" MBX_JOURNAL_NAME, maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    return 0;
}

int mbx_journal_begin(struct mbx_journal *j, const char *maildir)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    j->f = NULL;
    if (str_copy(j->maildir, sizeof j->maildir, maildir) != 0 ||
        journal_paths(maildir, tmp, path) != 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 || (j->f = fdopen(fd, "w")) == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    fputs(JOURNAL_MAGIC "\n", j->f);
    return 0;
}

int mbx_journal_add(struct mbx_journal *j, char kind, const char *a, const char *b, const char *c)
{
    fprintf(j->f, "%c\t%s%s%s%s%s\n", kind, a, b ? "\t" : "", b ? b : "", c ? "\t" : "",
            c ? c : "");
    return ferror(j->f) ? -1 : 0;
}

void mbx_journal_abort(struct mbx_journal *j)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (j->f == NULL)
        return;
    fclose(j->f);
    j->f = NULL;
    if (journal_paths(j->maildir, tmp, path) == 0)
        unlink(tmp);
}

int mbx_journal_commit(struct mbx_journal *j)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (journal_paths(j->maildir, tmp, path) != 0)
        return -1;
    int rc = fflush(j->f) != 0 || ferror(j->f) || fsync(fileno(j->f)) != 0;
    int saved = errno;
    if (fclose(j->f) != 0 && !rc)
        rc = 1, saved = errno;
    j->f = NULL;
    mbx_kill_point();
    if (rc || rename(tmp, path) != 0) {
        saved = rc ? saved : errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    mbx_kill_point();
    if (fsync_dir(j->maildir) != 0)
        return -1;
    return mbx_journal_finish(j->maildir);
}

/* Removes dirfd's file name (or the one with its base name; with need_t only if it has T). */
static int remove_by_base(int dirfd, const char *name, int need_t)
{
    char found[NAME_MAX + 1];
    if (!need_t && unlinkat(dirfd, name, 0) == 0)
        return 0;
    if (!need_t && errno != ENOENT)
        return -1;
    int rc = mbx_find_base(dirfd, name, found, sizeof found);
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    const char *info = strchr(found, ':');
    if (need_t && (info == NULL || strncmp(info, ":2,", 3) != 0 || strchr(info + 3, 'T') == NULL))
        return 0; /* another session cleared \Deleted: it stays */
    return unlinkat(dirfd, found, 0) == 0 || errno == ENOENT ? 0 : -1;
}

/* MOVE's source: removed once the copy is in cur/ (under any flags). */
static int move_source(int curfd, char *fields, int *srcfd, char *srcdir, size_t size)
{
    char *name = strtok(fields, "\t"), *dir = strtok(NULL, "\t"), *src = strtok(NULL, "");
    char found[NAME_MAX + 1], path[PATH_MAX];
    if (name == NULL || dir == NULL || src == NULL)
        return 0;
    if (mbx_find_base(curfd, name, found, sizeof found) != 0)
        return 0; /* the copy never got there: the original stays */
    if (*srcfd < 0 || strcmp(dir, srcdir) != 0) {
        if (*srcfd >= 0 && (fsync(*srcfd) != 0 || close(*srcfd) != 0))
            return -1;
        if (str_format(path, sizeof path, "%s/cur", dir) < 0 || str_copy(srcdir, size, dir) != 0)
            return errno = ENAMETOOLONG, -1;
        *srcfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (*srcfd < 0)
            return errno == ENOENT ? 0 : -1;
    }
    return remove_by_base(*srcfd, src, 0);
}

/* One journal line, done. */
static int journal_line(char *line, int tmpfd, int curfd, int *srcfd, char *srcdir, size_t size)
{
    if (line[0] == '\0' || line[1] != '\t')
        return 0;
    char *fields = line + 2;
    if (line[0] == 'L') {
        char *tab = strchr(fields, '\t');
        if (tab == NULL)
            return 0;
        *tab = '\0'; /* no tmp/: nothing was linked there */
        return tmpfd < 0 || renameat(tmpfd, fields, curfd, tab + 1) == 0 || errno == ENOENT ? 0
                                                                                            : -1;
    }
    if (line[0] == 'M')
        return move_source(curfd, fields, srcfd, srcdir, size);
    if (line[0] == 'X')
        return remove_by_base(curfd, fields, 1);
    return 0;
}

static int journal_run(FILE *f, const char *maildir)
{
    char path[PATH_MAX], srcdir[PATH_MAX] = "";
    char *line = NULL;
    size_t cap = 0;
    int srcfd = -1, rc = 0;
    if (str_format(path, sizeof path, "%s/tmp", maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    int tmpfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (str_format(path, sizeof path, "%s/cur", maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    int curfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    ssize_t n = getline(&line, &cap, f);
    if (curfd < 0)
        rc = -1;
    else if (n <= 0 || strcmp(line, JOURNAL_MAGIC "\n") != 0)
        rc = 0; /* not ours (it is renamed into place whole): nothing to do */
    else
        while (rc == 0 && (n = getline(&line, &cap, f)) > 0 && n < JOURNAL_LINE_MAX) {
            line[strcspn(line, "\n")] = '\0';
            rc = journal_line(line, tmpfd, curfd, &srcfd, srcdir, sizeof srcdir);
            mbx_kill_point();
        }
    int saved = errno;
    if (rc == 0 && curfd >= 0 && fsync(curfd) != 0)
        rc = -1, saved = errno;
    if (srcfd >= 0 && ((fsync(srcfd) != 0 && rc == 0) || close(srcfd) != 0))
        rc = rc ? rc : -1, saved = errno;
    free(line);
    if (tmpfd >= 0)
        close(tmpfd);
    if (curfd >= 0)
        close(curfd);
    errno = saved;
    return rc;
}

int mbx_journal_finish(const char *maildir)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (journal_paths(maildir, tmp, path) != 0)
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    FILE *f = fdopen(fd, "r");
    if (f == NULL) {
        close(fd);
        return -1;
    }
    int rc = journal_run(f, maildir);
    fclose(f);
    if (rc != 0)
        return -1;
    mbx_kill_point();
    if (unlink(path) != 0 && errno != ENOENT)
        return -1;
    return fsync_dir(maildir);
}
