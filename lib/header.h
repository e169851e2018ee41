/*
 * header: the header section of a message that a local program hands sendmail(8), held in
 * memory for parsing (at most HEADER_MAX octets) while the body is streamed: read with LF
 * line ends (an mbox "From " line dropped), its fields walked with their folds, and what
 * sendmail needs to know noted (From, Date, Message-ID, Resent- fields).
 *
 * It never holds more than HEADER_MAX octets (a longer header section is an error, never cut)
 * and never interprets a field's value: addresses are lib/addrlist's.
 */
#ifndef YUBIN_HEADER_H
#define YUBIN_HEADER_H

#include <stddef.h>
#include <stdio.h>

#include "deliver.h"

#define HEADER_MAX 65536 /* octets of the header section held for parsing */

enum { HEADER_OK = 0, HEADER_IOERR = -1, HEADER_TOOLONG = -2 };

struct header {
    char buf[HEADER_MAX];
    size_t len;
    int has_from, has_date, has_msgid, has_resent; /* set by header_note_fields */
    int ended;    /* input ended inside the header section (EOF or a lone '.') */
    int no_blank; /* the body starts without an empty line: one is inserted */
};

/* Reads the header section from in into h->buf (h zeroed first by the caller), LF line ends.
 * dots_end: a line of a single '.' ends the input (sendmail without -i). A line that is
 * neither a field nor a continuation starts the body: it is left in line (*line_len octets,
 * 0 if none). Every line read goes through scan (lib/deliver's check of NUL and bare CR) as
 * it came, before its CRLF becomes LF. HEADER_OK, HEADER_IOERR (errno set) or
 * HEADER_TOOLONG. */
int header_read(struct header *h, FILE *in, int dots_end, char *line, size_t size, long *line_len,
                struct deliver_text *scan);
/* The next field from *pos: its start and end (folds included) and the length of its name.
 * 0 when there is none. */
int header_next_field(const struct header *h, size_t *pos, size_t *start, size_t *end,
                      size_t *name_len);
/* Is the field at start, with a name of n octets, called name (any case)? */
int header_name_is(const struct header *h, size_t start, size_t n, const char *name);
/* Bcc or Resent-Bcc: never sent on. */
int header_is_bcc(const struct header *h, size_t start, size_t n);
/* Sets has_from, has_date, has_msgid and has_resent. */
void header_note_fields(struct header *h);

#endif
