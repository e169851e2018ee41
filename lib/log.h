/*
 * log: syslog lines (facility mail) sent as datagrams to the syslog socket, /dev/log by
 * default or the path named by `syslog_socket` in yubin.conf. Handlers never log to stdout
 * or stderr: under inetd those are the client's socket. A missing syslog daemon loses the
 * line, never the mail.
 */
#ifndef YUBIN_LOG_H
#define YUBIN_LOG_H

#include <syslog.h>

/* ident is the program name; socket_path may be NULL for /dev/log. */
void log_open(const char *ident, const char *socket_path);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void log_close(void);

#endif
