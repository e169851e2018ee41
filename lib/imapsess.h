/*
 * imapsess: one IMAP session of imap4-in (RFC 3501, RFC 9051) as the commands see it: the
 * state, the logged-in user and his Maildir root, the selected folder, the enabled
 * extensions, the tag of the command being run; the replies (untagged, tagged OK/NO/BAD with
 * response codes, strings quoted or as literals); the untagged updates a tagged reply brings
 * (EXPUNGE, EXISTS, FETCH FLAGS, at the points RFC 3501 §5.2 and §7.4.1 allow); the reading
 * of one command (its lines and literals assembled into one bounded buffer); and the message
 * literal of APPEND, streamed rather than assembled.
 *
 * bin/imap4-in.c holds the command table (struct imapcmd lines) and the commands of the
 * session itself (CAPABILITY, LOGIN, SELECT, IDLE, ...); the folder and message commands live
 * in lib/imapcmd-*.c (declared in lib/imapcmd.h) and are named in that table.
 *
 * A command's run function checks its arguments with lib/imaptok, acts, and sends exactly one
 * tagged reply (imapsess_ok, imapsess_no or imapsess_bad) unless it returns -1. It returns 0,
 * or -1 when the session must end (the connection failed, or it sent * BYE).
 *
 * It must never send an untagged EXPUNGE while a FETCH, STORE or SEARCH (not their UID forms)
 * is answered, never write a string IMAP cannot read back (a CR, LF or NUL in a quoted string),
 * never assemble more than IMAP_CMD_MAX octets of a command, never hold a message literal in
 * memory, and never read input as TLS that was buffered in plaintext.
 */
#ifndef YUBIN_IMAPSESS_H
#define YUBIN_IMAPSESS_H

#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "connlimit.h"
#include "imaptok.h"
#include "mailbox.h"
#include "netio.h"
#include "users.h"

#define IMAP_CMD_MAX 65536  /* an assembled command: its lines and literals (not APPEND's) */
#define IMAP_LINE_MAX 8192  /* one line of a command, CRLF included */
#define IMAP_TAG_MAX 64     /* octets of a tag */
#define IMAP_FOLDER_MAX 256 /* octets of a folder name */

/* The states (RFC 3501 §3), as bits for struct imapcmd's states. */
enum imap_state {
    IMAP_NOT_AUTH = 1,
    IMAP_AUTH = 2,
    IMAP_SELECTED = 4,
    IMAP_LOGOUT = 8,
};
#define IMAP_ANY_STATE (IMAP_NOT_AUTH | IMAP_AUTH | IMAP_SELECTED)
#define IMAP_LOGGED_IN (IMAP_AUTH | IMAP_SELECTED)

/* Extensions the client ENABLEd (RFC 5161). */
#define IMAP_EN_REV2 0x1 /* IMAP4rev2 (RFC 9051): no \Recent, ESEARCH forms, ... */
#define IMAP_EN_CONDSTORE                                                                          \
    0x2 /* CONDSTORE (RFC 7162), by ENABLE or a CONDSTORE-enabling command: every untagged         \
         * FETCH of a flag change carries UID and MODSEQ */
#define IMAP_EN_QRESYNC                                                                            \
    0x4 /* QRESYNC (RFC 7162 §3.2): VANISHED instead of EXPUNGE, SELECT (QRESYNC ...) */

/* The message literal of a command with IMAPCMD_STREAM (APPEND), see imapsess_literal_*. */
struct imap_literal {
    uint64_t size; /* as announced */
    uint64_t left; /* octets not yet read */
    int nonsync;   /* {n+}: the client sends it without waiting for "+" */
    int binary;    /* ~{n}: literal8 (RFC 3516), NUL octets allowed; else a NUL is refused */
    int pending;   /* the command line ended in this literal's announcement */
    int begun;     /* imapsess_literal_begin was called ("+" sent when synchronising) */
    int ended;     /* the rest of the command line after it has been read */
};

struct imapsess {
    struct yubin_conf conf;
    struct netio io;
    unsigned state;   /* one enum imap_state */
    int done;         /* the session ends after this command */
    unsigned enabled; /* IMAP_EN_* */

    /* The command being run. */
    char tag[IMAP_TAG_MAX + 1];
    char cmd[32];       /* its name in upper case ("FETCH"; "UID" not included) */
    int uid;            /* it came as UID <cmd> */
    unsigned cmd_flags; /* its table entry's flags */
    int replied;        /* a tagged reply has been sent */
    struct imap_literal lit;

    /* The client. */
    char client[INET6_ADDRSTRLEN + 8];
    int local_client;           /* loopback or a pipe: plaintext logins allowed */
    int implicit_tls;           /* -T */
    struct tls_server *tls_ctx; /* a certificate read (lib/tlsserver): STARTTLS offered */
    char tls[160];              /* over TLS: "TLSv1.3 with cipher ..." (lib/tls); else "" */
    struct connlimit slot;
    unsigned errors; /* BAD replies so far (max_errors ends the session) */
    unsigned junk;   /* commands that fetch nothing (max_junk_commands) */
    unsigned auth_failures;

    /* After login. */
    char user[USERS_ADDRESS_SIZE]; /* the mailbox as the users file names it */
    char root[PATH_MAX];           /* its Maildir: INBOX; folders are .name below it */

    /* In the SELECTED state. */
    struct mailbox mb;            /* the selected folder (lib/mailbox); mb.cur_fd -1 if none */
    char folder[IMAP_FOLDER_MAX]; /* its name as the client gave it ("INBOX" normalised) */
    int readonly;                 /* EXAMINE, or a folder we may not change */
    size_t exists_told;           /* the EXISTS count the client was last told */
    struct imap_seqset saved;     /* "$" (RFC 5182): the UIDs the last SEARCH RETURN (SAVE)
                                   * kept, resolved; empty (n 0) after SELECT, CLOSE, ... */
};

struct mailbox_changes;

/* A command of the table in bin/imap4-in.c. */
struct imapcmd {
    const char *name; /* upper case: "FETCH" */
    unsigned states;  /* enum imap_state bits where it is allowed */
    int (*run)(struct imapsess *s, struct imaptok *args);
    unsigned flags; /* IMAPCMD_* */
};
#define IMAPCMD_UID 0x1 /* also as "UID <name>" (s->uid set) */
#define IMAPCMD_NO_EXPUNGE                                                                         \
    0x2 /* FETCH, STORE, SEARCH: no untagged EXPUNGE with its replies                              \
         * (the UID forms may have them, RFC 3501 §7.4.1) */
#define IMAPCMD_STREAM                                                                             \
    0x4                  /* APPEND: the literal that ends "mailbox [flags] [date]" is              \
                          * not assembled; run gets the arguments before it and reads              \
                          * it with imapsess_literal_* */
#define IMAPCMD_JUNK 0x8 /* NOOP, CHECK, CAPABILITY...: counted as fetching nothing */

/* Sets up s (not yet reading): the descriptors, no mailbox, state NOT_AUTH. */
void imapsess_init(struct imapsess *s, int in_fd, int out_fd);
/* Closes the selected folder (if any) and frees what s holds (not the connection). */
void imapsess_free(struct imapsess *s);

/* ---- replies ---- */

/* "* " fmt CRLF. 0, or -1 once a write failed. */
int imapsess_untagged(struct imapsess *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* The tagged reply to the current command: "<tag> OK|NO|BAD " fmt CRLF; fmt may begin with a
 * response code ("[READ-WRITE] SELECT completed", "[APPENDUID 38505 3955] APPEND completed").
 * OK and NO first send the untagged updates of the selected folder (imapsess_updates, without
 * EXPUNGE for IMAPCMD_NO_EXPUNGE commands). BAD is counted: after max_errors of them the
 * session ends with * BYE (s->done). One tagged reply per command: a second is dropped. */
int imapsess_ok(struct imapsess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imapsess_no(struct imapsess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imapsess_bad(struct imapsess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A tagged reply with the status given ("OK", "NO", "BAD"), as above. */
int imapsess_vtagged(struct imapsess *s, const char *status, const char *fmt, va_list ap);
/* The start of a tagged OK or NO too long for one formatted line ("<tag> OK ", after the
 * updates, as above): the caller writes the rest and its CRLF. 0, 1 when this command has
 * already replied (write nothing), or -1. */
int imapsess_tagged_begin(struct imapsess *s, const char *status);

/* Raw output inside a response being built ("* 3 FETCH (" ...): no CRLF added. */
int imapsess_printf(struct imapsess *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int imapsess_write(struct imapsess *s, const void *data, size_t len);
/* A string: quoted when every octet is printable 7-bit (8-bit too when UTF8 is enabled) and it
 * is not long, else a literal "{n}" CRLF data. */
int imapsess_string(struct imapsess *s, const char *str, size_t len);
/* As imapsess_string, NIL for NULL. */
int imapsess_nstring(struct imapsess *s, const char *str, size_t len);
/* An astring: the bare atom when it is one (mailbox names, flags), else a string. */
int imapsess_astring(struct imapsess *s, const char *str, size_t len);

/* ---- the selected folder ---- */

/* The untagged responses for what changed in the selected folder since the client was last
 * told (mailbox_refresh): "* n EXPUNGE" (unless no_expunge: then the removed messages stay,
 * marked gone), "* n FETCH (FLAGS (...))", "* n EXISTS" and, before IMAP4rev2, "* n RECENT".
 * Nothing outside the SELECTED state. 0, or -1 when the folder was rebuilt behind our back
 * (UIDVALIDITY changed: * BYE sent, s->done set) or a write failed. */
int imapsess_updates(struct imapsess *s, int no_expunge);
/* Sends ch (from mailbox_expunge_deleted, mailbox_move or mailbox_refresh) as untagged
 * EXPUNGE, FETCH FLAGS and EXISTS responses and counts them in s->exists_told. */
int imapsess_report(struct imapsess *s, const struct mailbox_changes *ch);
/* Closes the selected folder: back to the AUTH state, "$" (s->saved) emptied. */
void imapsess_unselect(struct imapsess *s);

/* ---- the message literal of an IMAPCMD_STREAM command (APPEND) ----
 * When run is called with s->lit.pending, args holds the command up to (not including) the
 * "{n}" or "{n+}" (or literal8's "~{n}", "~{n+}": s->lit.binary) that ended its line, and
 * s->lit.size says how long the literal is; the dispatcher has already refused one over
 * max_message_size (NO [TOOBIG]). A command that does not call imapsess_literal_begin (a bad
 * mailbox name, TRYCREATE) just replies: the dispatcher discards a non-synchronising literal
 * and the rest of its command. */

/* Sends "+ Ready for literal data" for a synchronising literal (nothing for {n+}). 0 / -1. */
int imapsess_literal_begin(struct imapsess *s);
/* Reads up to size octets of the literal into buf. The number read (> 0), 0 at its end, or
 * NETIO_TIMEOUT or NETIO_ERROR (the session must end). */
long imapsess_literal_read(struct imapsess *s, char *buf, size_t size);
/* After the literal: reads the rest of its command line. 0 when it ended there (CRLF), 1 when
 * more followed (discarded: reply BAD), -1 when the session must end. */
int imapsess_literal_end(struct imapsess *s);
/* For the dispatcher, after run: reads through a literal the command left ({n+} only: a
 * synchronising one is never sent without "+"). 0, or -1: the session ends. */
int imapsess_literal_finish(struct imapsess *s);

/* ---- reading commands (used by bin/imap4-in.c) ---- */

/* One command assembled into buf (size >= IMAP_CMD_MAX): its lines joined with their CRLFs
 * and literals, without the final CRLF; *len set. Synchronising literals get "+ Ready for
 * literal data" first. stream: the table entry of the command named by the first line, when
 * it is an IMAPCMD_STREAM one (looked up through the callback), so that its message literal
 * is left unread (s->lit). A literal8 ("~{n}", RFC 3516) is taken only as that message.
 * Returns 1 with a command; 0 when a reply was already sent for a bad one (NUL, a bad tag, a
 * literal too large, a literal8 elsewhere: "<tag> BAD ..." or "NO [TOOBIG]", the rest of the
 * command discarded; or, with s->done set, * BYE for a line too long or a bare CR or LF);
 * NETIO_TIMEOUT; or
 * NETIO_ERROR (the client closed, or the connection failed). */
int imapsess_read_command(struct imapsess *s, char *buf, size_t size, size_t *len,
                          const struct imapcmd *(*lookup)(const char *name, int uid));

/* The tag of a command line: 1*<any ASTRING-CHAR except "+">. 0, or -1 (BAD). */
int imapsess_take_tag(struct imapsess *s, struct imaptok *t);

#endif
