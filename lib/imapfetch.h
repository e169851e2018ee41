/*
 * imapfetch: the FETCH command's data items (RFC 3501 §6.4.5, §7.4.2; RFC 9051 §6.4.5; RFC
 * 3516 BINARY): the attribute list parsed from a struct imaptok into a bounded struct, and one
 * message's "* <seq> FETCH (...)" response rendered to a writer, body sections streamed from
 * the message file (stored with LF line ends; IMAP sends CRLF, as lib/mime's crlf spans
 * count). Also the STORE/APPEND flag-list parser (system flags to Maildir letters).
 *
 * It never holds a message whole in memory (a 50 MB BODY[] costs the same as 5 KB: the file
 * is read in MIME_CHUNK pieces), never writes a literal whose length it has not counted
 * first, never writes a partial response when it refuses a message (UNKNOWN-CTE, a read
 * error before the first octet), and never changes the mailbox: setting \Seen on disk is the
 * caller's job (imapfetch_sets_seen says when).
 */
#ifndef YUBIN_IMAPFETCH_H
#define YUBIN_IMAPFETCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imaptok.h"
#include "mime.h"

enum imapfetch_kind {
    IMAPFETCH_UID,
    IMAPFETCH_FLAGS,
    IMAPFETCH_INTERNALDATE,
    IMAPFETCH_RFC822_SIZE,
    IMAPFETCH_ENVELOPE,
    IMAPFETCH_BODYSTRUCTURE,
    IMAPFETCH_BODY,          /* "BODY" alone: BODYSTRUCTURE without extension data */
    IMAPFETCH_SECTION,       /* BODY[section]<partial>, BODY.PEEK[...] */
    IMAPFETCH_RFC822,        /* = BODY[], sets \Seen, answered as "RFC822" */
    IMAPFETCH_RFC822_HEADER, /* = BODY.PEEK[HEADER], answered as "RFC822.HEADER" */
    IMAPFETCH_RFC822_TEXT,   /* = BODY[TEXT], sets \Seen, answered as "RFC822.TEXT" */
    IMAPFETCH_BINARY,        /* BINARY[part]<partial>, BINARY.PEEK[...] (RFC 3516) */
    IMAPFETCH_BINARY_SIZE,   /* BINARY.SIZE[part] */
    IMAPFETCH_MODSEQ         /* MODSEQ (RFC 7162 CONDSTORE) */
};

#define IMAPFETCH_MAX_ITEMS 64  /* data items in one FETCH (after macros are expanded) */
#define IMAPFETCH_MAX_TEXT 4096 /* octets of section texts of one FETCH */

struct imapfetch_item {
    unsigned char kind;      /* enum imapfetch_kind */
    unsigned char peek;      /* BODY.PEEK / BINARY.PEEK: no \Seen */
    unsigned char partial;   /* <origin.count> given */
    uint16_t sect, sect_len; /* the section in canonical form ("1.2.HEADER.FIELDS (FROM TO)",
                                "" for BODY[]; for BINARY the part number only) at
                                imapfetch.text + sect: what lib/mime resolves and what the
                                response names between [ and ] */
    uint64_t origin, count;  /* in octets of the section as sent (CRLF, or decoded for
                                BINARY); count >= 1 (RFC 3501 nz-number) */
};

struct imapfetch {
    struct imapfetch_item item[IMAPFETCH_MAX_ITEMS];
    size_t n;                      /* in the order asked; duplicates dropped */
    char text[IMAPFETCH_MAX_TEXT]; /* section texts, each NUL-terminated */
    size_t text_len;
    unsigned needs;         /* IMAPFETCH_NEED_*: what rendering will read */
    int changedsince_given; /* the modifier (CHANGEDSINCE n) (RFC 7162 §3.1.4.1) */
    uint64_t changedsince;  /* its n: only messages whose MODSEQ is above it */
    int vanished;           /* QRESYNC's VANISHED modifier (RFC 7162 §3.2.6), with CHANGEDSINCE */
};
#define IMAPFETCH_NEED_FILE 0x1 /* some item reads the message file (ENVELOPE, a section...) */

/* Parses what follows "FETCH <sequence-set> " (the cursor just after that SP): the macro ALL,
 * FAST or FULL, one fetch-att, or "(" fetch-att *(SP fetch-att) ")", up to the end of the
 * arguments (anything after it is refused). Atoms in any case. HEADER.FIELDS names are
 * astrings (quoted or literal too); they are kept upper-cased, as Dovecot answers them.
 * 0, or -1 with a text for "<tag> BAD <text>" in err (NUL-terminated, cut to errlen), such as
 * "Unknown FETCH attribute FOO", "Invalid section 1.X", "Invalid partial <0.0>",
 * "Too many FETCH attributes". The attributes may be followed by RFC 7162's modifier list
 * " (CHANGEDSINCE n [VANISHED])" (n a mod-sequence, 0 to 2^63-1; VANISHED in either place, for
 * the caller to check). */
int imapfetch_parse(struct imaptok *t, struct imapfetch *f, char *err, size_t errlen);

/* 1 when fetching these items sets \Seen (RFC 3501: BODY[...] without .PEEK, RFC822,
 * RFC822.TEXT; RFC 3516: BINARY[...] without .PEEK), else 0. */
int imapfetch_sets_seen(const struct imapfetch *f);

/* What the caller knows of one message. */
struct imapfetch_msg {
    uint32_t seq, uid;
    const char *flags; /* IMAP flags before this FETCH, space-separated, no parentheses
                          ("\\Seen \\Flagged $Junk", "" for none: lib/mailbox's
                           mailbox_flags_imap) */
    time_t internaldate;
    uint64_t crlf_size; /* RFC822.SIZE: lib/mailbox's crlf_size (W=) */
    int fd;             /* the message file, open for reading (read with pread; not closed);
                           may be -1 when !(needs & IMAPFETCH_NEED_FILE): then it is not read */
    int uid_command;    /* UID FETCH (or a FETCH answering STORE under UID): UID is always sent */
    int read_only;      /* EXAMINE'd folder: \Seen is not added */
    uint64_t modseq;    /* MODSEQ (RFC 7162), for the MODSEQ item or send_modseq */
    int send_modseq;    /* "MODSEQ (n)" even when not asked for (CHANGEDSINCE, or CONDSTORE
                           and \Seen set by this FETCH), after the UID */
};

/* imapfetch_message results besides 0 */
#define IMAPFETCH_BROKEN                                                                           \
    (-1)                          /* the writer failed, or a read failed once output began: the    \
                                     response is cut short; close the connection */
#define IMAPFETCH_READ_ERROR (-2) /* the file could not be read (errno); nothing was written */
#define IMAPFETCH_UNKNOWN_CTE                                                                      \
    (-3) /* a BINARY item names a part whose Content-Transfer-Encoding                             \
            cannot be decoded; nothing was written: answer                                         \
            "<tag> NO [UNKNOWN-CTE] ..." (RFC 3516 §4.3) */

/* Writes "* <seq> FETCH (<items>)\r\n" for one message through w: the items in the order
 * asked, UID first when uid_command and UID was not asked for. When imapfetch_sets_seen and
 * not read_only and \Seen is not in flags, FLAGS is sent with \Seen added (and added to the
 * items when it was not asked for; RFC 3501 §6.4.5); the caller sets it on disk.
 * INTERNALDATE in local time as "17-Jul-1996 02:44:25 -0700". Body sections go out as
 * literals "{n}\r\n" + n octets (LF sent as CRLF); a partial <origin.count> is answered as
 * "BODY[section]<origin>", an origin past the end as an empty literal; a section naming no
 * part (BODY[9], BODY[1.HEADER] of a text part) as an empty literal too (as Dovecot does); a NUL in
 * the file goes out as 0x80 (as Dovecot does: IMAP's CHAR8 excludes NUL). BINARY decodes base64 and
 * quoted-printable (of a leaf part, and BINARY[] that of a message whose body is its only part,
 * its header's Content-Transfer-Encoding then "binary"; multiparts are sent as they are), as
 * literal8 "~{n}" when the result holds a NUL (sent as it is). 0, or IMAPFETCH_BROKEN,
 * IMAPFETCH_READ_ERROR, IMAPFETCH_UNKNOWN_CTE. Memory: one lib/mime tree and a few MIME_CHUNK
 * buffers, whatever the message's size. */
int imapfetch_message(const struct imapfetch *f, const struct imapfetch_msg *m, mime_writer w,
                      void *arg);

/* ---- flags ---- */

#define IMAPFETCH_MAX_KEYWORDS 32

/* A STORE or APPEND flag list parsed. */
struct imapfetch_flags {
    char letters[8];                        /* Maildir letters of the system flags, sorted */
    const char *kw[IMAPFETCH_MAX_KEYWORDS]; /* keywords (atoms), pointing into the command */
    size_t kw_len[IMAPFETCH_MAX_KEYWORDS];
    size_t n_kw;
};

/* Parses "(" [flag *(SP flag)] ")" or, without parentheses, flag *(SP flag) (RFC 3501
 * store-att-flags): \Answered \Flagged \Deleted \Seen \Draft (any case) become letters,
 * $Forwarded becomes P, other atoms are keywords (duplicates dropped). \Recent, an unknown
 * \Flag, or more than IMAPFETCH_MAX_KEYWORDS keywords are refused. 0, or -1 with the BAD
 * text in err; the cursor is after the list on 0. */
int imapfetch_parse_flags(struct imaptok *t, struct imapfetch_flags *fl, char *err, size_t errlen);

/* STORE's data item (RFC 3501 store-att-flags), what follows "STORE <set> " (after any
 * CONDSTORE modifier the caller took): FLAGS, +FLAGS or -FLAGS, optionally .SILENT (any case),
 * SP, then the flags as imapfetch_parse_flags reads them, up to the end of the arguments.
 * 0, or -1 with the BAD text in err ("Invalid STORE data item X", "Junk after STORE flags"). */
enum imapfetch_store_op { IMAPFETCH_STORE_SET, IMAPFETCH_STORE_ADD, IMAPFETCH_STORE_REMOVE };
struct imapfetch_store {
    enum imapfetch_store_op op;
    int silent; /* .SILENT: no untagged FETCH FLAGS for the changed messages */
    struct imapfetch_flags flags;
};
int imapfetch_parse_store(struct imaptok *t, struct imapfetch_store *st, char *err, size_t errlen);

#endif
