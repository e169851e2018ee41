/*
 * maildir-list: the POP3 side of the maildir module (see the Listing section of maildir.h):
 * the session lock, the move from new/ to cur/ at login, and the listing of cur/ with sizes
 * taken from the file names. It must never stat or read a message whose name carries W=
 * (100,000 messages list in a fraction of a second), never change a message's contents, and
 * never delete anything (pop3-in does that at QUIT).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"
#include "util.h"

int maildir_lock(const char *maildir, int *fd)
{
    char path[PATH_MAX];
    if (str_format(path, sizeof path, "%s/pop3.lock", maildir) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lfd < 0)
        return -1;
    if (flock(lfd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        close(lfd);
        errno = saved;
        return saved == EWOULDBLOCK ? 1 : -1;
    }
    *fd = lfd;
    return 0;
}

static int mkdir_ok(const char *path)
{
    return mkdir(path, 0700) == 0 || errno == EEXIST ? 0 : -1;
}

/* Makes every missing component of path, from the top. */
static int mkdir_parents(char *path)
{
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir_ok(path);
        *p = '/';
        if (rc != 0)
            return -1;
    }
    return mkdir_ok(path);
}

int maildir_ensure(const char *maildir)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char buf[PATH_MAX];
    if (str_copy(buf, sizeof buf, maildir) != 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    /* The Maildir itself first: every login finds it there, and only a missing parent
     * (ENOENT) needs the walk over every component of the path. */
    if (mkdir_ok(buf) != 0 && (errno != ENOENT || mkdir_parents(buf) != 0))
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(subs); i++)
        if (str_format(buf, sizeof buf, "%s/%s", maildir, subs[i]) < 0 || mkdir_ok(buf) != 0)
            return -1;
    return 0;
}

/* Reads "<key>=<digits>" at p (up to ',' ':' or the end) into *v. */
static int field_value(const char *p, size_t len, char key, uint64_t *v)
{
    char digits[24];
    if (len < 3 || p[0] != key || p[1] != '=' || len - 2 >= sizeof digits)
        return 0;
    memcpy(digits, p + 2, len - 2);
    digits[len - 2] = '\0';
    return parse_u64(digits, v) == 0;
}

int maildir_parse_name(const char *name, size_t *unique_len, uint64_t *size, uint64_t *crlf)
{
    size_t ulen = strcspn(name, ",:");
    int have_s = 0, have_w = 0;
    if (ulen == 0 || name[0] == '.')
        return -1;
    *unique_len = ulen;
    *size = *crlf = 0;
    const char *p = name + ulen;
    while (*p == ',') {
        p++;
        size_t len = strcspn(p, ",:");
        have_s |= field_value(p, len, 'S', size);
        have_w |= field_value(p, len, 'W', crlf);
        p += len;
    }
    return have_s && have_w ? 0 : 1;
}

int maildir_measure(int dirfd, const char *name, uint64_t *size, uint64_t *crlf)
{
    int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return -1;
    char buf[16384];
    ssize_t n;
    char prev = '\0';
    *size = *crlf = 0;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n' && prev != '\r')
                (*crlf)++;
            prev = buf[i];
        }
        *size += (uint64_t)n;
        *crlf += (uint64_t)n;
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return n < 0 ? -1 : 0;
}

/* new/<name> -> cur/<name>:2, for every message in new/. Returns the number moved, or -1. */
static long move_new(int newfd, int curfd)
{
    DIR *d = fdopendir(newfd);
    if (d == NULL) {
        close(newfd);
        return -1;
    }
    long moved = 0;
    struct dirent *e;
    char target[NAME_MAX + 8];
    errno = 0;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        const char *info = strchr(e->d_name, ':') ? "" : ":2,";
        if (str_format(target, sizeof target, "%s%s", e->d_name, info) < 0)
            continue;
        if (renameat(newfd, e->d_name, curfd, target) != 0 && errno != ENOENT) {
            int saved = errno;
            closedir(d);
            errno = saved;
            return -1;
        }
        moved++;
        errno = 0;
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return saved != 0 ? -1 : moved;
}

/* The list being made: names in one block (offsets now, pointers once it stops moving). */
struct names_block {
    struct maildir_list *l;
    size_t cap, names_len, names_cap;
};

/* Appends name to the names block. */
static int add_name(void *ctx, const char *name)
{
    struct names_block *b = ctx;
    struct maildir_list *l = b->l;
    size_t *cap = &b->cap, *names_len = &b->names_len, *names_cap = &b->names_cap;
    size_t len = strlen(name) + 1;
    if (l->count == *cap) {
        size_t ncap = *cap ? *cap * 2 : 256;
        struct maildir_entry *ne = realloc(l->entries, ncap * sizeof *ne);
        if (ne == NULL)
            return errno = ENOMEM, -1;
        l->entries = ne;
        *cap = ncap;
    }
    if (*names_len + len > *names_cap) {
        size_t ncap = *names_cap ? *names_cap * 2 : 16384;
        while (ncap < *names_len + len)
            ncap *= 2;
        char *nn = realloc(l->names, ncap);
        if (nn == NULL)
            return errno = ENOMEM, -1;
        l->names = nn;
        *names_cap = ncap;
    }
    memcpy(l->names + *names_len, name, len);
    struct maildir_entry *e = &l->entries[l->count++];
    memset(e, 0, sizeof *e);
    e->name = (char *)(uintptr_t)*names_len; /* an offset until the block is final */
    *names_len += len;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct maildir_entry *)a)->name, ((const struct maildir_entry *)b)->name);
}

/* Sizes from the names (measuring only names without W=); drops unusable names. */
static int size_entries(struct maildir_list *l)
{
    size_t kept = 0;
    for (size_t i = 0; i < l->count; i++) {
        struct maildir_entry *e = &l->entries[i];
        e->name = l->names + (uintptr_t)e->name;
        int rc = maildir_parse_name(e->name, &e->unique_len, &e->size, &e->crlf_size);
        if (rc < 0 ||
            (rc == 1 && maildir_measure(l->cur_fd, e->name, &e->size, &e->crlf_size) != 0))
            continue; /* not a message, or gone */
        l->total_crlf += e->crlf_size;
        l->entries[kept++] = *e;
    }
    l->count = kept;
    return 0;
}

/* Every name of cur/ (but dot files) to fn, read as a stream. */
static int each_cur(int cur_fd, int (*fn)(void *ctx, const char *name), void *ctx)
{
    int fd = dup(cur_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    struct dirent *e;
    int rc = 0;
    errno = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.')
            rc = fn(ctx, e->d_name);
        errno = rc != 0 ? errno : 0;
    }
    int saved = errno;
    closedir(d);
    errno = saved;
    return rc != 0 || saved != 0 ? -1 : 0;
}

int maildir_scan(int cur_fd, const char *maildir, int (*fn)(void *ctx, const char *name), void *ctx)
{
    char path[PATH_MAX];
    if (str_format(path, sizeof path, "%s/new", maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    int newfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    long moved = newfd >= 0 ? move_new(newfd, cur_fd) : -1; /* closes newfd */
    if (moved < 0 || (moved > 0 && (fsync(cur_fd) != 0 || fsync_dir(path) != 0)))
        return -1;
    return each_cur(cur_fd, fn, ctx);
}

int maildir_list_load(struct maildir_list *l, const char *maildir)
{
    char path[PATH_MAX];
    struct names_block b = {l, 0, 0, 0};
    memset(l, 0, sizeof *l);
    l->cur_fd = -1;
    if (str_format(path, sizeof path, "%s/cur", maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    l->cur_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (l->cur_fd < 0 || maildir_scan(l->cur_fd, maildir, add_name, &b) != 0 ||
        size_entries(l) != 0) {
        int saved = errno;
        maildir_list_free(l);
        errno = saved;
        return -1;
    }
    if (l->count > 1)
        qsort(l->entries, l->count, sizeof *l->entries, by_name);
    return 0;
}

void maildir_list_free(struct maildir_list *l)
{
    free(l->entries);
    free(l->names);
    if (l->cur_fd >= 0)
        close(l->cur_fd);
    l->entries = NULL;
    l->names = NULL;
    l->count = 0;
    l->total_crlf = 0;
    l->cur_fd = -1;
}
