/*
 * sasl: SASL PLAIN and LOGIN decoding with libsodium's base64 (see sasl.h). It never keeps a
 * decoded secret in a buffer it does not wipe, and never accepts a field it had to cut.
 */
#include "config.h"

#include <string.h>

#include <sodium.h>

#include "sasl.h"
#include "util.h"

int sasl_is_cancel(const char *line)
{
    return strcmp(line, "*") == 0;
}

long sasl_b64_decode(const char *in, unsigned char *out, size_t outsize)
{
    size_t len = strlen(in), bin_len = 0;
    const char *end = NULL;
    if (strcmp(in, "=") == 0)
        return 0;
    if (len == 0 || len % 4 != 0 || len / 4 * 3 > outsize + 2)
        return -1;
    if (sodium_base642bin(out, outsize, in, len, NULL, &bin_len, &end,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        end != in + len)
        return -1;
    return (long)bin_len;
}

int sasl_b64_encode(char *out, size_t outsize, const unsigned char *in, size_t len)
{
    if (outsize < sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL))
        return -1;
    sodium_bin2base64(out, outsize, in, len, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* Copies the field [p, p+len) into dst, refusing one that does not fit. */
static int field(char *dst, size_t size, const unsigned char *p, size_t len)
{
    return str_copy_n(dst, size, (const char *)p, len);
}

int sasl_plain_decode(const char *b64, struct sasl_creds *c)
{
    unsigned char buf[SASL_NAME_SIZE * 2 + SASL_PASSWORD_SIZE + 8];
    memset(c, 0, sizeof *c);
    long n = sasl_b64_decode(b64, buf, sizeof buf);
    int rc = -1;
    const unsigned char *nul1 = n > 0 ? memchr(buf, '\0', (size_t)n) : NULL;
    const unsigned char *nul2 =
        nul1 != NULL ? memchr(nul1 + 1, '\0', (size_t)(buf + n - (nul1 + 1))) : NULL;
    if (nul2 != NULL && memchr(nul2 + 1, '\0', (size_t)(buf + n - (nul2 + 1))) == NULL) {
        size_t pwlen = (size_t)(buf + n - (nul2 + 1));
        if (nul2 > nul1 + 1 && pwlen > 0 &&
            field(c->authzid, sizeof c->authzid, buf, (size_t)(nul1 - buf)) == 0 &&
            field(c->authcid, sizeof c->authcid, nul1 + 1, (size_t)(nul2 - nul1 - 1)) == 0 &&
            field(c->passwd, sizeof c->passwd, nul2 + 1, pwlen) == 0) {
            c->passwd_len = pwlen;
            rc = 0;
        }
    }
    sodium_memzero(buf, sizeof buf);
    if (rc != 0)
        sasl_creds_wipe(c);
    return rc;
}

long sasl_login_decode(const char *b64, char *out, size_t outsize)
{
    unsigned char buf[SASL_PASSWORD_SIZE + 8];
    long n = sasl_b64_decode(b64, buf, sizeof buf);
    long rc = -1;
    if (n >= 0 && memchr(buf, '\0', (size_t)n) == NULL &&
        str_copy_n(out, outsize, (const char *)buf, (size_t)n) == 0)
        rc = n;
    sodium_memzero(buf, sizeof buf);
    return rc;
}

void sasl_creds_wipe(struct sasl_creds *c)
{
    sodium_memzero(c, sizeof *c);
}
