/*
 * test-users: lib/users against real files in a scratch directory: lookups, argon2id hashing
 * and verification, the dummy verification of unknown users (timing), needs_rehash, address
 * checks and the atomic rewrite keeping the file's mode. It never touches a real users file.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "tap.h"
#include "tmpdir.h"
#include "users.h"

#define OPS 1
#define MEM 8192

static char dir[] = "/tmp/test-users-XXXXXX";
static char file[256];

static void write_file(const char *text)
{
    FILE *f = fopen(file, "w");
    fputs(text, f);
    fclose(f);
}

static char *read_file(void)
{
    static char buf[8192];
    FILE *f = fopen(file, "r");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    buf[n] = '\0';
    if (f)
        fclose(f);
    return buf;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double time_verify(const char *address, uint64_t ops, uint64_t mem)
{
    double start = now();
    users_verify(file, address, "not-the-password", 16, ops, mem);
    return now() - start;
}

/* Medians of 11 failed verifications each of a known and an unknown address, interleaved so
 * that load from other processes hits both alike. */
static void median_verify(uint64_t ops, uint64_t mem, double *known, double *unknown)
{
    double k[11], u[11];
    for (int i = 0; i < 11; i++) {
        k[i] = time_verify("known@example.test", ops, mem);
        u[i] = time_verify("unknown@example.test", ops, mem);
    }
    qsort(k, 11, sizeof k[0], cmp_double);
    qsort(u, 11, sizeof u[0], cmp_double);
    *known = k[5];
    *unknown = u[5];
}

static void test_hash_verify(void)
{
    char hash[USERS_HASH_SIZE], text[1024];
    CHECK(users_hash(hash, sizeof hash, "s3cret pass", 11, OPS, MEM) == 0, "hash made");
    CHECK(strncmp(hash, "$argon2id$", 10) == 0, "hash is argon2id: %s", hash);
    CHECK(users_hash(hash, 10, "x", 1, OPS, MEM) == -1, "hash refuses a small buffer");
    snprintf(text, sizeof text, "# a comment\nbob@example.test:%s\nDemo@Example.Test:%s\n",
             "$argon2id$v=19$m=8,t=1,p=1$AAAAAAAAAAAAAAAAAAAAAA$"
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
             hash);
    write_file(text);
    CHECK(users_verify(file, "demo@example.test", "s3cret pass", 11, OPS, MEM) == 1,
          "right password verifies (address case ignored)");
    CHECK(users_verify(file, "demo@example.test", "s3cret pas", 10, OPS, MEM) == 0,
          "wrong password fails");
    CHECK(users_verify(file, "demo@example.test", "s3cret pass", 10, OPS, MEM) == 0,
          "the length counts");
    CHECK(users_verify(file, "nobody@example.test", "s3cret pass", 11, OPS, MEM) == 0,
          "unknown user fails");
    CHECK(users_verify(file, "demo@example.tes", "s3cret pass", 11, OPS, MEM) == 0,
          "a prefix of an address is not the address");
    CHECK(users_exists(file, "BOB@example.test") == 1, "users_exists finds bob");
    CHECK(users_exists(file, "# a comment") == 0, "comments are not users");
    CHECK(users_lookup(file, "demo@example.test", text, sizeof text) == 1 &&
              strcmp(text, hash) == 0,
          "lookup returns the hash");
    CHECK(users_verify("/nonexistent/users", "demo@example.test", "x", 1, OPS, MEM) == 0,
          "a missing file has no users");
    CHECK(users_verify(dir, "demo@example.test", "x", 1, OPS, MEM) == -1,
          "an unreadable file is an error");
}

static void test_long_line(void)
{
    char text[10000];
    char hash[USERS_HASH_SIZE];
    users_hash(hash, sizeof hash, "pw", 2, OPS, MEM);
    memset(text, 'x', 6000);
    snprintf(text + 6000, sizeof text - 6000, "\nlong@example.test:%s\n", hash);
    memcpy(text, "long@example.test:", 18);
    write_file(text);
    CHECK(users_verify(file, "long@example.test", "pw", 2, OPS, MEM) == 1,
          "an over-long line is skipped whole, the next one still counts");
}

static void test_timing(void)
{
    /* Real limits (16 MiB) so the hash dominates; medians within a generous factor. */
    uint64_t ops = 2, mem = 16 << 20;
    char hash[USERS_HASH_SIZE], text[512];
    users_hash(hash, sizeof hash, "pw", 2, ops, mem);
    snprintf(text, sizeof text, "known@example.test:%s\n", hash);
    write_file(text);
    double known, unknown;
    median_verify(ops, mem, &known, &unknown);
    /* Without the dummy verification an unknown user takes microseconds: a factor of 100. */
    CHECK(unknown > known * 0.4 && unknown < known * 2.5,
          "unknown user costs the same as a known one (known %.1f ms, unknown %.1f ms)",
          known * 1000, unknown * 1000);
}

static void test_rehash(void)
{
    char hash[USERS_HASH_SIZE];
    users_hash(hash, sizeof hash, "pw", 2, OPS, MEM);
    CHECK(users_needs_rehash(hash, OPS, MEM) == 0, "same limits: no rehash");
    CHECK(users_needs_rehash(hash, 2, 65536 * 1024) == 1, "stronger limits: rehash");
    CHECK(users_needs_rehash("$2y$10$notargon", OPS, MEM) == 1, "not argon2id: rehash");
}

static void test_address(void)
{
    const char *why = NULL;
    CHECK(users_address_ok("demo@example.test", &why) == 1, "plain address ok");
    CHECK(users_address_ok("first.last+tag_x-y@mail.example.test", &why) == 1,
          "dots, plus, underscore, dash ok");
    const char *bad[] = {"demo",         "@example.test",   "demo@",         "de mo@example.test",
                         "de:mo@x.test", ".demo@x.test",    "demo.@x.test",  "de..mo@x.test",
                         "demo@x..test", "demo@-x.test",    "demo@x_y.test", "de/mo@x.test",
                         "demo@x.test.", "a@b@example.test"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why = NULL;
        CHECK(users_address_ok(bad[i], &why) == 0 && why != NULL, "refused '%s' (%s)", bad[i],
              why ? why : "?");
    }
}

static void test_update(void)
{
    char err[512];
    struct stat st;
    unlink(file);
    CHECK(users_update(file, "a@example.test", "HASH1", -1, err, sizeof err) == 1,
          "add to a missing file");
    CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0640, "new file is 0640");
    chmod(file, 0604);
    write_file("# keep me\na@example.test:HASH1\nb@example.test:HASH2\n");
    CHECK(users_update(file, "c@example.test", "HASH3", -1, err, sizeof err) == 1, "add c");
    CHECK_STR(read_file(),
              "# keep me\na@example.test:HASH1\nb@example.test:HASH2\nc@example.test:HASH3\n",
              "c appended, the rest kept");
    CHECK(users_update(file, "A@Example.test", "NEW", -1, err, sizeof err) == 1, "replace a");
    CHECK_STR(read_file(),
              "# keep me\nA@Example.test:NEW\nb@example.test:HASH2\nc@example.test:HASH3\n",
              "a replaced in place");
    CHECK(users_update(file, "b@example.test", NULL, -1, err, sizeof err) == 1, "remove b");
    CHECK_STR(read_file(), "# keep me\nA@Example.test:NEW\nc@example.test:HASH3\n", "b removed");
    CHECK(users_update(file, "zz@example.test", NULL, -1, err, sizeof err) == 0,
          "removing a missing user says so");
    CHECK(stat(file, &st) == 0 && (st.st_mode & 0777) == 0604, "mode kept across rewrites");
    CHECK(users_update("/nonexistent/dir/users", "a@example.test", "H", -1, err, sizeof err) ==
                  -1 &&
              strstr(err, "/nonexistent/dir/users") != NULL,
          "an error names the file: %s", err);
}

int main(void)
{
    if (sodium_init() < 0 || mkdtemp(dir) == NULL)
        return 99;
    snprintf(file, sizeof file, "%s/users", dir);
    test_hash_verify();
    test_long_line();
    test_rehash();
    test_address();
    test_update();
    test_timing();
    if (tmpdir_remove(dir) != 0)
        return 99;
    return tap_done();
}
