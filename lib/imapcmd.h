/*
 * imapcmd: the folder and message commands of imap4-in, one run function each for the
 * command table in bin/imap4-in.c (struct imapcmd, lib/imapsess.h). Each checks its state-
 * independent syntax with lib/imaptok, acts through lib/mailbox (and lib/imapfetch,
 * lib/imapsearch), and sends exactly one tagged reply; it returns 0, or -1 when the session
 * must end (the connection failed).
 *
 * lib/imapcmd-folder.c: LIST (RFC 3501 patterns, RFC 5258 LIST-EXTENDED selection and return
 * options, RFC 6154 SPECIAL-USE, RFC 5819 LIST-STATUS), LSUB, STATUS, CREATE, DELETE, RENAME,
 * SUBSCRIBE, UNSUBSCRIBE. lib/imapcmd-msg.c: APPEND (streamed, RFC 4315 APPENDUID), COPY and
 * MOVE (COPYUID, RFC 6851), STORE, FETCH, SEARCH, and their UID forms (s->uid).
 *
 * They never act on a folder name that is not valid modified UTF-7, never send an untagged
 * EXPUNGE during FETCH, STORE or SEARCH, never hold a message in memory, and never change a
 * folder opened read-only.
 */
#ifndef YUBIN_IMAPCMD_H
#define YUBIN_IMAPCMD_H

#include <stddef.h>

struct imapsess;
struct imaptok;
struct imap_seqset;

/* lib/imapcmd-folder.c */
int imapcmd_list(struct imapsess *s, struct imaptok *args);
int imapcmd_lsub(struct imapsess *s, struct imaptok *args);
int imapcmd_status(struct imapsess *s, struct imaptok *args);
int imapcmd_create(struct imapsess *s, struct imaptok *args);
int imapcmd_delete(struct imapsess *s, struct imaptok *args);
int imapcmd_rename(struct imapsess *s, struct imaptok *args);
int imapcmd_subscribe(struct imapsess *s, struct imaptok *args);
int imapcmd_unsubscribe(struct imapsess *s, struct imaptok *args);

/* lib/imapcmd-msg.c */
int imapcmd_append(struct imapsess *s, struct imaptok *args); /* IMAPCMD_STREAM */
int imapcmd_copy(struct imapsess *s, struct imaptok *args);   /* IMAPCMD_UID */
int imapcmd_move(struct imapsess *s, struct imaptok *args);   /* IMAPCMD_UID */
int imapcmd_store(struct imapsess *s, struct imaptok *args);  /* IMAPCMD_UID, NO_EXPUNGE */
int imapcmd_fetch(struct imapsess *s, struct imaptok *args);  /* IMAPCMD_UID, NO_EXPUNGE */
int imapcmd_search(struct imapsess *s, struct imaptok *args); /* IMAPCMD_UID, NO_EXPUNGE */
/* Shared by both files. Each returns 1 when the command may go on; otherwise it has sent the
 * tagged reply and returns what the run function is to return (0, or -1). */

/* A folder name (an astring, modified UTF-7) from args into out (size octets, at most
 * IMAP_FOLDER_MAX), INBOX in any case made "INBOX". BAD for syntax, NO [CANNOT] for a name
 * that is not modified UTF-7, NO [LIMIT] for one too long. */
int imapcmd_folder_arg(struct imapsess *s, struct imaptok *args, char *out, size_t size);
/* A sequence-set of the selected folder, or "$" (RFC 5182): then *saved is 1 and set is a copy
 * of the UIDs the last SEARCH RETURN (SAVE) kept (resolved; empty when none), to be taken as
 * UIDs even in a command that is no UID one. 0 (imap_seqset_free set after), -1 syntax,
 * IMAPTOK_TOO_LONG, -3 out of memory. Not a reply. */
int imapcmd_seqset(struct imapsess *s, struct imaptok *args, struct imap_seqset *set, int *saved);
/* The Maildir of a folder of the session's user (mailbox_folder_path); NO [CANNOT] if the
 * name is not one lib/mailbox takes. */
int imapcmd_folder_path(struct imapsess *s, const char *name, char *path, size_t size);
/* The tagged NO for a failed folder operation's errno: ENOENT [NONEXISTENT], EEXIST
 * [ALREADYEXISTS], EINVAL [CANNOT], ENOTEMPTY [HASCHILDREN], ENOSPC/EDQUOT [OVERQUOTA],
 * anything else logged and [UNAVAILABLE]. Always a reply: returns its result (0 / -1). */
int imapcmd_folder_error(struct imapsess *s, int err, const char *name);

#endif
