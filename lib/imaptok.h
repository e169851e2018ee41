/*
 * imaptok: the arguments of one IMAP command (RFC 3501 §9, RFC 9051 §9), read with a cursor
 * from the whole command as it came over the wire: its lines and their literals ("{n}" or
 * "{n+}", CRLF, n octets) in one bounded buffer that imap4-in assembled (the tag and the
 * command name already taken, the final CRLF not included). Each call takes one syntactic
 * element and moves the cursor past it, or fails and leaves the cursor where it was, so a
 * caller can try one form after another. Sequence sets (RFC 3501 §9 sequence-set) are parsed
 * into ranges that are resolved against the largest number in use ("*") before they are used.
 *
 * It must never read past the end of the buffer, take a NUL or a bare CR or LF outside a
 * literal (nor a NUL inside one: CHAR8 excludes it), copy more than the caller's buffer holds,
 * or allocate more than a bound it got from the buffer's own length.
 */
#ifndef YUBIN_IMAPTOK_H
#define YUBIN_IMAPTOK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct imaptok {
    const char *p, *end;
};

#define IMAPTOK_TOO_LONG (-2) /* a string, atom or number that does not fit */

void imaptok_init(struct imaptok *t, const char *buf, size_t len);

/* 1 when nothing is left. */
int imaptok_at_end(const struct imaptok *t);
/* The next octet, or -1 at the end. */
int imaptok_peek(const struct imaptok *t);
/* Exactly one SP. 0, or -1. */
int imaptok_space(struct imaptok *t);
/* The octet c next (letters compared without case). 0, or -1. */
int imaptok_char(struct imaptok *t, char c);
/* The word w next, as a whole atom (letters without case): "NIL", "UID", "BODY.PEEK". 0/-1. */
int imaptok_word(struct imaptok *t, const char *w);

/* 1*ATOM-CHAR: *s points into the buffer. 0, or -1 (nothing there). */
int imaptok_atom(struct imaptok *t, const char **s, size_t *len);
/* A flag: "\" atom (a system flag or extension) or an atom (a keyword). 0/-1. */
int imaptok_flag(struct imaptok *t, const char **s, size_t *len);

/* A string (quoted or literal), decoded into out and NUL-terminated. 0, -1 (syntax, or a NUL
 * in it), IMAPTOK_TOO_LONG (longer than size - 1). */
int imaptok_string(struct imaptok *t, char *out, size_t size, size_t *len);
/* An astring: 1*ASTRING-CHAR (atom chars and ']') or a string. As imaptok_string. */
int imaptok_astring(struct imaptok *t, char *out, size_t size, size_t *len);
/* A LIST mailbox pattern: 1*list-char (atom chars, '%', '*', ']') or a string. */
int imaptok_list_mailbox(struct imaptok *t, char *out, size_t size, size_t *len);

/* number (1*DIGIT, at most 4294967295). 0, -1, IMAPTOK_TOO_LONG. */
int imaptok_number(struct imaptok *t, uint32_t *n);
/* A 63-bit number (mod-sequence values, RFC 7162). 0, -1, IMAPTOK_TOO_LONG. */
int imaptok_number64(struct imaptok *t, uint64_t *n);

/* date (RFC 3501: "1-Feb-1994", or quoted) as the UTC midnight that starts that day. 0/-1. */
int imaptok_date(struct imaptok *t, time_t *day);
/* date-time ("\"17-Jul-1996 02:44:25 -0700\"") as a time. 0/-1. */
int imaptok_date_time(struct imaptok *t, time_t *when);

/* Does a command line (CRLF removed) end in a literal's announcement? 1 with its length and
 * whether it is non-synchronising ("{n+}", RFC 7888), 0 if not, -1 if it ends in a malformed
 * or oversized one ("{x}", "{99999999999}"). */
int imaptok_line_literal(const char *line, size_t len, uint32_t *n, int *nonsync);

/* ---- sequence sets ---- */

#define IMAP_SEQ_STAR 0 /* "*" before it is resolved (0 is no seq-number) */

struct imap_seqrange {
    uint32_t lo, hi;
};

struct imap_seqset {
    struct imap_seqrange *r;
    size_t n;
    int resolved; /* sorted, merged, "*" replaced */
};

/* A sequence-set ("1,3:5,7:*"; no "$"). 0, -1 (syntax: a 0, an empty part), IMAPTOK_TOO_LONG,
 * or -3 out of memory. After 0, call imap_seqset_free. */
int imaptok_seqset(struct imaptok *t, struct imap_seqset *set);
/* "*" becomes largest (the number of messages, or the highest UID; 0 in an empty mailbox),
 * each range is put in order ("5:3" is "3:5") and the ranges are sorted and merged. */
void imap_seqset_resolve(struct imap_seqset *set, uint32_t largest);
/* After resolve: is n in the set. */
int imap_seqset_contains(const struct imap_seqset *set, uint32_t n);
void imap_seqset_free(struct imap_seqset *set);

#endif
