/*
 * dsn: RFC 3464 delivery status notifications (see dsn.h). Everything it writes passes through
 * one small writer that keeps lines short, 7-bit and LF-ended. It must never copy a byte >=
 * 0x80, a CR or another control byte from its inputs into the report, never write a line of
 * 998 octets or more, and never read more of the original than its bounded header section.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "maildir.h"
#include "trace.h"
#include "util.h"

#define FOLD_AT 76   /* fold header fields and wrap text before this column */
#define HARD_MAX 990 /* cut a word that is longer than this (no line may reach 998) */

struct out {
    dsn_write_fn fn;
    void *arg;
    int failed;
    size_t col; /* column of the line being written */
};

static void put(struct out *o, const char *s, size_t len)
{
    if (o->failed || len == 0)
        return;
    if (o->fn(o->arg, s, len) < 0) {
        o->failed = 1;
        return;
    }
    const char *lf = memrchr(s, '\n', len);
    o->col = lf != NULL ? (size_t)(s + len - lf - 1) : o->col + len;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* One byte of untrusted text: printable ASCII as it is, anything else as '?'. */
static char clean(char ch)
{
    unsigned char u = (unsigned char)ch;
    return (u >= 0x20 && u < 0x7f) ? ch : '?';
}

/* Writes text word by word from the current column; a word that would pass FOLD_AT starts a
 * new line beginning with cont (" " for a folded header field, "" or "    " in the text);
 * a word longer than HARD_MAX is cut. Runs of spaces and control bytes between words become
 * one space. */
static void words(struct out *o, const char *text, const char *cont)
{
    const char *p = text;
    int first = 1;
    while (*p != '\0') {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
            p++;
        size_t wlen = strcspn(p, " \t\r\n");
        if (wlen == 0)
            break;
        if (!first && o->col + 1 + wlen > FOLD_AT) {
            put(o, "\n", 1);
            puts_(o, cont);
        } else if (!first) {
            put(o, " ", 1);
        }
        for (size_t i = 0; i < wlen; i++) {
            if (o->col >= HARD_MAX) {
                put(o, "\n", 1);
                puts_(o, cont[0] != '\0' ? cont : " ");
            }
            char ch = clean(p[i]);
            put(o, &ch, 1);
        }
        p += wlen;
        first = 0;
    }
}

/* "Name: value\n", folded. */
static void field(struct out *o, const char *name, const char *value)
{
    puts_(o, name);
    puts_(o, ": ");
    words(o, value, " ");
    put(o, "\n", 1);
}

/* "Name: prefix; value\n" (the typed fields of RFC 3464), folded. */
static void typed(struct out *o, const char *name, const char *type, const char *value)
{
    char head[64];
    if (str_format(head, sizeof head, "%s; ", type) < 0)
        head[0] = '\0';
    puts_(o, name);
    puts_(o, ": ");
    puts_(o, head);
    words(o, value, " ");
    put(o, "\n", 1);
}

static void date_field(struct out *o, const char *name, time_t when)
{
    char date[64];
    if (when != 0 && trace_date(date, sizeof date, when) > 0)
        field(o, name, date);
}

/* ---- status codes ---- */

/* Is s an RFC 3463 code "c.sss.ddd" of class 2, 4 or 5? */
static int status_ok(const char *s)
{
    size_t i = 2, d;
    if (s == NULL || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.')
        return 0;
    for (d = 0; s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    if (d < 1 || d > 3 || s[i++] != '.')
        return 0;
    for (d = 0; s[i] >= '0' && s[i] <= '9'; i++)
        d++;
    return d >= 1 && d <= 3 && s[i] == '\0';
}

/* The Status: of one recipient, of the class its action needs. */
static void rcpt_status(const struct dsn_rcpt *r, char *out, size_t size)
{
    char cls = r->action == DSN_DELAYED ? '4' : '5';
    if (status_ok(r->status) && str_copy(out, size, r->status) == 0) {
        out[0] = cls;
        return;
    }
    (void)str_format(out, size, "%c.0.0", cls);
}

/* ---- the parts ---- */

static int all_delayed(const struct dsn *d)
{
    for (size_t i = 0; i < d->n_rcpts; i++)
        if (d->rcpts[i].action != DSN_DELAYED)
            return 0;
    return 1;
}

static int any_delayed(const struct dsn *d)
{
    for (size_t i = 0; i < d->n_rcpts; i++)
        if (d->rcpts[i].action == DSN_DELAYED)
            return 1;
    return 0;
}

static void top_headers(struct out *o, const struct dsn *d, const char *boundary)
{
    char buf[600];
    time_t now = d->now != 0 ? d->now : time(NULL);
    (void)str_format(buf, sizeof buf, "Mail Delivery System <MAILER-DAEMON@%s>", d->hostname);
    field(o, "From", buf);
    puts_(o, "To: <");
    words(o, d->to, " ");
    puts_(o, ">\n");
    field(o, "Subject",
          all_delayed(d)   ? "Delayed Mail (still being retried)"
          : any_delayed(d) ? "Delivery Status Notification (failure and delay)"
                           : "Undelivered Mail Returned to Sender");
    date_field(o, "Date", now);
    if (trace_message_id(buf, sizeof buf, d->hostname) > 0)
        field(o, "Message-ID", buf);
    field(o, "Auto-Submitted", "auto-replied");
    field(o, "MIME-Version", "1.0");
    (void)str_format(buf, sizeof buf,
                     "multipart/report; report-type=delivery-status; boundary=\"%s\"", boundary);
    field(o, "Content-Type", buf);
    field(o, "Content-Transfer-Encoding", "7bit");
    puts_(o, "\nThis is a MIME-encapsulated message.\n\n");
}

static void part_start(struct out *o, const char *boundary, const char *desc, const char *type)
{
    puts_(o, "--");
    puts_(o, boundary);
    put(o, "\n", 1);
    field(o, "Content-Description", desc);
    field(o, "Content-Type", type);
    put(o, "\n", 1);
}

/* One paragraph of the text part per recipient: "<addr>: host said: reply" or the reason. */
static void text_rcpt(struct out *o, const struct dsn_rcpt *r)
{
    char lead[600];
    put(o, "<", 1);
    words(o, r->addr, "    ");
    puts_(o, ">: ");
    if (r->diagnostic != NULL && r->diagnostic[0] != '\0') {
        if (r->remote_mta != NULL &&
            str_format(lead, sizeof lead, "host %s said:", r->remote_mta) > 0) {
            words(o, lead, "    ");
            put(o, " ", 1);
        }
        words(o, r->diagnostic, "    ");
    } else {
        words(o, r->reason != NULL && r->reason[0] != '\0' ? r->reason : "delivery failed", "    ");
    }
    puts_(o, "\n\n");
}

static void text_part(struct out *o, const struct dsn *d)
{
    char buf[600];
    (void)str_format(buf, sizeof buf, "This is the mail system at host %s.", d->hostname);
    words(o, buf, "");
    puts_(o, "\n\n");
    if (all_delayed(d))
        words(o,
              "Your message could not be delivered yet to the recipients below. It is "
              "still in the queue and delivery will be tried again; you do not need to "
              "send it again.",
              "");
    else
        words(o,
              "I'm sorry to have to inform you that your message could not be delivered to "
              "one or more recipients. The reasons are below; the headers of your message "
              "are attached.",
              "");
    puts_(o, "\n\n");
    for (size_t i = 0; i < d->n_rcpts; i++)
        text_rcpt(o, &d->rcpts[i]);
}

static void status_rcpt(struct out *o, const struct dsn_rcpt *r)
{
    char status[16];
    rcpt_status(r, status, sizeof status);
    put(o, "\n", 1);
    if (r->orig != NULL && r->orig[0] != '\0')
        typed(o, "Original-Recipient", "rfc822", r->orig);
    typed(o, "Final-Recipient", "rfc822", r->addr);
    field(o, "Action", r->action == DSN_DELAYED ? "delayed" : "failed");
    field(o, "Status", status);
    if (r->remote_mta != NULL && r->remote_mta[0] != '\0')
        typed(o, "Remote-MTA", "dns", r->remote_mta);
    if (r->diagnostic != NULL && r->diagnostic[0] != '\0')
        typed(o, "Diagnostic-Code", "smtp", r->diagnostic);
    date_field(o, "Last-Attempt-Date", r->last_attempt);
    if (r->action == DSN_DELAYED)
        date_field(o, "Will-Retry-Until", r->retry_until);
}

static void status_part(struct out *o, const struct dsn *d)
{
    typed(o, "Reporting-MTA", "dns", d->hostname);
    if (d->queue_id != NULL && d->queue_id[0] != '\0')
        field(o, "X-Yubin-Queue-ID", d->queue_id);
    date_field(o, "Arrival-Date", d->arrival);
    for (size_t i = 0; i < d->n_rcpts; i++)
        status_rcpt(o, &d->rcpts[i]);
    put(o, "\n", 1);
}

/* Copies the original header section (through the blank line that ends it, without it), at
 * most DSN_MAX_HEADERS octets, ending at a line end. 0, or -1 (errno set) if reading failed. */
static int headers_part(struct out *o, int fd, off_t off)
{
    char buf[4096];
    size_t total = 0, line_len = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof buf, off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        off += n;
        for (ssize_t i = 0; i < n; i++) {
            char ch = buf[i];
            if (ch == '\r')
                continue;
            if (ch == '\n') {
                if (line_len == 0 || total + 1000 >= DSN_MAX_HEADERS)
                    goto done; /* the end of the header section, or enough of it */
                put(o, "\n", 1);
                total++;
                line_len = 0;
                continue;
            }
            if (o->col >= HARD_MAX) {
                put(o, "\n ", 2);
                total += 2;
            }
            if (total >= DSN_MAX_HEADERS - 2)
                goto done;
            ch = ch == '\t' ? '\t' : clean(ch);
            put(o, &ch, 1);
            total++;
            line_len++;
        }
    }
done:
    if (line_len > 0)
        put(o, "\n", 1);
    return 0;
}

/* Are the required fields there and usable? */
static int dsn_valid(const struct dsn *d)
{
    if (d->hostname == NULL || d->hostname[0] == '\0' || strlen(d->hostname) > 255 ||
        d->to == NULL || d->to[0] == '\0' || strlen(d->to) > 900 || d->n_rcpts == 0 ||
        d->n_rcpts > DSN_MAX_RCPTS || d->rcpts == NULL)
        return 0;
    for (const char *p = d->hostname; *p != '\0'; p++)
        if (clean(*p) != *p || *p == ' ')
            return 0;
    for (size_t i = 0; i < d->n_rcpts; i++)
        if (d->rcpts[i].addr == NULL || d->rcpts[i].addr[0] == '\0')
            return 0;
    return 1;
}

int dsn_write(const struct dsn *d, dsn_write_fn fn, void *arg)
{
    struct out o = {fn, arg, 0, 0};
    char boundary[64], r1[17], r2[17];
    if (!dsn_valid(d)) {
        errno = EINVAL;
        return -1;
    }
    random_hex16(r1);
    random_hex16(r2);
    (void)str_format(boundary, sizeof boundary, "=_yubin_%s%s", r1, r2);
    top_headers(&o, d, boundary);
    part_start(&o, boundary, "Notification", "text/plain; charset=us-ascii");
    text_part(&o, d);
    part_start(&o, boundary, "Delivery report", "message/delivery-status");
    status_part(&o, d);
    if (d->msg_fd >= 0) {
        part_start(&o, boundary, "Undelivered Message Headers", "text/rfc822-headers");
        if (headers_part(&o, d->msg_fd, d->msg_offset) < 0)
            return -1;
        put(&o, "\n", 1);
    }
    puts_(&o, "--");
    puts_(&o, boundary);
    puts_(&o, "--\n");
    return o.failed ? -1 : 0;
}

static int to_fd(void *arg, const void *data, size_t len)
{
    return write_all(*(int *)arg, data, len);
}

int dsn_write_fd(const struct dsn *d, int fd)
{
    return dsn_write(d, to_fd, &fd);
}

static int to_maildir(void *arg, const void *data, size_t len)
{
    return maildir_msg_write(arg, data, len) == 0 ? 0 : -1;
}

int dsn_write_maildir(const struct dsn *d, struct maildir_msg *m)
{
    return dsn_write(d, to_maildir, m);
}
