/*
 * mx-lookup: the test driver for lib/mx. Resolves each domain on the command line with one
 * resolver (so the per-run cache is exercised) and prints the results as lines:
 *
 *   result <domain> ok|temp|perm <ms> <why>
 *   mx <domain> <pref> <host> <addr> [<addr>...]
 *
 * Usage: mx-lookup [-H] [-r dns_resolver] [-t timeout_s] domain...
 * -H resolves host names (mx_lookup_host, as for a smarthost) instead of mail domains.
 * It is test tooling only: it is never installed and never used by a yubin program.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "mx.h"
#include "util.h"

static long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void print_result(const char *domain, const struct mx_result *res, long ms)
{
    const char *st = res->status == MX_OK ? "ok" : res->status == MX_TEMPFAIL ? "temp" : "perm";
    printf("result %s %s %ld %s\n", domain, st, ms, res->why);
    for (size_t i = 0; i < res->n_hosts; i++) {
        const struct mx_host *h = &res->hosts[i];
        printf("mx %s %u %s", domain, h->pref, h->name);
        for (size_t j = 0; j < h->n_addrs; j++) {
            char a[64];
            printf(" %s", mx_addr_format(&h->addrs[j], a, sizeof a) == 0 ? a : "?");
        }
        printf("\n");
    }
}

int main(int argc, char **argv)
{
    const char *resolver = "";
    unsigned timeout = 5;
    int opt, host_only = 0;
    while ((opt = getopt(argc, argv, "Hr:t:")) != -1) {
        if (opt == 'H')
            host_only = 1;
        else if (opt == 'r')
            resolver = optarg;
        else if (opt == 't')
            timeout = (unsigned)strtoul(optarg, NULL, 10);
        else
            return 2;
    }
    if (optind >= argc) {
        fprintf(stderr, "usage: mx-lookup [-H] [-r dns_resolver] [-t timeout_s] domain...\n");
        return 2;
    }
    char err[256];
    struct mx_resolver *r = mx_resolver_new(resolver, timeout, err, sizeof err);
    if (r == NULL) {
        fprintf(stderr, "mx-lookup: %s\n", err);
        return 1;
    }
    static struct mx_result res;
    for (int i = optind; i < argc; i++) {
        long start = now_ms();
        if (host_only)
            mx_lookup_host(r, argv[i], &res);
        else
            mx_lookup(r, argv[i], &res);
        print_result(argv[i], &res, now_ms() - start);
    }
    mx_resolver_free(r);
    return fflush(stdout) == 0 ? 0 : 1;
}
