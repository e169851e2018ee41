/*
 * mailbox-int: what the files of lib/mailbox share among themselves (mailbox.c, the index;
 * mailbox-flags.c, keywords; mailbox-refresh.c; mailbox-store.c, APPEND/COPY/MOVE and the
 * journal; mailbox-folders.c). Never included outside lib/mailbox*.c.
 */
#ifndef YUBIN_MAILBOX_INT_H
#define YUBIN_MAILBOX_INT_H

#include <stdio.h>

#include "mailbox.h"

#define MBX_JOURNAL_NAME "yubin-journal"
#define MBX_INDEX_MAGIC "yubin-index 3"
#define MBX_INDEX_VERSION 3
#define MBX_INDEX_MAX_SIZE (256u << 20) /* 256 MiB: millions of messages */

/* ---- the index file (mailbox.c), shared with its rewriter (mailbox-reconcile.c) ---- */

/* The directory times an index records: trusted only when older than the scan's second. */
struct mbx_dirtimes {
    struct timespec cur, new_;
};
/* An open index file, its header read. */
struct mbx_index {
    FILE *f;
    uint64_t size, pos; /* the file's size, and the offset of the next line */
    int version;        /* 2 on: lines appended in place (mbx_tail_add) may follow; 3: with
                         * modseqs, and update lines (mbx_tail_update) */
};
/* The numbers of an index line (an update line has no sizes: 0). */
struct mbx_entry {
    uint32_t uid;
    uint64_t size, crlf_size;
    uint64_t modseq;
};
/* One line after the header: an entry (*update 0) or, from version 3 on, an update line
 * "= <uidnext> <uid> <modseq> <name>" (*update 1), its name at line + *off; mb's uidnext
 * and highestmodseq raised by it. 0, or -1. */
int mbx_parse_line(const char *line, const struct mbx_index *ix, struct mailbox *mb,
                   struct mbx_entry *m, int *off, int *update);
/* The next whole line of f (its '\n' cut) and its length with the '\n', or NULL at the end
 * or an unterminated last line. */
char *mbx_next_line(FILE *f, char **line, size_t *cap, size_t *len);
/* The session's record of a message whose name starts at offset at of its index. 0, or 1 if
 * it cannot be held (4 GiB or more: not served). */
int mbx_record(struct mailbox_msg *r, uint32_t uid, uint32_t flags, uint64_t crlf_size, uint64_t at,
               int recent);
/* An index line as mbx_read_entries gives it: its numbers, its name, where it starts and
 * where its name starts in the file. */
struct mbx_line {
    const struct mbx_entry *e;
    const char *name;
    uint64_t line_at, name_at;
};
/* Fills r from an entry line (update 0): 1 if r is to be kept, 0 if not; or changes the
 * record r of an earlier entry by an update line (update 1; the result is not used). */
typedef int mbx_fill_fn(void *ctx, struct mailbox_msg *r, const struct mbx_line *l, int update);
/* The lines of ix after its header, streamed and checked (entries' UIDs increasing and below
 * the bound), each entry given the next record of mb->msgs to fill (mb->count those kept),
 * each update line the record of its UID, if kept. 0, or 1 if the index is unusable. */
int mbx_read_entries(struct mbx_index *ix, struct mailbox *mb, mbx_fill_fn *fill, void *ctx);
/* Under the lock, the directories changed since the index ix was written (ix->f NULL: there
 * is none), or ix is of an older version: new/ moved into cur/, cur/ read and the index
 * written anew (mailbox-reconcile.c), mb->msgs its records and mb->index_fd the new file.
 * seen: the directory times to record. 0, 1 if ix turns out unusable (rebuild it), -1. */
int mbx_reconcile(struct mailbox *mb, struct mbx_index *ix, const struct mbx_dirtimes *seen);

/* The flag bits of a file name's ":2," part (letters other than D F P R S T a-z ignored);
 * *canonical is 1 if the name is exactly "<base>:2,<its letters sorted, once each>". */
uint32_t mbx_name_flags(const char *name, int *canonical);
/* The letters of in (A-Z, a-z; others dropped), sorted and each once, into out. */
void mbx_sort_letters(const char *in, char *out, size_t size);
/* The message's current name into mb->name, *derived 1 if it was made from m->flags (the
 * index's name was canonical and not replaced), 0 if it is a stored one. NULL (errno). */
const char *mbx_name(struct mailbox *mb, const struct mailbox_msg *m, int *derived);
/* Records name as m's current name (after a rename or a refind), with its flags. 0 / -1. */
int mbx_renamed(struct mailbox *mb, struct mailbox_msg *m, const char *name, int derived);
/* Frees the messages, the index descriptor, the window and the renamed names of mb (cur/
 * stays open). */
void mbx_unload(struct mailbox *mb);
/* Forgets the renamed names (a newer index has them). */
void mbx_forget_renamed(struct mailbox *mb);
/* qsort comparison by UID. */
int mbx_by_uid(const void *a, const void *b);
/* Adding messages to a folder's index in place (yubin-index(5) version 2), O(1) in the
 * folder's size: under the index lock, mbx_tail_open finishes a journal and reads the UID
 * the next file gets (the header's uidnext, or the last line's UID + 1); the caller puts the
 * files into cur/ (and fsyncs it), then mbx_tail_add appends their lines (names with S= and
 * W=) and fsyncs. The recorded directory times stay (cur/ has changed since), so the next
 * open reconciles once, keeping those UIDs; files the index did not know yet get higher
 * ones then, as they would have. */
struct mbx_tail {
    int fd;
    uint32_t uidvalidity, next;
    uint64_t highest; /* the folder's HIGHESTMODSEQ: mbx_tail_add's lines get one more */
    uint64_t size;    /* the file's size (where the next line starts) */
};
/* 0 (t ready), 1 if the index cannot be added to (reconcile instead; t->fd is -1), -1. */
int mbx_tail_open(const char *maildir, struct mbx_tail *t);
/* The lines of names (uids[i] each gets), written and fsynced. 0 / -1. */
int mbx_tail_add(struct mbx_tail *t, char *const *names, size_t n, uint32_t *uids);
/* A flag change (yubin-index(5) version 3's update line): the message uid is now called name
 * and has the modseq given (the folder's highest + 1 for the batch); *name_at is where the
 * name starts in the file. Written, not fsynced (the caller fsyncs t->fd once). 0 / -1. */
int mbx_tail_update(struct mbx_tail *t, uint32_t uid, uint64_t modseq, const char *name,
                    uint64_t *name_at);
void mbx_tail_close(struct mbx_tail *t);
/* Takes an exclusive flock on dir/name (created if missing): its descriptor, or -1. */
int mbx_lock_file(const char *dir, const char *name);
/* Replaces dir/name with data: dir/name.new written, fsynced, renamed, dir fsynced. 0 / -1. */
int mbx_replace_file(const char *dir, const char *name, const char *data, size_t len);
/* The file in the directory dirfd with name's base name (before ':'), into found: 0, 1 if
 * there is none, -1 on error. */
int mbx_find_base(int dirfd, const char *name, char *found, size_t size);
/* Takes the index lock of a folder: the lock's descriptor (close to release), or -1. */
int mbx_lock_index(const char *maildir);
/* Under the lock: the journal finished, the index read, reconciled and rewritten if needed,
 * into mb (path and cur_fd set, msgs empty, index_fd -1). 0 / -1. */
int mbx_load_locked(struct mailbox *mb);
/* Under the lock: fresh opened on maildir (its cur/ in fresh->cur_fd, -1 if it could not be
 * opened) and loaded by mbx_load_locked. 0 / -1; either way mbx_unload and close cur_fd. */
int mbx_load_path(struct mailbox *fresh, const char *maildir);
/* 1 if nothing in cur/, new/ or the index changed since mb's last reconcile (then a refresh
 * has nothing to find), else 0. No lock needed. */
int mbx_unchanged(struct mailbox *mb);
/* Finds m's file again by base name. 0 (its new name recorded), 1 gone, -1 error. */
int mbx_refind(struct mailbox *mb, struct mailbox_msg *m);
/* After a call on m's file failed (errno set): 0 if it was found under a new name (try
 * again), 1 if it is gone (ENOENT and no file of its base name), -1 on any other error. */
int mbx_refind_failed(struct mailbox *mb, struct mailbox_msg *m);
/* Under the lock: completes a journal left by a killed COPY, MOVE or EXPUNGE. 0 / -1. */
int mbx_journal_finish(const char *maildir);
/* A journal (<folder>/yubin-journal, under the folder's index lock): lines of
 *   L\t<tmp name>\t<cur name>           rename tmp/<tmp name> to cur/<cur name>
 *   M\t<cur name>\t<src maildir>\t<src name>  once cur/<cur name> is there, remove the
 *                                       source (MOVE), found by base name
 *   X\t<name>                          remove cur/<name> of this folder (found by base name,
 *                                       removed only if it still has the T flag)
 * written whole (write-new + fsync + rename) before any of it is done, then done and removed.
 * Doing it twice is harmless, so a kill -9 at any step is finished by the next open. */
struct mbx_journal {
    FILE *f;
    char maildir[PATH_MAX];
};
int mbx_journal_begin(struct mbx_journal *j, const char *maildir);
/* One line: kind and its fields (NULL ends them). 0 / -1. */
int mbx_journal_add(struct mbx_journal *j, char kind, const char *a, const char *b, const char *c);
/* Makes the journal durable and does it. 0 / -1 (-1 before the rename: nothing done). */
int mbx_journal_commit(struct mbx_journal *j);
void mbx_journal_abort(struct mbx_journal *j);
/* The test hook: YUBIN_TEST_STORE_KILL=<n> kills the process with SIGKILL at the n-th call
 * (counting from 0) of every step of APPEND, COPY, MOVE and EXPUNGE. */
void mbx_kill_point(void);

/* ch with room for n expunges and flag changes. 0 / -1. */
int mbx_changes_alloc(struct mailbox_changes *ch, size_t n);
/* Drops the messages marked deleted = 2 from mb's list, recording them in ch. */
void mbx_drop_marked(struct mailbox *mb, struct mailbox_changes *ch);

/* Keywords of a folder (a missing or bad file is no keyword). */
void mbx_keywords_load(const char *maildir, struct mailbox_keywords *kw);
void mbx_keywords_free(struct mailbox_keywords *kw);
/* Removes a directory tree (rm -rf; never follows a link; depth-bounded). 0 / -1. */
int mbx_remove_tree(const char *path);
/* The host part of unique names. */
const char *mbx_host(void);

#endif
