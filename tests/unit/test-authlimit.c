/*
 * test-authlimit: lib/authlimit's failure table with a clock the test moves: delays that
 * double up to the cap, one running check at a time for a key with failures, a success that
 * clears (or not), forgetting after an hour, a full table making room, and entries never
 * written until they come into use (a big static table stays out of resident memory).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "authlimit.h"
#include "tap.h"

static struct authlimit_entry entries[4];
static struct authlimit_entry untouched[64];

/* Two keys in a table of 64: only two entries are written, the rest keep what they held. */
static void entries_come_into_use_one_by_one(void)
{
    struct authlimit t;
    memset(untouched, 0xA5, sizeof untouched);
    authlimit_init(&t, untouched, 64, 100, 1000);
    authlimit_start(&t, "a 127.0.0.1", 1);
    authlimit_end(&t, "a 127.0.0.1", 0, 0, 1);
    authlimit_start(&t, "u demo", 1);
    authlimit_end(&t, "u demo", 1, 1, 1);
    authlimit_start(&t, "u demo", 2);
    authlimit_end(&t, "u demo", 1, 1, 2);
    unsigned char *rest = (unsigned char *)&untouched[2];
    size_t left = sizeof untouched - 2 * sizeof untouched[0], same = 0;
    while (same < left && rest[same] == 0xA5)
        same++;
    CHECK(same == left && t.used == 2, "two keys write two entries of 64, no more");
    CHECK(authlimit_wait(&t, "A 127.0.0.1", 2) == 99, "and the first is found again");
}

int main(void)
{
    struct authlimit t;
    uint64_t now = 1000000;
    authlimit_init(&t, entries, 4, 100, 1000);
    CHECK(authlimit_delay(&t, 0) == 0 && authlimit_delay(&t, 1) == 100 &&
              authlimit_delay(&t, 2) == 200 && authlimit_delay(&t, 4) == 800 &&
              authlimit_delay(&t, 5) == 1000 && authlimit_delay(&t, 99) == 1000,
          "delays double from the base up to the cap");
    CHECK(authlimit_wait(&t, "a 1.2.3.4", now) == 0, "an unknown key need not wait");
    authlimit_start(&t, "a 1.2.3.4", now);
    CHECK(authlimit_wait(&t, "a 1.2.3.4", now) == 0,
          "a running check without failures blocks none");
    CHECK(authlimit_end(&t, "a 1.2.3.4", 0, 0, now) == 1, "one failure counted");
    CHECK(authlimit_wait(&t, "A 1.2.3.4", now + 10) == 90,
          "the next check waits the rest of 100 ms");
    authlimit_start(&t, "a 1.2.3.4", now + 100);
    CHECK(authlimit_wait(&t, "a 1.2.3.4", now + 100) == UINT64_MAX,
          "while it runs, no second check for a failing key starts");
    CHECK(authlimit_end(&t, "a 1.2.3.4", 0, 0, now + 100) == 2, "two failures");
    CHECK(authlimit_wait(&t, "a 1.2.3.4", now + 100) == 200, "then 200 ms");
    authlimit_start(&t, "a 1.2.3.4", now + 300);
    CHECK(authlimit_end(&t, "a 1.2.3.4", 1, 0, now + 300) == 2,
          "a success that does not clear keeps the count");
    authlimit_start(&t, "u bob", now);
    authlimit_end(&t, "u bob", 0, 0, now);
    authlimit_start(&t, "u bob", now + 500);
    CHECK(authlimit_end(&t, "u bob", 1, 1, now + 500) == 0 &&
              authlimit_wait(&t, "u bob", now + 500) == 0,
          "a success that clears ends the delay");
    CHECK(authlimit_wait(&t, "a 1.2.3.4", now + 300 + AUTHLIMIT_FORGET_MS + 1) == 0,
          "failures are forgotten after an hour");
    char key[32];
    for (int i = 0; i < 10; i++) {
        snprintf(key, sizeof key, "a 10.0.0.%d", i);
        authlimit_start(&t, key, now + 1000 + (uint64_t)i);
        authlimit_end(&t, key, 0, 0, now + 1000 + (uint64_t)i);
    }
    CHECK(authlimit_wait(&t, "a 10.0.0.9", now + 1009) == 100 &&
              authlimit_wait(&t, "a 10.0.0.0", now + 1009) == 0,
          "a full table makes room by forgetting the entry used longest ago");
    entries_come_into_use_one_by_one();
    return tap_done();
}
