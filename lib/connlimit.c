/*
 * connlimit: per-address connection slots (see connlimit.h). At most max open+flock tries
 * per connection; each lock is non-blocking, each file opened O_NOFOLLOW.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "connlimit.h"
#include "log.h"
#include "peer.h"
#include "util.h"

/* An address in our own text form: hex digits, '.', ':' only (never '/' or ".."). */
static int plain_address(const char *client)
{
    if (client[0] == '\0' || client[0] == '.' || strlen(client) > 64)
        return 0;
    return strspn(client, "0123456789abcdefABCDEF.:") == strlen(client);
}

/* Tries slot path: 1 held now, 0 another process holds it, -1 error. The file must still be
 * the one at path once locked (a handler that was leaving may have just removed it). */
static int try_slot(struct connlimit *cl, const char *path)
{
    for (int tries = 0; tries < 4; tries++) {
        struct stat fs, ps;
        int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0)
            return -1;
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            close(fd);
            return err == EWOULDBLOCK ? 0 : (errno = err, -1);
        }
        if (fstat(fd, &fs) == 0 && fs.st_nlink > 0 && stat(path, &ps) == 0 &&
            ps.st_ino == fs.st_ino && ps.st_dev == fs.st_dev) {
            cl->fd = fd;
            return str_copy(cl->path, sizeof cl->path, path) == 0 ? 1 : -1;
        }
        close(fd); /* removed under us: take the new file */
    }
    return errno = EAGAIN, -1;
}

int connlimit_take(struct connlimit *cl, const char *state_dir, const char *client, unsigned max)
{
    char dir[PATH_MAX], path[PATH_MAX];
    cl->fd = -1;
    cl->path[0] = '\0';
    if (max == 0)
        return 0;
    if (!plain_address(client))
        return errno = EINVAL, -1;
    if (str_format(dir, sizeof dir, "%s/conn", state_dir) < 0)
        return errno = ENAMETOOLONG, -1;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    for (unsigned k = 0; k < max; k++) {
        if (str_format(path, sizeof path, "%s/%s.%u", dir, client, k) < 0)
            return errno = ENAMETOOLONG, -1;
        int rc = try_slot(cl, path);
        if (rc != 0)
            return rc == 1 ? 0 : -1;
    }
    return 1;
}

int connlimit_check(struct connlimit *cl, const struct yubin_conf *c, const struct peer *p)
{
    cl->fd = -1;
    if (p->kind != PEER_TCP)
        return 0;
    int rc = connlimit_take(cl, c->state_dir, p->text, c->max_connections_per_client);
    if (rc < 0)
        log_msg(LOG_WARNING, "client=%s connection slot not checked: %s", p->text, strerror(errno));
    if (rc <= 0)
        return 0;
    log_msg(LOG_NOTICE, "client=%s refused: max_connections_per_client (%u) reached", p->text,
            c->max_connections_per_client);
    return 1;
}

void connlimit_release(struct connlimit *cl)
{
    if (cl->fd < 0)
        return;
    (void)unlink(cl->path); /* while still locked: a newcomer that opened it sees nlink 0 */
    close(cl->fd);
    cl->fd = -1;
}
