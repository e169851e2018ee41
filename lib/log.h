/*
 * log: syslog lines (facility mail) sent as datagrams to the syslog socket, /dev/log by
 * default or the path named by `syslog_socket` in yubin.conf. Handlers never log to stdout
 * or stderr: under inetd those are the client's socket (log_startup alone writes to stderr,
 * and only when stdin is no socket). A missing syslog daemon loses the line, never the mail.
 */
#ifndef YUBIN_LOG_H
#define YUBIN_LOG_H

#include <stddef.h>
#include <syslog.h>

/* ident is the program name; socket_path may be NULL for /dev/log. */
void log_open(const char *ident, const char *socket_path);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_close(void);
/* Why a handler cannot serve (a bad option, a bad configuration line, an unusable account):
 * logged at LOG_ERR, and also written to stderr as "ident: text" when stdin is not a socket,
 * that is, when somebody started it at a terminal (under inetd or systemd stdin is the
 * client's socket, and so is stderr: nothing is written there). */
void log_startup(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Every value taken from a client (an address, a user name, a HELO name, a remote reply) goes
 * into a log line through log_field, in every program, so that a log reader (fail2ban) can
 * trust the fields yubin writes itself, such as client=. Each byte outside 0x21..0x7e, and
 * each of  " , < = > \  becomes \xHH (a space is \x20): the value can neither end its field
 * nor forge another. A value longer than LOG_FIELD_MAX octets once escaped is cut there and
 * ends in "...". */
#define LOG_FIELD_MAX 400
/* The escaped form of s in one of 8 static buffers, used in turn: up to 8 fields per line. */
const char *log_field(const char *s);
/* The same into out (size octets); returns out. */
char *log_escape(char *out, size_t size, const char *s);

#endif
