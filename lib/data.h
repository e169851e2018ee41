/*
 * data: the DATA stream of an SMTP server (RFC 5321 §4.1.1.4) into lib/deliver. It reads text
 * lines from lib/netio through <CRLF>.<CRLF>, undoes dot-stuffing, turns CRLF into LF,
 * counts the size (CRLF line ends, as SIZE counts it), scans the header section (Received
 * lines are hops; submission adds Date: and Message-ID: where they are missing, RFC 6409 §8)
 * and writes each line into the message. A NUL octet, or a line, a size or a hop count over
 * the limits refuses the message: it is read to its end and nothing more is stored (a next
 * hop that drops NULs would read <CRLF><NUL>.<CRLF> as the end of DATA).
 *
 * It must never end a message on anything but <CRLF>.<CRLF>, never take a bare CR or LF as
 * a line end (the caller closes the connection on DATA_BARE: SMTP smuggling), never cut a
 * long line instead of refusing it, and never hold more than one line in memory.
 */
#ifndef YUBIN_DATA_H
#define YUBIN_DATA_H

#include <stdint.h>

#include "deliver.h"
#include "netio.h"

#define DATA_LINE_MAX 1000 /* octets, CRLF included (RFC 5321 §4.5.3.1.6) */

struct data_opts {
    uint64_t max_size;    /* max_message_size */
    unsigned max_hops;    /* more Received lines than this: a mail loop */
    int submission;       /* add Date: and Message-ID: where missing */
    const char *hostname; /* for the Message-ID */
};

enum data_end {
    DATA_END,     /* <CRLF>.<CRLF> */
    DATA_BARE,    /* a bare CR or LF: refuse and close */
    DATA_TIMEOUT, /* the client stopped sending */
    DATA_LOST,    /* the connection ended */
};

struct data_state {
    int in_headers;            /* still in the header section */
    int have_date, have_msgid; /* the header section has them */
    unsigned hops;             /* Received lines */
    uint64_t size;             /* octets received, CRLF line ends, after dot-unstuffing */
    int too_long;              /* a line over DATA_LINE_MAX */
    int too_big;               /* over max_size */
    int has_nul;               /* a NUL octet (DESIGN.md §5: refused everywhere) */
    int store_errno;           /* the first write error, 0 if none */
};

/* Reads the message (after the 354) from io into dl, which deliver_begin has opened. */
enum data_end data_read(struct netio *io, struct deliver *dl, const struct data_opts *o,
                        struct data_state *st);
/* After DATA_END: NULL when the message may be stored (a write error aside, which is the
 * caller's to answer), else the reply that refuses it ("554 5.6.0 ..."). */
const char *data_refusal(const struct data_state *st, const struct data_opts *o);

#endif
