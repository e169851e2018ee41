/*
 * util: bounded string copies, number parsing, growing arrays, checked writes, unique names,
 * the peer's address (see util.h). Only mem_grow allocates; nothing resolves a name.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "util.h"

int str_copy(char *dst, size_t dstsize, const char *src)
{
    return str_copy_n(dst, dstsize, src, strlen(src));
}

int str_copy_n(char *dst, size_t dstsize, const char *src, size_t len)
{
    if (dstsize == 0)
        return -1;
    if (len >= dstsize) {
        dst[0] = '\0';
        return -1;
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int str_format(char *dst, size_t dstsize, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(dst, dstsize, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= dstsize) {
        if (dstsize > 0)
            dst[0] = '\0';
        return -1;
    }
    return n;
}

char *str_trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t len = strlen(s);
    while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
        s[--len] = '\0';
    return s;
}

static int ascii_lower(int ch)
{
    return (ch >= 'A' && ch <= 'Z') ? ch - 'A' + 'a' : ch;
}

void str_lower(char *s)
{
    for (; *s != '\0'; s++)
        *s = (char)ascii_lower((unsigned char)*s);
}

int str_ieq(const char *a, const char *b)
{
    for (; *a != '\0' && *b != '\0'; a++, b++)
        if (ascii_lower((unsigned char)*a) != ascii_lower((unsigned char)*b))
            return 0;
    return *a == *b;
}

int str_iprefix(const char *s, const char *prefix)
{
    for (; *prefix != '\0'; s++, prefix++)
        if (*s == '\0' || ascii_lower((unsigned char)*s) != ascii_lower((unsigned char)*prefix))
            return 0;
    return 1;
}

int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

int base64_value(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

int cli_fail(const char *prog, int code, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s: ", prog);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (*s == '\0')
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned digit = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return -1;
        v = v * 10 + digit;
    }
    *out = v;
    return 0;
}

int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

void random_hex16(char out[17])
{
    unsigned char bytes[8];
    randombytes_buf(bytes, sizeof bytes);
    sodium_bin2hex(out, 17, bytes, sizeof bytes);
}

int unique_name(char *dst, size_t dstsize, const char *host)
{
    struct timeval tv;
    char rnd[17];
    char safe_host[256];
    if (str_copy(safe_host, sizeof safe_host, host) != 0)
        return -1;
    for (char *p = safe_host; *p != '\0'; p++)
        if (*p == '/' || *p == ':' || *p == ',')
            *p = '_';
    gettimeofday(&tv, NULL);
    random_hex16(rnd);
    return str_format(dst, dstsize, "%lld.M%06ldR%s.%s", (long long)tv.tv_sec, (long)tv.tv_usec,
                      rnd, safe_host) < 0
               ? -1
               : 0;
}

int mem_grow(void *array, size_t *cap, size_t need, size_t elem)
{
    void **p = array;
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 8;
    while (n < need) {
        if (n > SIZE_MAX / 2 / elem)
            return errno = ENOMEM, -1;
        n *= 2;
    }
    void *q = realloc(*p, n * elem);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

void sleep_ms(unsigned long ms)
{
    struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int self_sibling(char *dst, size_t size, const char *name)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = '\0';
    char *slash = strrchr(self, '/');
    if (slash == NULL)
        return -1;
    *slash = '\0';
    return str_format(dst, size, "%s/%s", self, name) < 0 ? -1 : 0;
}

int parse_hostport(const char *s, char *host, size_t size, unsigned *port, unsigned default_port)
{
    const char *colon = strchr(s, ':'), *close = strchr(s, ']');
    uint64_t v = default_port;
    if (s[0] == '[') {
        if (!close || (close[1] != '\0' && close[1] != ':') ||
            str_copy_n(host, size, s + 1, (size_t)(close - s - 1)) < 0)
            return -1;
        colon = close[1] == ':' ? close + 1 : NULL;
    } else if (colon && strchr(colon + 1, ':')) {
        colon = NULL; /* a bare IPv6 address */
        if (str_copy(host, size, s) < 0)
            return -1;
    } else if (str_copy_n(host, size, s, colon ? (size_t)(colon - s) : strlen(s)) < 0) {
        return -1;
    }
    if (host[0] == '\0' || (colon && (parse_u64(colon + 1, &v) < 0 || v == 0 || v > 65535)))
        return -1;
    *port = (unsigned)v;
    return 0;
}
