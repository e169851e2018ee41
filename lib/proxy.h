/*
 * proxy: the PROXY protocol version 2 header (haproxy's proxy-protocol.txt §2.2) that a load
 * balancer sends before the first byte of the client's own connection, naming the real
 * client. Only the binary v2 form is read, only IPv4 and IPv6 over TCP (the PROXY command)
 * and the proxy's own health checks (LOCAL); TLVs are checked for shape and skipped. The
 * header is bounded (PROXY_MAX_LEN) before anything is read past its fixed part.
 * It must never trust a header by itself: the caller decides (proxy_networks) whether the
 * peer is a proxy at all, and a header from any other peer is refused.
 */
#ifndef YUBIN_PROXY_H
#define YUBIN_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#include "conf.h"
#include "netio.h"
#include "peer.h"

struct conf_networks;
struct peer;

#define PROXY_FIXED_LEN 16 /* signature (12), version and command, family, length (2) */
#define PROXY_MAX_LEN 1040 /* the whole header: addresses and TLVs up to 1024 octets */

enum { PROXY_OK = 0, PROXY_NEED = 1, PROXY_BAD = -1 };

struct proxy_info {
    int local;                   /* LOCAL: the proxy's own connection, no client named */
    struct sockaddr_storage src; /* PROXY: the real client (AF_INET or AF_INET6, port set) */
    struct sockaddr_storage dst; /* and the address it connected to */
    size_t length;               /* octets of the whole header */
};

/* Parses the header at the start of buf (len octets). PROXY_OK: *info is filled;
 * PROXY_NEED: *need is the number of octets the header has in all (more must be read);
 * PROXY_BAD: *why says what is wrong (not v2, v1 text, too long, a family other than IPv4
 * or IPv6 over TCP, an address block or TLV that does not fit). */
int proxy_parse(const unsigned char *buf, size_t len, struct proxy_info *info, size_t *need,
                const char **why);

/* Does buf begin like a PROXY header (the v2 signature, or v1's "PROXY "), as far as its len
 * octets go (at least 6 are needed to say yes)? For refusing one from an untrusted peer. */
int proxy_looks_like(const char *buf, size_t len);

/* Reads one header through netio (under its timeout) and parses it. 0, or -1 with why. */
int proxy_read(struct netio *n, struct proxy_info *info, const char **why);

/* What a handler calls before its greeting. A TCP peer inside trusted (proxy_networks) must
 * send a header: the client it names replaces *p (LOCAL keeps the proxy), logged as
 * "client=REAL proxy=PROXY". Any other peer whose first bytes look like a header is refused,
 * as is a bad header. 0 to go on, -1 to close without a word (the refusal is logged). */
int proxy_accept(struct netio *n, const struct conf_networks *trusted, struct peer *p);

/* Does the first command line (len octets of line, and what netio still holds after it)
 * start like a PROXY header? One that comes after the greeting is never trusted. */
int proxy_first_line(struct netio *n, const char *line, size_t len);

#endif
