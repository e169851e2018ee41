/*
 * pwcheck: argon2id verification in a kept arena (see pwcheck.h). libsodium maps and unmaps
 * its argon2 memory on every call, so each login would fault in 64 MiB afresh; the reference
 * implementation (libargon2) takes an allocator, which hands out the arena instead. Hashes
 * made by libsodium's crypto_pwhash_str are standard argon2id strings and verify the same.
 * It never allocates more than the arena for a hash, never logs and never keeps a password.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <argon2.h>
#include <sodium.h>

#include "pwcheck.h"

#define PWCHECK_SALT_MAX 64
#define PWCHECK_OUT_MAX 64

/* The arena of the verification running in this thread: libargon2's allocator callbacks
 * carry no context pointer. */
static _Thread_local struct pwcheck_arena *current;

void pwcheck_arena_init(struct pwcheck_arena *a, size_t size)
{
    a->mem = NULL;
    a->size = size;
}

void pwcheck_arena_free(struct pwcheck_arena *a)
{
    if (a->mem != NULL)
        munmap(a->mem, a->size);
    a->mem = NULL;
}

/* Maps the arena and touches every page once, asking for huge pages first (fewer faults and
 * TLB misses for argon2's random reads). 0 or -1. */
static int arena_map(struct pwcheck_arena *a)
{
    void *p = mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return -1;
#ifdef MADV_HUGEPAGE
    (void)madvise(p, a->size, MADV_HUGEPAGE);
#endif
#ifdef MADV_DONTDUMP
    (void)madvise(p, a->size, MADV_DONTDUMP); /* no hash memory in a core file */
#endif
    memset(p, 0, a->size);
    a->mem = p;
    return 0;
}

static int arena_take(uint8_t **memory, size_t bytes)
{
    if (current == NULL || bytes > current->size ||
        (current->mem == NULL && arena_map(current) != 0))
        return ARGON2_MEMORY_ALLOCATION_ERROR;
    *memory = current->mem;
    return ARGON2_OK;
}

static void arena_give_back(uint8_t *memory, size_t bytes)
{
    (void)memory; /* libargon2 has wiped it; the arena stays mapped and warm */
    (void)bytes;
}

/* Reads "name=<decimal>" at *p (then skips one sep). 0 or -1. */
static int field(const char **p, const char *name, char sep, uint32_t *out)
{
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || (*p)[n] != '=')
        return -1;
    const char *s = *p + n + 1;
    uint64_t v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++)
        if ((v = v * 10 + (uint64_t)(*s - '0')) > UINT32_MAX)
            return -1;
    if (*s != sep)
        return -1;
    *out = (uint32_t)v;
    *p = s + 1;
    return 0;
}

/* Base64 (no padding) from *p up to stop ('$' or NUL) into out. Its length, or -1. */
static long b64_field(const char **p, char stop, unsigned char *out, size_t size)
{
    const char *end = strchr(*p, stop);
    size_t len;
    if (end == NULL || end == *p)
        return -1;
    if (sodium_base642bin(out, size, *p, (size_t)(end - *p), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
        return -1;
    *p = *end == '\0' ? end : end + 1;
    return (long)len;
}

/* Splits an encoded hash into ctx (salt into salt, the expected digest into want). */
static int decode(const char *enc, argon2_context *ctx, unsigned char *salt, unsigned char *want,
                  size_t *want_len)
{
    const char *p = enc;
    uint32_t version;
    if (strncmp(p, "$argon2id$", 10) != 0)
        return -1;
    p += 10;
    if (field(&p, "v", '$', &version) != 0 || version != ARGON2_VERSION_13 ||
        field(&p, "m", ',', &ctx->m_cost) != 0 || field(&p, "t", ',', &ctx->t_cost) != 0 ||
        field(&p, "p", '$', &ctx->lanes) != 0)
        return -1;
    long salt_len = b64_field(&p, '$', salt, PWCHECK_SALT_MAX);
    long out_len = b64_field(&p, '\0', want, PWCHECK_OUT_MAX);
    if (salt_len < ARGON2_MIN_SALT_LENGTH || out_len < ARGON2_MIN_OUTLEN || *p != '\0')
        return -1;
    ctx->version = version;
    ctx->salt = salt;
    ctx->saltlen = (uint32_t)salt_len;
    ctx->outlen = (uint32_t)out_len;
    *want_len = (size_t)out_len;
    return 0;
}

int pwcheck_verify(struct pwcheck_arena *a, const char *encoded, const char *password, size_t pwlen,
                   const char **why)
{
    unsigned char salt[PWCHECK_SALT_MAX], want[PWCHECK_OUT_MAX], got[PWCHECK_OUT_MAX];
    argon2_context ctx;
    size_t want_len;
    memset(&ctx, 0, sizeof ctx);
    *why = "malformed argon2id hash";
    if (pwlen > UINT32_MAX || decode(encoded, &ctx, salt, want, &want_len) != 0)
        return -1;
    if ((uint64_t)ctx.m_cost * 1024 > a->size) {
        *why = "the hash needs more memory than pwhash_memlimit";
        return -1;
    }
    ctx.out = got;
    ctx.pwd = (uint8_t *)(uintptr_t)password;
    ctx.pwdlen = (uint32_t)pwlen;
    ctx.threads = 1; /* one verifying thread per arena; yubin-auth runs several */
    ctx.allocate_cbk = arena_take;
    ctx.free_cbk = arena_give_back;
    ctx.flags = ARGON2_DEFAULT_FLAGS;
    current = a;
    int rc = argon2_ctx(&ctx, Argon2_id);
    current = NULL;
    int match = rc == ARGON2_OK && sodium_memcmp(got, want, want_len) == 0;
    sodium_memzero(got, sizeof got);
    if (rc != ARGON2_OK && rc != ARGON2_MEMORY_ALLOCATION_ERROR) {
        *why = argon2_error_message(rc);
        return -1;
    }
    if (rc == ARGON2_MEMORY_ALLOCATION_ERROR) {
        *why = "cannot map the argon2 arena";
        return -1;
    }
    *why = NULL;
    return match;
}
