/*
 * test-sasl: lib/sasl's PLAIN and LOGIN decoding and base64, with the malformed inputs a
 * hostile client could send. Pure functions: nothing on disk.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "sasl.h"
#include "tap.h"

/* base64 of len bytes of raw (which may hold NULs). */
static const char *b64(const char *raw, size_t len)
{
    static char out[4096];
    if (sasl_b64_encode(out, sizeof out, (const unsigned char *)raw, len) != 0)
        return "";
    return out;
}

static void test_plain(void)
{
    struct sasl_creds c;
    CHECK(sasl_plain_decode("AGRlbW9AZXhhbXBsZS50ZXN0AGRlbW8=", &c) == 0, "PLAIN decodes");
    CHECK_STR(c.authzid, "", "no authzid");
    CHECK_STR(c.authcid, "demo@example.test", "authcid");
    CHECK_STR(c.passwd, "demo", "password");
    CHECK(c.passwd_len == 4, "password length");
    CHECK(sasl_plain_decode(b64("admin\0user\0pa ss", 16), &c) == 0 &&
              strcmp(c.authzid, "admin") == 0 && strcmp(c.passwd, "pa ss") == 0,
          "authzid and a password with a space");
    sasl_creds_wipe(&c);
    CHECK(c.authcid[0] == '\0' && c.passwd[0] == '\0' && c.passwd_len == 0, "wipe clears");

    const struct {
        const char *raw;
        size_t len;
        const char *what;
    } bad[] = {
        {"user", 4, "no NUL"},
        {"\0user", 5, "one NUL"},
        {"\0user\0pw\0", 9, "three NULs"},
        {"\0\0pw", 4, "empty authcid"},
        {"\0user\0", 6, "empty password"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&c, 'x', sizeof c);
        CHECK(sasl_plain_decode(b64(bad[i].raw, bad[i].len), &c) == -1 && c.passwd[0] == '\0',
              "PLAIN refuses %s (and wipes)", bad[i].what);
    }
    CHECK(sasl_plain_decode("=", &c) == -1, "empty response refused");
    CHECK(sasl_plain_decode("", &c) == -1, "empty line refused");
    CHECK(sasl_plain_decode("!!!!", &c) == -1, "bad base64 refused");
    CHECK(sasl_plain_decode("AGRlbW8AZGVtbw", &c) == -1, "unpadded base64 refused");
    CHECK(sasl_plain_decode("AGRl bW8AZGVtbw==", &c) == -1, "white space refused");

    char big[2000];
    memset(big, 'a', sizeof big);
    big[0] = '\0';
    big[1] = 'u';
    big[2] = '\0';
    CHECK(sasl_plain_decode(b64(big, 1500), &c) == -1, "a password over 1023 bytes refused");
    CHECK(sasl_plain_decode(b64(big, 1000), &c) == 0 && c.passwd_len == 997,
          "a 997-byte password is fine");
}

static void test_login(void)
{
    char out[64];
    CHECK(sasl_login_decode("ZGVtb0BleGFtcGxlLnRlc3Q=", out, sizeof out) == 17 &&
              strcmp(out, "demo@example.test") == 0,
          "LOGIN user name");
    CHECK(sasl_login_decode("=", out, sizeof out) == 0 && out[0] == '\0', "empty answer");
    CHECK(sasl_login_decode(b64("a\0b", 3), out, sizeof out) == -1, "NUL inside refused");
    CHECK(sasl_login_decode(b64("0123456789", 10), out, 8) == -1, "too long refused");
    CHECK(sasl_login_decode("%%%%", out, sizeof out) == -1, "bad base64 refused");
    unsigned char raw[16];
    CHECK(sasl_b64_decode(SASL_LOGIN_USER_CHALLENGE, raw, sizeof raw) == 9 &&
              memcmp(raw, "Username:", 9) == 0,
          "the user challenge is Username:");
    CHECK(sasl_is_cancel("*") && !sasl_is_cancel("**") && !sasl_is_cancel(""), "cancel is *");
}

int main(void)
{
    if (sodium_init() < 0)
        return 99;
    test_plain();
    test_login();
    return tap_done();
}
