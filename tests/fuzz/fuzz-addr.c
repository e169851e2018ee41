/*
 * tests/fuzz/fuzz-addr.c: lib/addr on any string. The first octet picks the flags, the rest
 * (cut at a NUL) is parsed as a path and as a mailbox. Checks: a path accepted ends at its
 * '>' inside the string; the fields are NUL-terminated and within their limits; the domain is
 * lower case; a path accepted parses again, written back as "<text>", to the same address.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void check_fields(const struct addr *a, const char *in)
{
    if (strlen(a->local) > ADDR_LOCAL_MAX || strlen(a->domain) > ADDR_DOMAIN_MAX ||
        strlen(a->text) >= ADDR_SIZE)
        fuzz_fail("addr field over its limit", in, strlen(in));
    for (const char *p = a->domain; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            fuzz_fail("domain not lower case", in, strlen(in));
    for (const char *p = a->text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fuzz_fail("control or 8-bit octet accepted", in, strlen(in));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_string_after_first(data, size);
    if (s == NULL)
        return 0;
    int flags = data[0] & (ADDR_NULL_OK | ADDR_POSTMASTER_OK);
    size_t len = strlen(s);
    struct addr a, b;
    const char *end = NULL;
    if (addr_parse_path(s, flags, &a, &end) == ADDR_OK) {
        if (end == NULL || end <= s || end > s + len || end[-1] != '>')
            fuzz_fail("path end outside the path", s, len);
        check_fields(&a, s);
        if (!a.null) {
            char again[ADDR_SIZE + 2];
            const char *end2;
            snprintf(again, sizeof again, "<%s>", a.text);
            if (addr_parse_path(again, ADDR_POSTMASTER_OK, &b, &end2) != ADDR_OK ||
                strcmp(a.text, b.text) != 0 || *end2 != '\0')
                fuzz_fail("an accepted path does not parse again the same", s, len);
        }
    }
    if (addr_parse_mailbox(s, &a) == ADDR_OK)
        check_fields(&a, s);
    for (int r = ADDR_OK; r <= ADDR_ERR_DOMAIN_LONG + 1; r++)
        if (addr_error_text(r) == NULL)
            fuzz_fail("no error text", NULL, 0);
    free(s);
    return 0;
}
