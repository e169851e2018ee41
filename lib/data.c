/*
 * data.c: the DATA stream of an SMTP server into lib/deliver (see data.h). One line at a time
 * in a fixed buffer; every write checked, the first error kept and the rest drained.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "trace.h"
#include "util.h"

/* Does this line start a header field ("Name:"), or continue one (leading blank)? */
static int header_line(const char *text, size_t len)
{
    if (len > 0 && (text[0] == ' ' || text[0] == '\t'))
        return 1;
    size_t i = 0;
    while (i < len && text[i] > 32 && text[i] < 127 && text[i] != ':')
        i++;
    return i > 0 && i < len && text[i] == ':';
}

static void write_line(struct deliver *dl, struct data_state *st, const char *text, size_t len)
{
    if (st->store_errno == 0 && deliver_write(dl, text, len) != 0)
        st->store_errno = errno ? errno : EIO;
}

/* Submission: Date: and Message-ID: where the header section lacks them (RFC 6409 §8),
 * written where it ends. */
static void add_missing_headers(struct deliver *dl, const struct data_opts *o,
                                struct data_state *st)
{
    char buf[400], value[300];
    int n;
    if (o->submission && !st->have_date && trace_date(value, sizeof value, time(NULL)) > 0 &&
        (n = str_format(buf, sizeof buf, "Date: %s\n", value)) > 0)
        write_line(dl, st, buf, (size_t)n);
    if (o->submission && !st->have_msgid &&
        trace_message_id(value, sizeof value, o->hostname) > 0 &&
        (n = str_format(buf, sizeof buf, "Message-ID: %s\n", value)) > 0)
        write_line(dl, st, buf, (size_t)n);
    st->have_date = st->have_msgid = 1;
}

/* The header section: counts Received (hops), notes Date and Message-ID, and ends at the
 * empty line or at the first line that is no header field. */
static void header_section(struct deliver *dl, const struct data_opts *o, struct data_state *st,
                           const char *text, size_t len)
{
    if (len == 0 || !header_line(text, len)) {
        st->in_headers = 0;
        add_missing_headers(dl, o, st);
    } else if (str_iprefix(text, "Received:")) {
        st->hops++;
    } else if (str_iprefix(text, "Date:")) {
        st->have_date = 1;
    } else if (str_iprefix(text, "Message-ID:")) {
        st->have_msgid = 1;
    }
}

/* One text line of the message: len octets of text (the stuffing dot removed), then an LF
 * that stands where the CR LF was. */
static void take_line(struct deliver *dl, const struct data_opts *o, struct data_state *st,
                      const char *text, size_t len)
{
    if (st->in_headers)
        header_section(dl, o, st, text, len);
    st->size += len + 2;
    if (st->size > o->max_size)
        st->too_big = 1;
    if (data_refusal(st, o) != NULL)
        return; /* refused: drain to the end, store nothing more */
    write_line(dl, st, text, len + 1);
}

enum data_end data_read(struct netio *io, struct deliver *dl, const struct data_opts *o,
                        struct data_state *st)
{
    char line[DATA_LINE_MAX + 1];
    memset(st, 0, sizeof *st);
    st->in_headers = 1;
    for (;;) {
        long n = netio_getline(io, line, sizeof line);
        if (n == NETIO_TIMEOUT)
            return DATA_TIMEOUT;
        if (n == NETIO_TOOLONG) {
            if (!io->toolong_crlf || io->toolong_bare_cr)
                return DATA_BARE; /* a bare CR or LF, in a line too long to keep */
            st->too_long = 1;
            continue;
        }
        if (n <= 0 || line[n - 1] != '\n')
            return DATA_LOST;
        if (n < 2 || line[n - 2] != '\r')
            return DATA_BARE;
        size_t len = (size_t)n - 2;
        struct deliver_text t = {0};
        deliver_text_scan(&t, line, len);
        if (deliver_text_end(&t) & DELIVER_TEXT_BARE_CR)
            return DATA_BARE; /* any CR in a line's text is one not before LF */
        st->has_nul |= (t.faults & DELIVER_TEXT_NUL) != 0;
        if (len == 1 && line[0] == '.') {
            if (st->in_headers)
                add_missing_headers(dl, o, st);
            return DATA_END;
        }
        const char *text = line[0] == '.' ? line + 1 : line;
        line[len] = '\n'; /* CR LF -> LF on disk */
        take_line(dl, o, st, text, len - (size_t)(text - line));
    }
}

const char *data_refusal(const struct data_state *st, const struct data_opts *o)
{
    if (st->has_nul)
        return "554 5.6.0 NUL octets are not allowed in a message";
    if (st->too_long)
        return "554 5.6.0 a line is longer than 1000 octets";
    if (st->too_big)
        return "552 5.3.4 message size exceeds fixed maximum message size";
    if (st->hops > o->max_hops)
        return "554 5.4.6 too many Received headers: a mail loop?";
    return NULL;
}
