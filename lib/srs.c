/*
 * srs: SRS0/SRS1 rewriting and its reverse (see srs.h). Every field is measured before it is
 * copied; a result that would not fit RFC 5321 is refused, never cut. Hashes are compared in
 * constant time (sodium_memcmp) and the keys are wiped when they are dropped. It never
 * writes files and never logs.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "srs.h"
#include "util.h"

#define SRS_FILE_MAX 65536 /* octets of a secret file */

static const char b32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

void srs_init(struct srs *s, const char *domain, unsigned max_age)
{
    memset(s, 0, sizeof *s);
    if (str_copy(s->domain, sizeof s->domain, domain) == 0)
        str_lower(s->domain);
    s->max_age = max_age;
}

void srs_clear(struct srs *s)
{
    sodium_memzero(s->keys, sizeof s->keys);
    s->n_keys = 0;
}

int srs_add_secret(struct srs *s, const char *secret, size_t len)
{
    if (len < SRS_MIN_SECRET || s->n_keys >= SRS_MAX_SECRETS)
        return -1;
    /* Any text makes a key of the right size (a postsrsd secret file works as it is). */
    crypto_generichash(s->keys[s->n_keys++], SRS_KEY_BYTES, (const unsigned char *)secret, len,
                       NULL, 0);
    return 0;
}

/* Is the secret file safe to trust? 0, or -1 with err. */
static int check_file(int fd, const char *path, char *err, size_t errlen)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    if (!S_ISREG(st.st_mode))
        return errno = EINVAL, snprintf(err, errlen, "%s: not a regular file", path), -1;
    if (st.st_uid != 0 && st.st_uid != geteuid())
        return errno = EPERM,
               snprintf(err, errlen, "%s: owned by uid %u, not by root or by us", path,
                        (unsigned)st.st_uid),
               -1;
    if (st.st_mode & 027)
        return errno = EPERM,
               snprintf(err, errlen, "%s: mode %04o: the secret must be mode 0600 or 0640", path,
                        (unsigned)(st.st_mode & 07777)),
               -1;
    if (st.st_size > SRS_FILE_MAX)
        return errno = EFBIG, snprintf(err, errlen, "%s: over %d octets", path, SRS_FILE_MAX), -1;
    return 0;
}

/* Takes the secrets of text (NUL-terminated), one a line. 0, or -1 with err. */
static int parse_secrets(struct srs *s, char *text, const char *path, char *err, size_t errlen)
{
    unsigned lineno = 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        lineno++;
        size_t len = strlen(line);
        while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        if (len == 0 || line[0] == '#')
            continue;
        if (srs_add_secret(s, line, len) != 0)
            return errno = EINVAL,
                   snprintf(err, errlen, "%s:%u: %s", path, lineno,
                            len < SRS_MIN_SECRET ? "a secret needs 16 characters or more"
                                                 : "more than 16 secrets"),
                   -1;
    }
    if (s->n_keys == 0)
        return errno = EINVAL, snprintf(err, errlen, "%s: no secret in the file", path), -1;
    return 0;
}

int srs_load(struct srs *s, const char *path, char *err, size_t errlen)
{
    static char buf[SRS_FILE_MAX + 1];
    size_t used = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return snprintf(err, errlen, "%s: %s", path, strerror(errno)), -1;
    int rc = check_file(fd, path, err, errlen);
    for (ssize_t n = 1; rc == 0 && n != 0;) {
        n = read(fd, buf + used, sizeof buf - 1 - used);
        if (n < 0 && errno != EINTR)
            rc = -1, snprintf(err, errlen, "%s: %s", path, strerror(errno));
        else if (n > 0 && (used += (size_t)n) >= sizeof buf - 1)
            rc = -1, errno = EFBIG, snprintf(err, errlen, "%s: file too large", path);
    }
    int e = errno;
    close(fd);
    buf[used] = '\0';
    if (rc == 0)
        rc = parse_secrets(s, buf, path, err, errlen);
    else
        errno = e;
    e = errno;
    sodium_memzero(buf, sizeof buf);
    if (rc != 0)
        srs_clear(s);
    errno = e;
    return rc;
}

/* ---- hashing ------------------------------------------------------------------------------ */

/* The SRS_HASH_LEN base32 characters of key's hash over the fields (lower-cased, each ended by
 * a NUL, after a tag: '0' or '1'). -1 when the fields do not fit. */
static int hash_fields(const unsigned char *key, char tag, const char *const *fields, size_t n,
                       char out[SRS_HASH_LEN])
{
    unsigned char data[2 * ADDR_SIZE + 8], h[16];
    size_t used = 0;
    data[used++] = (unsigned char)tag;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(fields[i]);
        if (used + len + 1 > sizeof data)
            return -1;
        for (size_t j = 0; j < len; j++) {
            unsigned char c = (unsigned char)fields[i][j];
            data[used++] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c - 'A' + 'a') : c;
        }
        data[used++] = '\0';
    }
    crypto_generichash(h, sizeof h, data, used, key, SRS_KEY_BYTES);
    uint32_t bits = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
    for (int i = 0; i < SRS_HASH_LEN; i++)
        out[i] = b32[(bits >> (27 - 5 * i)) & 31];
    sodium_memzero(h, sizeof h);
    return 0;
}

/* Does some key give the hash `given` (any case)? */
static int hash_ok(const struct srs *s, const char *given, size_t len, char tag,
                   const char *const *fields, size_t n)
{
    char want[SRS_HASH_LEN], got[SRS_HASH_LEN];
    if (len != SRS_HASH_LEN)
        return 0;
    for (size_t i = 0; i < SRS_HASH_LEN; i++)
        got[i] = (given[i] >= 'a' && given[i] <= 'z') ? (char)(given[i] - 'a' + 'A') : given[i];
    for (size_t k = 0; k < s->n_keys; k++)
        if (hash_fields(s->keys[k], tag, fields, n, want) == 0 &&
            sodium_memcmp(want, got, SRS_HASH_LEN) == 0)
            return 1;
    return 0;
}

static int b32_value(char c)
{
    const char *p = strchr(b32, (c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
    return c != '\0' && p != NULL ? (int)(p - b32) : -1;
}

static unsigned today(time_t now)
{
    return (unsigned)((now < 0 ? 0 : now) / 86400 % 1024);
}

/* ---- forward ------------------------------------------------------------------------------ */

int srs_is_srs(const char *local)
{
    return (local[0] == 'S' || local[0] == 's') && (local[1] == 'R' || local[1] == 'r') &&
           (local[2] == 'S' || local[2] == 's') && (local[3] == '0' || local[3] == '1') &&
           local[4] != '\0' && strchr("=+-", local[4]) != NULL;
}

/* Checks and writes "local@domain" to out: the RFC 5321 limits, and a mailbox lib/addr takes. */
static enum srs_result finish(const char *local, const char *domain, char *out, size_t size)
{
    struct addr a;
    if (strlen(local) > ADDR_LOCAL_MAX ||
        str_format(out, size < ADDR_PATH_MAX - 1 ? size : ADDR_PATH_MAX - 1, "%s@%s", local,
                   domain) < 0)
        return out[0] = '\0', SRS_TOO_LONG;
    if (addr_parse_mailbox(out, &a) != ADDR_OK || a.quoted)
        return out[0] = '\0', SRS_SYNTAX;
    return SRS_OK;
}

/* SRS1 for an address another forwarder made: "SRS0<rest>@fwd1" or "SRS1=H=fwd1=<rest>@x",
 * where <rest> starts with a separator ('=', '+' or '-') as SRS0's does. SRS_NOT_SRS when it
 * is not in either shape (then it is rewritten like any sender). */
static enum srs_result forward_srs1(const struct srs *s, const struct addr *a, char *out,
                                    size_t size)
{
    char fwd1[ADDR_DOMAIN_MAX + 1], local[2 * ADDR_SIZE], h[SRS_HASH_LEN];
    const char *rest = a->local + 4;
    if (str_copy(fwd1, sizeof fwd1, a->domain) != 0)
        return SRS_NOT_SRS;
    if (a->local[3] == '1') {
        const char *hash_end = strchr(a->local + 5, '=');
        const char *fwd_end = hash_end ? strchr(hash_end + 1, '=') : NULL;
        if (fwd_end == NULL || fwd_end == hash_end + 1 || strchr("=+-", fwd_end[1]) == NULL ||
            fwd_end[1] == '\0' || fwd_end[2] == '\0' ||
            str_copy_n(fwd1, sizeof fwd1, hash_end + 1, (size_t)(fwd_end - hash_end - 1)) != 0)
            return SRS_NOT_SRS;
        rest = fwd_end + 1;
    }
    const char *fields[] = {fwd1, rest};
    if (hash_fields(s->keys[0], '1', fields, 2, h) != 0 ||
        str_format(local, sizeof local, "SRS1=%.*s=%s=%s", SRS_HASH_LEN, h, fwd1, rest) < 0)
        return SRS_TOO_LONG;
    return finish(local, s->domain, out, size);
}

enum srs_result srs_forward(const struct srs *s, const char *sender, time_t now, char *out,
                            size_t size)
{
    struct addr a;
    char local[2 * ADDR_SIZE], tt[3], h[SRS_HASH_LEN];
    out[0] = '\0';
    if (s->n_keys == 0 || addr_parse_mailbox(sender, &a) != ADDR_OK || a.null || a.quoted ||
        a.literal || a.domain[0] == '\0')
        return SRS_SYNTAX;
    if (srs_is_srs(a.local)) {
        enum srs_result r = forward_srs1(s, &a, out, size);
        if (r != SRS_NOT_SRS)
            return r;
    }
    unsigned day = today(now);
    tt[0] = b32[day >> 5];
    tt[1] = b32[day & 31];
    tt[2] = '\0';
    const char *fields[] = {tt, a.domain, a.local};
    if (hash_fields(s->keys[0], '0', fields, 3, h) != 0 ||
        str_format(local, sizeof local, "SRS0=%.*s=%s=%s=%s", SRS_HASH_LEN, h, tt, a.domain,
                   a.local) < 0)
        return SRS_TOO_LONG;
    return finish(local, s->domain, out, size);
}

/* ---- reverse ------------------------------------------------------------------------------ */

/* Splits "f1=f2=...=rest" into n fields before the rest; each field non-empty and copied into
 * its buffer (FIELD_SIZE each). The pointer to the rest, or NULL. */
#define FIELD_SIZE (ADDR_DOMAIN_MAX + 1)
static const char *split(const char *p, char (*fields)[FIELD_SIZE], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(p, '=');
        if (eq == NULL || eq == p || str_copy_n(fields[i], FIELD_SIZE, p, (size_t)(eq - p)) != 0)
            return NULL;
        p = eq + 1;
    }
    return *p != '\0' ? p : NULL;
}

static enum srs_result reverse_srs0(const struct srs *s, const char *p, time_t now, char *out,
                                    size_t size)
{
    char f[3][FIELD_SIZE]; /* hash, timestamp, domain */
    const char *local = split(p, f, 3);
    if (local == NULL || strlen(f[1]) != 2 || b32_value(f[1][0]) < 0 || b32_value(f[1][1]) < 0)
        return SRS_SYNTAX;
    const char *fields[] = {f[1], f[2], local};
    if (!hash_ok(s, f[0], strlen(f[0]), '0', fields, 3))
        return SRS_BAD_HASH;
    unsigned then = (unsigned)(b32_value(f[1][0]) << 5 | b32_value(f[1][1]));
    if ((today(now) + 1024 - then) % 1024 > s->max_age)
        return SRS_EXPIRED;
    if (str_format(out, size, "%s@%s", local, f[2]) < 0)
        return SRS_SYNTAX;
    return SRS_OK;
}

static enum srs_result reverse_srs1(const struct srs *s, const char *p, char *out, size_t size)
{
    char f[2][FIELD_SIZE]; /* hash, first forwarder */
    const char *rest = split(p, f, 2);
    if (rest == NULL || strchr("=+-", rest[0]) == NULL)
        return SRS_SYNTAX;
    const char *fields[] = {f[1], rest};
    if (!hash_ok(s, f[0], strlen(f[0]), '1', fields, 2))
        return SRS_BAD_HASH;
    if (str_format(out, size, "SRS0%s@%s", rest, f[1]) < 0)
        return SRS_SYNTAX;
    return SRS_OK;
}

enum srs_result srs_reverse(const struct srs *s, const char *local, time_t now, char *out,
                            size_t size)
{
    out[0] = '\0';
    if (!srs_is_srs(local))
        return SRS_NOT_SRS;
    if (strlen(local) > ADDR_LOCAL_MAX)
        return SRS_SYNTAX;
    enum srs_result r = local[3] == '0' ? reverse_srs0(s, local + 5, now, out, size)
                                        : reverse_srs1(s, local + 5, out, size);
    if (r != SRS_OK)
        out[0] = '\0';
    return r;
}

const char *srs_error_text(enum srs_result r)
{
    switch (r) {
    case SRS_OK:
        return "ok";
    case SRS_NOT_SRS:
        return "not an SRS address";
    case SRS_SYNTAX:
        return "not an address SRS can rewrite";
    case SRS_TOO_LONG:
        return "the SRS address would be over the RFC 5321 limits";
    case SRS_BAD_HASH:
        return "SRS address with a bad hash (forged or damaged)";
    case SRS_EXPIRED:
        return "SRS address expired";
    }
    return "unknown SRS result";
}
