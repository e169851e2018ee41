/*
 * transcript: a readable record of one protocol dialogue, for students and for debugging: one
 * file per connection (smtp-in, pop3-in) or per outbound SMTP connection (queue-run), lines
 *
 *     08:15:28.120 S: 220 mail.g1.lab ESMTP yubin
 *     08:15:28.121 C: EHLO client.g2.lab
 *
 * 'C' for what the client sent, 'S' for what the server sent, '*' for an event. Passwords and
 * SASL data are masked (PASS, AUTH's initial response, every line answering a 334 or "+ "
 * challenge); a message body (after 354, or a POP3 RETR/TOP) is shown as its first
 * TRANSCRIPT_BODY_LINES lines and one line with its size. The file stops growing, with a note,
 * at max_size. It is opened by the caller after privileges are dropped (so it belongs to the
 * mail account), O_EXCL and O_NOFOLLOW, mode 0600.
 * It must never show a password, hold a message body, fail a session (a write error just stops
 * the transcript), or cost anything when no transcript is open (callers test the pointer).
 */
#ifndef YUBIN_TRANSCRIPT_H
#define YUBIN_TRANSCRIPT_H

#include <stddef.h>
#include <stdint.h>

#define TRANSCRIPT_BODY_LINES 10
#define TRANSCRIPT_SHOW_MAX 998  /* octets of one line shown; the rest is counted */
#define TRANSCRIPT_MIN_SIZE 1024 /* the smallest max_size (the header and the note fit) */

struct transcript;

/* Opens a new file in dir named "<YYYYmmdd-HHMMSS>.<prog>.<pid>.<n>", and writes its first
 * line ("# prog pid N, peer, started ..."). NULL with the reason in err when it cannot. */
struct transcript *transcript_open(const char *dir, const char *prog, const char *peer,
                                   uint64_t max_size, char *err, size_t errlen);

/* For the programs: a transcript in dir ("" or NULL: none, NULL returned) for the dialogue with
 * peer; a failure to open is logged (LOG_WARNING) and the session goes on without one. */
struct transcript *transcript_start(const char *dir, uint64_t max_size, const char *prog,
                                    const char *peer);

/* One line (its CR LF, if any, is not shown); dir 'C', 'S' or '*'. */
void transcript_line(struct transcript *t, char dir, const char *text, size_t len);

/* Output as it is written, in pieces that need not be whole lines (pop3-in writes a message
 * in chunks): lines are cut at LF. */
void transcript_write(struct transcript *t, char dir, const char *buf, size_t len);

/* A message body sent from a file (queue-run: LF line ends from offset, size octets as
 * sent): its first TRANSCRIPT_BODY_LINES lines as they go on the wire (dot-stuffed) and a line
 * with its size, read with pread (the file offset is not moved). */
void transcript_file(struct transcript *t, char dir, int fd, uint64_t offset, uint64_t size);

/* Writes the last line ("# end ...") and frees t. NULL is fine. */
void transcript_close(struct transcript *t);

#endif
