/*
 * authc: the client of yubin-auth (see authc.h). Connects to the Unix-domain socket once per
 * process, writes one request line, reads one answer line within a deadline. It never reads
 * the users file, never logs a password (only authc_failed logs: the handlers' line for a failed
 * login), and wipes every buffer that held a password.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "authc.h"
#include "log.h"
#include "util.h"

/* A login may wait behind the bounded queue and a failure delay (at most 60 s). */
#define AUTHC_LOGIN_TIMEOUT_MS 150000
#define AUTHC_USER_TIMEOUT_MS 30000

static int conn_fd = -1;

void authc_close(void)
{
    if (conn_fd >= 0)
        close(conn_fd);
    conn_fd = -1;
}

static int why_errno(char *why, size_t size, const char *what, const char *path)
{
    if (why != NULL)
        str_format(why, size, "%s %.200s: %s", what, path, strerror(errno));
    return -1;
}

static int connect_service(const struct yubin_conf *c, char *why, size_t why_size)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    if (str_copy(sun.sun_path, sizeof sun.sun_path, c->auth_socket) != 0)
        return errno = ENAMETOOLONG,
               why_errno(why, why_size, "the auth_socket path is too long:", c->auth_socket);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return why_errno(why, why_size, "cannot make a socket for", c->auth_socket);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return why_errno(why, why_size, "the password service is not reachable at", c->auth_socket);
    }
    conn_fd = fd;
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads one LF-terminated line into buf (without the LF) before the deadline. 0 or -1. */
static int read_answer(char *buf, size_t size, long timeout_ms)
{
    size_t len = 0;
    long deadline = now_ms() + timeout_ms;
    while (len + 1 < size) {
        struct pollfd p = {.fd = conn_fd, .events = POLLIN};
        long left = deadline - now_ms();
        int rc = left > 0 ? poll(&p, 1, (int)left) : 0;
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0)
            return errno = rc == 0 ? ETIMEDOUT : errno, -1;
        ssize_t n = read(conn_fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return errno = n == 0 ? ECONNRESET : errno, -1;
        char *lf = memchr(buf + len, '\n', (size_t)n);
        len += (size_t)n;
        if (lf != NULL) {
            *lf = '\0';
            return lf == buf + len - 1 ? 0 : (errno = EPROTO, -1);
        }
    }
    return errno = EMSGSIZE, -1;
}

/* Sends all of buf; MSG_NOSIGNAL: a service that went away is an error, not SIGPIPE. */
static int send_all(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(conn_fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One request and its answer, reconnecting once if a kept connection went stale. */
static int ask(const struct yubin_conf *c, const char *req, size_t len, char *ans, size_t size,
               long timeout_ms, char *why, size_t why_size)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        int fresh = conn_fd < 0;
        if (fresh && connect_service(c, why, why_size) != 0)
            return -1;
        if (send_all(req, len) == 0 && read_answer(ans, size, timeout_ms) == 0)
            return 0;
        int saved = errno;
        authc_close();
        errno = saved;
        if (fresh || errno == ETIMEDOUT || errno == EMSGSIZE || errno == EPROTO)
            return why_errno(why, why_size, "no answer from the password service at",
                             c->auth_socket);
    }
    return -1;
}

static int b64(char *out, size_t size, const char *in, size_t len)
{
    if (sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL) > size)
        return -1;
    sodium_bin2base64(out, size, (const unsigned char *)in, len, sodium_base64_VARIANT_ORIGINAL);
    return 0;
}

/* "OK <mailbox>..." into mailbox. 0 or -1. */
static int take_mailbox(const char *ans, char *mailbox, size_t size)
{
    size_t n = strcspn(ans + 3, " ");
    if (n == 0 || mailbox == NULL)
        return n == 0 ? -1 : 0;
    return str_copy_n(mailbox, size, ans + 3, n);
}

static int temp(const char *ans, char *why, size_t size)
{
    if (why != NULL)
        str_format(why, size, "the password service says: %.200s", ans);
    return -1;
}

int authc_login(const struct yubin_conf *c, const char *service, const char *client,
                const char *user, const char *password, size_t pwlen, struct authc_answer *a)
{
    char req[AUTHC_LINE_MAX + 1], u64[AUTHC_LINE_MAX / 4], p64[AUTHC_LINE_MAX], ans[512];
    memset(a, 0, sizeof *a);
    size_t ulen = strlen(user);
    int rc = -1;
    if (ulen > AUTHC_NAME_MAX || pwlen > AUTHC_PASSWORD_MAX || b64(u64, sizeof u64, user, ulen) ||
        b64(p64, sizeof p64, password, pwlen) ||
        str_format(req, sizeof req, "PASS %s %s %s %s\n", service, client, u64, p64) < 0)
        str_copy(a->why, sizeof a->why, "the login does not fit a request");
    else if (ask(c, req, strlen(req), ans, sizeof ans, AUTHC_LOGIN_TIMEOUT_MS, a->why,
                 sizeof a->why) == 0)
        rc = 0;
    sodium_memzero(p64, sizeof p64);
    sodium_memzero(req, sizeof req);
    if (rc != 0)
        return -1;
    if (strncmp(ans, "OK ", 3) == 0 && take_mailbox(ans, a->mailbox, sizeof a->mailbox) == 0) {
        const char *sp = strchr(ans + 3, ' ');
        a->delay_ms = sp != NULL ? strtoul(sp + 1, NULL, 10) : 0;
        return 1;
    }
    if (strncmp(ans, "NO ", 3) == 0 && sscanf(ans + 3, "%lu %u", &a->delay_ms, &a->failures) == 2)
        return 0;
    authc_close(); /* after BAD the service hangs up */
    return temp(ans, a->why, sizeof a->why);
}

int authc_user(const struct yubin_conf *c, const char *user, char *mailbox, size_t mailbox_size,
               char *why, size_t why_size)
{
    char req[AUTHC_LINE_MAX / 4 + 8], u64[AUTHC_LINE_MAX / 4], ans[512];
    size_t ulen = strlen(user);
    if (ulen > AUTHC_NAME_MAX)
        return 0; /* longer than any mailbox name */
    if (b64(u64, sizeof u64, user, ulen) != 0 ||
        str_format(req, sizeof req, "USER %s\n", u64) < 0 ||
        ask(c, req, strlen(req), ans, sizeof ans, AUTHC_USER_TIMEOUT_MS, why, why_size) != 0)
        return -1;
    if (strcmp(ans, "NO") == 0)
        return 0;
    if (strncmp(ans, "OK ", 3) == 0 && take_mailbox(ans, mailbox, mailbox_size) == 0)
        return 1;
    authc_close();
    return temp(ans, why, why_size);
}

void authc_failed(const struct yubin_conf *c, unsigned *failures, const char *client,
                  const char *who, const char *why, long held_ms)
{
    (*failures)++;
    unsigned shift = *failures - 1 > 6 ? 6 : *failures - 1;
    unsigned long delay = (unsigned long)c->auth_delay_ms << shift;
    if (delay > 60000)
        delay = 60000;
    if (held_ms < 0)
        sleep_ms(delay);
    log_msg(LOG_WARNING, "login failed: user=<%s> client=%s reason=%s failures=%u delay=%lums",
            log_field(who), client, why, *failures, held_ms < 0 ? delay : (unsigned long)held_ms);
}
