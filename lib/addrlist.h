/*
 * addrlist: RFC 5322 address lists as sendmail(8) reads them from To:, Cc:, Bcc: (for -t)
 * and from its arguments: comments are dropped, quoted strings kept, <...> wins over the
 * words before it, a group's name is dropped and its members kept, line folds are white
 * space, an obsolete source route in <@a,@b:x@y> is dropped. Each addr-spec found goes to the
 * caller as text; checking it as a mailbox is lib/addr's work.
 *
 * It never allocates, never copies an address longer than ADDR_SIZE (that is an error), and
 * never takes words apart with only white space between them ("John Smith") as an address.
 */
#ifndef YUBIN_ADDRLIST_H
#define YUBIN_ADDRLIST_H

#include <stddef.h>

#include "addr.h"

struct addrlist_taker {
    int (*take)(void *arg, const char *addr); /* non-zero stops the scan with that result */
    void *arg;
    char *why; /* after -1: what was wrong ("'<' without '>'", "not an address: John Smith") */
    size_t why_size;
};

/* Scans len octets of v. 0 when every address was taken, what take() returned when it
 * stopped the scan, or -1 with t->why set. */
int addrlist_scan(const char *v, size_t len, const struct addrlist_taker *t);

#endif
