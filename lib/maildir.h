/*
 * maildir: durable delivery into Maildirs and listing them (DESIGN.md §3-4).
 *
 * A message is written once, to state_dir/tmp/, with LF line endings, counting its size on
 * disk (S=) and its size with CRLF line endings (W=). It is fsynced once. Each recipient's
 * copy is a hard link into <maildir>/new/<unique>,S=<s>,W=<w>, and each touched new/ directory
 * is fsynced once. Only then may the caller acknowledge. A failure leaves nothing visible in
 * new/. It never holds a message in memory: writes go through a small fixed buffer.
 *
 * Results: 0 success, 1 temporary failure (retry later), -1 permanent failure. On failure
 * errno is kept, so ENOSPC/EDQUOT can be told apart (452 4.3.1 in SMTP).
 */
#ifndef YUBIN_MAILDIR_H
#define YUBIN_MAILDIR_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAILDIR_UNIQUE_SIZE 160
#define MAILDIR_MAX_TARGETS 1024

/* One message being written and delivered. */
struct maildir_msg {
    int fd;
    int failed_errno; /* first write error, 0 if none */
    char state_dir[PATH_MAX];
    char tmp_path[PATH_MAX];          /* state_dir/tmp/<unique> */
    char unique[MAILDIR_UNIQUE_SIZE]; /* <time>.<random>.<host> */
    uint64_t size;                    /* S=: bytes on disk */
    uint64_t crlf_size;               /* W=: bytes with CRLF line ends */
    int committed;                    /* data fsynced and closed */
    size_t buf_len;
    char buf[8192];
    size_t n_dirs; /* new/ directories linked into, awaiting fsync */
    size_t dirs_alloc;
    char **dirs;                         /* grown on link, at most MAILDIR_MAX_TARGETS */
    char name[MAILDIR_UNIQUE_SIZE + 48]; /* <unique>,S=<s>,W=<w>, set by commit */
    int live;                            /* its slot among the tmp files a signal removes */
};

/* Creates state_dir/tmp/<unique> (state_dir/tmp is made if missing). host names the machine.
 * Every function below returns 0 / 1 temporary / -1 permanent with errno kept; a failed
 * system call is temporary (the disk may be freed, the permission fixed), a name or path
 * that can never work is permanent. After begin, always call maildir_msg_end. */
int maildir_msg_begin(struct maildir_msg *m, const char *state_dir, const char *host);
/* Appends bytes; LF is the line end on disk (callers convert CRLF to LF first). After a
 * failed write every later write and the commit fail with the same errno. */
int maildir_msg_write(struct maildir_msg *m, const void *data, size_t len);
/* Flushes, fsyncs and closes the data file. Call once, before any link. */
int maildir_msg_commit(struct maildir_msg *m);
/* Links the message into <maildir>/new/, creating the Maildir (tmp, new, cur; 0700) if it is
 * missing. The same maildir twice is linked once. The final name goes to name_out if not NULL. */
int maildir_msg_link(struct maildir_msg *m, const char *maildir, char *name_out, size_t name_size);
/* fsyncs every new/ directory linked into. After 0, the message is durable everywhere. */
int maildir_msg_sync(struct maildir_msg *m);
/* Removes the tmp file and frees what begin/link took. After a failed sync the links stay,
 * unless remove_links is set, which takes them back out of new/. */
void maildir_msg_end(struct maildir_msg *m, int remove_links);

/* A program that may be stopped in the middle of a message (SIGTERM from systemd's
 * RuntimeMaxSec, inetd, a shutdown) calls this once for each such signal: its handler then
 * unlinks the tmp file of every message begun and not yet ended (async-signal-safe: unlink of
 * paths already formatted), and the process dies of the signal as before. 0, or -1. */
int maildir_cleanup_on_signal(int sig);
/* Holds those signals back (hold = 1) or lets them through again (0): around an acceptance,
 * so that a message is stored and acknowledged whole, or not at all. */
void maildir_hold_signals(int hold);

/* Path of the Maildir of user@domain: state_dir/mail/<domain>/<local>, both parts in lower
 * case (addresses are compared case-insensitively, so one mailbox has one directory).
 * -1 (errno EINVAL or ENAMETOOLONG) if too long or the parts are unsafe as file names
 * ("", ".", "..", '/', leading '.', control bytes). */
int maildir_path(char *dst, size_t size, const char *state_dir, const char *local,
                 const char *domain);

/* Is this errno a full disk or an exceeded quota (452 4.3.1, EX_TEMPFAIL)? */
int maildir_errno_is_full(int err);

/* Listing (pop3-in). Filled in by the POP3 work; declared here so the module is one noun. */
struct maildir_entry {
    char *name;         /* file name in cur/ (after login every message is in cur/) */
    size_t unique_len;  /* length of the unique part (the UIDL), before ',' or ':' */
    uint64_t size;      /* S= */
    uint64_t crlf_size; /* W= */
    int deleted;
};

struct maildir_list {
    struct maildir_entry *entries;
    size_t count;
    uint64_t total_crlf;
    char *names; /* one block holding every entry's name */
    int cur_fd;  /* cur/, open for the session (openat for RETR, unlinkat for DELE) */
};

/* Takes the session lock of a Maildir (flock on <maildir>/pop3.lock, created if missing).
 * Returns 0 with the lock's descriptor in *fd (closing it, or the process dying, releases it),
 * 1 if another session holds it, -1 on error (errno set). */
int maildir_lock(const char *maildir, int *fd);

/* Creates <maildir>/{tmp,new,cur} (0700) if they are missing, and the parents up to it
 * (pop3-in and yubin-user, for a mailbox that has not had mail yet). 0/-1 (errno set). */
int maildir_ensure(const char *maildir);

/* Parses a Maildir file name "<unique>,S=<s>,W=<w>[:2,<flags>]". Fills the unique length
 * (up to the first ',' or ':') and the sizes. 0 if both S= and W= were there, 1 if the
 * name lacks W= (the caller must measure), -1 if the name is unusable (empty unique part,
 * a leading '.'). */
int maildir_parse_name(const char *name, size_t *unique_len, uint64_t *size, uint64_t *crlf);

/* The POP3 view of a Maildir at login: moves every message of new/ into cur/ (adding ":2,"),
 * then lists cur/ in name order with sizes from the names: no stat and no read per message
 * (a name without W= is measured once by reading it). 0, or -1 (errno set). Messages that
 * arrive later are not seen by this list. */
int maildir_list_load(struct maildir_list *l, const char *maildir);
/* The same move from new/ into cur/ (cur_fd, of maildir), then every name of cur/ but dot files
 * given to fn as a stream, in directory order (nothing is kept: a folder of any size costs the
 * same memory). fn returns 0 to go on, or -1 (errno set) to stop. 0, or -1 (errno set). */
int maildir_scan(int cur_fd, const char *maildir, int (*fn)(void *ctx, const char *name),
                 void *ctx);
/* The sizes of the file name in dirfd read from its data (S= bytes, W= with CRLF line ends),
 * for a name without W=. 0, or -1 (errno set). */
int maildir_measure(int dirfd, const char *name, uint64_t *size, uint64_t *crlf);
/* Frees the list and closes cur/. */
void maildir_list_free(struct maildir_list *l);

#endif
