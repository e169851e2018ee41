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

/* Is address (local@domain, any case) a mailbox in the users file?
 * 1 yes, 0 no, -1 the file could not be read (errno set; a missing file counts as empty). */
int users_exists(const char *users_file, const char *address);

#endif
