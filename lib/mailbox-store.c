/*
 * mailbox-store: messages stored into a folder by IMAP (see mailbox.h): APPEND streamed into
 * the folder's tmp/ (CRLF stored as LF, sizes counted for S= and W=), its mtime set to the
 * INTERNALDATE, fsynced and linked into cur/; COPY and MOVE as hard links made in the
 * destination's tmp/ and moved into cur/ at once by the journal (mailbox-journal.c); and the
 * UIDs they get, assigned at once under the destination's index lock (UIDPLUS).
 * It must never make a message visible before its data is fsynced, never hold a message in
 * memory (an 8 KiB buffer), and never take a folder's index lock while holding it already.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "maildir.h"
#include "util.h"

/* ---- UIDs of new files ---- */

/* Under maildir's index lock (held by the caller): reconciles the folder, so that the new
 * files get their UIDs, and finds the UIDs of the base names given (new files are at the end). */
static int uids_of(const char *maildir, char **bases, size_t n, uint32_t *uids,
                   uint32_t *uidvalidity)
{
    struct mailbox fresh;
    int rc = mbx_load_path(&fresh, maildir), saved = errno;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        size_t blen = strcspn(bases[i], ":");
        uids[i] = 0;
        for (size_t k = fresh.count; k-- > 0 && uids[i] == 0;) {
            const char *name = mbx_name(&fresh, &fresh.msgs[k], NULL);
            if (name != NULL && strcspn(name, ":") == blen && memcmp(name, bases[i], blen) == 0)
                uids[i] = fresh.msgs[k].uid;
        }
        if (uids[i] == 0)
            rc = -1, saved = ENOENT; /* removed by another session at once */
    }
    *uidvalidity = fresh.uidvalidity;
    mbx_unload(&fresh);
    if (fresh.cur_fd >= 0)
        close(fresh.cur_fd);
    errno = saved;
    return rc;
}

/* Under maildir's index lock, the files names just put into its cur/ given their UIDs: by
 * lines appended to the index t (fast 0: mbx_tail_open could add to it), else by a
 * reconcile. 0 / -1. */
static int give_uids(struct mbx_tail *t, int fast, const char *maildir, char **names, size_t n,
                     uint32_t *uids, uint32_t *uidvalidity)
{
    if (fast != 0)
        return uids_of(maildir, names, n, uids, uidvalidity);
    *uidvalidity = t->uidvalidity;
    return mbx_tail_add(t, names, n, uids);
}

/* The flag letters of add, sorted and without repeats, after ":2,". */
static int info_of(const char *letters, char *dst, size_t size)
{
    for (const char *p = letters; *p != '\0'; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
            return errno = EINVAL, -1;
    if (strlen(letters) >= MAILBOX_KEYWORDS + 32)
        return errno = EINVAL, -1;
    mbx_sort_letters(letters, dst, size);
    return 0;
}

/* ---- APPEND ---- */

int mailbox_append_begin(struct mailbox_append *a, const char *maildir, const char *flags,
                         time_t date)
{
    char path[PATH_MAX];
    struct stat st;
    memset(a, 0, offsetof(struct mailbox_append, buf));
    a->fd = -1;
    a->date = date;
    if (info_of(flags, a->flags, sizeof a->flags) != 0)
        return -1;
    if (str_copy(a->maildir, sizeof a->maildir, maildir) != 0 ||
        str_format(path, sizeof path, "%s/cur", maildir) < 0 ||
        unique_name(a->unique, sizeof a->unique, mbx_host()) != 0 ||
        str_format(a->tmp_path, sizeof a->tmp_path, "%s/tmp/%s", maildir, a->unique) < 0)
        return errno = ENAMETOOLONG, -1;
    if (stat(path, &st) != 0)
        return -1;
    a->fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (a->fd < 0 && errno == ENOENT) { /* no tmp/: make it */
        str_format(path, sizeof path, "%s/tmp", maildir);
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        a->fd = open(a->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    }
    return a->fd < 0 ? -1 : 0;
}

static int flush_buf(struct mailbox_append *a)
{
    if (a->buf_len > 0 && write_all(a->fd, a->buf, a->buf_len) != 0) {
        a->failed_errno = errno ? errno : EIO;
        return -1;
    }
    a->buf_len = 0;
    return 0;
}

static int put_byte(struct mailbox_append *a, char c)
{
    if (a->buf_len == sizeof a->buf && flush_buf(a) != 0)
        return -1;
    a->buf[a->buf_len++] = c;
    a->size++;
    a->crlf_size += c == '\n' ? 2 : 1;
    return 0;
}

int mailbox_append_write(struct mailbox_append *a, const void *data, size_t len)
{
    const char *p = data;
    if (a->failed_errno != 0 || a->fd < 0)
        return errno = a->failed_errno ? a->failed_errno : EBADF, -1;
    for (size_t i = 0; i < len; i++) {
        if (a->pending_cr && p[i] != '\n' && put_byte(a, '\r') != 0)
            return errno = a->failed_errno, -1;
        a->pending_cr = p[i] == '\r';
        if (!a->pending_cr && put_byte(a, p[i]) != 0)
            return errno = a->failed_errno, -1;
    }
    return 0;
}

/* The data durable in tmp/ with its date, and its name in cur/ into name. */
static int append_flush(struct mailbox_append *a, char *name, size_t size)
{
    struct timespec t[2] = {{a->date, 0}, {a->date, 0}};
    if (a->pending_cr && put_byte(a, '\r') != 0)
        return errno = a->failed_errno, -1;
    a->pending_cr = 0;
    if (flush_buf(a) != 0)
        return errno = a->failed_errno, -1;
    if (a->date == 0)
        t[0].tv_nsec = t[1].tv_nsec = UTIME_NOW;
    int fd = a->fd;
    a->fd = -1;
    int rc = futimens(fd, t) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !rc)
        rc = 1, saved = errno;
    if (rc)
        return errno = saved, -1;
    mbx_kill_point();
    if (str_format(name, size, "%s,S=%llu,W=%llu:2,%s", a->unique, (unsigned long long)a->size,
                   (unsigned long long)a->crlf_size, a->flags) < 0)
        return errno = ENAMETOOLONG, -1;
    return 0;
}

/* Linked into cur/ as name, the tmp file removed, cur/ fsynced. */
static int append_link(struct mailbox_append *a, const char *name)
{
    char path[PATH_MAX];
    if (str_format(path, sizeof path, "%s/cur/%s", a->maildir, name) < 0)
        return errno = ENAMETOOLONG, -1;
    if (link(a->tmp_path, path) != 0)
        return -1;
    mbx_kill_point();
    unlink(a->tmp_path);
    a->tmp_path[0] = '\0';
    str_format(path, sizeof path, "%s/cur", a->maildir);
    return fsync_dir(path);
}

/* Under the index lock: linked, and given its UID in the index (appended in place when the
 * index allows it, else by a reconcile). */
static int append_locked(struct mailbox_append *a, char *name, uint32_t *uidvalidity, uint32_t *uid)
{
    struct mbx_tail t;
    char *names[1] = {name};
    int fast = mbx_tail_open(a->maildir, &t);
    int rc = fast < 0 ? -1 : append_link(a, name);
    if (rc == 0)
        rc = give_uids(&t, fast, a->maildir, names, 1, uid, uidvalidity);
    int saved = errno;
    mbx_tail_close(&t);
    errno = saved;
    return rc;
}

int mailbox_append_commit(struct mailbox_append *a, uint32_t *uidvalidity, uint32_t *uid)
{
    char name[NAME_MAX + 1];
    if (a->failed_errno != 0 || a->fd < 0) {
        int err = a->failed_errno ? a->failed_errno : EBADF;
        mailbox_append_abort(a);
        return errno = err, -1;
    }
    int lock = -1, rc = append_flush(a, name, sizeof name);
    if (rc == 0 && (lock = mbx_lock_index(a->maildir)) < 0)
        rc = -1;
    if (rc == 0)
        rc = append_locked(a, name, uidvalidity, uid);
    int saved = errno;
    if (lock >= 0)
        close(lock);
    mailbox_append_abort(a); /* the tmp file, if it was not linked */
    if (lock >= 0)
        mbx_kill_point();
    errno = saved;
    return rc;
}

void mailbox_append_abort(struct mailbox_append *a)
{
    int saved = errno;
    if (a->fd >= 0)
        close(a->fd);
    a->fd = -1;
    if (a->tmp_path[0] != '\0')
        unlink(a->tmp_path);
    a->tmp_path[0] = '\0';
    errno = saved;
}

/* ---- COPY and MOVE ---- */

void mailbox_copyuid_free(struct mailbox_copyuid *c)
{
    free(c->src);
    free(c->dst);
    memset(c, 0, sizeof *c);
}

/* The flags of m for the destination dst: keywords mapped by name (dst's letters, made there
 * if needed; a keyword letter without a name is dropped). */
static int dest_flags(struct mailbox *mb, const struct mailbox_msg *m, struct mailbox *dst,
                      char *out, size_t size)
{
    char letters[64], mapped[64];
    size_t n = 0;
    int same = strcmp(mb->path, dst->path) == 0;
    mailbox_flags(m, letters, sizeof letters);
    for (const char *p = letters; *p != '\0' && n + 1 < sizeof mapped; p++) {
        const char *name = *p >= 'a' && *p <= 'z' ? mb->kw.names[*p - 'a'] : NULL;
        char c = *p < 'a' || same ? *p : name != NULL ? mailbox_flag_letter(dst, name, 1) : 0;
        if (c != 0)
            mapped[n++] = c;
    }
    mapped[n] = '\0';
    return info_of(mapped, out, size);
}

/* The data of m copied into dst_tmpfd/name (another file system: no hard link). */
static int copy_data(struct mailbox *mb, struct mailbox_msg *m, int dst_tmpfd, const char *name)
{
    char buf[16384];
    struct stat st;
    int in = mailbox_open_msg(mb, m);
    if (in < 0)
        return errno == ENOENT ? 1 : -1;
    int out = openat(dst_tmpfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    ssize_t n = out >= 0 ? 1 : -1;
    while (n > 0 && (n = read(in, buf, sizeof buf)) > 0)
        n = write_all(out, buf, (size_t)n) == 0 ? n : -1;
    int rc = n < 0 || fstat(in, &st) != 0 ||
             futimens(out, (struct timespec[]){st.st_mtim, st.st_mtim}) != 0 || fsync(out) != 0;
    int saved = errno;
    close(in);
    if (out >= 0 && close(out) != 0 && !rc)
        rc = 1, saved = errno;
    if (rc && out >= 0)
        unlinkat(dst_tmpfd, name, 0);
    errno = saved;
    return rc ? -1 : 0;
}

/* Links m into dst's tmp/ as name. 0, 1 if it is gone, -1. */
static int link_copy(struct mailbox *mb, struct mailbox_msg *m, int dst_tmpfd, const char *name)
{
    for (int tries = 0; tries < 5; tries++) {
        const char *src = mbx_name(mb, m, NULL);
        if (src == NULL)
            return errno == ENOENT ? 1 : -1;
        if (linkat(mb->cur_fd, src, dst_tmpfd, name, 0) == 0)
            return 0;
        if (errno == EXDEV)
            return copy_data(mb, m, dst_tmpfd, name);
        int rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc;
    }
    return errno = EAGAIN, -1;
}

/* One copy of the message with this UID in dst's tmp/, its name into *name. */
/* A unique name that sorts after prev (names are numbered in base-name order, so the copies
 * get increasing UIDs in the order given, as COPYUID's sets are read). */
static int unique_after(char *dst, size_t size, const char *prev)
{
    for (int tries = 0; tries < 1000; tries++) {
        if (unique_name(dst, size, mbx_host()) != 0)
            return -1;
        if (prev == NULL || strcmp(dst, prev) > 0)
            return 0;
    }
    return errno = EAGAIN, -1;
}

/* S= of m: from its name, or the file's size. 0, 1 if it is gone, -1. */
static int size_of(struct mailbox *mb, struct mailbox_msg *m, uint64_t *size)
{
    struct stat st;
    size_t ulen;
    uint64_t crlf;
    for (int tries = 0; tries < 5; tries++) {
        const char *name = mbx_name(mb, m, NULL);
        if (name == NULL)
            return errno == ENOENT ? 1 : -1;
        if (maildir_parse_name(name, &ulen, size, &crlf) == 0)
            return 0;
        if (fstatat(mb->cur_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            *size = (uint64_t)st.st_size;
            return 0;
        }
        int rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc;
    }
    return errno = EAGAIN, -1;
}

static int one_copy(struct mailbox *mb, uint32_t uid, struct mailbox *dst, int tmpfd,
                    const char *prev, char **name)
{
    char info[64], unique[160], buf[NAME_MAX + 1];
    uint64_t size;
    struct mailbox_msg *m = mailbox_by_uid(mb, uid);
    if (m == NULL || m->gone || size_of(mb, m, &size) == 1)
        return errno = ENOENT, 1;
    if (dest_flags(mb, m, dst, info, sizeof info) != 0 ||
        unique_after(unique, sizeof unique, prev) != 0 ||
        str_format(buf, sizeof buf, "%s,S=%llu,W=%llu:2,%s", unique, (unsigned long long)size,
                   (unsigned long long)m->crlf_size, info) < 0)
        return errno = errno ? errno : ENAMETOOLONG, -1;
    int rc = link_copy(mb, m, tmpfd, buf);
    if (rc == 0 && (*name = strdup(buf)) == NULL) {
        unlinkat(tmpfd, buf, 0);
        return errno = ENOMEM, -1;
    }
    mbx_kill_point();
    return rc == 1 ? (errno = ENOENT, 1) : rc;
}

static int open_sub(const char *maildir, const char *sub)
{
    char path[PATH_MAX];
    if (str_format(path, sizeof path, "%s/%s", maildir, sub) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && strcmp(sub, "tmp") == 0 && mkdir(path, 0700) == 0)
        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return fd;
}

/* Under dst's lock: the journal that moves the copies into cur/ (and, for MOVE, removes the
 * originals), done, then the UIDs. */
static int journal_copies(struct mailbox *mb, const uint32_t *uids, size_t n, const char *dst,
                          char **names, struct mailbox_copyuid *cu, int move)
{
    struct mbx_journal j;
    int lock = mbx_lock_index(dst);
    if (lock < 0)
        return -1;
    int rc = mbx_journal_begin(&j, dst);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = mbx_journal_add(&j, 'L', names[i], names[i], NULL);
    for (size_t i = 0; move && rc == 0 && i < n; i++) {
        const char *src = mbx_name(mb, mailbox_by_uid(mb, uids[i]), NULL);
        rc = src == NULL ? -1 : mbx_journal_add(&j, 'M', names[i], mb->path, src);
    }
    struct mbx_tail t = {-1, 0, 0, 0, 0};
    int fast = rc == 0 ? mbx_tail_open(dst, &t) : -1;
    if (rc != 0 || fast < 0)
        mbx_journal_abort(&j);
    else
        rc = mbx_journal_commit(&j);
    if (fast < 0)
        rc = -1;
    if (rc == 0)
        rc = give_uids(&t, fast, dst, names, n, cu->dst, &cu->uidvalidity);
    int saved = errno;
    mbx_tail_close(&t);
    close(lock);
    errno = saved;
    return rc;
}

static int store_copies(struct mailbox *mb, const uint32_t *uids, size_t n, const char *dst,
                        struct mailbox_copyuid *cu, int move)
{
    struct mailbox dm;
    memset(cu, 0, sizeof *cu);
    memset(&dm, 0, sizeof dm);
    dm.cur_fd = dm.watch_fd = dm.index_fd = -1;
    int curfd = open_sub(dst, "cur"), tmpfd = curfd >= 0 ? open_sub(dst, "tmp") : -1;
    if (curfd >= 0)
        close(curfd);
    if (tmpfd < 0 || str_copy(dm.path, sizeof dm.path, dst) != 0)
        return -1;
    mbx_keywords_load(dst, &dm.kw);
    char **names = calloc(n + 1, sizeof *names);
    cu->src = calloc(n + 1, sizeof *cu->src);
    cu->dst = calloc(n + 1, sizeof *cu->dst);
    int rc = names == NULL || cu->src == NULL || cu->dst == NULL ? (errno = ENOMEM, -1) : 0;
    size_t made = 0;
    for (; rc == 0 && made < n; made++) {
        rc = one_copy(mb, uids[made], &dm, tmpfd, made > 0 ? names[made - 1] : NULL, &names[made]);
        if (rc == 0)
            cu->src[made] = uids[made];
    }
    made -= rc != 0;
    if (rc == 0 && fsync(tmpfd) != 0)
        rc = -1;
    if (rc == 0)
        rc = journal_copies(mb, uids, n, dst, names, cu, move);
    int saved = errno;
    for (size_t i = 0; i < made; i++) {
        if (rc != 0)
            unlinkat(tmpfd, names[i], 0); /* not done: the copies go (ENOENT once moved) */
        free(names[i]);
    }
    free(names);
    close(tmpfd);
    mbx_keywords_free(&dm.kw);
    cu->count = rc == 0 ? n : 0;
    if (rc != 0)
        mailbox_copyuid_free(cu);
    errno = saved;
    return rc;
}

int mailbox_copy(struct mailbox *mb, const uint32_t *uids, size_t n, const char *dst_maildir,
                 struct mailbox_copyuid *cu)
{
    return store_copies(mb, uids, n, dst_maildir, cu, 0);
}

int mailbox_move(struct mailbox *mb, const uint32_t *uids, size_t n, const char *dst_maildir,
                 struct mailbox_copyuid *cu, struct mailbox_changes *ch)
{
    memset(ch, 0, sizeof *ch);
    if (mbx_changes_alloc(ch, mb->count) != 0)
        return -1;
    int rc = store_copies(mb, uids, n, dst_maildir, cu, 1);
    if (rc != 0) {
        int saved = errno;
        mailbox_changes_free(ch);
        errno = saved;
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        mailbox_by_uid(mb, uids[i])->deleted = 2;
    mbx_drop_marked(mb, ch);
    return 0;
}
