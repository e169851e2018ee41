/*
 * util: small helpers shared by every module and program, each written once: bounded strings
 * and numbers, growing arrays, checked writes, unique names, a sleep, the client's address,
 * the programs installed next to this one. Every copy checks its length first; truncation is
 * reported, never silent. Nothing here resolves a name.
 */
#ifndef YUBIN_UTIL_H
#define YUBIN_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Copies src into dst (size dstsize, NUL-terminated). Returns 0, or -1 if it does not fit
 * (dst is then the empty string). */
int str_copy(char *dst, size_t dstsize, const char *src);
/* Like str_copy for the first len bytes of src (which need not be NUL-terminated). */
int str_copy_n(char *dst, size_t dstsize, const char *src, size_t len);
/* snprintf that returns -1 on truncation or error instead of a length. */
int str_format(char *dst, size_t dstsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Cuts leading blanks (space, tab) and trailing white space (space, tab, CR, LF) in place;
 * returns the first octet kept. */
char *str_trim(char *s);
/* ASCII lower-casing in place. */
void str_lower(char *s);
/* ASCII case-insensitive comparisons. */
int str_ieq(const char *a, const char *b);
int str_iprefix(const char *s, const char *prefix);
/* The value of a hexadecimal digit (either case), or -1. */
int hex_value(int c);
/* The value of a base64 digit (RFC 4648: A-Z a-z 0-9 + /), or -1; "=" is -1 too. */
int base64_value(int c);

/* For command-line tools: prints "prog: <message>" and a newline on stderr and returns code
 * (a <sysexits.h> exit status), so a caller can `return cli_fail(...)`. */
int cli_fail(const char *prog, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Parses a decimal unsigned number that fills all of s (no sign, no spaces); -1 on overflow
 * or junk, 0 on success. */
int parse_u64(const char *s, uint64_t *out);

/* Makes room for need elements of elem octets in the array *array (a pointer to the array
 * pointer) of *cap elements, doubling from 8. 0, or -1 out of memory (the array unchanged). */
int mem_grow(void *array, size_t *cap, size_t need, size_t elem);

/* Sleeps ms milliseconds, whatever signals arrive meanwhile. */
void sleep_ms(unsigned long ms);

/* "<directory of the running program>/name" (from /proc/self/exe), so that a build tree or
 * another prefix finds its own programs. 0, or -1 (no /proc, too long). */
int self_sibling(char *dst, size_t size, const char *name);

/* "host", "host:port", "[v6]", "[v6]:port" or a bare IPv6 address (two ':' or more) into host
 * and *port (default_port when none is given; a port is 1 to 65535). 0, or -1 when s is none
 * of these or the host is too long. */
int parse_hostport(const char *s, char *host, size_t size, unsigned *port, unsigned default_port);

/* Writes all of buf to fd, retrying on EINTR and short writes. 0 or -1 (errno set). */
int write_all(int fd, const void *buf, size_t len);
/* fsyncs the directory at path. 0 or -1 (errno set). */
int fsync_dir(const char *path);

/* A name unique across hosts and time: "<seconds>.<usec>R<16 hex random>.<host>" with '/' and
 * ':' in host replaced. 0 or -1 if it does not fit. */
int unique_name(char *dst, size_t dstsize, const char *host);
/* 16 hex digits of libsodium randomness (17 bytes with the NUL). */
void random_hex16(char out[17]);

#endif
