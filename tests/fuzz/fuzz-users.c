/*
 * tests/fuzz/fuzz-users.c: lib/users on any users file. The input is written to a temporary
 * file; every address users_each reports must be found by users_exists and users_lookup;
 * users_update then adds one address and removes another, and every other address must still
 * be there afterwards, with the same hash. No password is verified (a hash in the file may ask
 * for gigabytes: that file is the administrator's). No descriptor is left open.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "users.h"

#define MAX_SEEN 32

static struct fuzz_site site;
static char path[400];

struct seen {
    char addr[MAX_SEEN][USERS_ADDRESS_SIZE];
    char hash[MAX_SEEN][USERS_HASH_SIZE];
    size_t n;
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_site_make(&site, NULL);
    snprintf(path, sizeof path, "%s/users.fuzz", site.scratch);
    return 0;
}

static int collect(const char *address, const char *hash, void *ctx)
{
    struct seen *s = ctx;
    if (strlen(address) >= USERS_ADDRESS_SIZE || strlen(hash) >= USERS_HASH_SIZE)
        return 0; /* such a line never logs in (users_lookup skips it) */
    for (size_t i = 0; i < s->n; i++)
        if (strcasecmp(s->addr[i], address) == 0)
            return 0; /* the first line for an address is the one that counts */
    if (s->n < MAX_SEEN) {
        memcpy(s->addr[s->n], address, strlen(address) + 1);
        memcpy(s->hash[s->n++], hash, strlen(hash) + 1);
    }
    (void)users_needs_rehash(hash, 1, 8192);
    return 0;
}

static void check_all(const struct seen *s, const char *skip, const char *data, size_t size)
{
    char hash[USERS_HASH_SIZE];
    for (size_t i = 0; i < s->n; i++) {
        if (skip != NULL && strcasecmp(s->addr[i], skip) == 0)
            continue;
        if (users_exists(path, s->addr[i]) != 1 ||
            users_lookup(path, s->addr[i], hash, sizeof hash) != 1 || strcmp(hash, s->hash[i]) != 0)
            fuzz_fail("an address of the users file is lost or changed", data, size);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct seen before;
    char err[300];
    const char *why;
    uint64_t fds = fuzz_open_fds();
    fuzz_write_file(path, data, size);
    memset(&before, 0, sizeof before);
    if (users_each(path, collect, &before) != 0)
        fuzz_fail("users_each failed on a readable file", data, size);
    check_all(&before, NULL, (const char *)data, size);
    const char *hash = "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";
    if (users_update(path, "new.one@example.test", hash, -1, err, sizeof err) == 1) {
        if (users_exists(path, "New.One@example.test") != 1)
            fuzz_fail("an added address is missing", data, size);
        check_all(&before, "new.one@example.test", (const char *)data, size);
    }
    if (before.n > 0 && users_address_ok(before.addr[0], &why) == 1 &&
        users_update(path, before.addr[0], NULL, -1, err, sizeof err) == 1) {
        if (users_exists(path, before.addr[0]) != 0)
            fuzz_fail("a removed address is still there", data, size);
    }
    fuzz_check_fds(fds, "users");
    return 0;
}
