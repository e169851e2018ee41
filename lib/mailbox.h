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
 * the new one. Files added or removed behind its back (mutt, Dovecot, maildir-deliver) are
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

/* One message of an open folder, in UID order. */
struct mailbox_msg {
    uint32_t uid;
    char *name;         /* its current file name in cur/ (base, then ":2,<flags>") */
    size_t base_len;    /* the base name: up to ':' (stable while flags change) */
    size_t unique_len;  /* the unique part: up to the first ',' or ':' (the UIDL) */
    uint64_t size;      /* S=: bytes on disk */
    uint64_t crlf_size; /* W=: bytes with CRLF line ends (RFC822.SIZE, POP3 octets) */
    int deleted;        /* marked by the session (POP3 DELE), not yet expunged */
};

struct mailbox {
    char path[PATH_MAX]; /* the folder's Maildir */
    int cur_fd;          /* cur/, open for the session */
    uint32_t uidvalidity, uidnext;
    struct mailbox_msg *msgs;
    size_t count;
    uint64_t total_crlf;
    int scanned; /* 1 if open read the directories, 0 if the index was enough */
    int created; /* 1 if there was no usable index (a first login, or it was deleted) */
};

/* Opens a folder (a Maildir that exists, see maildir_ensure): takes the index lock, moves
 * new/ into cur/, reconciles the index with cur/ and rewrites it if anything changed, then
 * releases the lock. Messages that arrive later are seen by the next open.
 * 0, or -1 (errno set). After 0, call mailbox_close. */
int mailbox_open(struct mailbox *mb, const char *maildir);
void mailbox_close(struct mailbox *mb);

/* The message with this UID, or NULL. */
struct mailbox_msg *mailbox_by_uid(struct mailbox *mb, uint32_t uid);

/* POP3's UIDL of a message: its unique name part, which no index rebuild or flag change
 * alters (so UIDLs given out before the index existed stay the same), or a digest of it when
 * that part is not a valid RFC 1939 unique-id (over 70 octets or outside 0x21..0x7E). */
void mailbox_uidl(const struct mailbox_msg *m, char out[MAILBOX_UIDL_MAX + 1]);

/* Opens the message for reading. A file renamed by another session (its flags changed) is
 * found again by its base name. fd, or -1 (errno ENOENT when it is gone). */
int mailbox_open_msg(struct mailbox *mb, struct mailbox_msg *m);

/* The flags of a message (maildir(5): D draft, F flagged, P passed, R replied, S seen,
 * T trashed; lower-case letters are keywords), sorted, into out. */
void mailbox_flags(const struct mailbox_msg *m, char *out, size_t size);
/* Adds the flags in add and clears those in clear (letters as above) by renaming the file.
 * A file renamed meanwhile by another session is found by its base name and its flags
 * merged. 0, 1 if the message is gone (expunged elsewhere), -1 (errno set). */
int mailbox_set_flags(struct mailbox *mb, struct mailbox_msg *m, const char *add,
                      const char *clear);

/* Removes the message's file (found again by base name if renamed). 0 (also when it was
 * already gone), or -1 (errno set). Call mailbox_sync after a batch. */
int mailbox_expunge(struct mailbox *mb, struct mailbox_msg *m);
/* fsyncs cur/ after renames or removals. 0 / -1. */
int mailbox_sync(struct mailbox *mb);

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

#endif
