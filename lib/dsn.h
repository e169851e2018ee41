/*
 * dsn: delivery status notifications (RFC 3464, RFC 3462 multipart/report, RFC 3463 codes):
 * the bounce that tells a sender a message failed for good, and the delay warning.
 *
 * The report is written as a stored message is: LF line ends (never CR), 7-bit (any byte
 * >= 0x80 or control byte from an address, a reply or the original header is written as '?'),
 * no line of 998 octets or more (long fields are folded at spaces, long words cut with a
 * fold). It writes, in this order:
 *   From: MAILER-DAEMON@<hostname>, To: <sender>, Subject, Date, Message-ID,
 *   Auto-Submitted: auto-replied, MIME-Version, Content-Type: multipart/report;
 *   report-type=delivery-status; boundary=<random, libsodium>
 *   (1) text/plain: what happened, for people;
 *   (2) message/delivery-status: Reporting-MTA: dns; <hostname>, [X-Yubin-Queue-ID,]
 *       Arrival-Date, then per recipient: [Original-Recipient: rfc822; ...,]
 *       Final-Recipient: rfc822; <addr>, Action: failed|delayed, Status: 5.x.y|4.x.y,
 *       [Remote-MTA: dns; <host>,] [Diagnostic-Code: smtp; <reply>,] Last-Attempt-Date,
 *       [Will-Retry-Until (delays)];
 *   (3) text/rfc822-headers: the original header section, read from the stored message (after
 *       the Return-Path: line), at most DSN_MAX_HEADERS octets, cut at a line end; this part
 *       is left out when msg_fd is -1.
 * It writes no Return-Path: or Received: line: the caller (queue-run) puts "Return-Path: <>"
 * first when it stores the bounce in the queue, exactly as for any other stored message.
 *
 * It never sends, never decides who gets the bounce (no bounce for a bounce is queue-run's
 * rule), and never holds the original message in memory (it reads its header section in
 * fixed-size pieces, with pread).
 */
#ifndef YUBIN_DSN_H
#define YUBIN_DSN_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

#define DSN_MAX_HEADERS 65536 /* octets of the original header section returned */
#define DSN_MAX_RCPTS 1024

struct maildir_msg;

enum { DSN_FAILED = 0, DSN_DELAYED = 1 };

struct dsn_rcpt {
    const char *addr;       /* Final-Recipient (the address we tried), required */
    const char *orig;       /* Original-Recipient (the address as given, e.g. a list), or NULL */
    int action;             /* DSN_FAILED or DSN_DELAYED */
    const char *status;     /* RFC 3463 "x.y.z", or NULL/"" to take it from reply_code: 5xx ->
                             * "5.0.0", 4xx -> "4.0.0", none -> "5.0.0" failed / "4.0.0" delayed.
                             * The class is forced to match the action: a failed recipient whose
                             * last status was "4.4.7" (expired) is reported as "5.4.7". */
    const char *remote_mta; /* the host that gave the reply ("mx.example.org"), or NULL */
    const char *diagnostic; /* the remote reply, "550 5.1.1 no such user" -> Diagnostic-Code:
                             * smtp; ...; NULL when no server answered (DNS, timeout) */
    int reply_code;         /* code of that reply (0 = none), only used when status is NULL */
    const char *reason;     /* for the text part when there was no reply: "no MX for domain",
                             * "connection refused by mx.example.org"; may be NULL */
    time_t last_attempt;    /* Last-Attempt-Date (0 = not written) */
    time_t retry_until;     /* Will-Retry-Until, delays only (0 = not written) */
};

struct dsn {
    const char *hostname; /* Reporting-MTA and From: MAILER-DAEMON@hostname, required */
    const char *to;       /* the original envelope sender: To: of the report, required;
                           * "" is refused (no bounce for a bounce: EINVAL) */
    const char *queue_id; /* our id of the original, or NULL */
    time_t arrival;       /* Arrival-Date (0 = not written) */
    time_t now;           /* Date: of the report (0 = time(NULL)) */
    const struct dsn_rcpt *rcpts;
    size_t n_rcpts;   /* 1..DSN_MAX_RCPTS, all of one action or mixed */
    int msg_fd;       /* the stored original, or -1 (then there is no part 3) */
    off_t msg_offset; /* its first byte after the Return-Path: line */
};

/* Where the report goes: called with consecutive pieces; returns 0, or -1 to stop (errno kept). */
typedef int (*dsn_write_fn)(void *arg, const void *data, size_t len);

/* Writes the report through fn. Returns 0, or -1 with errno set (EINVAL for a bad dsn,
 * the writer's or pread's errno otherwise). Delay warnings are a report whose recipients all
 * have action DSN_DELAYED (the subject says so). */
int dsn_write(const struct dsn *d, dsn_write_fn fn, void *arg);
/* dsn_write to a file descriptor (write_all). */
int dsn_write_fd(const struct dsn *d, int fd);
/* dsn_write into a message being delivered with lib/maildir (maildir_msg_write); the caller
 * has begun it and commits/links it. Returns 0 or -1 (errno set). */
int dsn_write_maildir(const struct dsn *d, struct maildir_msg *m);

#endif
