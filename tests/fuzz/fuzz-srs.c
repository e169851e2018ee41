/*
 * tests/fuzz/fuzz-srs.c: lib/srs on any string (cut at a NUL), as RCPT TO and MAIL FROM give
 * it. The first octet picks what the rest is: a local part to reverse, or a sender to rewrite.
 * Checks: a reverse that succeeds gives a bounded "local@domain"; a rewrite that succeeds
 * gives a mailbox within the RFC 5321 limits that lib/addr takes, which reverses (as written,
 * lower-cased, upper-cased) to the sender (an SRS1 to the first forwarder's SRS0 address);
 * a day later it still does, and max_age + 1 days later it is expired.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "addr.h"
#include "fuzz.h"
#include "srs.h"
#include "util.h"

static struct srs s;
static const time_t now = (time_t)20000 * 86400 + 1234;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    srs_init(&s, "fwd.example.test", 21);
    srs_add_secret(&s, "the fuzzing secret of fuzz-srs", 30);
    return 0;
}

static void check_reverse(const char *local, const char *in, size_t len)
{
    char out[ADDR_SIZE];
    enum srs_result r = srs_reverse(&s, local, now, out, sizeof out);
    if (r != SRS_OK && out[0] != '\0')
        fuzz_fail("a refused reverse left an address", in, len);
    if (r == SRS_OK && (strlen(out) >= ADDR_SIZE || strchr(out, '@') == NULL))
        fuzz_fail("a reverse gave no address", in, len);
    if (srs_error_text(r) == NULL)
        fuzz_fail("no error text", in, len);
}

/* out (an SRS address of ours) reverses to want at t. */
static void round_trip(const char *out, const char *want, time_t t, const char *in, size_t len)
{
    char local[ADDR_SIZE], back[ADDR_SIZE];
    str_copy(local, sizeof local, out);
    *strrchr(local, '@') = '\0';
    for (int pass = 0; pass < 3; pass++) {
        for (char *p = local; pass > 0 && *p; p++)
            *p = pass == 1 ? (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p)
                           : (char)(*p >= 'a' && *p <= 'z' ? *p - 'a' + 'A' : *p);
        if (srs_reverse(&s, local, t, back, sizeof back) != SRS_OK || !str_ieq(back, want))
            fuzz_fail("a rewritten sender does not reverse to it", in, len);
    }
}

static void check_forward(const char *sender, const char *in, size_t len)
{
    char out[ADDR_SIZE], local[ADDR_SIZE];
    struct addr a, o;
    if (srs_forward(&s, sender, now, out, sizeof out) != SRS_OK)
        return;
    if (addr_parse_mailbox(out, &o) != ADDR_OK || strlen(o.local) > ADDR_LOCAL_MAX ||
        strlen(out) > ADDR_PATH_MAX - 2 || strcmp(o.domain, s.domain) != 0)
        fuzz_fail("a rewritten sender over the limits or not ours", in, len);
    if (addr_parse_mailbox(sender, &a) != ADDR_OK)
        fuzz_fail("a sender lib/addr refuses was rewritten", in, len);
    if (strncmp(out, "SRS0=", 5) == 0) {
        round_trip(out, a.text, now, in, len);
        round_trip(out, a.text, now + 86400, in, len);
        str_copy(local, sizeof local, out);
        *strrchr(local, '@') = '\0';
        char back[ADDR_SIZE];
        if (srs_reverse(&s, local, now + 22 * 86400, back, sizeof back) != SRS_EXPIRED)
            fuzz_fail("an SRS0 address does not expire", in, len);
    } else if (strncmp(out, "SRS1=", 5) != 0 || !srs_is_srs(a.local)) {
        fuzz_fail("a rewrite that is neither SRS0 nor SRS1 of an SRS address", in, len);
    } else if (a.local[3] == '0') {
        char want[2 * ADDR_SIZE];
        if (str_format(want, sizeof want, "SRS0%s@%s", a.local + 4, a.domain) < 0)
            fuzz_fail("no room", in, len);
        round_trip(out, want, now + 400 * 86400, in, len); /* SRS1 has no age of its own */
    } else {
        char back[ADDR_SIZE];
        str_copy(local, sizeof local, out);
        *strrchr(local, '@') = '\0';
        if (srs_reverse(&s, local, now, back, sizeof back) != SRS_OK)
            fuzz_fail("an SRS1 of an SRS1 does not reverse", in, len);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *str = fuzz_string_after_first(data, size);
    if (str == NULL)
        return 0;
    size_t len = strlen(str);
    if (data[0] & 1)
        check_forward(str, str, len);
    else
        check_reverse(str, str, len);
    free(str);
    return 0;
}
