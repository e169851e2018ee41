/*
 * mailbox: what pop3-in (and imap4-in) read (DESIGN.md §2): Maildir++ folders with their
 * SPECIAL-USE attributes (RFC 6154), the UID index of one folder (yubin-index(5)), flags in
 * the file names (maildir(5) ":2,<flags>"), and several sessions on one folder at once.
 *
 * A folder is a Maildir: the INBOX is the user's Maildir, a folder "a.b" is its ".a.b"
 * sub-Maildir. The index (<folder>/yubin-index) maps UIDs to file base names (the name
 * before ':'), with sizes, so that a login whose folder has not changed since the index was
 * written lists it without reading a directory. It is rewritten only under its lock (flock on
 * <folder>/yubin-index.lock), as write-new + fsync + rename: a crash leaves the old index or
 * the new one; APPEND and COPY append their lines to it under the lock instead, and flag
 * changes their update lines with the MODSEQ they get (CONDSTORE; a line cut by a crash is
 * ignored). Files added or removed behind its back (mutt, Dovecot, maildir-deliver) are
 * reconciled at open: new files get new UIDs in base-name order, vanished ones are dropped.
 * A missing or unreadable index is rebuilt with a new UIDVALIDITY. It never changes a
 * message's contents, and never removes a file unless asked to (mailbox_expunge).
 */
#ifndef YUBIN_MAILBOX_H
#define YUBIN_MAILBOX_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define MAILBOX_UIDL_MAX 70 /* RFC 1939 */
#define MAILBOX_INDEX_NAME "yubin-index"

/* One message of an open folder, in UID order: 16 bytes, so that a session on 100,000
 * messages holds 1.6 MB. Its file name is not held: mailbox_name finds it in the index file
 * the session keeps open (see struct mailbox). */
struct mailbox_msg {
    uint32_t uid;
    uint32_t flags;        /* MAILBOX_FLAG_* bits, from its file name (mailbox_flags) */
    uint32_t crlf_size;    /* W=: bytes with CRLF line ends (RFC822.SIZE, POP3 octets); a
                            * message of 4 GiB or more is not served */
    uint32_t name_at : 28; /* where its name starts in the session's index file */
    uint32_t deleted : 2;  /* marked by the session (POP3 DELE), not yet expunged */
    uint32_t recent : 1;   /* 1 if this session gave it its UID (it is \Recent here only) */
    uint32_t gone : 1;     /* its file was removed by another session; the removal is not
                            * yet reported (mailbox_refresh with MAILBOX_REFRESH_KEEP_GONE) */
};
/* The flag bits: keyword letters a..z are bits 0..25, the system flags D F P R S T (maildir
 * letters) bits 26..31. Other letters in a file name are kept when it is renamed but not
 * shown. */
#define MAILBOX_FLAG_KEYWORD(i) (1u << (i))
#define MAILBOX_FLAG_DRAFT (1u << 26)
#define MAILBOX_FLAG_FLAGGED (1u << 27)
#define MAILBOX_FLAG_PASSED (1u << 28)
#define MAILBOX_FLAG_REPLIED (1u << 29)
#define MAILBOX_FLAG_SEEN (1u << 30)
#define MAILBOX_FLAG_TRASHED (1u << 31)

/* Keywords (IMAP flags without a backslash, RFC 3501 §2.3.2) of one folder: the lower-case
 * letters a-z in the file names, each mapped to a name by <folder>/dovecot-keywords (Dovecot's
 * format: "<n> <name>" lines, n 0 for 'a' ... 25 for 'z'; yubin-index(5)). */
#define MAILBOX_KEYWORDS 26
#define MAILBOX_KEYWORD_MAX 64 /* octets of one keyword name */
struct mailbox_keywords {
    char *names[MAILBOX_KEYWORDS]; /* NULL where a letter is unused */
};

/* A name this session gave a message by renaming it that cannot be told from its flags
 * (its index name was not "<base>:2,<sorted letters>"), or found after another session
 * renamed it, or the MODSEQ this session gave it when that cannot be read from the index file
 * the session holds: kept until the next refresh reads a newer index. */
struct mailbox_renamed {
    uint32_t uid;
    char *name;      /* NULL: made from the flags (only the modseq is kept) */
    uint64_t modseq; /* its MODSEQ when this session changed it, or 0 (read the index) */
};

struct mailbox {
    char path[PATH_MAX]; /* the folder's Maildir */
    int cur_fd;          /* cur/, open for the session */
    uint32_t uidvalidity, uidnext;
    uint64_t highestmodseq; /* CONDSTORE (RFC 7162): the folder's highest MODSEQ, >= 1 */
    struct mailbox_msg *msgs;
    size_t count;
    uint64_t total_crlf;
    int scanned;  /* 1 if open read the directories, 0 if the index was enough */
    int created;  /* 1 if there was no usable index (a first login, or it was deleted) */
    int watch_fd; /* inotify descriptor from mailbox_watch, or -1 */
    /* cur/ and new/ mtimes before the last reconcile (0: not to be trusted) and the index
     * file's inode after it: mailbox_refresh skips the lock and the index when all three are
     * unchanged (nothing can have changed then). */
    struct timespec seen_cur, seen_new;
    unsigned long long seen_index;
    struct mailbox_keywords kw; /* loaded at open, extended by mailbox_keyword_letter */
    /* The index file the messages' name_at point into (kept open: a rewrite by another
     * session replaces the file, not this one), and a window on it for mailbox_name. */
    int index_fd;
    char *win;
    uint64_t win_off;
    size_t win_len;
    struct mailbox_renamed *renamed; /* sorted by UID */
    size_t n_renamed;
    char name[NAME_MAX + 1]; /* mailbox_name's answer */
    /* A batch of flag changes (mailbox_change_begin .. mailbox_change_end): the index lock,
     * the index open for appending, its size, whether it is the file index_fd
     * reads (then a changed message's name_at points at its new line), and the MODSEQ the
     * batch's changes get; all valid while changing is 1. */
    int changing, chg_lock, chg_fd, chg_same;
    uint32_t chg_next, chg_count;
    uint64_t chg_size, chg_modseq;
};

/* Opens a folder (a Maildir that exists, see maildir_ensure): takes the index lock, moves
 * new/ into cur/, reconciles the index with cur/ and rewrites it if anything changed, then
 * releases the lock. Messages that arrive later are seen by the next open.
 * 0, or -1 (errno set). After 0, call mailbox_close. */
int mailbox_open(struct mailbox *mb, const char *maildir);
void mailbox_close(struct mailbox *mb);

/* The message with this UID, or NULL. */
struct mailbox_msg *mailbox_by_uid(struct mailbox *mb, uint32_t uid);
/* The index in mb->msgs of the first message with a UID >= uid (mb->count if none). */
size_t mailbox_first_uid_at(const struct mailbox *mb, uint32_t uid);

/* The current file name of a message in cur/ (base, then ":2,<flags>"), read from the
 * session's index: valid until the next call on mb. NULL (errno ENOENT if the message is gone,
 * EIO if the index cannot be read). */
const char *mailbox_name(struct mailbox *mb, const struct mailbox_msg *m);

/* POP3's UIDL of a message: its unique name part, which no index rebuild or flag change
 * alters (so UIDLs given out before the index existed stay the same), or a digest of it when
 * that part is not a valid RFC 1939 unique-id (over 70 octets or outside 0x21..0x7E).
 * 0, or -1 (errno set, as mailbox_name). */
int mailbox_uidl(struct mailbox *mb, const struct mailbox_msg *m, char out[MAILBOX_UIDL_MAX + 1]);

/* Opens the message for reading. A file renamed by another session (its flags changed) is
 * found again by its base name. fd, or -1 (errno ENOENT when it is gone). */
int mailbox_open_msg(struct mailbox *mb, struct mailbox_msg *m);

/* The flags of a message (maildir(5): D draft, F flagged, P passed, R replied, S seen,
 * T trashed; lower-case letters are keywords), sorted, into out (from m->flags). */
void mailbox_flags(const struct mailbox_msg *m, char *out, size_t size);
/* Adds the flags in add and clears those in clear (letters as above) by renaming the file.
 * A file renamed meanwhile by another session is found by its base name and its flags
 * merged. A change gets a new MODSEQ, appended to the index with the new name under the index
 * lock (inside mailbox_change_begin/_end, or in a batch of its own). 0, 1 if the message is
 * gone (expunged elsewhere), -1 (errno set). */
int mailbox_set_flags(struct mailbox *mb, struct mailbox_msg *m, const char *add,
                      const char *clear);

/* ---- CONDSTORE (RFC 7162): MODSEQ ---- */

struct mailbox_changes;

/* Starts a batch of flag changes (one STORE): takes the index lock and opens the index for
 * appending; every change of the batch gets the same new MODSEQ (the folder's highest + 1).
 * Hold it only for the changes (send the replies after mailbox_change_end). 0, or -1. */
int mailbox_change_begin(struct mailbox *mb);
/* Inside a batch, before its first change: the folder refreshed under the batch's lock
 * (mailbox_refresh with MAILBOX_REFRESH_KEEP_GONE), so that a test of the messages' MODSEQs
 * (STORE UNCHANGEDSINCE) and the changes are one step; the batch then appends to the index the
 * refresh left. ch as mailbox_refresh fills it. 0, or -1 (errno; EINVAL outside a batch or
 * after a change). */
int mailbox_change_refresh(struct mailbox *mb, struct mailbox_changes *ch);
/* Ends the batch: the lines fsynced, the lock released, mb->highestmodseq raised if anything
 * changed. 0, or -1 (errno; the changes are made, and get their MODSEQ at the next refresh). */
int mailbox_change_end(struct mailbox *mb);
/* A message's MODSEQ (RFC 7162 §3.1), read from the index file the session holds (no stat or
 * open of the message). 0 if it cannot be read (errno). */
uint64_t mailbox_modseq(struct mailbox *mb, const struct mailbox_msg *m);

/* Removes the message's file (found again by base name if renamed). 0 (also when it was
 * already gone), or -1 (errno set). Call mailbox_sync after a batch. */
int mailbox_expunge(struct mailbox *mb, struct mailbox_msg *m);
/* fsyncs cur/ after renames or removals. 0 / -1. */
int mailbox_sync(struct mailbox *mb);

/* ---- IMAP: one open folder during a session (sequence number n is mb->msgs[n - 1]) ---- */

/* INTERNALDATE (RFC 3501 §2.3.3): the file's mtime (set by APPEND, the delivery time
 * otherwise). A file renamed by another session is found again. 0, 1 if the message is gone,
 * -1 (errno set). */
int mailbox_internaldate(struct mailbox *mb, struct mailbox_msg *m, time_t *when);

/* The maildir letter of an IMAP system flag or keyword, case-insensitively: \Seen S,
 * \Answered R, \Flagged F, \Deleted T, \Draft D, $Forwarded P; any other atom is a keyword,
 * given (create = 1: allocated in dovecot-keywords, written atomically under the index lock)
 * or looked up (create = 0) in mb->kw. The letter, or 0: \Recent or another \name (not
 * storable, errno EINVAL), an unknown keyword with create = 0 (ENOENT), all 26 keyword
 * letters in use (ENOSPC), a name that is not an IMAP atom or too long (EINVAL). */
char mailbox_flag_letter(struct mailbox *mb, const char *flag, int create);
/* The IMAP flag list of a message, without parentheses, space-separated, in letter order:
 * "\Seen \Flagged $Forwarded work" (keyword letters with no name are left out); \Recent
 * is added first when m->recent. 0, or -1 (ENAMETOOLONG) if size is too small. */
int mailbox_flags_imap(const struct mailbox *mb, const struct mailbox_msg *m, char *out,
                       size_t size);

/* What changed in an open folder since it was opened or last refreshed, for untagged
 * responses. Free with mailbox_changes_free. */
struct mailbox_changes {
    uint32_t *expunged; /* sequence numbers for untagged EXPUNGE, to be sent in this order:
                         * decreasing, so that each is right when it is sent */
    size_t n_expunged;
    uint32_t *expunged_uids; /* the UIDs of the same messages, in the same order (VANISHED) */
    uint32_t *flags;         /* sequence numbers (in the new numbering) of messages whose flags
                              * another session changed: untagged FETCH (FLAGS) for each */
    size_t n_flags;
    size_t exists;           /* mb->count afterwards: untagged EXISTS if it differs from the
                              * count the client was last told (after the EXPUNGEs) */
    size_t added;            /* messages new since the last refresh (at the end of mb->msgs) */
    int uidvalidity_changed; /* the index was rebuilt meanwhile: the session's UIDs are void;
                              * the list was reloaded whole (send BYE or re-SELECT) */
};
void mailbox_changes_free(struct mailbox_changes *ch);

/* Keep messages removed by others in mb->msgs with gone = 1 instead of reporting them now
 * (during FETCH, STORE and SEARCH no EXPUNGE may be sent, RFC 3501 §7.4.1). A later refresh
 * without the flag reports them. */
#define MAILBOX_REFRESH_KEEP_GONE 1
/* The caller holds the folder's index lock (mailbox_change_refresh uses it). */
#define MAILBOX_REFRESH_LOCKED 2

/* Brings an open folder up to date, as mailbox_open does (lock, new/ into cur/, reconcile,
 * index rewritten if needed), and tells what differs from the session's list: messages
 * removed by others (reported once, then dropped from mb->msgs), flags changed by others
 * (by file name; this session's own mailbox_set_flags are not reported), and messages added
 * (by delivery, another session's APPEND/COPY/MOVE, or this session's own APPEND into this
 * folder), appended in UID order. Sessions share one index, so UIDs agree between them.
 * ch is filled (also when nothing changed). 0, or -1 (errno set; mb unchanged): ENOENT when
 * another session deleted or renamed the folder (end the selection: BYE or NO). When nothing
 * in the folder changed it costs three stats and no lock. */
int mailbox_refresh(struct mailbox *mb, int flags, struct mailbox_changes *ch);

/* An inotify descriptor (non-blocking, close-on-exec) that becomes readable when a file is
 * added to, removed from or renamed in new/ or cur/ of the open folder: poll it with the
 * client's socket during IDLE, then call mailbox_watch_drain and mailbox_refresh. Made once
 * per folder (mailbox_close closes it). fd, or -1 (errno set). */
int mailbox_watch(struct mailbox *mb);
/* Reads away the pending events (this session's own changes also cause some). 0 / -1. */
int mailbox_watch_drain(struct mailbox *mb);

/* EXPUNGE, CLOSE, UID EXPUNGE (RFC 4315), the end of MOVE: removes every message of the
 * session's list whose file has the T flag (\Deleted) now, found by base name, limited to
 * the uids given (sorted or not) unless uids is NULL. Each removal is recorded in a journal
 * under the index lock first, so a kill -9 leaves all of them removed or none (the next open
 * finishes the journal). The messages leave mb->msgs; ch->expunged lists their sequence
 * numbers in the order to send them (ch's other fields are zero, exists the new count).
 * 0, or -1 (errno set; nothing removed). */
int mailbox_expunge_deleted(struct mailbox *mb, const uint32_t *uids, size_t n,
                            struct mailbox_changes *ch);

/* ---- IMAP: STATUS, APPEND, COPY, MOVE ---- */

struct mailbox_status {
    uint32_t messages, recent, uidnext, uidvalidity, unseen;
    uint64_t size;          /* RFC 8438 STATUS SIZE: the sum of RFC822.SIZE (W=) */
    uint64_t highestmodseq; /* RFC 7162 STATUS HIGHESTMODSEQ */
};
/* STATUS of a folder (a Maildir that exists) without keeping it open: the index is read and
 * reconciled as by mailbox_open (cheap when the directories have not changed). recent is
 * always 0 (the messages new since the last session cannot be told apart; IMAP4rev2 drops
 * \Recent). 0, or -1 (errno ENOENT: no such folder). */
int mailbox_status(const char *maildir, struct mailbox_status *st);

/* A message being stored by APPEND, streamed from the client's literal. */
struct mailbox_append {
    int fd;
    int failed_errno; /* the first error; later calls fail with it */
    int pending_cr;   /* the last chunk ended in CR */
    time_t date;      /* INTERNALDATE (0: now) */
    uint64_t size, crlf_size;
    char maildir[PATH_MAX];
    char tmp_path[PATH_MAX];
    char unique[160];
    char flags[MAILBOX_KEYWORDS + 8]; /* maildir letters */
    size_t buf_len;
    char buf[8192];
};
/* Starts a message for the folder maildir (which must exist: ENOENT means TRYCREATE) with the
 * flags (maildir letters, e.g. "S" or "FSa"; from mailbox_flag_letter on the target folder)
 * and INTERNALDATE date (0 for now). The data goes to <maildir>/tmp/. 0, or -1 (errno). */
int mailbox_append_begin(struct mailbox_append *a, const char *maildir, const char *flags,
                         time_t date);
/* Appends a chunk of the message as received (CRLF line ends, chunks split anywhere): CRLF
 * is stored as LF; a bare LF or CR is kept. 0, or -1 (errno; ENOSPC/EDQUOT: the disk). */
int mailbox_append_write(struct mailbox_append *a, const void *data, size_t len);
/* Finishes it: flushed, mtime set to the date, fsynced, linked into cur/ as
 * <unique>,S=<s>,W=<w>:2,<flags>, cur/ fsynced, and given its UID under the index lock.
 * *uidvalidity and *uid are what APPENDUID (RFC 4315) reports. The tmp file is removed
 * either way. 0, or -1 (errno; nothing stored). A kill -9 before the link leaves nothing;
 * after it, the message, which the next open numbers. */
int mailbox_append_commit(struct mailbox_append *a, uint32_t *uidvalidity, uint32_t *uid);
/* Drops an unfinished message (the client went away, the literal was too large). */
void mailbox_append_abort(struct mailbox_append *a);

/* What COPY and MOVE report (COPYUID, RFC 4315): src[i] was copied to dst[i]. */
struct mailbox_copyuid {
    uint32_t uidvalidity; /* of the destination */
    uint32_t *src, *dst;
    size_t count;
};
void mailbox_copyuid_free(struct mailbox_copyuid *c);

/* COPY: the messages with these UIDs (in the order given) into the folder dst_maildir (which
 * must exist: ENOENT means TRYCREATE; it may be the open folder itself). Each copy is a hard
 * link (a copy of the data across file systems) under a new unique name, with its flags
 * (keywords mapped to the destination's). All or nothing: the copies wait in dst's tmp/ and
 * a journal under dst's index lock moves them into cur/ at once, finished by the next open
 * after a kill -9. 0 with cu filled, 1 if one of the messages was expunged meanwhile (errno
 * ENOENT; nothing copied: NO [EXPUNGEISSUED]), -1 (errno set; nothing copied). */
int mailbox_copy(struct mailbox *mb, const uint32_t *uids, size_t n, const char *dst_maildir,
                 struct mailbox_copyuid *cu);
/* MOVE (RFC 6851): as mailbox_copy, then the originals are removed from the open folder
 * (the same journal removes them, so no message is ever lost or left in both after the next
 * open) and leave mb->msgs; ch->expunged lists their sequence numbers, to be sent after the
 * untagged OK [COPYUID]. Returns as mailbox_copy. */
int mailbox_move(struct mailbox *mb, const uint32_t *uids, size_t n, const char *dst_maildir,
                 struct mailbox_copyuid *cu, struct mailbox_changes *ch);

/* ---- folders (Maildir++) ---- */

/* A folder with a SPECIAL-USE attribute (RFC 6154), created at first login. */
struct mailbox_special {
    const char *name; /* the folder's name, as IMAP shows it ("Sent") */
    const char *attr; /* its attribute ("\\Sent") */
};
extern const struct mailbox_special mailbox_special_folders[];
extern const size_t mailbox_special_count;

/* The SPECIAL-USE attribute of a folder name, or NULL. */
const char *mailbox_special_use(const char *folder);

/* The Maildir of a folder: "INBOX" (any case) is the root, "a.b" is <root>/.a.b.
 * -1 (errno EINVAL) for a name that is not safe: empty parts, '/', control bytes, a leading
 * or doubled '.', over 200 octets. */
int mailbox_folder_path(char *dst, size_t size, const char *root, const char *folder);

/* Creates the special folders (each a Maildir with a "maildirfolder" file) that are missing.
 * 0, or -1 (errno set). */
int mailbox_ensure_folders(const char *root);

/* One folder of a user, for LIST and LSUB. Names are stored as the client sent them (modified
 * UTF-7, RFC 3501 §5.1.3); the hierarchy delimiter is '.'. */
struct mailbox_folder {
    char *name;          /* "INBOX", "Sent", "Lists.yubin" */
    int noselect;        /* a parent implied by a child's name (".a.b" without ".a") */
    int children;        /* 1 if another folder is below it (\HasChildren, else \HasNoChildren) */
    int subscribed;      /* named in the subscriptions file (\Subscribed, RFC 5258) */
    const char *special; /* its SPECIAL-USE attribute, or NULL */
};
struct mailbox_folders {
    struct mailbox_folder *items; /* INBOX first, then the others in byte order of name */
    size_t count;
};
/* Every folder of the user whose Maildir is root: INBOX, each .<name> sub-Maildir, the parents
 * their names imply (noselect), with children and subscribed set. 0, or -1 (errno set). */
int mailbox_folders_list(const char *root, struct mailbox_folders *out);
void mailbox_folders_free(struct mailbox_folders *f);

/* CREATE: the folder (a Maildir with a "maildirfolder" file) and every missing parent
 * ("a.b.c" makes a and a.b too). A trailing '.' (RFC 3501 §6.3.3) is dropped first.
 * 0, or -1: EEXIST (INBOX or an existing folder), EINVAL (a name mailbox_folder_path
 * refuses), or another errno. */
int mailbox_folder_create(const char *root, const char *name);
/* DELETE: removes the folder and its messages (renamed into root's tmp/ first, so a kill -9
 * leaves it whole or gone; then removed). 0, or -1: EPERM (INBOX), ENOENT (no such folder),
 * ENOTEMPTY (it has children: refused, RFC 3501 §6.3.4 allows this), EINVAL, or another errno.
 * Its subscription stays (RFC 3501 §6.3.4). */
int mailbox_folder_delete(const char *root, const char *name);
/* RENAME: the folder and its children ("a" -> "b" renames a.x to b.x too), keeping their
 * UIDs and UIDVALIDITY; missing parents of the new name are created. Renaming INBOX makes the
 * new folder and moves INBOX's messages into it, leaving INBOX empty (its children stay,
 * RFC 3501 §6.3.5). 0, or -1: ENOENT (no such folder), EEXIST (the new name exists),
 * EINVAL (a bad name, or a folder into its own child), or another errno. */
int mailbox_folder_rename(const char *root, const char *from, const char *to);

/* SUBSCRIBE (on = 1) and UNSUBSCRIBE (0): the name (which need not exist) in the root's
 * "subscriptions" file (yubin-subscriptions(5): one name per line, as Dovecot keeps it),
 * rewritten as write-new + fsync + rename under flock on subscriptions.lock. Subscribing twice
 * or unsubscribing a name not there is not an error. 0, or -1 (errno; EINVAL: a bad name). */
int mailbox_subscribe(const char *root, const char *name, int on);
/* The subscribed names (LSUB, LIST (SUBSCRIBED)), in file order; free with
 * mailbox_names_free. A missing file is no subscription. 0, or -1 (errno set). */
int mailbox_subscriptions(const char *root, char ***names, size_t *count);
void mailbox_names_free(char **names, size_t count);

#endif
