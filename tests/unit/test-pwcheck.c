/*
 * test-pwcheck: lib/pwcheck against hashes made by libsodium's crypto_pwhash_str at several
 * m and t (and two made by the reference implementation with p=2 and p=3, which
 * crypto_pwhash_str cannot make): a right and a wrong password, an arena reused for many checks
 * (libsodium's argon2 memory is the arena: no new mapping and no page faults on the next check)
 * and wiped after each, a hash that needs more memory than the arena, and malformed hashes.
 * It never touches a users file.
 */
#include "config.h"

#include <string.h>
#include <sys/resource.h>

#include <sodium.h>

#include "pwcheck.h"
#include "tap.h"

#define MEM (1024 * 1024)
#define BIG (32 * 1024 * 1024)

/* made by the reference implementation (libargon2 20190702, argon2id_hash_encoded), password
 * "secret" */
static const char *const reference[] = {
    "$argon2id$v=19$m=1024,t=2,p=2$eXViaW5wMnNhbHRzYWx0IQ$ip/+qdm6SS/"
    "m1aBVvphWUauhZpMnF5laWR98sTKt6JE",
    "$argon2id$v=19$m=1018,t=1,p=3$eXViaW5wMnNhbHRzYWx0IQ$"
    "vVgrtyBjDethmG2pu35e35Qswg6rJEKYyAbUCdNmIKU",
};

static long faults_of_this_thread(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_THREAD, &ru) == 0 ? ru.ru_minflt + ru.ru_majflt : -1;
}

static int all_zero(const unsigned char *p, size_t n)
{
    unsigned char acc = 0;
    for (size_t i = 0; i < n; i++)
        acc |= p[i];
    return acc == 0;
}

/* Hashes of libsodium at several limits, the reference ones, right and wrong passwords. */
static void limits(struct pwcheck_arena *a)
{
    const struct {
        unsigned long long ops;
        size_t mem;
    } at[] = {
        {1, crypto_pwhash_MEMLIMIT_MIN}, {1, MEM}, {2, MEM}, {3, 1023 * 1024}, {4, 256 * 1024}};
    const char *why = NULL;
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char hash[crypto_pwhash_STRBYTES];
        unsigned long before = a->lent;
        if (crypto_pwhash_str(hash, "pass word", 9, at[i].ops, at[i].mem) != 0) {
            CHECK(0, "crypto_pwhash_str t=%llu m=%zu", at[i].ops, at[i].mem);
            continue;
        }
        CHECK(pwcheck_verify(a, hash, "pass word", 9, &why) == 1 && a->lent == before + 1,
              "t=%llu m=%zu KiB: the right password matches, computed in the arena", at[i].ops,
              at[i].mem / 1024);
        CHECK(pwcheck_verify(a, hash, "pass-word", 9, &why) == 0 && why == NULL,
              "t=%llu m=%zu KiB: a wrong one does not", at[i].ops, at[i].mem / 1024);
    }
    for (size_t i = 0; i < sizeof reference / sizeof reference[0]; i++) {
        unsigned long before = a->lent;
        CHECK(pwcheck_verify(a, reference[i], "secret", 6, &why) == 1 && a->lent == before + 1,
              "reference hash %zu (p>1) matches, computed in the arena", i);
        CHECK(pwcheck_verify(a, reference[i], "secreT", 6, &why) == 0,
              "reference hash %zu, a wrong password does not", i);
    }
}

/* The second check of a 32 MiB hash faults in nothing: libsodium computed in the arena. (Its
 * own fresh mapping faults in every page again: 8192, or 16 with transparent huge pages.) */
static void reuse(void)
{
    char hash[crypto_pwhash_STRBYTES];
    const char *why = NULL;
    struct pwcheck_arena a;
    if (crypto_pwhash_str(hash, "secret", 6, 1, BIG) != 0) {
        CHECK(0, "crypto_pwhash_str 32 MiB");
        return;
    }
    pwcheck_arena_init(&a, BIG);
    long f0 = faults_of_this_thread();
    int first = pwcheck_verify(&a, hash, "secret", 6, &why);
    long f1 = faults_of_this_thread();
    unsigned char *mem = a.mem;
    int second = pwcheck_verify(&a, hash, "secret", 6, &why);
    long f2 = faults_of_this_thread();
    CHECK(first == 1 && second == 1 && a.mem == mem && a.lent == 2,
          "two checks of a 32 MiB hash, both in the same arena");
    CHECK(f1 - f0 >= 16 && f2 - f1 <= (f1 - f0) / 4,
          "the first check faulted the arena in (%ld faults), the second nothing (%ld)", f1 - f0,
          f2 - f1);
    CHECK(mem != NULL && all_zero(mem, BIG), "the arena is wiped after the check");
    pwcheck_arena_free(&a);
    CHECK(a.mem == NULL, "freed, the arena is unmapped");
    CHECK(pwcheck_verify(&a, hash, "secret", 6, &why) == 1 && a.mem != NULL && a.lent == 3,
          "the next check maps it again");
    pwcheck_arena_free(&a);
}

int main(void)
{
    char hash[crypto_pwhash_STRBYTES], big[crypto_pwhash_STRBYTES];
    const char *why = NULL;
    struct pwcheck_arena a;
    if (sodium_init() < 0 || crypto_pwhash_str(hash, "secret", 6, 1, MEM) != 0 ||
        crypto_pwhash_str(big, "secret", 6, 1, 2 * MEM) != 0)
        return 1;
    pwcheck_arena_init(&a, MEM);
    CHECK(a.mem == NULL, "the arena is mapped on first use only");
    CHECK(pwcheck_verify(&a, hash, "secret", 6, &why) == 1, "the right password matches");
    unsigned char *mem = a.mem;
    CHECK(mem != NULL, "the first check mapped the arena");
    CHECK(pwcheck_verify(&a, hash, "secreT", 6, &why) == 0, "a wrong password does not");
    CHECK(pwcheck_verify(&a, hash, "secret", 5, &why) == 0, "nor a prefix of it");
    CHECK(pwcheck_verify(&a, hash, "", 0, &why) == 0, "nor the empty password");
    int same = 1;
    for (int i = 0; i < 5; i++)
        same &= pwcheck_verify(&a, hash, "secret", 6, &why) == 1 && a.mem == mem;
    CHECK(same, "later checks reuse the same memory");
    limits(&a);
    unsigned long lent = a.lent;
    CHECK(pwcheck_verify(&a, big, "secret", 6, &why) == -1 && strstr(why, "more memory") &&
              a.lent == lent,
          "a hash needing more than the arena is refused, not computed (%s)", why ? why : "");
    const char *bad[] = {"",
                         "$argon2i$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=16$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0",
                         "$argon2id$v=19$m=99999999999,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2g",
                         "$argon2id$v=19$m=1024,t=1,p=1$!!!$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=0,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1,p=0$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=7,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaGhhc2hoYXNoaGFzaA",
                         "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA",
                         "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA$"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(pwcheck_verify(&a, bad[i], "secret", 6, &why) == -1 && a.lent == lent,
              "malformed hash %zu refused", i);
    pwcheck_arena_free(&a);
    reuse();
    return tap_done();
}
