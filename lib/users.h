/*
 * users: the users file (yubin-users(5)), one mailbox per line:
 *     user@domain:$argon2id$v=19$m=...,t=...,p=...$salt$hash
 * Addresses are compared case-insensitively. Hashes come from libsodium's crypto_pwhash_str
 * and are checked with crypto_pwhash_str_verify; an unknown user costs the same time as a
 * known one. Written only by yubin-user, atomically. Never logs or keeps a password.
 */
#ifndef YUBIN_USERS_H
#define YUBIN_USERS_H

#include <stddef.h>
#include <stdint.h>

#define USERS_HASH_SIZE 128 /* crypto_pwhash_STRBYTES */
#define USERS_ADDRESS_SIZE 256
#define USERS_MAX_PASSWORD 1024

/* Is address (local@domain, any case) a mailbox in the users file?
 * 1 yes, 0 no, -1 the file could not be read (errno set; a missing file counts as empty). */
int users_exists(const char *users_file, const char *address);

/* Finds address's hash. 1 found (hash copied), 0 not found, -1 the file could not be read. */
int users_lookup(const char *users_file, const char *address, char *hash, size_t hash_size);

/* Checks password (pwlen bytes) for address. An unknown address is verified against a dummy
 * hash with the given limits, so it costs the same time as a known one.
 * 1 correct, 0 wrong or unknown, -1 the users file could not be read. */
int users_verify(const char *users_file, const char *address, const char *password, size_t pwlen,
                 uint64_t opslimit, uint64_t memlimit);

/* A well-formed argon2id hash with these limits that no password matches in practice: what an
 * unknown user is verified against, so that it costs the same as a known one. 0 or -1. */
int users_dummy_hash(char *out, size_t size, uint64_t opslimit, uint64_t memlimit);

/* crypto_pwhash_str with the given limits into hash (USERS_HASH_SIZE). 0 or -1 (out of
 * memory or limits out of range). */
int users_hash(char *hash, size_t hash_size, const char *password, size_t pwlen, uint64_t opslimit,
               uint64_t memlimit);

/* 1 if hash was made with other limits than these (or is not an argon2id hash), else 0. */
int users_needs_rehash(const char *hash, uint64_t opslimit, uint64_t memlimit);

/* Is address acceptable as a mailbox name: local@domain, no ':' or white space, a safe local
 * part (letters, digits, and . _ + - not at the start), a domain of letters, digits, '-' and
 * dots? 1 yes, 0 no; why is set to a short reason when it is not. */
int users_address_ok(const char *address, const char **why);

/* Calls fn(address, hash, ctx) for every line of the users file in order (comments and
 * malformed lines skipped); stops early when fn returns non-zero. 0, or -1 if the file could
 * not be read (a missing file is empty). */
int users_each(const char *users_file, int (*fn)(const char *address, const char *hash, void *ctx),
               void *ctx);

/* Rewrites the users file atomically (temp file in the same directory, fsync, rename,
 * directory fsync), keeping its mode and owner (a new file gets mode 0640 and, if new_gid
 * is not -1, that group): with hash != NULL, address gets that hash (replaced, or added at the
 * end); with hash == NULL, address's line is removed. Concurrent updates are serialised with
 * a lock on users_file.lock. 1 done, 0 (remove only) no such address, -1 error with a reason
 * in err. */
int users_update(const char *users_file, const char *address, const char *hash, long new_gid,
                 char *err, size_t errlen);

/* Reads the whole users file (yubin-check; lib/users-check.c): report(arg, "file:line: why")
 * for every line that is not "mailbox:$argon2id$...", for a mailbox name users_address_ok
 * refuses, and for a mailbox listed twice. Returns the number of errors, or -1 (reported) if
 * the file cannot be read; a missing file is empty. */
typedef void (*users_report_fn)(void *arg, const char *msg);
int users_check(const char *users_file, users_report_fn report, void *arg);

#endif
