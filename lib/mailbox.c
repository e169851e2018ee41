/*
 * mailbox: one folder's UID index and reconciliation, flags by rename, and the Maildir++
 * folders (see mailbox.h and yubin-index(5)). It must never write the index except under its
 * lock and through write-new + fsync + rename (a kill -9 at any instant leaves the old index or
 * the new one), never trust a directory mtime from the same second as the scan that recorded it,
 * and never change a message's contents.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "maildir.h"
#include "util.h"

#define INDEX_MAX_SIZE (256u << 20) /* 256 MiB: millions of messages */
#define INDEX_MAGIC "yubin-index 1"

/* The directory times an index records: trusted only when older than the scan's second. */
struct dirtimes {
    struct timespec cur, new_;
};

/* ---- messages ---- */

int mbx_set_name(struct mailbox_msg *m, const char *name)
{
    char *copy = strdup(name);
    if (copy == NULL)
        return -1;
    free(m->name);
    m->name = copy;
    m->base_len = strcspn(name, ":");
    m->unique_len = strcspn(name, ",:");
    return 0;
}

void mbx_free_msgs(struct mailbox_msg *msgs, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(msgs[i].name);
    free(msgs);
}

static int base_cmp(const struct mailbox_msg *a, const struct mailbox_msg *b)
{
    size_t n = a->base_len < b->base_len ? a->base_len : b->base_len;
    int c = memcmp(a->name, b->name, n);
    return c != 0 ? c : (a->base_len > b->base_len) - (a->base_len < b->base_len);
}

static int by_base(const void *a, const void *b)
{
    return base_cmp(a, b);
}

int mbx_by_uid(const void *a, const void *b)
{
    uint32_t x = ((const struct mailbox_msg *)a)->uid, y = ((const struct mailbox_msg *)b)->uid;
    return (x > y) - (x < y);
}

/* ---- the index file ---- */

static int parse_time(const char *text, struct timespec *t)
{
    unsigned long long sec, nsec;
    char end;
    if (sscanf(text, "%llu.%9llu%c", &sec, &nsec, &end) != 2 || nsec > 999999999ull)
        return -1;
    t->tv_sec = (time_t)sec;
    t->tv_nsec = (long)nsec;
    return 0;
}

/* One "<uid> <size> <crlf-size> <name>" line into m. */
static int parse_entry(char *line, struct mailbox_msg *m, uint32_t uidnext)
{
    unsigned long uid;
    unsigned long long size, crlf;
    int off = 0;
    if (sscanf(line, "%lu %llu %llu %n", &uid, &size, &crlf, &off) != 3 || off == 0 || uid == 0 ||
        uid >= uidnext || line[off] == '\0' || line[off] == '.' || strchr(line + off, '/') != NULL)
        return -1;
    memset(m, 0, sizeof *m);
    m->uid = (uint32_t)uid;
    m->size = size;
    m->crlf_size = crlf;
    return mbx_set_name(m, line + off);
}

/* The header lines: magic, uidvalidity, uidnext, cur and new times. */
static int parse_header(char **lines, struct mailbox *mb, struct dirtimes *t)
{
    unsigned long v, n;
    char end;
    if (strcmp(lines[0], INDEX_MAGIC) != 0 ||
        sscanf(lines[1], "uidvalidity %lu%c", &v, &end) != 1 || v == 0 || v > UINT32_MAX ||
        sscanf(lines[2], "uidnext %lu%c", &n, &end) != 1 || n == 0 || n > UINT32_MAX ||
        strncmp(lines[3], "cur ", 4) != 0 || parse_time(lines[3] + 4, &t->cur) != 0 ||
        strncmp(lines[4], "new ", 4) != 0 || parse_time(lines[4] + 4, &t->new_) != 0)
        return -1;
    mb->uidvalidity = (uint32_t)v;
    mb->uidnext = (uint32_t)n;
    return 0;
}

/* The next whole line of f (its '\n' cut), or NULL at the end or an unterminated last line. */
static char *next_line(FILE *f, char **line, size_t *cap)
{
    ssize_t n = getline(line, cap, f);
    if (n <= 0 || (*line)[n - 1] != '\n')
        return NULL;
    (*line)[n - 1] = '\0';
    return *line;
}

/* The entries after the header, streamed (no copy of the file is held), into mb->msgs. */
static int read_entries(FILE *f, struct mailbox *mb, size_t guess)
{
    char *line = NULL;
    size_t cap = 0, alloc = 0;
    int rc = 0;
    if (mem_grow(&mb->msgs, &alloc, guess + 1, sizeof *mb->msgs) != 0)
        return 1;
    while (rc == 0 && next_line(f, &line, &cap) != NULL) {
        if (mem_grow(&mb->msgs, &alloc, mb->count + 1, sizeof *mb->msgs) != 0) {
            rc = 1;
            break;
        }
        struct mailbox_msg *m = &mb->msgs[mb->count];
        rc = parse_entry(line, m, mb->uidnext) != 0;
        if (rc == 0 && mb->count > 0 && m->uid <= mb->msgs[mb->count - 1].uid) {
            free(m->name);
            rc = 1;
        }
        mb->count += rc == 0;
    }
    free(line);
    struct mailbox_msg *fit = realloc(mb->msgs, (mb->count + 1) * sizeof *fit);
    if (fit != NULL)
        mb->msgs = fit;
    return rc;
}

/* Reads <folder>/yubin-index into mb (msgs in UID order). 0, 1 if missing or unusable. */
static int index_read(struct mailbox *mb, struct dirtimes *t)
{
    char path[PATH_MAX], *head[5] = {NULL}, *line = NULL;
    size_t cap = 0;
    struct stat st;
    if (str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) < 0)
        return 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size <= INDEX_MAX_SIZE
                  ? fdopen(fd, "r")
                  : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return 1;
    }
    int rc = 0;
    for (int i = 0; rc == 0 && i < 5; i++)
        rc = next_line(f, &line, &cap) == NULL || (head[i] = strdup(line)) == NULL;
    rc = rc || parse_header(head, mb, t) != 0 || read_entries(f, mb, (size_t)st.st_size / 48);
    for (int i = 0; i < 5; i++)
        free(head[i]);
    free(line);
    fclose(f);
    if (rc) {
        mbx_free_msgs(mb->msgs, mb->count);
        mb->msgs = NULL;
        mb->count = 0;
    }
    return rc;
}

/* The test hook: YUBIN_TEST_INDEX_KILL=<n> kills the writer with SIGKILL at step n
 * (0 the new file created, 1..count after each entry, count+1 after fsync, count+2 after the
 * rename), so a test can crash an index rewrite at every point. */
static void kill_point(long step)
{
    static long at = -2;
    if (at == -2) {
        const char *v = getenv("YUBIN_TEST_INDEX_KILL");
        at = v != NULL ? strtol(v, NULL, 10) : -1;
    }
    if (at >= 0 && step == at)
        raise(SIGKILL);
}

static int write_entries(FILE *f, const struct mailbox *mb, const struct dirtimes *t)
{
    int hook = getenv("YUBIN_TEST_INDEX_KILL") != NULL;
    fprintf(f, INDEX_MAGIC "\nuidvalidity %lu\nuidnext %lu\ncur %lld.%09ld\nnew %lld.%09ld\n",
            (unsigned long)mb->uidvalidity, (unsigned long)mb->uidnext, (long long)t->cur.tv_sec,
            t->cur.tv_nsec, (long long)t->new_.tv_sec, t->new_.tv_nsec);
    for (size_t i = 0; i < mb->count; i++) {
        const struct mailbox_msg *m = &mb->msgs[i];
        fprintf(f, "%lu %llu %llu %s\n", (unsigned long)m->uid, (unsigned long long)m->size,
                (unsigned long long)m->crlf_size, m->name);
        if (hook && fflush(f) == 0)
            kill_point((long)i + 1);
    }
    return fflush(f) != 0 || ferror(f) ? -1 : 0;
}

/* Writes the index: <folder>/yubin-index.new, fsync, rename, fsync the folder. 0 / -1. */
static int index_write(const struct mailbox *mb, const struct dirtimes *t)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (str_format(tmp, sizeof tmp, "%s/" MAILBOX_INDEX_NAME ".new", mb->path) < 0 ||
        str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    kill_point(0);
    int rc = write_entries(f, mb, t) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (fclose(f) != 0 && !rc)
        rc = 1, saved = errno;
    kill_point((long)mb->count + 1);
    if (rc || rename(tmp, path) != 0) {
        saved = rc ? saved : errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    kill_point((long)mb->count + 2);
    return fsync_dir(mb->path);
}

/* ---- reconciling with the directories ---- */

/* Times of cur/ and new/ worth recording: a zero time (never trusted) for a directory changed
 * in the current second (CLOCK_REALTIME_COARSE, which file times never precede): a later
 * change in that second might leave its mtime as it is. */
static int dir_times(const struct mailbox *mb, struct dirtimes *t, int for_record)
{
    struct stat sc, sn;
    struct timespec now;
    if (fstat(mb->cur_fd, &sc) != 0 || fstatat(mb->cur_fd, "../new", &sn, 0) != 0)
        return -1;
    t->cur = sc.st_mtim;
    t->new_ = sn.st_mtim;
    if (for_record && clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0 &&
        (t->cur.tv_sec >= now.tv_sec || t->new_.tv_sec >= now.tv_sec))
        t->cur.tv_sec = t->cur.tv_nsec = t->new_.tv_sec = t->new_.tv_nsec = 0;
    return 0;
}

static int same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec != 0 && a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

/* The scanned listing as messages (UIDs 0 for now), sorted by base name. */
static int scan(struct mailbox *mb, struct mailbox_msg **out, size_t *count)
{
    struct maildir_list l;
    if (maildir_list_load(&l, mb->path) != 0)
        return -1;
    struct mailbox_msg *msgs = calloc(l.count + 1, sizeof *msgs);
    size_t n = 0;
    for (size_t i = 0; msgs != NULL && i < l.count; i++) {
        if (strchr(l.entries[i].name, '\n') != NULL)
            continue; /* cannot be an index line: not served */
        if (mbx_set_name(&msgs[n], l.entries[i].name) != 0) {
            mbx_free_msgs(msgs, n);
            msgs = NULL;
            break;
        }
        msgs[n].size = l.entries[i].size;
        msgs[n].crlf_size = l.entries[i].crlf_size;
        n++;
    }
    maildir_list_free(&l);
    if (msgs == NULL)
        return errno = ENOMEM, -1;
    qsort(msgs, n, sizeof *msgs, by_base);
    *out = msgs;
    *count = n;
    return 0;
}

/* Gives the scanned messages the UIDs the index knew (by base name) and new ones, in base
 * order, to the rest; the index's vanished messages are dropped. Returns 1 if the index
 * changed, 0 if not. */
static int merge(struct mailbox *mb, struct mailbox_msg *found, size_t nfound)
{
    int changed = 0;
    if (mb->count > 1)
        qsort(mb->msgs, mb->count, sizeof *mb->msgs, by_base);
    size_t j = 0;
    for (size_t i = 0; i < nfound; i++) {
        while (j < mb->count && base_cmp(&mb->msgs[j], &found[i]) < 0)
            j++, changed = 1; /* vanished */
        if (j < mb->count && base_cmp(&mb->msgs[j], &found[i]) == 0) {
            found[i].uid = mb->msgs[j].uid;
            changed |= strcmp(found[i].name, mb->msgs[j].name) != 0;
            j++;
        }
    }
    changed |= j < mb->count;
    for (size_t i = 0; i < nfound; i++)
        if (found[i].uid == 0 && (i == 0 || base_cmp(&found[i - 1], &found[i]) != 0)) {
            found[i].uid = mb->uidnext++;
            found[i].recent = 1;
            changed = 1;
        }
    size_t kept = 0;
    for (size_t i = 0; i < nfound; i++) {
        if (found[i].uid == 0) {
            free(found[i].name); /* the same base twice: a rename race, keep the first */
            continue;
        }
        found[kept++] = found[i];
    }
    mbx_free_msgs(mb->msgs, mb->count);
    mb->msgs = found;
    mb->count = kept;
    qsort(mb->msgs, mb->count, sizeof *mb->msgs, mbx_by_uid);
    return changed;
}

static uint32_t new_uidvalidity(void)
{
    time_t now = time(NULL);
    return now > 0 && (uint64_t)now < UINT32_MAX ? (uint32_t)now : 1;
}

/* Under the lock: the index, and the directories unless their times say nothing changed. */
/* What the session's next refresh compares: the directory times taken before the scan, and
 * the index file as it now is. */
static void remember(struct mailbox *mb, const struct dirtimes *seen)
{
    char path[PATH_MAX];
    struct stat st;
    mb->seen_cur = seen->cur;
    mb->seen_new = seen->new_;
    mb->seen_index = 0;
    if (str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) >= 0 &&
        stat(path, &st) == 0)
        mb->seen_index = (unsigned long long)st.st_ino;
}

/* The directory times are taken before the scan, so that a change made while it reads is
 * newer than what the index records (and seen by the next open); our own moves from new/ to
 * cur/ make that next open scan once more. */
static int load_dirs(struct mailbox *mb, const struct dirtimes *recorded, int fresh)
{
    struct dirtimes seen;
    if (dir_times(mb, &seen, 1) != 0)
        return -1;
    if (!fresh && same_time(seen.cur, recorded->cur) && same_time(seen.new_, recorded->new_)) {
        remember(mb, &seen);
        return 0;
    }
    struct mailbox_msg *found;
    size_t nfound;
    if (scan(mb, &found, &nfound) != 0)
        return -1;
    mb->scanned = 1;
    int changed = merge(mb, found, nfound) || fresh;
    if (changed || !same_time(seen.cur, recorded->cur) || !same_time(seen.new_, recorded->new_))
        if (index_write(mb, &seen) != 0)
            return -1;
    remember(mb, &seen);
    return 0;
}

int mbx_load_locked(struct mailbox *mb)
{
    struct dirtimes recorded = {{0, 0}, {0, 0}};
    if (mbx_journal_finish(mb->path) != 0)
        return -1;
    int fresh = index_read(mb, &recorded) != 0;
    if (fresh) {
        mb->created = 1;
        mb->uidvalidity = new_uidvalidity();
        mb->uidnext = 1;
    }
    return load_dirs(mb, &recorded, fresh);
}

int mbx_unchanged(struct mailbox *mb)
{
    struct dirtimes now;
    char path[PATH_MAX];
    struct stat st;
    if (dir_times(mb, &now, 0) != 0 || !same_time(now.cur, mb->seen_cur) ||
        !same_time(now.new_, mb->seen_new) ||
        str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) < 0 ||
        stat(path, &st) != 0)
        return 0;
    return (unsigned long long)st.st_ino == mb->seen_index;
}

int mbx_lock_file(const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (str_format(path, sizeof path, "%s/%s", dir, name) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int mbx_lock_index(const char *maildir)
{
    return mbx_lock_file(maildir, MAILBOX_INDEX_NAME ".lock");
}

int mbx_replace_file(const char *dir, const char *name, const char *data, size_t len)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (str_format(tmp, sizeof tmp, "%s/%s.new", dir, name) < 0 ||
        str_format(path, sizeof path, "%s/%s", dir, name) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !rc)
        rc = 1, saved = errno;
    if (rc || rename(tmp, path) != 0) {
        saved = rc ? saved : errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return fsync_dir(dir);
}

int mailbox_open(struct mailbox *mb, const char *maildir)
{
    char path[PATH_MAX];
    memset(mb, 0, sizeof *mb);
    mb->cur_fd = -1;
    mb->watch_fd = -1;
    if (str_copy(mb->path, sizeof mb->path, maildir) != 0 ||
        str_format(path, sizeof path, "%s/cur", maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    mb->cur_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int lock = mb->cur_fd >= 0 ? mbx_lock_index(maildir) : -1;
    int rc = lock >= 0 ? mbx_load_locked(mb) : -1;
    int saved = errno;
    if (lock >= 0)
        close(lock);
    for (size_t i = 0; rc == 0 && i < mb->count; i++)
        mb->total_crlf += mb->msgs[i].crlf_size;
    if (rc == 0)
        mbx_keywords_load(mb->path, &mb->kw);
    if (rc != 0) {
        mailbox_close(mb);
        errno = saved;
    }
    return rc;
}

void mailbox_close(struct mailbox *mb)
{
    mbx_free_msgs(mb->msgs, mb->count);
    if (mb->cur_fd >= 0)
        close(mb->cur_fd);
    if (mb->watch_fd >= 0)
        close(mb->watch_fd);
    mbx_keywords_free(&mb->kw);
    mb->watch_fd = -1;
    mb->msgs = NULL;
    mb->count = 0;
    mb->total_crlf = 0;
    mb->cur_fd = -1;
}

struct mailbox_msg *mailbox_by_uid(struct mailbox *mb, uint32_t uid)
{
    struct mailbox_msg key = {.uid = uid};
    if (mb->count == 0)
        return NULL;
    return bsearch(&key, mb->msgs, mb->count, sizeof *mb->msgs, mbx_by_uid);
}

void mailbox_uidl(const struct mailbox_msg *m, char out[MAILBOX_UIDL_MAX + 1])
{
    int ok = m->unique_len <= MAILBOX_UIDL_MAX;
    for (size_t i = 0; ok && i < m->unique_len; i++)
        ok = m->name[i] > 0x20 && m->name[i] < 0x7f;
    if (ok) {
        memcpy(out, m->name, m->unique_len);
        out[m->unique_len] = '\0';
        return;
    }
    unsigned char digest[16];
    crypto_generichash(digest, sizeof digest, (const unsigned char *)m->name, m->unique_len, NULL,
                       0);
    sodium_bin2hex(out, MAILBOX_UIDL_MAX + 1, digest, sizeof digest);
}

/* ---- a file renamed by another session ---- */

/* Finds the message's file again by its base name (another session changed its flags). 0 with
 * m->name updated, 1 if no file has that base, -1 on error. */
int mbx_find_base(int dirfd, const char *name, char *found, size_t size)
{
    size_t blen = strcspn(name, ":");
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    struct dirent *e;
    int rc = 1;
    while (rc == 1 && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, name, blen) == 0 &&
            (e->d_name[blen] == ':' || e->d_name[blen] == '\0'))
            rc = str_copy(found, size, e->d_name) != 0 ? -1 : 0;
    closedir(d);
    return rc;
}

int mbx_refind(struct mailbox *mb, struct mailbox_msg *m)
{
    char found[NAME_MAX + 1];
    int rc = mbx_find_base(mb->cur_fd, m->name, found, sizeof found);
    return rc == 0 && mbx_set_name(m, found) != 0 ? -1 : rc;
}

int mbx_refind_failed(struct mailbox *mb, struct mailbox_msg *m)
{
    return errno != ENOENT ? -1 : mbx_refind(mb, m);
}

int mailbox_open_msg(struct mailbox *mb, struct mailbox_msg *m)
{
    for (int tries = 0; tries < 5; tries++) {
        int fd = openat(mb->cur_fd, m->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        int rc = mbx_refind(mb, m);
        if (rc != 0)
            return errno = rc > 0 ? ENOENT : errno, -1;
    }
    return errno = ENOENT, -1;
}

/* ---- flags ---- */

static int is_flag(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

void mailbox_flags(const struct mailbox_msg *m, char *out, size_t size)
{
    const char *info = m->name + m->base_len;
    size_t n = 0;
    if (size == 0)
        return;
    if (strncmp(info, ":2,", 3) == 0)
        for (const char *p = info + 3; *p != '\0' && n + 1 < size; p++)
            if (is_flag(*p) && memchr(out, *p, n) == NULL)
                out[n++] = *p;
    out[n] = '\0';
    for (size_t i = 1; i < n; i++) /* insertion sort: maildir(5) wants ASCII order */
        for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
            char c = out[k];
            out[k] = out[k - 1];
            out[k - 1] = c;
        }
}

/* The new name of m with flags added and cleared. */
static int flagged_name(const struct mailbox_msg *m, const char *add, const char *clear, char *dst,
                        size_t size)
{
    char flags[64], keep[64 + 26 * 2];
    size_t n = 0;
    mailbox_flags(m, flags, sizeof flags);
    for (const char *p = flags; *p != '\0'; p++)
        if (strchr(clear, *p) == NULL)
            keep[n++] = *p;
    for (const char *p = add; *p != '\0' && n + 1 < sizeof keep; p++)
        if (is_flag(*p) && memchr(keep, *p, n) == NULL && strchr(clear, *p) == NULL)
            keep[n++] = *p;
    keep[n] = '\0';
    struct mailbox_msg sorted = {.name = NULL};
    char tmp[NAME_MAX + 1];
    if (str_format(tmp, sizeof tmp, "x:2,%s", keep) < 0)
        return -1;
    sorted.name = tmp;
    sorted.base_len = 1;
    mailbox_flags(&sorted, flags, sizeof flags);
    return str_format(dst, size, "%.*s:2,%s", (int)m->base_len, m->name, flags) < 0 ? -1 : 0;
}

int mailbox_set_flags(struct mailbox *mb, struct mailbox_msg *m, const char *add, const char *clear)
{
    char target[NAME_MAX + 1];
    for (int tries = 0; tries < 5; tries++) {
        if (flagged_name(m, add, clear, target, sizeof target) != 0)
            return errno = ENAMETOOLONG, -1;
        if (strcmp(target, m->name) == 0)
            return 0;
        if (renameat(mb->cur_fd, m->name, mb->cur_fd, target) == 0)
            return mbx_set_name(m, target);
        int rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc;
    }
    return errno = EAGAIN, -1;
}

int mailbox_expunge(struct mailbox *mb, struct mailbox_msg *m)
{
    for (int tries = 0; tries < 5; tries++) {
        if (unlinkat(mb->cur_fd, m->name, 0) == 0)
            return 0;
        int rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
    return errno = EAGAIN, -1;
}

int mailbox_sync(struct mailbox *mb)
{
    return fsync(mb->cur_fd);
}

/* ---- IMAP message attributes ---- */

int mailbox_internaldate(struct mailbox *mb, struct mailbox_msg *m, time_t *when)
{
    struct stat st;
    for (int tries = 0; tries < 5; tries++) {
        if (fstatat(mb->cur_fd, m->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            *when = st.st_mtime;
            return 0;
        }
        int rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc;
    }
    return errno = EAGAIN, -1;
}
