/*
 * authlimit: failed logins counted per key (a client address, or a user name) across every
 * connection, for yubin-auth. After n failures a key must wait delay(n) = base << (n - 1)
 * milliseconds (at most max) from its last failure before its next check; while a key has
 * failures, only one check for it runs at a time. A key with no failure for an hour is
 * forgotten. The table has a fixed size: when it is full, the entry used longest ago makes
 * room. It never allocates and never stores a password.
 */
#ifndef YUBIN_AUTHLIMIT_H
#define YUBIN_AUTHLIMIT_H

#include <stddef.h>
#include <stdint.h>

#define AUTHLIMIT_KEY_SIZE 256
#define AUTHLIMIT_FORGET_MS (3600 * 1000)

struct authlimit_entry {
    char key[AUTHLIMIT_KEY_SIZE]; /* "" = free */
    unsigned failures;
    unsigned running;         /* checks for this key being verified now */
    uint64_t last_failure_ms; /* monotonic */
    uint64_t used_ms;
};

struct authlimit {
    struct authlimit_entry *entries;
    size_t n;
    size_t used; /* entries[0..used) have been handed out; the rest are never touched */
    unsigned base_ms, max_ms;
};

/* Takes an array of n entries. Only the entries that come into use are written (each zeroed
 * then): a quiet service keeps a large static table out of its resident memory. */
void authlimit_init(struct authlimit *t, struct authlimit_entry *entries, size_t n,
                    unsigned base_ms, unsigned max_ms);

/* The delay after n failures (0 for none). */
uint64_t authlimit_delay(const struct authlimit *t, unsigned failures);

/* Milliseconds key must still wait at now before a check may start (0: it may start now;
 * UINT64_MAX: another check for key with failures is running). */
uint64_t authlimit_wait(struct authlimit *t, const char *key, uint64_t now_ms);

/* A check for key starts, and ends: ok != 0 a correct password (the key's failures are
 * cleared when clear_on_ok), else one more failure. end returns the failures now counted. */
void authlimit_start(struct authlimit *t, const char *key, uint64_t now_ms);
unsigned authlimit_end(struct authlimit *t, const char *key, int ok, int clear_on_ok,
                       uint64_t now_ms);

#endif
