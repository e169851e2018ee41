/*
 * imapsearch: the criteria of SEARCH and UID SEARCH (RFC 3501 §6.4.4, RFC 9051 §6.4.4), their
 * result options (ESEARCH, RFC 4731; SAVE and "$", RFC 5182), parsed from a struct imaptok,
 * evaluated against one message at a time, and the answer formatted ("* SEARCH ..." or
 * "* ESEARCH ..."). imap4-in's SEARCH glue (lib/imapcmd-msg.c) parses once, calls
 * imapsearch_match for each message of the selected folder, collects the hits and writes the
 * result.
 *
 * Matching: flags, sizes, dates and sets never open a file. The text keys (BCC, BODY, CC,
 * FROM, HEADER, SUBJECT, TEXT, TO, and SENTBEFORE/SENTON/SENTSINCE, which read Date:) read the
 * message only when the evaluation reaches them, at most one pass over the header and one over
 * the body for all the query's text keys together. A string matches as a substring, without
 * case for ASCII letters and for the Latin-1 letters of UTF-8 (U+00C0..U+00DE against
 * U+00E0..U+00FE); other UTF-8 is compared octet by octet; CR octets are ignored on both
 * sides (the store has LF line ends). Header keys look inside each field's value, unfolded,
 * with RFC 2047 encoded words (B and Q) decoded to UTF-8 (UTF-8, US-ASCII, ISO-8859-1,
 * ISO-8859-15, windows-1252; other charsets keep their octets). BODY looks in the body of
 * every text part (text/..., or no Content-Type) with its base64 or quoted-printable decoded
 * and its charset (as above) turned into UTF-8, in the headers of attached messages, and in
 * non-text parts sent as 7bit/8bit/binary (not base64 or quoted-printable ones: those are
 * binary attachments); TEXT looks in the header (every "Name: value" line, decoded), in the
 * MIME headers of the parts (an attachment's file name) and where BODY looks. The body is streamed
 * in bounded chunks: a 50 MB message costs no more memory than a small one, and a string found
 * across two chunks is found.
 *
 * It never allocates more than bounds derived from the command (IMAPSEARCH_MAX_* below), never
 * recurses deeper than IMAPSEARCH_MAX_DEPTH, never writes to a message file and never holds
 * one whole in memory.
 */
#ifndef YUBIN_IMAPSEARCH_H
#define YUBIN_IMAPSEARCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "imaptok.h"

#define IMAPSEARCH_MAX_DEPTH 32    /* parentheses, NOT and OR one inside another */
#define IMAPSEARCH_MAX_KEYS 256    /* search keys in one command, each NOT/OR/list counted */
#define IMAPSEARCH_MAX_STRING 4096 /* octets of one search string or header field name */

/* imapsearch_parse's results besides 0 and -1 (BAD, with a text in err). */
#define IMAPSEARCH_BADCHARSET (-2) /* answer: NO [BADCHARSET (US-ASCII UTF-8)] ... */
#define IMAPSEARCH_NOMEM (-3)      /* answer: NO [SERVERBUG] or BAD; nothing is kept */

/* The RETURN options (RFC 4731, RFC 5182). */
#define IMAPSEARCH_RET_MIN 0x01
#define IMAPSEARCH_RET_MAX 0x02
#define IMAPSEARCH_RET_ALL 0x04
#define IMAPSEARCH_RET_COUNT 0x08
#define IMAPSEARCH_RET_SAVE 0x10

struct imapsearch_node;
struct imapsearch_needle;

/* A parsed query. The fields above "private" are for the caller to read. */
struct imapsearch {
    unsigned ret;     /* IMAPSEARCH_RET_*; "RETURN ()" is ALL; 0 when there was no RETURN */
    int has_return;   /* RETURN was given: the answer is ESEARCH even in IMAP4rev1 */
    int uses_saved;   /* "$" appears in the criteria: imapsearch_msg.saved is read */
    int reads_header; /* some key may read the message's header */
    int reads_body;   /* some key may read the message's body */
    int reads_date;   /* BEFORE, ON or SINCE: imapsearch_msg.internaldate is read (else the
                       * caller need not find it: a flag-only search stats no file) */
    int uses_modseq;  /* the MODSEQ key (RFC 7162): imapsearch_msg.modseq is read, the answer
                       * carries the highest MODSEQ of what it reports (imapsearch_hits_modseq) */
    /* private */
    struct imapsearch_node *nodes;
    size_t n_nodes;
    int root; /* index of the top-level AND */
    struct imapsearch_needle *needles;
    size_t n_needles;
    uint32_t resolved_seq, resolved_uid; /* what "*" was last resolved against */
    int resolved;
    void *scan; /* per-message scratch of the text keys, allocated at first use */
};

/* One message as the evaluation sees it. The caller fills every field. */
struct imapsearch_msg {
    uint32_t seq, uid;         /* its message sequence number and UID */
    uint32_t max_seq, max_uid; /* for "*": messages in the folder, the highest UID (0: empty) */
    const char *flags;         /* maildir(5) letters, any order: D \Draft, F \Flagged, P (no IMAP
                                * flag), R \Answered, S \Seen, T \Deleted */
    int recent;                /* \Recent in this session (mailbox_msg.recent): RECENT, NEW (recent
                                * and not seen) and OLD (not recent) read it */
    time_t internaldate;       /* INTERNALDATE; BEFORE/ON/SINCE take its day in the local time zone
                                * (TZ), the zone FETCH INTERNALDATE is shown in; read only when
                                * the query's reads_date is set */
    uint64_t size;             /* RFC822.SIZE: octets with CRLF line ends (mailbox_msg.crlf_size) */
    /* The message file (LF line ends, as stored), read with pread. fd >= 0: used as it is and
     * left open. fd < 0: open(open_arg) is called the first time a key needs the text (at
     * most once per imapsearch_match) and what it returned is closed before imapsearch_match
     * returns; it returns an fd, or -1 with errno (ENOENT: the message is gone, expunged by
     * another session: then no text key matches it and imapsearch_match is not an error). */
    int fd;
    int (*open)(void *open_arg);
    void *open_arg;
    /* KEYWORD/UNKEYWORD: 1 if the message has the keyword (NUL-terminated, len octets; RFC
     * 3501 §2.3.2 leaves its case to the server: mailbox_flag_letter ignores it), else 0. NULL: the
     * message has no keywords: KEYWORD never matches, UNKEYWORD always. */
    int (*has_keyword)(void *kw_arg, const char *kw, size_t len);
    void *kw_arg;
    /* "$" (RFC 5182): the UIDs of the last SAVE, resolved (imap_seqset_resolve); NULL: none
     * saved, "$" matches nothing. */
    const struct imap_seqset *saved;
    uint64_t modseq; /* its MODSEQ (RFC 7162); read only when the query's uses_modseq is set */
};

/* Parses the arguments of SEARCH / UID SEARCH, the cursor just after "SEARCH " (the SP taken):
 *   [RETURN SP "(" [option *(SP option)] ")" SP] [CHARSET SP astring SP] key *(SP key)
 * to the end of the cursor. The options are MIN, MAX, ALL, COUNT, SAVE (any case); the
 * charsets US-ASCII and UTF-8 (any case); search strings are taken as UTF-8 octets either way.
 * The keys are every RFC 3501 key: ALL ANSWERED BCC BEFORE BODY CC DELETED DRAFT FLAGGED FROM
 * HEADER KEYWORD LARGER NEW NOT OLD ON OR RECENT SEEN SENTBEFORE SENTON SENTSINCE SINCE
 * SMALLER SUBJECT TEXT TO UID UNANSWERED UNDELETED UNDRAFT UNFLAGGED UNKEYWORD UNSEEN, RFC
 * 7162's MODSEQ [entry-name entry-type-req] mod-sequence (its MODSEQ at least that; the
 * entry, one flag's "/flags/..." name, is taken and not told apart: a message has one), a
 * sequence set, "(" key *(SP key) ")"; "$" wherever a set is allowed. Returns 0 (call
 * imapsearch_free after), -1 (syntax: err holds a short text for the tagged BAD, e.g.
 * "unknown search key FOO", "bad date", "search nested too deep"), IMAPSEARCH_BADCHARSET (a
 * charset other than those two; q->ret still holds the RETURN options, for SAVE's sake),
 * IMAPSEARCH_NOMEM. After a failure nothing needs freeing. */
int imapsearch_parse(struct imaptok *t, struct imapsearch *q, char *err, size_t errlen);
void imapsearch_free(struct imapsearch *q);

/* Does message m satisfy q? 1 yes, 0 no, -1 a read error (errno set; answer NO). q carries
 * scratch space (and the sets' resolution against max_seq/max_uid), hence not const: one
 * query is evaluated by one caller at a time. */
int imapsearch_match(struct imapsearch *q, const struct imapsearch_msg *m);

/* ---- the answer ---- */

/* The matching messages, in ascending order (the folder's order: sequence numbers and UIDs
 * both ascend). */
struct imapsearch_hits {
    uint32_t *seq, *uid;
    size_t n, cap;
    uint64_t modseq_max, modseq_first, modseq_last; /* of the hits, for uses_modseq */
};
/* Appends one message. 0, or -1 (ENOMEM). */
int imapsearch_hits_add(struct imapsearch_hits *h, uint32_t seq, uint32_t uid);
/* The MODSEQ of the message just added (queries with uses_modseq). */
void imapsearch_hits_modseq(struct imapsearch_hits *h, uint64_t modseq);
void imapsearch_hits_free(struct imapsearch_hits *h);

/* Takes len octets of output; 0, or -1 to stop (the caller's netio writer). */
typedef int (*imapsearch_writer)(void *arg, const void *data, size_t len);

/* The n numbers of v (ascending) as a compact sequence set ("2:3,5": runs of consecutive
 * numbers as "a:b"), nothing before or after. 0, or -1 if the writer failed. */
int imapsearch_set(const uint32_t *v, size_t n, imapsearch_writer w, void *arg);

/* Writes the untagged answer, CRLF included, numbers being UIDs when uid != 0 (UID SEARCH),
 * sequence numbers otherwise:
 *  - no RETURN and rev2 == 0:  "* SEARCH 2 3 5" ("* SEARCH" when nothing matched);
 *  - RETURN given, or rev2 (IMAP4rev2 enabled: RFC 9051 has only ESEARCH, and no RETURN
 *    means ALL): "* ESEARCH (TAG \"A1\") UID MIN 2 MAX 5 COUNT 3 ALL 2:3,5" with the options
 *    asked for, ALL as a compact sequence set, UID only for UID SEARCH; with no hits MIN,
 *    MAX and ALL are left out (COUNT 0 stays);
 *  - with uses_modseq and a hit: " (MODSEQ n)" after SEARCH's numbers, " MODSEQ n" at the end
 *    of ESEARCH (RFC 7162 §3.1.5): the highest MODSEQ of the messages reported (of MIN and MAX
 *    when only they are asked for);
 *  - RETURN (SAVE) alone: nothing at all (RFC 5182 §2.4).
 * tag is the command's tag (atom characters, written quoted). 0, or -1 if the writer failed. */
int imapsearch_result(const struct imapsearch *q, const struct imapsearch_hits *h, int uid,
                      int rev2, const char *tag, imapsearch_writer w, void *arg);

/* For SAVE (RFC 5182 §2.4): the UIDs to keep as "$": those of MIN and/or MAX when only they
 * were asked for besides SAVE, else every hit. out is resolved (ready for imapsearch_msg.saved
 * and imap_seqset_contains); an empty result is a set with n == 0. 0, or -1 (ENOMEM). Call
 * imap_seqset_free on out after. */
int imapsearch_save(const struct imapsearch *q, const struct imapsearch_hits *h,
                    struct imap_seqset *out);

#endif
