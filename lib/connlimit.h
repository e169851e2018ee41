/*
 * connlimit: at most max_connections_per_client connections at once from one client
 * address, across the handler processes that inetd or systemd starts (each serves one
 * connection and knows nothing of the others). A slot is a file state_dir/conn/ADDR.K
 * (K < max) held with flock(2) for the life of the handler: a process that is killed loses its
 * lock with its descriptors, so a slot can never leak. A handler that ends normally removes
 * its slot file; one that was killed leaves an unlocked file that the next connection from
 * that address takes over. It must never block (LOCK_NB), never follow a symbolic link, and
 * never take a name from the client except its address in our own text form.
 */
#ifndef YUBIN_CONNLIMIT_H
#define YUBIN_CONNLIMIT_H

#include <limits.h>

struct connlimit {
    int fd; /* the held slot, or -1 */
    char path[PATH_MAX];
};

/* Takes a slot for client (an address as lib/peer writes it) under state_dir. 0: taken
 * (or max is 0: no limit); 1: all max slots are held, refuse the connection; -1: the slot
 * files cannot be used (errno; the caller serves, and logs why). */
int connlimit_take(struct connlimit *cl, const char *state_dir, const char *client, unsigned max);

struct peer;
struct yubin_conf;

/* What a handler calls before its greeting: a TCP client takes a slot (max_connections_per_
 * client of c); a local one needs none. Logs a refusal, or slots that cannot be used (then
 * serves). 1: refuse the connection (the caller says 421 or -ERR); else 0. */
int connlimit_check(struct connlimit *cl, const struct yubin_conf *c, const struct peer *p);

/* Gives the slot back (removes its file). Harmless when none is held. */
void connlimit_release(struct connlimit *cl);

#endif
