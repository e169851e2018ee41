/*
 * tests/fuzz/fuzz-conf.c: conf_load on any yubin.conf. The input is written to a temporary
 * file and loaded; when it loads, the local-domain and relay-network checks run on a few
 * names and addresses. Checks: an error names the file; the strings are NUL-terminated; the
 * numbers are within the documented ranges; no descriptor is left open.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fuzz.h"

static struct fuzz_site site;
static char path[400];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_site_make(&site, NULL);
    snprintf(path, sizeof path, "%s/yubin.conf", site.scratch);
    return 0;
}

static void check(const struct yubin_conf *c, const char *data, size_t size)
{
    if (strnlen(c->hostname, sizeof c->hostname) == sizeof c->hostname ||
        strnlen(c->state_dir, sizeof c->state_dir) == sizeof c->state_dir ||
        strnlen(c->user, sizeof c->user) == sizeof c->user ||
        strnlen(c->smarthost, sizeof c->smarthost) == sizeof c->smarthost ||
        c->n_local_domains > CONF_MAX_DOMAINS || c->relay_networks.n > CONF_MAX_NETWORKS ||
        c->submit_networks.n > CONF_MAX_NETWORKS || c->proxy_networks.n > CONF_MAX_NETWORKS)
        fuzz_fail("conf field not terminated or over its limit", data, size);
    if (c->max_errors < 1 || c->command_timeout < 1 || c->max_auth_failures < 1)
        fuzz_fail("conf number out of range", data, size);
    for (size_t i = 0; i < c->relay_networks.n; i++)
        if (c->relay_networks.net[i].prefix >
            (c->relay_networks.net[i].family == AF_INET ? 32u : 128u))
            fuzz_fail("prefix out of range", data, size);
    for (size_t i = 0; i < c->n_local_domains; i++)
        if (!conf_is_local_domain(c, c->local_domains[i]))
            fuzz_fail("a local domain is not local", data, size);
    (void)conf_is_local_domain(c, "example.test");
    (void)conf_is_local_domain(c, "");
    struct sockaddr_in in4 = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    in4.sin_addr.s_addr = htonl(0x7f000001u);
    inet_pton(AF_INET6, "2001:db8::1", &in6.sin6_addr);
    (void)conf_in_networks(&c->relay_networks, &in4);
    (void)conf_in_networks(&c->submit_networks, &in6);
    (void)conf_in_networks(&c->proxy_networks, &in4);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct yubin_conf c;
    char err[600];
    uint64_t fds = fuzz_open_fds();
    fuzz_write_file(path, data, size);
    if (conf_load(&c, path, err, sizeof err) == 0)
        check(&c, (const char *)data, size);
    else if (strnlen(err, sizeof err) == sizeof err || strstr(err, "yubin.conf") == NULL)
        fuzz_fail("an error that does not name the file", err, strnlen(err, sizeof err));
    fuzz_check_fds(fds, "conf_load");
    return 0;
}
