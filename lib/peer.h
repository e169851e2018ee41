/*
 * peer: who is on the other end of a handler's connection (fd 0), found once at start-up
 * without DNS: a TCP client (its address, IPv4-mapped IPv6 turned back into IPv4), a local
 * program on a Unix-domain socket (its uid from SO_PEERCRED, as sendmail(8) submits), or a
 * pipe (tests, a terminal). The text forms are what the log (client=) and the Received
 * header show. It never trusts anything the client says: a PROXY protocol header replaces
 * the address only through peer_set_addr, after lib/proxy has checked it.
 */
#ifndef YUBIN_PEER_H
#define YUBIN_PEER_H

#include <netinet/in.h>
#include <sys/socket.h>

enum peer_kind {
    PEER_PIPE, /* not a socket: "local" */
    PEER_TCP,  /* an IPv4 or IPv6 client */
    PEER_UNIX, /* a local program on a Unix-domain stream socket, uid known */
};

struct peer {
    enum peer_kind kind;
    struct sockaddr_storage addr;      /* PEER_TCP: the client; family 0 otherwise */
    unsigned long uid;                 /* PEER_UNIX: the peer's uid (SO_PEERCRED) */
    char text[INET6_ADDRSTRLEN + 8];   /* "192.0.2.1", "2001:db8::1" or "local" */
    char trace[INET6_ADDRSTRLEN + 16]; /* "[192.0.2.1]", "[IPv6:2001:db8::1]", "uid 1000",
                                          "local" */
};

/* Looks at the socket on fd. 0, or -1 when it is a Unix-domain socket whose peer's
 * credentials cannot be read (such a peer must not be served as an anonymous local one). */
int peer_from_fd(struct peer *p, int fd);

/* The client is sa (AF_INET or AF_INET6) instead: a trusted proxy said so. 0, or -1 (another
 * family; p is unchanged). */
int peer_set_addr(struct peer *p, const struct sockaddr *sa);

#endif
