/*
 * srs: the Sender Rewriting Scheme (as libsrs2 and postsrsd write it) for mail that this host
 * forwards to another domain, so that the receiver's SPF check sees our domain, and bounces
 * come back to us, who send them on to the original sender:
 *
 *     alice@example.org          -> SRS0=HHHHHH=TT=example.org=alice@fwd.test
 *     SRS0=hhhh=TT=d.test=bob@fwd1.test (another forwarder's)
 *                                -> SRS1=HHHHHH=fwd1.test==hhhh=TT=d.test=bob@fwd.test
 *
 * HHHHHH is a keyed hash (libsodium crypto_generichash, BLAKE2b, keyed with a secret from the
 * secret file) truncated to SRS_HASH_LEN base32 characters, TT the day of signing modulo 1024
 * in base32. Everything is hashed lower case and base32 compares case-insensitively, so an
 * address that an MTA lower-cased on the way still verifies. Several secrets may be loaded:
 * the first signs, every one verifies (key rotation). It never writes a file, never logs, and
 * never produces an address over the RFC 5321 limits (64-octet local part, 256-octet path):
 * such a rewrite is refused instead.
 */
#ifndef YUBIN_SRS_H
#define YUBIN_SRS_H

#include <stddef.h>
#include <time.h>

#include "addr.h"

#define SRS_HASH_LEN 6       /* base32 characters: 30 bits of the keyed hash */
#define SRS_MAX_SECRETS 16   /* lines of the secret file */
#define SRS_MIN_SECRET 16    /* characters of one secret */
#define SRS_KEY_BYTES 32     /* crypto_generichash_KEYBYTES */
#define SRS_MAX_AGE_MAX 1000 /* days; timestamps wrap after 1024 */

struct srs {
    unsigned char keys[SRS_MAX_SECRETS][SRS_KEY_BYTES]; /* derived from each secret line */
    size_t n_keys;
    char domain[ADDR_DOMAIN_MAX + 1]; /* the domain of the addresses we make, lower case */
    unsigned max_age;                 /* days an SRS0 address stays valid */
};

enum srs_result {
    SRS_OK = 0,
    SRS_NOT_SRS,  /* reverse: the local part does not start with SRS0 or SRS1 */
    SRS_SYNTAX,   /* reverse: SRS0/SRS1 but not in its shape; forward: not a mailbox we can
                     rewrite (null, quoted local part, address literal) */
    SRS_TOO_LONG, /* forward: the result would be over the RFC 5321 limits */
    SRS_BAD_HASH, /* reverse: no secret gives this hash (forged or mangled) */
    SRS_EXPIRED,  /* reverse: signed more than max_age days ago (or in the future) */
};

/* Sets up s for domain with no secrets yet. */
void srs_init(struct srs *s, const char *domain, unsigned max_age);
/* Adds one secret (any text of at least SRS_MIN_SECRET characters). 0, or -1 (too short,
 * too many). */
int srs_add_secret(struct srs *s, const char *secret, size_t len);
/* Reads the secrets of path, one a line (blank lines and '#' comments skipped), after
 * srs_init. The file must be a regular file owned by root or by us, not writable by its
 * group, not readable by others (0600 or 0640). 0, or -1 with errno (ENOENT: missing) and
 * "path: why" in err. */
int srs_load(struct srs *s, const char *path, char *err, size_t errlen);
/* Wipes the keys. */
void srs_clear(struct srs *s);

/* The SRS address for sender "local@domain", signed now, written to out (size >= ADDR_SIZE).
 * An SRS0 or SRS1 address of another forwarder becomes SRS1. SRS_OK, SRS_SYNTAX or
 * SRS_TOO_LONG. */
enum srs_result srs_forward(const struct srs *s, const char *sender, time_t now, char *out,
                            size_t size);
/* The address that the SRS local part `local` stands for (its domain is the caller's to
 * check), written to out: the original sender for SRS0, the first forwarder's SRS0 address
 * for SRS1. SRS_OK, SRS_NOT_SRS, SRS_SYNTAX, SRS_BAD_HASH or SRS_EXPIRED. */
enum srs_result srs_reverse(const struct srs *s, const char *local, time_t now, char *out,
                            size_t size);
/* Does local start like an SRS address ("SRS0=", "SRS1=", any case, or '+' '-' for '=')? */
int srs_is_srs(const char *local);
/* A short English text for a result. */
const char *srs_error_text(enum srs_result r);

#endif
