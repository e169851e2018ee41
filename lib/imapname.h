/*
 * imapname: IMAP mailbox names as imap4-in's folder commands take them from the wire: modified
 * UTF-7 (RFC 3501 §5.1.3) checked strictly, INBOX in any case made "INBOX", the reference and
 * pattern of LIST joined, and LIST patterns ('*' and '%', RFC 3501 §6.3.8) matched against
 * folder names. The hierarchy delimiter is lib/mailbox's '.'.
 *
 * It never allocates, never writes past the caller's buffer, and never accepts a name that two
 * spellings could denote (a non-shortest modified UTF-7 form, or UTF-7 for printable ASCII).
 */
#ifndef YUBIN_IMAPNAME_H
#define YUBIN_IMAPNAME_H

#include <stddef.h>

#define IMAPNAME_DELIM '.'
#define IMAPNAME_MAX 512 /* octets of a name or pattern taken from a command */

/* 1 if s[0..len) is modified UTF-7 as RFC 3501 §5.1.3 defines it: printable US-ASCII, '&'
 * only as "&-" or to start a base64 run (',' for '/') of UTF-16BE that ends in '-', encodes
 * at least one character that is not printable ASCII, has zero padding bits, pairs its
 * surrogates and does not follow another run at once. 0 if not. */
int imapname_mutf7_valid(const char *s, size_t len);

/* UTF-8 (RFC 9051 UTF8=ACCEPT names) into modified UTF-7. 0, or -1 (not valid UTF-8, a
 * control character, or out too small). */
int imapname_utf8_to_mutf7(const char *s, size_t len, char *out, size_t size);

/* "inbox", "Inbox" ... and "inbox.x" become "INBOX", "INBOX.x" (RFC 3501 §5.1: INBOX is
 * case-insensitive), in place. */
void imapname_canon(char *name);

/* The LIST reference and pattern joined into out (RFC 3501 §6.3.8: the reference is a prefix
 * of the pattern, joined as they are: "Lists." and "%" give "Lists.%"), then imapname_canon.
 * 0, or -1 if it does not fit. */
int imapname_join(const char *ref, const char *pattern, char *out, size_t size);

/* 1 if name matches pattern: '*' matches anything, '%' anything but the delimiter, every
 * other octet itself. 0 if not. */
int imapname_match(const char *pattern, const char *name);

#endif
