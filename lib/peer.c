/*
 * peer: the client of a handler's connection (see peer.h). It only calls getsockname,
 * getpeername and getsockopt(SO_PEERCRED) on the descriptor: it never resolves a name and
 * never reads or writes a byte of the connection.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "peer.h"
#include "util.h"

static void set_local(struct peer *p)
{
    memset(p, 0, sizeof *p);
    p->kind = PEER_PIPE;
    str_copy(p->text, sizeof p->text, "local");
    str_copy(p->trace, sizeof p->trace, "local");
}

int peer_set_addr(struct peer *p, const struct sockaddr *sa)
{
    char text[INET6_ADDRSTRLEN];
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof ss);
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            struct sockaddr_in *in4 = (struct sockaddr_in *)&ss;
            in4->sin_family = AF_INET;
            memcpy(&in4->sin_addr, in6->sin6_addr.s6_addr + 12, 4);
            in4->sin_port = in6->sin6_port;
        } else {
            memcpy(&ss, in6, sizeof *in6);
        }
    } else if (sa->sa_family == AF_INET) {
        memcpy(&ss, sa, sizeof(struct sockaddr_in));
    } else {
        return -1;
    }
    if (ss.ss_family == AF_INET &&
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, text, sizeof text)) {
        str_copy(p->text, sizeof p->text, text);
        str_format(p->trace, sizeof p->trace, "[%s]", text);
    } else if (ss.ss_family == AF_INET6 &&
               inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, text, sizeof text)) {
        str_copy(p->text, sizeof p->text, text);
        str_format(p->trace, sizeof p->trace, "[IPv6:%s]", text);
    } else {
        return -1;
    }
    p->kind = PEER_TCP;
    p->addr = ss;
    return 0;
}

/* A Unix-domain peer: its uid, as Postfix records the local user who submitted. */
static int unix_peer(struct peer *p, int fd)
{
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof cred)
        return -1;
    p->kind = PEER_UNIX;
    p->uid = (unsigned long)cred.uid;
    str_format(p->trace, sizeof p->trace, "uid %lu", p->uid);
    return 0;
}

int peer_from_fd(struct peer *p, int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    set_local(p);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0; /* a pipe or a terminal */
    if (ss.ss_family == AF_UNIX)
        return unix_peer(p, fd);
    len = sizeof ss;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    (void)peer_set_addr(p, (const struct sockaddr *)&ss);
    return 0;
}
