/*
 * maildir.c: durable delivery of one message into one or more Maildirs (DESIGN.md §3-4).
 *
 * The message is streamed once into state_dir/tmp/<unique> through an 8 KiB buffer, counting
 * S= (bytes on disk, LF line ends) and W= (bytes with CRLF line ends), then fsynced once and
 * closed. Each recipient gets a hard link <maildir>/new/<unique>,S=<s>,W=<w>; every new/ that
 * was linked into is fsynced once, and only then is the message durable. Missing Maildirs
 * (and their parents under state_dir) are created 0700, with their parents fsynced.
 *
 * It must never hold a message in memory, never leave a partial or unacknowledged file in
 * new/ after a failure the caller reports through maildir_msg_end(m, 1), and never ignore the
 * result of a write, fsync, close, link, mkdir or unlink. errno is kept for the caller.
 */
#include "config.h"

#include "maildir.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* A failed system call is temporary: the disk can be freed, a permission fixed. Only a
 * path that can never exist is permanent. */
static int result_of(int err)
{
    errno = err;
    if (err == ENAMETOOLONG || err == EINVAL)
        return -1;
    return 1;
}

int maildir_errno_is_full(int err)
{
#ifdef EDQUOT
    if (err == EDQUOT)
        return 1;
#endif
    return err == ENOSPC;
}

static int mkdir_exists_ok(const char *path, int *created)
{
    struct stat st;
    *created = 0;
    if (mkdir(path, 0700) == 0) {
        *created = 1;
        return 0;
    }
    int err = errno;
    if (err == EEXIST || err == EROFS || err == EACCES) {
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        if (err == EEXIST)
            err = ENOTDIR;
    }
    errno = err;
    return -1;
}

/* The tmp files of the messages between begin and end, for the signal handler: pointers to
 * their tmp_path, set after the path is formatted and cleared before it changes. */
#define LIVE_MAX 32
static char *volatile live[LIVE_MAX];
static sigset_t live_signals;

static void live_add(struct maildir_msg *m)
{
    m->live = -1;
    for (int i = 0; i < LIVE_MAX; i++) {
        if (live[i] == NULL) {
            live[i] = m->tmp_path;
            m->live = i;
            return;
        }
    }
}

static void live_drop(struct maildir_msg *m)
{
    if (m->live >= 0 && m->live < LIVE_MAX && live[m->live] == m->tmp_path)
        live[m->live] = NULL;
    m->live = -1;
}

/* The handler: unlink and die of the signal (SA_RESETHAND put the default action back; the
 * signal, blocked while this runs, is delivered again when it returns). */
static void unlink_live(int sig)
{
    int saved = errno;
    for (int i = 0; i < LIVE_MAX; i++) {
        char *path = live[i];
        if (path != NULL && path[0] != '\0')
            (void)unlink(path);
    }
    raise(sig);
    errno = saved;
}

int maildir_cleanup_on_signal(int sig)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = unlink_live;
    sa.sa_flags = SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    sigaddset(&live_signals, sig);
    return sigaction(sig, &sa, NULL);
}

void maildir_hold_signals(int hold)
{
    (void)sigprocmask(hold ? SIG_BLOCK : SIG_UNBLOCK, &live_signals, NULL);
}

static int open_new(const char *path)
{
    return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
}

int maildir_msg_begin(struct maildir_msg *m, const char *state_dir, const char *host)
{
    char tmpdir[PATH_MAX];
    int created;

    memset(m, 0, offsetof(struct maildir_msg, buf));
    m->fd = -1;
    m->live = -1;
    m->buf_len = 0;
    m->n_dirs = 0;
    m->dirs_alloc = 0;
    m->dirs = NULL;
    m->name[0] = '\0';
    if (str_copy(m->state_dir, sizeof m->state_dir, state_dir) != 0 ||
        str_format(tmpdir, sizeof tmpdir, "%s/tmp", state_dir) < 0 ||
        unique_name(m->unique, sizeof m->unique, host) != 0 ||
        str_format(m->tmp_path, sizeof m->tmp_path, "%s/%s", tmpdir, m->unique) < 0) {
        m->tmp_path[0] = '\0';
        return result_of(ENAMETOOLONG);
    }
    live_add(m); /* before the file exists: a signal from here on removes it */
    m->fd = open_new(m->tmp_path);
    if (m->fd < 0 && errno == ENOENT) { /* the first message: make state_dir/tmp */
        if (mkdir_exists_ok(tmpdir, &created) != 0) {
            live_drop(m);
            m->tmp_path[0] = '\0';
            return result_of(errno);
        }
        m->fd = open_new(m->tmp_path);
    }
    if (m->fd < 0) {
        int err = errno;
        live_drop(m);
        m->tmp_path[0] = '\0'; /* not ours: never unlink it */
        return result_of(err);
    }
    return 0;
}

static int flush_buf(struct maildir_msg *m)
{
    if (m->buf_len == 0)
        return 0;
    if (write_all(m->fd, m->buf, m->buf_len) != 0) {
        m->failed_errno = errno ? errno : EIO;
        return -1;
    }
    m->buf_len = 0;
    return 0;
}

static void count(struct maildir_msg *m, const char *p, size_t len)
{
    const char *end = p + len;
    m->size += len;
    m->crlf_size += len;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        m->crlf_size++;
        p++;
    }
}

int maildir_msg_write(struct maildir_msg *m, const void *data, size_t len)
{
    const char *p = data;
    if (m->failed_errno != 0)
        return result_of(m->failed_errno);
    if (m->fd < 0 || m->committed)
        return result_of(EINVAL);
    count(m, p, len);
    while (len > 0) {
        size_t room = sizeof m->buf - m->buf_len;
        size_t n = len < room ? len : room;
        memcpy(m->buf + m->buf_len, p, n);
        m->buf_len += n;
        p += n;
        len -= n;
        if (m->buf_len == sizeof m->buf && flush_buf(m) != 0)
            return result_of(m->failed_errno);
    }
    return 0;
}

int maildir_msg_commit(struct maildir_msg *m)
{
    if (m->failed_errno != 0)
        return result_of(m->failed_errno);
    if (m->fd < 0 || m->committed)
        return result_of(EINVAL);
    if (str_format(m->name, sizeof m->name, "%s,S=%llu,W=%llu", m->unique,
                   (unsigned long long)m->size, (unsigned long long)m->crlf_size) < 0)
        return result_of(ENAMETOOLONG);
    if (flush_buf(m) != 0 || fsync(m->fd) != 0) {
        if (m->failed_errno == 0)
            m->failed_errno = errno;
        return result_of(m->failed_errno);
    }
    int fd = m->fd;
    m->fd = -1;
    if (close(fd) != 0) {
        m->failed_errno = errno;
        return result_of(m->failed_errno);
    }
    m->committed = 1;
    return 0;
}

/* Creates every missing directory of path (0700), fsyncing the parent of each one created
 * (so the new name survives a crash). *made is set if the last one was created. */
static int mkdir_parents(const char *path, int *made)
{
    char buf[PATH_MAX];
    int created = 0;
    if (str_copy(buf, sizeof buf, path) != 0)
        return result_of(ENAMETOOLONG);
    for (char *p = buf + 1;; p++) {
        if (*p != '/' && *p != '\0')
            continue;
        char c = *p;
        *p = '\0';
        if (p[-1] != '/' && mkdir_exists_ok(buf, &created) != 0)
            return result_of(errno);
        if (created) {
            char *slash = strrchr(buf, '/');
            int rc = 0;
            if (slash == NULL)
                rc = fsync_dir(".");
            else if (slash == buf)
                rc = fsync_dir("/");
            else {
                *slash = '\0';
                rc = fsync_dir(buf);
                *slash = '/';
            }
            if (rc != 0)
                return result_of(errno);
        }
        *p = c;
        if (c == '\0')
            break;
    }
    *made = created;
    return 0;
}

/* Makes maildir and its tmp/ new/ cur/ as needed; the Maildir itself is fsynced when one of
 * them was created there. */
static int make_maildir(const char *maildir)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char sub[PATH_MAX];
    int made = 0, any = 0, rc;
    if ((rc = mkdir_parents(maildir, &made)) != 0)
        return rc;
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        if (str_format(sub, sizeof sub, "%s/%s", maildir, subs[i]) < 0)
            return result_of(ENAMETOOLONG);
        if (mkdir_exists_ok(sub, &made) != 0)
            return result_of(errno);
        any |= made;
    }
    if (any && fsync_dir(maildir) != 0)
        return result_of(errno);
    return 0;
}

static int same_file(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int remember_dir(struct maildir_msg *m, const char *dir)
{
    if (m->n_dirs == m->dirs_alloc) {
        size_t n = m->dirs_alloc ? m->dirs_alloc * 2 : 8;
        if (n > MAILDIR_MAX_TARGETS)
            n = MAILDIR_MAX_TARGETS;
        if (n <= m->n_dirs)
            return result_of(E2BIG);
        char **d = realloc(m->dirs, n * sizeof *d);
        if (d == NULL)
            return result_of(ENOMEM);
        m->dirs = d;
        m->dirs_alloc = n;
    }
    if ((m->dirs[m->n_dirs] = strdup(dir)) == NULL)
        return result_of(ENOMEM);
    m->n_dirs++;
    return 0;
}

static int already_linked(const struct maildir_msg *m, const char *dir)
{
    for (size_t i = 0; i < m->n_dirs; i++)
        if (strcmp(m->dirs[i], dir) == 0)
            return 1;
    return 0;
}

/* link() into new/, creating the Maildir when it is missing. 0 linked, 1 temporary or
 * -1 permanent failure (errno kept), or -2 when path already is this very file (the same
 * Maildir under another spelling). */
static int link_once(struct maildir_msg *m, const char *maildir, const char *path)
{
    int rc;
    if (link(m->tmp_path, path) == 0)
        return 0;
    int err = errno;
    if (err == ENOENT) {
        if ((rc = make_maildir(maildir)) != 0)
            return rc;
        if (link(m->tmp_path, path) == 0)
            return 0;
        err = errno;
    }
    if (err == EEXIST && same_file(m->tmp_path, path))
        return -2;
    return result_of(err);
}

int maildir_msg_link(struct maildir_msg *m, const char *maildir, char *name_out, size_t name_size)
{
    char dir[PATH_MAX], path[PATH_MAX];
    int rc;
    if (!m->committed)
        return result_of(EINVAL);
    if (str_format(dir, sizeof dir, "%s/new", maildir) < 0 ||
        str_format(path, sizeof path, "%s/%s", dir, m->name) < 0 ||
        (name_out != NULL && str_copy(name_out, name_size, m->name) != 0))
        return result_of(ENAMETOOLONG);
    if (already_linked(m, dir))
        return 0;
    if (m->n_dirs >= MAILDIR_MAX_TARGETS)
        return result_of(E2BIG);
    if ((rc = link_once(m, maildir, path)) == -2)
        return 0;
    if (rc != 0)
        return rc;
    if ((rc = remember_dir(m, dir)) != 0) {
        int err = errno;
        if (unlink(path) != 0)
            return 1; /* maildir_msg_end cannot see it; it stays there, complete */
        errno = err;
    }
    return rc;
}

int maildir_msg_sync(struct maildir_msg *m)
{
    for (size_t i = 0; i < m->n_dirs; i++)
        if (fsync_dir(m->dirs[i]) != 0)
            return result_of(errno);
    return 0;
}

static void remove_links(struct maildir_msg *m)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < m->n_dirs; i++) {
        if (str_format(path, sizeof path, "%s/%s", m->dirs[i], m->name) < 0)
            continue;
        /* Best effort: a link that cannot be removed is a complete, fsynced message. */
        if (unlink(path) == 0)
            (void)fsync_dir(m->dirs[i]);
    }
}

void maildir_msg_end(struct maildir_msg *m, int remove)
{
    int saved = errno;
    if (m->fd >= 0) {
        (void)close(m->fd);
        m->fd = -1;
    }
    live_drop(m);
    if (m->tmp_path[0] != '\0') {
        (void)unlink(m->tmp_path);
        m->tmp_path[0] = '\0';
    }
    if (remove)
        remove_links(m);
    for (size_t i = 0; i < m->n_dirs; i++)
        free(m->dirs[i]);
    free(m->dirs);
    m->dirs = NULL;
    m->n_dirs = m->dirs_alloc = 0;
    errno = saved;
}

/* A part of a path: not empty, not "." or "..", no leading '.', no '/', no control byte. */
static int safe_part(const char *s)
{
    if (s[0] == '\0' || s[0] == '.')
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p == '/' || *p < 0x20 || *p == 0x7f)
            return 0;
    return 1;
}

int maildir_path(char *dst, size_t size, const char *state_dir, const char *local,
                 const char *domain)
{
    if (size > 0)
        dst[0] = '\0';
    if (!safe_part(local) || !safe_part(domain)) {
        errno = EINVAL;
        return -1;
    }
    if (str_format(dst, size, "%s/mail/%s/%s", state_dir, domain, local) < 0) {
        if (size > 0)
            dst[0] = '\0';
        errno = ENAMETOOLONG;
        return -1;
    }
    str_lower(dst + strlen(state_dir) + strlen("/mail/"));
    return 0;
}
