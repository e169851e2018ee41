/*
 * lib/imapsearch-int.h: what the two halves of lib/imapsearch share (imapsearch.c: parsing,
 * evaluation, results; imapsearch-text.c: the text keys read from the message). Not for other
 * modules: use imapsearch.h.
 */
#ifndef YUBIN_IMAPSEARCH_INT_H
#define YUBIN_IMAPSEARCH_INT_H

#include "imapsearch.h"

/* Where a needle is looked for. */
enum needle_where {
    NEEDLE_FIELD, /* the values of the header fields named field (FROM, HEADER x ...) */
    NEEDLE_TEXT,  /* the whole header, then where NEEDLE_BODY looks (TEXT) */
    NEEDLE_BODY   /* the text of the body (BODY) */
};

struct imapsearch_needle {
    enum needle_where where;
    char *field;        /* NEEDLE_FIELD: the field name, lower case */
    unsigned char *pat; /* the string, folded (imapsearch_fold), CR removed */
    size_t len;
    size_t *fail;             /* KMP: fail[i] the longest proper border of pat[0..i] */
    unsigned char start[256]; /* 1 for the octets that fold to pat[0] (the skip loop) */
};

/* The case folding both sides of a comparison go through: ASCII letters to lower case, and
 * the second octet of UTF-8 U+00C0..U+00DE (not U+00D7) to that of U+00E0..U+00FE when prev
 * (the octet before, as it came) is 0xC3. */
static inline unsigned char imapsearch_fold(unsigned char prev, unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return (unsigned char)(c + 32);
    if (prev == 0xC3 && c >= 0x80 && c <= 0x9E && c != 0x97)
        return (unsigned char)(c + 0x20);
    return c;
}

/* Prepares a needle's pattern from the string s (len octets): folded, CR dropped, the KMP
 * table built. 0, or -1 (ENOMEM). */
int imapsearch_needle_init(struct imapsearch_needle *n, const char *s, size_t len);

/* What the text keys found in one message. */
struct imapsearch_found {
    int header_done, body_done;
    int has_date;         /* a Date: field with a usable date was read */
    long sent_day;        /* its day (days since 1970-01-01), in its own zone */
    unsigned char *found; /* per needle: 1 found */
};

/* Reads what the query's needles need from the message (the header when the header is not
 * done; the body too when body != 0), filling f. fd is the message. 0, or -1 (read error,
 * ENOMEM; errno set). */
int imapsearch_scan(struct imapsearch *q, int fd, int body, struct imapsearch_found *f);
/* Frees the scanner's buffers (kept in q->scan between messages). */
void imapsearch_scan_free(struct imapsearch *q);
/* The scan's result holder, reset for a new message (allocated at the first call). NULL with
 * errno ENOMEM. */
struct imapsearch_found *imapsearch_found_reset(struct imapsearch *q);

/* Days since 1970-01-01 of a civil date (month 1..12). */
long imapsearch_days(long y, int m, int d);

#endif
