/*
 * log: RFC 3164 lines, facility mail, sent as datagrams to the syslog socket (see log.h).
 * It never writes to stdout or stderr and never blocks: a lost line is better than a stuck
 * mail handler.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

static int log_fd = -1;
static char log_ident[64] = "yubin";
static struct sockaddr_un log_addr;

void log_open(const char *ident, const char *socket_path)
{
    if (socket_path == NULL || socket_path[0] == '\0')
        socket_path = "/dev/log";
    if (str_copy(log_ident, sizeof log_ident, ident) != 0)
        str_copy(log_ident, sizeof log_ident, "yubin");
    memset(&log_addr, 0, sizeof log_addr);
    log_addr.sun_family = AF_UNIX;
    if (str_copy(log_addr.sun_path, sizeof log_addr.sun_path, socket_path) != 0)
        return;
    if (log_fd < 0)
        log_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
}

void log_msg(int priority, const char *fmt, ...)
{
    if (log_fd < 0)
        log_open(log_ident, NULL);
    if (log_fd < 0)
        return;
    char text[1024];
    char line[1200];
    char stamp[32];
    time_t now = time(NULL);
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap); /* a long line is cut here: it is only a log */
    va_end(ap);
    for (char *p = text; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    localtime_r(&now, &tm);
    strftime(stamp, sizeof stamp, "%b %e %H:%M:%S", &tm);
    int n = snprintf(line, sizeof line, "<%d>%s %s[%ld]: %s", LOG_MAIL | (priority & 7), stamp,
                     log_ident, (long)getpid(), text);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof line)
        n = (int)sizeof line - 1;
    int saved = errno;
    (void)sendto(log_fd, line, (size_t)n, MSG_NOSIGNAL, (struct sockaddr *)&log_addr,
                 sizeof log_addr);
    errno = saved;
}

static int needs_escape(unsigned char c)
{
    return c < 0x21 || c > 0x7e || strchr("\",<=>\\", c) != NULL;
}

static size_t escaped_len(const char *s)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += needs_escape((unsigned char)*s) ? 4 : 1;
    return n;
}

char *log_escape(char *out, size_t size, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    if (size < 4) {
        if (size > 0)
            out[0] = '\0';
        return out;
    }
    size_t n = 0, room = escaped_len(s) < size ? size - 1 : size - 4; /* "..." if cut */
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        int esc = needs_escape(c);
        if (n + (esc ? 4 : 1) > room)
            break;
        if (!esc) {
            out[n++] = (char)c;
            continue;
        }
        out[n++] = '\\';
        out[n++] = 'x';
        out[n++] = hex[c >> 4];
        out[n++] = hex[c & 15];
    }
    if (*s != '\0') {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
    return out;
}

const char *log_field(const char *s)
{
    static char ring[8][LOG_FIELD_MAX + 1];
    static unsigned next;
    char *out = ring[next++ % 8];
    return log_escape(out, sizeof ring[0], s != NULL ? s : "");
}

void log_close(void)
{
    if (log_fd >= 0)
        close(log_fd);
    log_fd = -1;
}

void log_startup(const char *fmt, ...)
{
    char text[1024];
    struct stat st;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    log_msg(LOG_ERR, "%s", text);
    if (fstat(0, &st) != 0 || !S_ISSOCK(st.st_mode))
        fprintf(stderr, "%s: %s\n", log_ident, text);
}
