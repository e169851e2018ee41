/*
 * test-pwcheck: lib/pwcheck against hashes made by libsodium's crypto_pwhash_str: a right and
 * a wrong password, an arena reused for many checks without being mapped again, a hash that
 * needs more memory than the arena, and malformed hashes. It never touches a users file.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "pwcheck.h"
#include "tap.h"

#define OPS 1
#define MEM (1024 * 1024)

int main(void)
{
    char hash[crypto_pwhash_STRBYTES], big[crypto_pwhash_STRBYTES];
    const char *why = NULL;
    struct pwcheck_arena a;
    if (sodium_init() < 0 || crypto_pwhash_str(hash, "secret", 6, OPS, MEM) != 0 ||
        crypto_pwhash_str(big, "secret", 6, OPS, 2 * MEM) != 0)
        return 1;
    pwcheck_arena_init(&a, MEM);
    CHECK(a.mem == NULL, "the arena is mapped on first use only");
    CHECK(pwcheck_verify(&a, hash, "secret", 6, &why) == 1, "the right password matches");
    unsigned char *mem = a.mem;
    CHECK(mem != NULL, "the first check mapped the arena");
    CHECK(pwcheck_verify(&a, hash, "secreT", 6, &why) == 0, "a wrong password does not");
    CHECK(pwcheck_verify(&a, hash, "secret", 5, &why) == 0, "nor a prefix of it");
    int same = 1;
    for (int i = 0; i < 5; i++)
        same &= pwcheck_verify(&a, hash, "secret", 6, &why) == 1 && a.mem == mem;
    CHECK(same, "later checks reuse the same memory");
    CHECK(pwcheck_verify(&a, big, "secret", 6, &why) == -1 && strstr(why, "more memory"),
          "a hash needing more than the arena is refused (%s)", why ? why : "");
    const char *bad[] = {"",
                         "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0",
                         "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
                         "$argon2id$v=19$m=1024,t=1,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaA"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(pwcheck_verify(&a, bad[i], "secret", 6, &why) == -1, "malformed hash %zu refused", i);
    pwcheck_arena_free(&a);
    return tap_done();
}
