/*
 * test-srs: lib/srs. Round trips (SRS0, SRS1 of another forwarder's SRS0, SRS1 of an SRS1),
 * an address lower- or upper-cased on the way, a tampered hash, timestamp or address, expiry
 * (and the 1024-day wrap), results over the RFC 5321 limits, key rotation, and the secret
 * file (missing, too open, too short, comments). It never touches the network.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srs.h"
#include "tap.h"
#include "util.h"

#define DAY 86400
static const time_t t0 = (time_t)20000 * DAY + 3600; /* some day in 2024 */

static void setup(struct srs *s, const char *domain)
{
    srs_init(s, domain, 21);
    srs_add_secret(s, "first secret for the tests", 26);
}

/* The local part of an address (in place). */
static char *local_of(char *address)
{
    char *at = strrchr(address, '@');
    if (at != NULL)
        *at = '\0';
    return address;
}

static void test_round_trip(void)
{
    struct srs s;
    char out[ADDR_SIZE], back[ADDR_SIZE], tmp[ADDR_SIZE];
    setup(&s, "Fwd.Example");
    CHECK(srs_forward(&s, "Alice@example.org", t0, out, sizeof out) == SRS_OK, "forward: %s", out);
    CHECK(strncmp(out, "SRS0=", 5) == 0 && strstr(out, "=example.org=Alice@fwd.example") != NULL,
          "SRS0=HHH=TT=domain=local@our domain, local part as written: %s", out);
    str_copy(tmp, sizeof tmp, out);
    CHECK(srs_reverse(&s, local_of(tmp), t0, back, sizeof back) == SRS_OK, "reverse");
    CHECK_STR(back, "Alice@example.org", "round trip gives the original sender");
    CHECK(srs_reverse(&s, local_of(tmp), t0 + 21 * DAY, back, sizeof back) == SRS_OK,
          "still valid after max_age days");

    str_copy(tmp, sizeof tmp, out);
    str_lower(tmp);
    CHECK(srs_reverse(&s, local_of(tmp), t0, back, sizeof back) == SRS_OK, "lower-cased: valid");
    CHECK_STR(back, "alice@example.org", "lower-cased gives the lower-cased sender");
    str_copy(tmp, sizeof tmp, out);
    for (char *p = tmp; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    CHECK(srs_reverse(&s, local_of(tmp), t0, back, sizeof back) == SRS_OK, "upper-cased: valid");
    CHECK(srs_is_srs("srs0=x") && srs_is_srs("SRS1+x") && !srs_is_srs("SRS2=x") &&
              !srs_is_srs("SRS0") && !srs_is_srs("alice"),
          "srs_is_srs");
    srs_clear(&s);
    CHECK(s.n_keys == 0 && srs_forward(&s, "a@b.test", t0, out, sizeof out) == SRS_SYNTAX,
          "no key: no rewriting");
}

/* Changes one character of the part after `after` fields of out's local part. */
static void tamper(char *local, int field)
{
    char *p = local + 5;
    for (int i = 0; i < field; i++)
        p = strchr(p, '=') + 1;
    *p = *p == 'A' || *p == 'a' ? 'B' : *p == 'e' ? 'f' : 'A';
}

static void test_tampered(void)
{
    struct srs s, other;
    char out[ADDR_SIZE], back[ADDR_SIZE], tmp[ADDR_SIZE];
    setup(&s, "fwd.example");
    srs_forward(&s, "bob@example.org", t0, out, sizeof out);
    const char *what[] = {"hash", "timestamp", "domain", "local part"};
    for (int f = 0; f < 4; f++) {
        str_copy(tmp, sizeof tmp, out);
        tamper(local_of(tmp), f);
        int r = srs_reverse(&s, tmp, t0, back, sizeof back);
        CHECK(r == SRS_BAD_HASH && back[0] == '\0', "a changed %s is refused (%s: %s)", what[f],
              tmp, srs_error_text(r));
    }
    srs_init(&other, "fwd.example", 21);
    srs_add_secret(&other, "another secret of the same site", 31);
    str_copy(tmp, sizeof tmp, out);
    CHECK(srs_reverse(&other, local_of(tmp), t0, back, sizeof back) == SRS_BAD_HASH,
          "another key's address is refused");
    const char *bad[] = {"SRS0=",
                         "SRS0==AA=x.test=a",
                         "SRS0=ABCDEF=A=x.test=a",
                         "SRS0=ABCDEF=AA=x.test=",
                         "SRS0=ABCDEF=A1=x.test=a",
                         "SRS1=ABCDEF=x=a",
                         "SRS0=ABCDEF=AA=x.test"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        CHECK(srs_reverse(&s, bad[i], t0, back, sizeof back) == SRS_SYNTAX, "malformed %s", bad[i]);
    CHECK(srs_reverse(&s, "alice", t0, back, sizeof back) == SRS_NOT_SRS, "not SRS");
}

static void test_expired(void)
{
    struct srs s;
    char out[ADDR_SIZE], back[ADDR_SIZE];
    setup(&s, "fwd.example");
    srs_forward(&s, "carol@example.org", t0, out, sizeof out);
    local_of(out);
    CHECK(srs_reverse(&s, out, t0 + 22 * DAY, back, sizeof back) == SRS_EXPIRED,
          "expired after max_age + 1 days");
    CHECK(srs_reverse(&s, out, t0 - DAY, back, sizeof back) == SRS_EXPIRED,
          "a timestamp in the future is refused");
    CHECK(srs_reverse(&s, out, t0 + 1024 * DAY + 22 * DAY, back, sizeof back) == SRS_EXPIRED,
          "expired a wrap (1024 days) later as well");
    /* Across the wrap: signed on day 1023, checked on day 1024 + 3 (mod 1024 = 3). */
    time_t late = (time_t)(1024 * 20 + 1023) * DAY;
    char out2[ADDR_SIZE];
    srs_forward(&s, "carol@example.org", late, out2, sizeof out2);
    local_of(out2);
    CHECK(srs_reverse(&s, out2, late + 4 * DAY, back, sizeof back) == SRS_OK,
          "valid across the timestamp wrap");
}

static void test_too_long(void)
{
    struct srs s;
    char out[ADDR_SIZE], sender[ADDR_SIZE];
    setup(&s, "fwd.example");
    /* "SRS0=" 6 "=" 2 "=" domain "=" local: 16 octets besides domain and local. */
    snprintf(sender, sizeof sender, "%s@%s", "abcdefghijklmnopqrstuvwx",
             "abcdefghijklmnopqrstuv.x");
    CHECK(srs_forward(&s, sender, t0, out, sizeof out) == SRS_OK && strlen(local_of(out)) == 64,
          "a 64-octet SRS local part is made");
    snprintf(sender, sizeof sender, "%s@%s", "abcdefghijklmnopqrstuvwxy",
             "abcdefghijklmnopqrstuv.x");
    CHECK(srs_forward(&s, sender, t0, out, sizeof out) == SRS_TOO_LONG && out[0] == '\0',
          "a 65-octet one is refused, nothing written");
    char big[ADDR_DOMAIN_MAX + 1];
    memset(big, 'a', 240);
    memcpy(big + 240, ".test", 6);
    srs_init(&s, big, 21);
    srs_add_secret(&s, "first secret for the tests", 26);
    CHECK(srs_forward(&s, "a@b.test", t0, out, sizeof out) == SRS_TOO_LONG,
          "a path over 256 octets is refused");
    setup(&s, "fwd.example");
    CHECK(srs_forward(&s, "\"a b\"@example.org", t0, out, sizeof out) == SRS_SYNTAX,
          "a quoted local part is not rewritten");
    CHECK(srs_forward(&s, "a@[192.0.2.1]", t0, out, sizeof out) == SRS_SYNTAX,
          "an address literal is not rewritten");
    CHECK(srs_forward(&s, "", t0, out, sizeof out) == SRS_SYNTAX, "<> is not rewritten");
}

static void test_srs1(void)
{
    struct srs a, b, c;
    char s0[ADDR_SIZE], s1[ADDR_SIZE], s1b[ADDR_SIZE], back[ADDR_SIZE], tmp[ADDR_SIZE];
    srs_init(&a, "fwd1.test", 21);
    srs_add_secret(&a, "secret of the first forwarder", 29);
    srs_init(&b, "fwd2.test", 21);
    srs_add_secret(&b, "secret of the second forwarder", 30);
    srs_init(&c, "fwd3.test", 21);
    srs_add_secret(&c, "secret of the third forwarder!", 30);
    srs_forward(&a, "dave@example.org", t0, s0, sizeof s0);
    CHECK(srs_forward(&b, s0, t0, s1, sizeof s1) == SRS_OK, "SRS1 of an SRS0: %s", s1);
    char want[2 * ADDR_SIZE];
    snprintf(want, sizeof want, "=fwd1.test=%s", s0 + 4);
    *strrchr(want, '@') = '\0';
    CHECK(strncmp(s1, "SRS1=", 5) == 0 && strstr(s1, want) != NULL &&
              strstr(s1, "@fwd2.test") != NULL,
          "SRS1=HHH=fwd1==HHH=TT=domain=local@fwd2");
    str_copy(tmp, sizeof tmp, s1);
    CHECK(srs_reverse(&b, local_of(tmp), t0 + 400 * DAY, back, sizeof back) == SRS_OK,
          "SRS1 reverses (no timestamp of its own)");
    CHECK_STR(back, s0, "to the first forwarder's SRS0 address");
    str_copy(tmp, sizeof tmp, back);
    CHECK(srs_reverse(&a, local_of(tmp), t0, back, sizeof back) == SRS_OK &&
              strcmp(back, "dave@example.org") == 0,
          "which the first forwarder reverses to the sender");
    CHECK(srs_forward(&c, s1, t0, s1b, sizeof s1b) == SRS_OK && strstr(s1b, want) != NULL &&
              strstr(s1b, "@fwd3.test") != NULL && strncmp(s1b, "SRS1=", 5) == 0,
          "SRS1 of an SRS1 keeps the first forwarder: %s", s1b);
    str_copy(tmp, sizeof tmp, s1b);
    CHECK(srs_reverse(&c, local_of(tmp), t0, back, sizeof back) == SRS_OK && strcmp(back, s0) == 0,
          "and reverses to the same SRS0");
    str_copy(tmp, sizeof tmp, s1b);
    tamper(local_of(tmp), 1);
    CHECK(srs_reverse(&c, tmp, t0, back, sizeof back) == SRS_BAD_HASH,
          "an SRS1 with another first forwarder is refused");
    str_copy(tmp, sizeof tmp, s1);
    CHECK(srs_reverse(&c, local_of(tmp), t0, back, sizeof back) == SRS_BAD_HASH,
          "another forwarder's SRS1 is not ours");
    /* found by fuzz-srs: an "SRS1" whose rest has no separator cannot be kept as SRS1 */
    const char *odd = "SRS1=AB=f.t=hh=x@f2.test";
    CHECK(srs_forward(&c, odd, t0, s1b, sizeof s1b) == SRS_OK && strncmp(s1b, "SRS0=", 5) == 0,
          "an SRS1 of another shape is rewritten as any sender: %s", s1b);
    str_copy(tmp, sizeof tmp, s1b);
    CHECK(srs_reverse(&c, local_of(tmp), t0, back, sizeof back) == SRS_OK && strcmp(back, odd) == 0,
          "and reverses to it");
}

static void test_rotation(void)
{
    struct srs old, both;
    char out[ADDR_SIZE], back[ADDR_SIZE], fresh[ADDR_SIZE];
    srs_init(&old, "fwd.example", 21);
    srs_add_secret(&old, "the old secret, signing before", 30);
    srs_forward(&old, "erin@example.org", t0, out, sizeof out);
    srs_init(&both, "fwd.example", 21);
    srs_add_secret(&both, "the new secret, signing from now", 32);
    srs_add_secret(&both, "the old secret, signing before", 30);
    CHECK(srs_reverse(&both, local_of(out), t0, back, sizeof back) == SRS_OK,
          "an address signed with the old secret is still valid");
    srs_forward(&both, "erin@example.org", t0, fresh, sizeof fresh);
    CHECK(srs_reverse(&old, local_of(fresh), t0, back, sizeof back) == SRS_BAD_HASH,
          "new addresses are signed with the first secret");
    CHECK(srs_add_secret(&both, "short", 5) != 0, "a secret under 16 characters is refused");
}

static void write_secret(const char *path, const char *text, mode_t mode)
{
    unlink(path);
    FILE *f = fopen(path, "w");
    if (f != NULL) {
        fputs(text, f);
        fclose(f);
    }
    chmod(path, mode);
}

static void test_file(void)
{
    char dir[] = "/tmp/test-srs-XXXXXX", path[300], err[400];
    struct srs s, t;
    if (mkdtemp(dir) == NULL)
        return;
    snprintf(path, sizeof path, "%s/srs-secret", dir);
    srs_init(&s, "fwd.example", 21);
    CHECK(srs_load(&s, path, err, sizeof err) != 0 && errno == ENOENT, "missing: ENOENT (%s)", err);
    write_secret(path, "# new first\nthe newer secret line\n\nthe old secret, signing before\r\n",
                 0600);
    CHECK(srs_load(&s, path, err, sizeof err) == 0 && s.n_keys == 2, "two secrets, a comment");
    srs_init(&t, "fwd.example", 21);
    srs_add_secret(&t, "the old secret, signing before", 30);
    char out[ADDR_SIZE], back[ADDR_SIZE];
    srs_forward(&t, "f@example.org", t0, out, sizeof out);
    CHECK(srs_reverse(&s, local_of(out), t0, back, sizeof back) == SRS_OK,
          "the second line verifies (CR and trailing blanks dropped)");
    chmod(path, 0640);
    srs_init(&s, "fwd.example", 21);
    CHECK(srs_load(&s, path, err, sizeof err) == 0, "0640 is fine");
    chmod(path, 0644);
    srs_init(&s, "fwd.example", 21);
    CHECK(srs_load(&s, path, err, sizeof err) != 0 && strstr(err, "mode 0644") && s.n_keys == 0,
          "0644 is refused: %s", err);
    chmod(path, 0660);
    CHECK(srs_load(&s, path, err, sizeof err) != 0, "group-writable is refused");
    write_secret(path, "too short\n", 0600);
    CHECK(srs_load(&s, path, err, sizeof err) != 0 && strstr(err, ":1: a secret needs"),
          "a short secret: %s", err);
    write_secret(path, "# nothing\n", 0600);
    CHECK(srs_load(&s, path, err, sizeof err) != 0 && strstr(err, "no secret"), "no secret: %s",
          err);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    test_round_trip();
    test_tampered();
    test_expired();
    test_too_long();
    test_srs1();
    test_rotation();
    test_file();
    return tap_done();
}
