/*
 * tests/fuzz/fuzz-sasl.c: lib/sasl's decoders on any client line (cut at a NUL). Checks:
 * PLAIN gives NUL-terminated non-empty fields within their sizes (and wipes on failure);
 * LOGIN's answer has the returned length and no NUL; base64 decoded then encoded then
 * decoded gives the same octets.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "sasl.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = '\0';
    size_t len = strlen(s);
    struct sasl_creds c;
    memset(&c, 'x', sizeof c);
    if (sasl_plain_decode(s, &c) == 0) {
        if (strlen(c.authcid) == 0 || strlen(c.authcid) >= SASL_NAME_SIZE ||
            strlen(c.authzid) >= SASL_NAME_SIZE || c.passwd_len == 0 ||
            c.passwd_len >= SASL_PASSWORD_SIZE || c.passwd[c.passwd_len] != '\0')
            fuzz_fail("PLAIN fields out of bounds", s, len);
    } else if (c.authcid[0] != '\0' || c.passwd[0] != '\0' || c.passwd_len != 0) {
        fuzz_fail("PLAIN failure did not wipe", s, len);
    }
    sasl_creds_wipe(&c);
    char login[SASL_NAME_SIZE];
    long n = sasl_login_decode(s, login, sizeof login);
    if (n >= 0 && ((size_t)n >= sizeof login || strlen(login) != (size_t)n))
        fuzz_fail("LOGIN length wrong", s, len);
    unsigned char raw[4096], raw2[4096];
    char enc[8192];
    long r = sasl_b64_decode(s, raw, sizeof raw);
    if (r > 0) {
        if (sasl_b64_encode(enc, sizeof enc, raw, (size_t)r) != 0)
            fuzz_fail("cannot encode what was decoded", s, len);
        long r2 = sasl_b64_decode(enc, raw2, sizeof raw2);
        if (r2 != r || memcmp(raw, raw2, (size_t)r) != 0)
            fuzz_fail("base64 round trip differs", s, len);
    }
    (void)sasl_is_cancel(s);
    free(s);
    return 0;
}
