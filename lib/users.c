/*
 * users: the users file (see users.h and yubin-users(5)): lookups, argon2id hashing and
 * verification with libsodium, and the atomic rewrite used by yubin-user. It never logs,
 * stores or copies a password beyond the caller's buffer, and an unknown user is never
 * answered faster than a known one.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "users.h"
#include "domain.h"
#include "util.h"

/* Reads one line into buf; a line longer than buf is skipped whole. 1 line, 0 EOF. */
static int read_line(FILE *f, char *buf, size_t size)
{
    while (fgets(buf, (int)size, f) != NULL) {
        size_t len = strlen(buf);
        if (len > 0 && buf[len - 1] == '\n') {
            buf[len - 1] = '\0';
            return 1;
        }
        if (feof(f))
            return 1;
        int ch;
        while ((ch = getc(f)) != EOF && ch != '\n')
            ;
    }
    return 0;
}

/* Does line start with address followed by ':'? Returns the hash part, or NULL. */
static const char *match_line(char *line, const char *address, size_t addr_len)
{
    if (line[0] == '#' || line[0] == '\0')
        return NULL;
    char *colon = strchr(line, ':');
    if (colon == NULL || (size_t)(colon - line) != addr_len)
        return NULL;
    *colon = '\0';
    int same = str_ieq(line, address);
    *colon = ':';
    return same ? colon + 1 : NULL;
}

int users_lookup(const char *users_file, const char *address, char *hash, size_t hash_size)
{
    FILE *f = fopen(users_file, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    char line[4096];
    size_t addr_len = strlen(address);
    int found = 0;
    while (!found && read_line(f, line, sizeof line)) {
        const char *h = match_line(line, address, addr_len);
        if (h != NULL)
            found = hash == NULL || str_copy(hash, hash_size, h) == 0 ? 1 : 0;
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        errno = EIO;
        return -1;
    }
    return found;
}

int users_exists(const char *users_file, const char *address)
{
    return users_lookup(users_file, address, NULL, 0);
}

int users_each(const char *users_file, int (*fn)(const char *address, const char *hash, void *ctx),
               void *ctx)
{
    FILE *f = fopen(users_file, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    char line[4096];
    int stop = 0;
    while (!stop && read_line(f, line, sizeof line)) {
        char *colon = strchr(line, ':');
        if (line[0] == '#' || colon == NULL || colon == line)
            continue;
        *colon = '\0';
        stop = fn(line, colon + 1, ctx);
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int users_dummy_hash(char *out, size_t size, uint64_t opslimit, uint64_t memlimit)
{
    return str_format(out, size,
                      "$argon2id$v=19$m=%llu,t=%llu,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                      "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8",
                      (unsigned long long)(memlimit / 1024), (unsigned long long)opslimit);
}

int users_verify(const char *users_file, const char *address, const char *password, size_t pwlen,
                 uint64_t opslimit, uint64_t memlimit)
{
    char hash[USERS_HASH_SIZE];
    int found = users_lookup(users_file, address, hash, sizeof hash);
    if (found < 0)
        return -1;
    if (found == 0 && users_dummy_hash(hash, sizeof hash, opslimit, memlimit) < 0)
        return -1;
    int ok = crypto_pwhash_str_verify(hash, password, pwlen) == 0;
    sodium_memzero(hash, sizeof hash);
    return found && ok ? 1 : 0;
}

int users_hash(char *hash, size_t hash_size, const char *password, size_t pwlen, uint64_t opslimit,
               uint64_t memlimit)
{
    if (hash_size < crypto_pwhash_STRBYTES)
        return -1;
    if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > crypto_pwhash_OPSLIMIT_MAX ||
        memlimit < crypto_pwhash_MEMLIMIT_MIN || memlimit > crypto_pwhash_MEMLIMIT_MAX)
        return -1;
    return crypto_pwhash_str(hash, password, pwlen, (unsigned long long)opslimit,
                             (size_t)memlimit) == 0
               ? 0
               : -1;
}

int users_needs_rehash(const char *hash, uint64_t opslimit, uint64_t memlimit)
{
    return crypto_pwhash_str_needs_rehash(hash, (unsigned long long)opslimit, (size_t)memlimit) !=
           0;
}

static int local_char_ok(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '.' || ch == '_' || ch == '+' || ch == '-';
}

static int has_double_dot(const char *start, const char *end)
{
    for (const char *p = start; p + 1 < end; p++)
        if (p[0] == '.' && p[1] == '.')
            return 1;
    return 0;
}

int users_address_ok(const char *address, const char **why)
{
    const char *at = strrchr(address, '@');
    const char *reason = NULL;
    if (strlen(address) >= USERS_ADDRESS_SIZE)
        reason = "the address is too long";
    else if (at == NULL || at == address)
        reason = "the address must look like user@domain";
    else if (address[0] == '.' || at[-1] == '.' || has_double_dot(address, at))
        reason = "the user part must not start or end with '.' or contain '..'";
    else if (!domain_valid(at + 1))
        reason = "the domain is not a valid host name";
    for (const char *p = address; reason == NULL && p < at; p++)
        if (!local_char_ok(*p))
            reason = "the user part may only contain letters, digits and . _ + -";
    if (why != NULL)
        *why = reason;
    return reason == NULL;
}

/* The rewrite: copy every other line to the temp file, then the new line if any. */
static int copy_lines(FILE *in, FILE *out, const char *address, const char *hash, int *found)
{
    char line[4096];
    size_t addr_len = strlen(address);
    *found = 0;
    while (in != NULL && read_line(in, line, sizeof line)) {
        if (match_line(line, address, addr_len) != NULL) {
            *found = 1;
            if (hash != NULL && fprintf(out, "%s:%s\n", address, hash) < 0)
                return -1;
            continue;
        }
        if (fprintf(out, "%s\n", line) < 0)
            return -1;
    }
    if (in != NULL && ferror(in))
        return -1;
    if (!*found && hash != NULL && fprintf(out, "%s:%s\n", address, hash) < 0)
        return -1;
    return 0;
}

/* Mode and owner of the old file, or the defaults for a new one. */
static int take_owner(int fd, FILE *in, long new_gid)
{
    struct stat st;
    if (in != NULL) {
        if (fstat(fileno(in), &st) != 0)
            return -1;
    } else {
        st.st_mode = 0640;
        st.st_uid = geteuid();
        st.st_gid = new_gid >= 0 ? (gid_t)new_gid : getegid();
    }
    if (fchown(fd, st.st_uid, st.st_gid) != 0 && geteuid() == 0)
        return -1;
    return fchmod(fd, st.st_mode & 07777);
}

static int dir_of(char *dir, size_t size, const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return str_copy(dir, size, ".");
    if (slash == path)
        return str_copy(dir, size, "/");
    return str_copy_n(dir, size, path, (size_t)(slash - path));
}

static int fail(char *err, size_t errlen, const char *what, const char *path)
{
    str_format(err, errlen, "%s %s: %s", what, path, strerror(errno));
    return -1;
}

/* Writes the temp file and renames it over users_file. lock is held by the caller. */
static int rewrite(const char *users_file, const char *address, const char *hash, long new_gid,
                   int *found, char *err, size_t errlen)
{
    char tmp[4096], dir[4096];
    if (str_format(tmp, sizeof tmp, "%s.tmpXXXXXX", users_file) < 0 ||
        dir_of(dir, sizeof dir, users_file) != 0)
        return errno = ENAMETOOLONG, fail(err, errlen, "cannot rewrite", users_file);
    FILE *in = fopen(users_file, "re");
    if (in == NULL && errno != ENOENT)
        return fail(err, errlen, "cannot read", users_file);
    int fd = mkstemp(tmp);
    if (fd < 0) {
        if (in != NULL)
            fclose(in);
        return fail(err, errlen, "cannot create a temporary file next to", users_file);
    }
    FILE *out = fdopen(fd, "w");
    int rc = out == NULL || take_owner(fd, in, new_gid) != 0 ||
             copy_lines(in, out, address, hash, found) != 0 || fflush(out) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (in != NULL)
        fclose(in);
    if ((out != NULL ? fclose(out) : close(fd)) != 0 && !rc)
        rc = 1, saved = errno;
    if (!rc && (hash != NULL || *found) && rename(tmp, users_file) != 0)
        rc = 1, saved = errno;
    if (rc || (hash == NULL && !*found)) {
        unlink(tmp);
        errno = saved;
        return rc ? fail(err, errlen, "cannot write", users_file) : 0;
    }
    if (fsync_dir(dir) != 0)
        return fail(err, errlen, "cannot fsync the directory of", users_file);
    return 0;
}

int users_update(const char *users_file, const char *address, const char *hash, long new_gid,
                 char *err, size_t errlen)
{
    char lock_path[4096];
    int found = 0;
    if (str_format(lock_path, sizeof lock_path, "%s.lock", users_file) < 0)
        return errno = ENAMETOOLONG, fail(err, errlen, "path too long:", users_file);
    int lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (lock < 0)
        return fail(err, errlen, "cannot open the lock file", lock_path);
    if (flock(lock, LOCK_EX) != 0) {
        close(lock);
        return fail(err, errlen, "cannot lock", lock_path);
    }
    int rc = rewrite(users_file, address, hash, new_gid, &found, err, errlen);
    close(lock);
    if (rc != 0)
        return -1;
    return hash != NULL || found ? 1 : 0;
}
