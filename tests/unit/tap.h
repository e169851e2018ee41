/*
 * tap.h: the few macros the unit tests share. Each check prints one TAP line ("ok N - what"
 * or "not ok N - what"); tap_done() prints the plan and gives the exit status, so both
 * automake's `make check` and tests/run count real results.
 */
#ifndef YUBIN_TAP_H
#define YUBIN_TAP_H

#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        int tap_ok_ = (cond) ? 1 : 0;                                                      \
        tap_count++;                                                                       \
        if (!tap_ok_)                                                                      \
            tap_failed++;                                                                  \
        printf("%sok %d - ", tap_ok_ ? "" : "not ", tap_count);                            \
        printf(__VA_ARGS__);                                                               \
        printf(tap_ok_ ? "\n" : "  (%s:%d: %s)\n", __FILE__, __LINE__, #cond);             \
    } while (0)

#define CHECK_STR(got, want, ...)                                                          \
    do {                                                                                   \
        const char *tap_g_ = (got), *tap_w_ = (want);                                      \
        CHECK(tap_g_ != NULL && strcmp(tap_g_, tap_w_) == 0, __VA_ARGS__);                 \
        if (tap_g_ == NULL || strcmp(tap_g_, tap_w_) != 0)                                 \
            printf("#   got:  \"%s\"\n#   want: \"%s\"\n", tap_g_ ? tap_g_ : "(null)", tap_w_); \
    } while (0)

static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    fflush(stdout);
    return tap_failed == 0 ? 0 : 1;
}

#endif
