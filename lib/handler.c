/*
 * handler: start-up and the client of pop3-in and imap4-in (lib/handler.h).
 * It must never read input before privileges are dropped, or write to stderr.
 */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "handler.h"
#include "log.h"
#include "peer.h"
#include "privs.h"
#include "proxy.h"
#include "util.h"

/* The options. 0, or -1 (usage logged). */
static int options(const char *prog, int argc, char **argv, const char **conf_path,
                   const char **transcript_dir, int *implicit_tls)
{
    int opt;
    opterr = 0; /* getopt must not print to stderr: under inetd it is the socket */
    while ((opt = getopt(argc, argv, "C:TX:")) != -1) {
        if (opt == 'T')
            *implicit_tls = 1;
        else if (opt == 'C')
            *conf_path = optarg;
        else if (opt == 'X')
            *transcript_dir = optarg;
        else
            break;
    }
    if (opt != -1 || optind != argc) {
        log_startup("usage: %s [-T] [-C yubin.conf] [-X transcript-dir]", prog);
        return -1;
    }
    return 0;
}

int handler_tls_drop(const struct yubin_conf *c, int implicit_tls, struct tls_server **t, char *err,
                     size_t errlen)
{
    char tls_err[700];
    *t = tls_server_read(c, tls_err, sizeof tls_err); /* as root: the key */
    if (privs_drop(c->user, err, errlen) != 0)
        return -1;
    if (implicit_tls && *t == NULL && tls_err[0] == '\0')
        str_copy(tls_err, sizeof tls_err, "-T (implicit TLS) needs tls_cert_file");
    if (tls_err[0] == '\0')
        return 0;
    str_copy(err, errlen, tls_err);
    return -2;
}

int handler_start(const char *prog, int argc, char **argv, struct yubin_conf *c,
                  struct handler_start *h)
{
    const char *conf_path = NULL, *transcript_dir = NULL;
    char err[512], tls_err[700];
    log_open(prog, NULL);
    if (options(prog, argc, argv, &conf_path, &transcript_dir, &h->implicit_tls) != 0)
        return -1;
    if (sodium_init() < 0) {
        log_startup("libsodium cannot start");
        return -1;
    }
    if (conf_load(c, conf_path, err, sizeof err) != 0) {
        log_startup("configuration: %s", err);
        return -1;
    }
    if (transcript_dir != NULL &&
        str_copy(c->transcript_dir, sizeof c->transcript_dir, transcript_dir) != 0) {
        log_startup("-X: path too long");
        return -1;
    }
    log_open(prog, c->syslog_socket); /* now the configured socket */
    int rc = handler_tls_drop(c, h->implicit_tls, &h->tls_ctx, tls_err, sizeof tls_err);
    if (rc == -1) {
        log_startup("%s", tls_err);
        return -1;
    }
    if (rc == -2) {
        log_startup("cannot serve: %s", tls_err);
        return h->implicit_tls ? -2 : -1; /* -T: no plaintext reply can reach a TLS client */
    }
    return 0;
}

/* netio writes only when its buffer is full or before it reads, so Nagle's algorithm has
 * nothing to join: it only holds back the last, partial segment of a long reply (a FETCH or
 * UIDL listing) until the client's delayed ACK comes, 40 ms later on Linux, on every reply
 * over 16 KiB. Not a TCP socket (a pipe, a socketpair in tests): nothing to do. */
static void no_nagle(int fd)
{
    int on = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

int handler_client(struct netio *io, const struct yubin_conf *c, int implicit_tls,
                   struct connlimit *slot, char *client, size_t size, int *local)
{
    struct peer p;
    if (peer_from_fd(&p, 0) != 0)
        str_copy(p.text, sizeof p.text, "local");
    if (p.kind == PEER_TCP)
        no_nagle(io->out_fd);
    /* -T: no peeking for an untrusted PROXY header (the ClientHello must stay unread) */
    if ((!implicit_tls || conf_in_networks(&c->proxy_networks, &p.addr)) &&
        proxy_accept(io, &c->proxy_networks, &p) != 0)
        return 1;
    str_copy(client, size, p.text);
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&p.addr;
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&p.addr;
    *local = p.kind != PEER_TCP ||
             (p.addr.ss_family == AF_INET && (ntohl(v4->sin_addr.s_addr) >> 24) == 127) ||
             (p.addr.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr));
    return connlimit_check(slot, c, &p) == 0 ? 0 : 2;
}
