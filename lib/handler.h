/*
 * handler: the start of a per-connection mail-reading handler (pop3-in, imap4-in): the
 * options (-T, -C, -X), the configuration, the certificate and key read while still root
 * (lib/tlsserver), the privileges dropped; then the client's address (lib/peer, a trusted PROXY
 * header) and its connection slot (lib/connlimit). The handler keeps its own protocol's replies. It
 * must never read a byte of the client's input as root, print to stderr (under inetd it is the
 * socket), or peek at a TLS client's first bytes for a PROXY header it would not trust.
 */
#ifndef YUBIN_HANDLER_H
#define YUBIN_HANDLER_H

#include <stddef.h>

#include "conf.h"
#include "connlimit.h"
#include "netio.h"
#include "tlsserver.h"

struct handler_start {
    int implicit_tls;           /* -T */
    struct tls_server *tls_ctx; /* a certificate read (lib/tlsserver); NULL when none */
};

/* c's certificate and key read into *t as root (lib/tlsserver; NULL when no certificate is
 * configured), then privileges dropped to c's user. Nothing is parsed: a pair that cannot
 * serve is found when a session first asks for TLS. 0; -1 when they could not drop; -2 when
 * a file cannot be read (or -T without a certificate): why in err either way, not logged.
 * smtp-in uses it too. */
int handler_tls_drop(const struct yubin_conf *c, int implicit_tls, struct tls_server **t, char *err,
                     size_t errlen);

/* Options, yubin.conf, the certificate and key (read as root), privileges dropped, logging
 * opened as prog. 0; -1 when the handler must not serve but a plaintext error reply can reach
 * the client (logged); -2 with -T, when nothing can (no certificate). */
int handler_start(const char *prog, int argc, char **argv, struct yubin_conf *c,
                  struct handler_start *h);

/* The client's address into client (never DNS; the one a trusted PROXY v2 header names),
 * whether it is loopback or a pipe (*local), and its connection slot. 0 to serve; 1 refused
 * quietly (a bad PROXY header, logged); 2 over max_connections_per_client (the handler
 * replies, then closes). */
int handler_client(struct netio *io, const struct yubin_conf *c, int implicit_tls,
                   struct connlimit *slot, char *client, size_t size, int *local);

#endif
