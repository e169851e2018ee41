/*
 * pwcheck: argon2id verification in memory that the caller owns and keeps. Each verifying
 * thread has one arena, mapped once (with transparent huge pages where the kernel offers them)
 * and faulted in on first use, then reused by every later check until its owner frees it
 * (yubin-auth does when the worker is idle; the next check maps it again): no mmap, no page
 * fault and no allocation per login in a burst, and never more memory than the arena; the arena is
 * wiped after every check. Hashes are the crypto_pwhash_str strings of yubin-users(5), verified
 * by libsodium's crypto_pwhash_argon2id_str_verify (constant-time comparison); only programs
 * linked with PWCHECK_LIBS and PWCHECK_WRAP (Makefile.am: libsodium.a and the mmap wrap) may
 * link this. It never logs, stores or copies a password.
 */
#ifndef YUBIN_PWCHECK_H
#define YUBIN_PWCHECK_H

#include <stddef.h>

struct pwcheck_arena {
    unsigned char *mem; /* NULL until first use */
    size_t size;        /* bytes: the largest m= (in KiB, times 1024) this arena verifies */
    unsigned long lent; /* checks computed in this arena (libsodium's memory was the arena) */
};

/* An arena of size bytes, mapped on first use. */
void pwcheck_arena_init(struct pwcheck_arena *a, size_t size);
void pwcheck_arena_free(struct pwcheck_arena *a);

/* Checks password (pwlen bytes) against an "$argon2id$v=19$m=..,t=..,p=..$salt$hash" string,
 * using a's memory for the whole computation. 1 match, 0 no match, -1 the hash is malformed,
 * or needs more memory than the arena (why says which). Only one thread may use an arena at a
 * time. */
int pwcheck_verify(struct pwcheck_arena *a, const char *encoded, const char *password, size_t pwlen,
                   const char **why);

#endif
