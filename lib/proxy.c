/*
 * proxy: the PROXY protocol v2 header (see proxy.h). It reads at most PROXY_MAX_LEN octets,
 * checks every length against what was read before using it, and never allocates.
 */
#include "config.h"

#include <netinet/in.h>
#include <string.h>

#include "conf.h"
#include "log.h"
#include "peer.h"
#include "proxy.h"
#include "util.h"

static const unsigned char signature[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                            0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

enum { CMD_LOCAL = 0x0, CMD_PROXY = 0x1 };
enum { FAM_INET_STREAM = 0x11, FAM_INET6_STREAM = 0x21 };

int proxy_looks_like(const char *buf, size_t len)
{
    if (len >= 6 && memcmp(buf, "PROXY ", 6) == 0)
        return 1;
    size_t n = len < sizeof signature ? len : sizeof signature;
    return n >= 6 && memcmp(buf, signature, n) == 0;
}

/* TLVs (type, 16-bit length, value) fill the rest exactly. 0 or -1. */
static int tlvs_fit(const unsigned char *p, size_t len)
{
    while (len > 0) {
        if (len < 3)
            return -1;
        size_t vlen = (size_t)p[1] << 8 | p[2];
        if (vlen > len - 3)
            return -1;
        p += 3 + vlen;
        len -= 3 + vlen;
    }
    return 0;
}

/* The address block of a PROXY command: src and dst for IPv4 or IPv6 over TCP. */
static int addresses(unsigned fam, const unsigned char *p, size_t len, struct proxy_info *info,
                     const char **why)
{
    size_t need = fam == FAM_INET_STREAM ? 12 : 36;
    if (fam != FAM_INET_STREAM && fam != FAM_INET6_STREAM)
        return *why = "not TCP over IPv4 or IPv6 (only those are taken)", PROXY_BAD;
    if (len < need)
        return *why = "the address block is shorter than its family needs", PROXY_BAD;
    if (tlvs_fit(p + need, len - need) != 0)
        return *why = "a TLV does not fit the header", PROXY_BAD;
    memset(&info->src, 0, sizeof info->src);
    memset(&info->dst, 0, sizeof info->dst);
    if (fam == FAM_INET_STREAM) {
        struct sockaddr_in *s = (struct sockaddr_in *)&info->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&info->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, p, 4);
        memcpy(&d->sin_addr, p + 4, 4);
        memcpy(&s->sin_port, p + 8, 2);
        memcpy(&d->sin_port, p + 10, 2);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&info->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&info->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, p, 16);
        memcpy(&d->sin6_addr, p + 16, 16);
        memcpy(&s->sin6_port, p + 32, 2);
        memcpy(&d->sin6_port, p + 34, 2);
    }
    return PROXY_OK;
}

int proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *info, size_t *need,
                const char **why)
{
    *why = "";
    if (len >= 6 && memcmp(buf, "PROXY ", 6) == 0)
        return *why = "PROXY protocol v1 (text) is not taken; send v2", PROXY_BAD;
    size_t cmp = len < sizeof signature ? len : sizeof signature;
    if (memcmp(buf, signature, cmp) != 0)
        return *why = "no PROXY protocol v2 signature", PROXY_BAD;
    if (len < PROXY_FIXED_LEN)
        return *need = PROXY_FIXED_LEN, PROXY_NEED;
    if ((buf[12] >> 4) != 2)
        return *why = "not version 2", PROXY_BAD;
    unsigned cmd = buf[12] & 0x0f;
    if (cmd != CMD_LOCAL && cmd != CMD_PROXY)
        return *why = "an unknown command", PROXY_BAD;
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (body > PROXY_MAX_LEN - PROXY_FIXED_LEN)
        return *why = "the header is too long", PROXY_BAD;
    if (len < PROXY_FIXED_LEN + body)
        return *need = PROXY_FIXED_LEN + body, PROXY_NEED;
    memset(info, 0, sizeof *info);
    info->length = PROXY_FIXED_LEN + body;
    if (cmd == CMD_LOCAL)
        return info->local = 1, PROXY_OK; /* a health check: the address block is ignored */
    return addresses(buf[13], buf + PROXY_FIXED_LEN, body, info, why);
}

int proxy_accept(struct netio *n, const struct conf_networks *trusted, struct peer *p)
{
    const char *why, *early;
    char proxy[sizeof p->text];
    struct proxy_info info;
    if (p->kind != PEER_TCP)
        return 0;
    str_copy(proxy, sizeof proxy, p->text);
    if (!conf_in_networks(trusted, &p->addr)) {
        size_t len = netio_peek(n, &early);
        if (!proxy_looks_like(early, len))
            return 0;
        why = "not a trusted proxy (proxy_networks)";
    } else if (proxy_read(n, &info, &why) == 0) {
        if (!info.local && peer_set_addr(p, (const struct sockaddr *)&info.src) != 0)
            return -1;
        log_msg(LOG_INFO, "client=%s proxy=%s%s", p->text, proxy,
                info.local ? " (LOCAL: the proxy's own check)" : "");
        return 0;
    }
    log_msg(LOG_NOTICE, "client=%s PROXY header refused: %s: connection closed", proxy, why);
    return -1;
}

int proxy_read(struct netio *n, struct proxy_info *info, const char **why)
{
    unsigned char buf[PROXY_MAX_LEN];
    size_t have = 0, need = PROXY_FIXED_LEN;
    for (;;) {
        long r = netio_read(n, buf + have, need - have);
        if (r <= 0) {
            *why = r == NETIO_TIMEOUT ? "timeout before a whole header"
                   : r == NETIO_EOF   ? "connection closed inside the header"
                                      : "read error";
            return -1;
        }
        have = need;
        int rc = proxy_parse(buf, have, info, &need, why);
        if (rc == PROXY_OK)
            return 0;
        if (rc == PROXY_BAD || need <= have || need > sizeof buf)
            return -1;
    }
}

int proxy_first_line(struct netio *n, const char *line, size_t len)
{
    const char *rest;
    size_t more = netio_peek(n, &rest);
    char start[PROXY_FIXED_LEN];
    size_t have = len < sizeof start ? len : sizeof start;
    memcpy(start, line, have);
    if (have < sizeof start) {
        size_t add = more < sizeof start - have ? more : sizeof start - have;
        memcpy(start + have, rest, add);
        have += add;
    }
    return proxy_looks_like(start, have);
}
