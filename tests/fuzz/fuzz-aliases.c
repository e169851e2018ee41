/*
 * tests/fuzz/fuzz-aliases.c: lib/aliases on any aliases file. The input is written to a
 * temporary file and loaded; when it loads, every alias is expanded and its owner looked up,
 * and so are a few addresses that are no alias. Checks: results are within
 * ALIASES_MAX_TARGETS, each a NUL-terminated mailbox with an '@' and a lower-case domain;
 * aliases_check (yubin-check's mode) reports errors exactly when aliases_load refuses.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aliases.h"
#include "fuzz.h"

static struct fuzz_site site;
static char path[400];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_site_make(&site, NULL);
    snprintf(path, sizeof path, "%s/aliases.fuzz", site.scratch);
    return 0;
}

static void expand(const struct aliases *al, const char *address)
{
    struct aliases_result r;
    char owner[ADDR_SIZE + 8];
    memset(&r, 0, sizeof r);
    int st = aliases_expand(al, address, &r);
    if (st == ALIASES_EXPANDED) {
        if (r.n_targets > ALIASES_MAX_TARGETS)
            fuzz_fail("too many targets", address, strlen(address));
        for (size_t i = 0; i < r.n_targets; i++) {
            const char *t = r.targets[i], *at = memchr(t, '@', ADDR_SIZE);
            if (strnlen(t, ADDR_SIZE) == ADDR_SIZE || at == NULL)
                fuzz_fail("bad target", address, strlen(address));
            for (const char *p = strrchr(t, '@'); *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    fuzz_fail("target domain not lower case", t, strlen(t));
        }
    } else if (st != ALIASES_NOT_ALIAS && st != ALIASES_TOO_DEEP && st != ALIASES_TOO_MANY &&
               st != ALIASES_NOMEM) {
        fuzz_fail("unknown status", address, strlen(address));
    }
    aliases_result_free(&r);
    if (aliases_owner(al, address, owner, sizeof owner) == 1 && strlen(owner) >= sizeof owner)
        fuzz_fail("owner too long", owner, sizeof owner);
}

static void count_report(void *arg, const char *msg)
{
    if (memchr(msg, '\0', 2000) == NULL)
        fuzz_fail("report not terminated", NULL, 0);
    (*(int *)arg)++;
}

/* aliases_check (yubin-check) agrees with aliases_load: no error exactly when it loads, and
 * every entry it keeps is found by its name and walks like it expands. */
static void check_mode(int loaded)
{
    struct aliases al;
    struct aliases_result r;
    int reports = 0;
    int n = aliases_check(&al, path, count_report, &reports);
    if ((n == 0) != loaded || (n > 0 && reports != n))
        fuzz_fail("aliases_check and aliases_load disagree", NULL, 0);
    for (size_t i = 0; n >= 0 && i < al.n_entries && i < 50; i++) {
        if (aliases_find(&al, al.entries[i].name) == NULL)
            fuzz_fail("a kept alias is not found", al.entries[i].name, strlen(al.entries[i].name));
        aliases_walk(&al, al.entries[i].name, NULL, NULL, &r);
        aliases_result_free(&r);
    }
    aliases_free(&al);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct aliases al;
    char err[600];
    uint64_t fds = fuzz_open_fds();
    memset(&al, 0, sizeof al);
    fuzz_write_file(path, data, size);
    int loaded = aliases_load(&al, path, err, sizeof err) == 0;
    check_mode(loaded);
    if (loaded) {
        for (size_t i = 0; i < al.n_entries && i < 200; i++) {
            if (aliases_find(&al, al.entries[i].name) == NULL)
                fuzz_fail("an alias is not found by its own name", al.entries[i].name,
                          strlen(al.entries[i].name));
            expand(&al, al.entries[i].name);
        }
        expand(&al, "nobody@example.test");
        expand(&al, "");
        expand(&al, "TEAM@EXAMPLE.TEST");
    } else if (memchr(err, '\0', sizeof err) == NULL) {
        fuzz_fail("error text not terminated", NULL, 0);
    }
    aliases_free(&al);
    fuzz_check_fds(fds, "aliases");
    return 0;
}
