/*
 * authlimit: the cross-connection failure table of yubin-auth (see authlimit.h). A linear
 * scan over a fixed array: a few thousand entries cost microseconds, next to the
 * milliseconds of one argon2id check. It never allocates and never forgets a running check.
 */
#include "config.h"

#include <string.h>

#include "authlimit.h"
#include "util.h"

void authlimit_init(struct authlimit *t, struct authlimit_entry *entries, size_t n,
                    unsigned base_ms, unsigned max_ms)
{
    t->entries = entries;
    t->n = n;
    t->used = 0;
    t->base_ms = base_ms;
    t->max_ms = max_ms;
}

uint64_t authlimit_delay(const struct authlimit *t, unsigned failures)
{
    if (failures == 0)
        return 0;
    unsigned shift = failures - 1 > 20 ? 20 : failures - 1;
    uint64_t d = (uint64_t)t->base_ms << shift;
    return d > t->max_ms ? t->max_ms : d;
}

/* An entry whose failures are old enough is as good as none. */
static void expire(struct authlimit_entry *e, uint64_t now_ms)
{
    if (e->failures > 0 && e->running == 0 && now_ms - e->last_failure_ms > AUTHLIMIT_FORGET_MS)
        e->failures = 0;
}

static struct authlimit_entry *find(struct authlimit *t, const char *key)
{
    for (size_t i = 0; i < t->used; i++)
        if (t->entries[i].key[0] != '\0' && str_ieq(t->entries[i].key, key))
            return &t->entries[i];
    return NULL;
}

/* key's entry, made if need be (in a free slot among those in use, else a new one, else the
 * one used longest ago with nothing running). NULL if every entry has a check running, or key
 * is too long (callers bound it). */
static struct authlimit_entry *find_or_make(struct authlimit *t, const char *key, uint64_t now_ms)
{
    struct authlimit_entry *e = find(t, key), *victim = NULL;
    if (e != NULL)
        return e;
    int reusable = 0;
    for (size_t i = 0; i < t->used && !reusable; i++) {
        struct authlimit_entry *c = &t->entries[i];
        expire(c, now_ms);
        reusable = c->key[0] == '\0' || (c->failures == 0 && c->running == 0);
        if (reusable || (c->running == 0 && (victim == NULL || c->used_ms < victim->used_ms)))
            victim = c;
    }
    if (!reusable && t->used < t->n)
        victim = &t->entries[t->used++];
    if (victim == NULL)
        return NULL;
    memset(victim, 0, sizeof *victim);
    return str_copy(victim->key, sizeof victim->key, key) == 0 ? victim : NULL;
}

uint64_t authlimit_wait(struct authlimit *t, const char *key, uint64_t now_ms)
{
    struct authlimit_entry *e = find(t, key);
    if (e == NULL)
        return 0;
    expire(e, now_ms);
    if (e->failures == 0)
        return 0;
    if (e->running > 0)
        return UINT64_MAX;
    uint64_t ready = e->last_failure_ms + authlimit_delay(t, e->failures);
    return ready > now_ms ? ready - now_ms : 0;
}

void authlimit_start(struct authlimit *t, const char *key, uint64_t now_ms)
{
    struct authlimit_entry *e = find_or_make(t, key, now_ms);
    if (e == NULL)
        return;
    e->running++;
    e->used_ms = now_ms;
}

unsigned authlimit_end(struct authlimit *t, const char *key, int ok, int clear_on_ok,
                       uint64_t now_ms)
{
    struct authlimit_entry *e = find(t, key);
    if (e == NULL)
        return ok ? 0 : 1;
    if (e->running > 0)
        e->running--;
    e->used_ms = now_ms;
    if (ok) {
        if (clear_on_ok)
            e->failures = 0;
        return e->failures;
    }
    e->failures++;
    e->last_failure_ms = now_ms;
    return e->failures;
}
