/*
 * mailbox-refresh: an open folder kept up to date during an IMAP session (see mailbox.h):
 * what other sessions and deliveries changed (for untagged EXPUNGE, EXISTS and FETCH FLAGS),
 * the inotify watch for IDLE, and EXPUNGE of the \Deleted messages through the journal.
 * It must never renumber a message without reporting it (sequence numbers change only by the
 * EXPUNGEs it reports), never report a message twice or lose one, and never remove a file
 * whose \Deleted flag another session has cleared.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "util.h"

void mailbox_changes_free(struct mailbox_changes *ch)
{
    free(ch->expunged);
    free(ch->expunged_uids);
    free(ch->flags);
    memset(ch, 0, sizeof *ch);
}

/* Room for n expunges and n flag changes. */
int mbx_changes_alloc(struct mailbox_changes *ch, size_t n)
{
    ch->expunged = calloc(n + 1, sizeof *ch->expunged);
    ch->expunged_uids = calloc(n + 1, sizeof *ch->expunged_uids);
    ch->flags = calloc(n + 1, sizeof *ch->flags);
    if (ch->expunged == NULL || ch->expunged_uids == NULL || ch->flags == NULL) {
        mailbox_changes_free(ch);
        return errno = ENOMEM, -1;
    }
    return 0;
}

/* The expunges were recorded in increasing order; IMAP wants them sent highest first. */
static void reverse_expunged(struct mailbox_changes *ch)
{
    for (size_t i = 0, k = ch->n_expunged; i < k / 2; i++) {
        uint32_t t = ch->expunged[i], u = ch->expunged_uids[i];
        ch->expunged[i] = ch->expunged[k - 1 - i];
        ch->expunged_uids[i] = ch->expunged_uids[k - 1 - i];
        ch->expunged[k - 1 - i] = t;
        ch->expunged_uids[k - 1 - i] = u;
    }
}

static void totals(struct mailbox *mb)
{
    mb->total_crlf = 0;
    for (size_t i = 0; i < mb->count; i++)
        mb->total_crlf += mb->msgs[i].crlf_size;
}

/* The session's list merged in place with the index's (fresh), both in UID order; mb->msgs
 * has room for the added ones. The new count. */
static size_t merge_lists(struct mailbox *mb, const struct mailbox *fresh, int flags,
                          struct mailbox_changes *ch)
{
    size_t i = 0, j = 0, n = 0;
    uint32_t last = mb->count > 0 ? mb->msgs[mb->count - 1].uid : 0;
    while (i < mb->count || j < fresh->count) {
        struct mailbox_msg o = i < mb->count ? mb->msgs[i] : (struct mailbox_msg){0};
        const struct mailbox_msg *f = j < fresh->count ? &fresh->msgs[j] : NULL;
        if (i < mb->count && f != NULL && o.uid == f->uid) {
            if (o.flags != f->flags)
                ch->flags[ch->n_flags++] = (uint32_t)n + 1;
            o.flags = f->flags;
            o.name_at = f->name_at;
            o.gone = 0;
            mb->msgs[n++] = o;
            i++, j++;
        } else if (i < mb->count && (f == NULL || o.uid < f->uid)) {
            if (flags & MAILBOX_REFRESH_KEEP_GONE) {
                o.gone = 1;
                mb->msgs[n++] = o;
            } else {
                ch->expunged[ch->n_expunged] = (uint32_t)i + 1;
                ch->expunged_uids[ch->n_expunged++] = o.uid;
            }
            i++;
        } else {
            if (f->uid > last) { /* always so: UIDs only grow */
                mb->msgs[n++] = *f;
                ch->added++;
            }
            j++;
        }
    }
    return n;
}

/* The folder reloaded under its lock (taken here unless MAILBOX_REFRESH_LOCKED) into fresh
 * (sharing mb's cur/ descriptor). */
static int reload(struct mailbox *mb, struct mailbox *fresh, int flags)
{
    memset(fresh, 0, sizeof *fresh);
    memcpy(fresh->path, mb->path, sizeof fresh->path);
    fresh->cur_fd = mb->cur_fd;
    fresh->watch_fd = -1;
    fresh->index_fd = -1;
    int lock = flags & MAILBOX_REFRESH_LOCKED ? -1 : mbx_lock_index(mb->path);
    int rc = lock >= 0 || (flags & MAILBOX_REFRESH_LOCKED) ? mbx_load_locked(fresh) : -1;
    int saved = errno;
    if (lock >= 0)
        close(lock);
    if (rc != 0) {
        mbx_unload(fresh);
        errno = saved;
    }
    return rc;
}

/* The messages of fresh with UIDs above the session's last: how many will be added. */
static size_t count_added(const struct mailbox *mb, const struct mailbox *fresh)
{
    uint32_t last = mb->count > 0 ? mb->msgs[mb->count - 1].uid : 0;
    return last == UINT32_MAX ? 0 : fresh->count - mailbox_first_uid_at(fresh, last + 1);
}

/* mb takes fresh's messages (uidvalidity_changed) or the merge of both, and its index. */
static int take(struct mailbox *mb, struct mailbox *fresh, int flags, struct mailbox_changes *ch)
{
    if (fresh->uidvalidity != mb->uidvalidity) { /* the index was rebuilt: start again */
        free(mb->msgs);
        mb->msgs = fresh->msgs;
        mb->count = fresh->count;
        fresh->msgs = NULL;
        mb->uidvalidity = fresh->uidvalidity;
        ch->uidvalidity_changed = 1;
    } else {
        size_t room = mb->count + count_added(mb, fresh) + 1;
        struct mailbox_msg *grown = realloc(mb->msgs, room * sizeof *grown);
        if (grown == NULL)
            return errno = ENOMEM, -1;
        mb->msgs = grown;
        mb->count = merge_lists(mb, fresh, flags, ch);
        reverse_expunged(ch);
    }
    mbx_forget_renamed(mb);
    if (mb->index_fd >= 0)
        close(mb->index_fd);
    free(mb->win);
    mb->index_fd = fresh->index_fd;
    mb->win = NULL;
    mb->win_off = mb->win_len = 0;
    fresh->index_fd = -1;
    return 0;
}

int mailbox_refresh(struct mailbox *mb, int flags, struct mailbox_changes *ch)
{
    struct mailbox fresh;
    memset(ch, 0, sizeof *ch);
    int gone = 0;
    for (size_t i = 0; i < mb->count && !gone; i++)
        gone = mb->msgs[i].gone;
    if (!gone && mbx_unchanged(mb)) { /* three stats, no lock: nothing can have changed */
        ch->exists = mb->count;
        return 0;
    }
    if (reload(mb, &fresh, flags) != 0)
        return -1;
    if (mbx_changes_alloc(ch, mb->count + fresh.count) != 0 || take(mb, &fresh, flags, ch) != 0) {
        int saved = errno;
        mbx_unload(&fresh);
        mailbox_changes_free(ch);
        return errno = saved, -1;
    }
    mbx_unload(&fresh);
    mbx_keywords_free(&mb->kw);
    mbx_keywords_load(mb->path, &mb->kw);
    mb->uidnext = fresh.uidnext;
    mb->highestmodseq = fresh.highestmodseq;
    mb->seen_cur = fresh.seen_cur;
    mb->seen_new = fresh.seen_new;
    mb->seen_index = fresh.seen_index;
    ch->exists = mb->count;
    totals(mb);
    return 0;
}

/* ---- IDLE ---- */

int mailbox_watch(struct mailbox *mb)
{
    static const char *const subs[] = {"new", "cur"};
    char path[PATH_MAX];
    if (mb->watch_fd >= 0)
        return mb->watch_fd;
    int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd < 0)
        return -1;
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        if (str_format(path, sizeof path, "%s/%s", mb->path, subs[i]) < 0 ||
            inotify_add_watch(
                fd, path, IN_CREATE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_ONLYDIR) < 0) {
            int saved = errno;
            close(fd);
            errno = saved;
            return -1;
        }
    }
    return mb->watch_fd = fd;
}

int mailbox_watch_drain(struct mailbox *mb)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    if (mb->watch_fd < 0)
        return errno = EBADF, -1;
    for (;;) {
        ssize_t n = read(mb->watch_fd, buf, sizeof buf);
        if (n > 0)
            continue;
        if (n < 0 && errno == EINTR)
            continue;
        return n < 0 && errno != EAGAIN ? -1 : 0;
    }
}

/* ---- EXPUNGE ---- */

static int wanted(uint32_t uid, const uint32_t *uids, size_t n)
{
    if (uids == NULL)
        return 1;
    for (size_t i = 0; i < n; i++)
        if (uids[i] == uid)
            return 1;
    return 0;
}

/* Does m's file have the T flag now? (its name found again if another session renamed it) */
static int deleted_now(struct mailbox *mb, struct mailbox_msg *m)
{
    struct stat st;
    const char *name = mbx_name(mb, m, NULL);
    if (name == NULL || (fstatat(mb->cur_fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 &&
                         (errno != ENOENT || mbx_refind(mb, m) != 0)))
        return 0;
    return (m->flags & MAILBOX_FLAG_TRASHED) != 0;
}

/* Marks (deleted = 2) the messages to remove and writes their journal lines. */
static int journal_deleted(struct mailbox *mb, struct mbx_journal *j, const uint32_t *uids,
                           size_t n, size_t *count)
{
    *count = 0;
    for (size_t i = 0; i < mb->count; i++) {
        struct mailbox_msg *m = &mb->msgs[i];
        if (m->gone || !wanted(m->uid, uids, n) || !deleted_now(mb, m))
            continue;
        const char *name = mbx_name(mb, m, NULL);
        if (name == NULL || mbx_journal_add(j, 'X', name, NULL, NULL) != 0)
            return -1;
        m->deleted = 2;
        (*count)++;
    }
    return 0;
}

/* Drops the messages marked 2 from the list, recording their numbers. */
void mbx_drop_marked(struct mailbox *mb, struct mailbox_changes *ch)
{
    size_t kept = 0;
    for (size_t i = 0; i < mb->count; i++) {
        if (mb->msgs[i].deleted == 2) {
            ch->expunged[ch->n_expunged] = (uint32_t)i + 1;
            ch->expunged_uids[ch->n_expunged++] = mb->msgs[i].uid;
            continue;
        }
        mb->msgs[kept++] = mb->msgs[i];
    }
    mb->count = kept;
    reverse_expunged(ch);
    ch->exists = mb->count;
    totals(mb);
}

int mailbox_expunge_deleted(struct mailbox *mb, const uint32_t *uids, size_t n,
                            struct mailbox_changes *ch)
{
    struct mbx_journal j;
    size_t count = 0;
    memset(ch, 0, sizeof *ch);
    if (mbx_changes_alloc(ch, mb->count) != 0)
        return -1;
    int lock = mbx_lock_index(mb->path);
    int rc = lock >= 0 ? mbx_journal_begin(&j, mb->path) : -1;
    if (rc == 0 && (rc = journal_deleted(mb, &j, uids, n, &count)) == 0)
        rc = count > 0 ? mbx_journal_commit(&j) : (mbx_journal_abort(&j), 0);
    else if (rc != 0 && lock >= 0)
        mbx_journal_abort(&j);
    int saved = errno;
    if (lock >= 0)
        close(lock);
    for (size_t i = 0; rc != 0 && i < mb->count; i++)
        if (mb->msgs[i].deleted == 2)
            mb->msgs[i].deleted = 0;
    if (rc != 0) {
        mailbox_changes_free(ch);
        errno = saved;
        return -1;
    }
    mbx_drop_marked(mb, ch);
    return 0;
}
