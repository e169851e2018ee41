/*
 * pwcheck: argon2id verification with libsodium's crypto_pwhash (its AVX2 or SSSE3 code,
 * picked by sodium_init) in a kept arena (see pwcheck.h). libsodium maps exactly its argon2
 * memory (m_cost blocks of 1 KiB, rounded down to 4 x p segments) with mmap for every check and
 * unmaps it after, so that each login would fault in 64 MiB afresh. The programs that link this
 * link libsodium.a statically with -Wl,--wrap=mmap,--wrap=munmap (Makefile.am, PWCHECK_LIBS):
 * while pwcheck_verify runs in a thread, the one anonymous mapping of exactly that size asked for
 * in that thread gets the arena, and its munmap wipes the arena instead of unmapping it. Every
 * other call goes to the real mmap and munmap. Should a libsodium ask for its memory otherwise,
 * the check still works and faults its own memory in (the arena is then given back first, so
 * that a thread never holds two).
 * It never allocates more than the arena for a hash, never logs and never keeps a password; no
 * derived block outlives a check in the arena.
 */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>

#include <sodium.h>

#include "pwcheck.h"

#define PWCHECK_SALT_MAX 64
#define PWCHECK_OUT_MAX 64
#define ARGON2ID_VERSION 0x13
#define ARGON2_SALT_MIN 8 /* RFC 9106 3.1 */
#define ARGON2_BLOCK 1024
#define ARGON2_SYNC_POINTS 4

void *__real_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __real_munmap(void *addr, size_t len);
void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off);
int __wrap_munmap(void *addr, size_t len);

/* The verification running in this thread, if any. */
static _Thread_local struct {
    struct pwcheck_arena *arena; /* NULL outside pwcheck_verify */
    size_t want;                 /* the size of libsodium's argon2 mapping for this hash */
    int lent;                    /* libsodium holds the arena now */
    int map_failed;              /* the arena could not be mapped */
} run;

void pwcheck_arena_init(struct pwcheck_arena *a, size_t size)
{
    a->mem = NULL;
    a->size = size;
    a->lent = 0;
}

void pwcheck_arena_free(struct pwcheck_arena *a)
{
    if (a->mem != NULL)
        __real_munmap(a->mem, a->size);
    a->mem = NULL;
}

/* Maps the arena and touches every page once, asking for huge pages first (fewer faults and
 * TLB misses for argon2's random reads). 0 or -1. */
static int arena_map(struct pwcheck_arena *a)
{
    void *p =
        __real_mmap(NULL, a->size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
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

/* libsodium's request for its argon2 memory, in a thread that verifies: the arena. */
static int is_argon2_request(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    return addr == NULL && len == run.want && prot == (PROT_READ | PROT_WRITE) &&
           (flags & (MAP_PRIVATE | MAP_ANONYMOUS)) == (MAP_PRIVATE | MAP_ANONYMOUS) &&
           (flags & (MAP_SHARED | MAP_FIXED)) == 0 && fd == -1 && off == 0;
}

void *__wrap_mmap(void *addr, size_t len, int prot, int flags, int fd, off_t off)
{
    if (run.arena == NULL || run.lent)
        return __real_mmap(addr, len, prot, flags, fd, off);
    if (!is_argon2_request(addr, len, prot, flags, fd, off)) {
        if (flags & MAP_ANONYMOUS) /* argon2 memory of another size: never two at once */
            pwcheck_arena_free(run.arena);
        return __real_mmap(addr, len, prot, flags, fd, off);
    }
    if (run.arena->mem == NULL && arena_map(run.arena) != 0) {
        run.map_failed = 1;
        errno = ENOMEM;
        return MAP_FAILED;
    }
    run.lent = 1;
    run.arena->lent++;
    return run.arena->mem;
}

int __wrap_munmap(void *addr, size_t len)
{
    if (run.arena == NULL || !run.lent || addr != run.arena->mem || len != run.want)
        return __real_munmap(addr, len);
    sodium_memzero(addr, len); /* what the kernel's unmapping did: no block stays */
    run.lent = 0;
    return 0;
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

/* Base64 (no padding) from *p up to stop ('$' or NUL). Its decoded length, or -1. */
static long b64_field(const char **p, char stop)
{
    unsigned char buf[PWCHECK_SALT_MAX > PWCHECK_OUT_MAX ? PWCHECK_SALT_MAX : PWCHECK_OUT_MAX];
    const char *end = strchr(*p, stop);
    size_t len;
    if (end == NULL || end == *p)
        return -1;
    if (sodium_base642bin(buf, sizeof buf, *p, (size_t)(end - *p), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL_NO_PADDING) != 0)
        return -1;
    sodium_memzero(buf, sizeof buf);
    *p = *end == '\0' ? end : end + 1;
    return (long)len;
}

/* Checks the form of an encoded hash; *bytes becomes the size of the mapping libsodium makes
 * for it (argon2-core.c: max(m, 8p) blocks, rounded down to a multiple of 4p). 0 or -1. */
static int decode(const char *enc, uint64_t *m_bytes, size_t *bytes)
{
    const char *p = enc;
    uint32_t version, m, t, lanes;
    if (strncmp(p, "$argon2id$", 10) != 0)
        return -1;
    p += 10;
    if (field(&p, "v", '$', &version) != 0 || version != ARGON2ID_VERSION ||
        field(&p, "m", ',', &m) != 0 || field(&p, "t", ',', &t) != 0 ||
        field(&p, "p", '$', &lanes) != 0 || t < 1 || lanes < 1 || lanes > 0xffffff ||
        m < 8 * (uint64_t)lanes)
        return -1;
    long salt_len = b64_field(&p, '$');
    long out_len = b64_field(&p, '\0');
    if (salt_len < ARGON2_SALT_MIN || out_len < (long)crypto_pwhash_argon2id_BYTES_MIN ||
        *p != '\0')
        return -1;
    uint64_t segment = m / ((uint64_t)lanes * ARGON2_SYNC_POINTS);
    *m_bytes = (uint64_t)m * ARGON2_BLOCK;
    *bytes = (size_t)(segment * lanes * ARGON2_SYNC_POINTS * ARGON2_BLOCK);
    return 0;
}

int pwcheck_verify(struct pwcheck_arena *a, const char *encoded, const char *password, size_t pwlen,
                   const char **why)
{
    uint64_t m_bytes;
    size_t want;
    *why = "malformed argon2id hash";
    if (decode(encoded, &m_bytes, &want) != 0)
        return -1;
    if (m_bytes > a->size) {
        *why = "the hash needs more memory than pwhash_memlimit";
        return -1;
    }
    run.arena = a;
    run.want = want;
    run.lent = 0;
    run.map_failed = 0;
    errno = 0;
    int rc = crypto_pwhash_argon2id_str_verify(encoded, password, pwlen);
    int err = errno;
    if (run.lent && a->mem != NULL) /* libsodium kept it: wipe it here */
        sodium_memzero(a->mem, want);
    int map_failed = run.map_failed;
    run.arena = NULL;
    run.lent = 0;
    *why = NULL;
    if (rc == 0)
        return 1;
    if (map_failed)
        *why = "cannot map the argon2 arena";
    else if (err != EINVAL) /* libsodium's errno after a mismatch; a hash it cannot use */
        *why = "libsodium cannot verify this hash";
    return *why == NULL ? 0 : -1;
}
