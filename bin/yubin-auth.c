/*
 * yubin-auth: the password service (yubin-auth(8)). One long-lived process, running as its own
 * account (auth_user), the only reader of the users file. pop3-in and smtp-in (and lib/route,
 * for "is this a mailbox?") ask it over a local stream socket (auth_socket), given by systemd
 * (socket activation, Accept=no) or bound here. It verifies at most auth_max_parallel passwords
 * at once, each worker thread in its own argon2id arena kept mapped between logins (and given
 * back after auth_arena_idle seconds without one; lib/pwcheck lends it to libsodium and wipes it
 * after each check); further checks wait in a bounded queue;
 * failures are counted per client address and per user across every connection
 * (lib/authlimit), and the answers to a slowed key are held back.
 *
 * It must never answer a peer other than the handlers' account (SO_PEERCRED), never log or
 * keep a password past its check, never let one malformed request or one vanished handler
 * disturb the others, and never use more argon2 memory than auth_max_parallel arenas.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "authc.h"
#include "authlimit.h"
#include "conf.h"
#include "log.h"
#include "privs.h"
#include "pwcheck.h"
#include "users.h"
#include "util.h"

#define MAX_CLIENTS 1024   /* handlers connected at once; more are told TEMP */
#define LIMIT_ENTRIES 8192 /* failure records (addresses and users) */
#define MAX_WORKERS 64

enum cstate { C_FREE, C_READ, C_WAIT, C_RUN, C_HOLD };

struct client {
    int fd;
    enum cstate state;
    int gone; /* the handler hung up while its check ran */
    uint64_t seq, arrived_ms, started_ms, hold_until_ms;
    size_t in_len;
    char in[AUTHC_LINE_MAX + 1];
    /* the request (PASS) */
    char service[17], addr[AUTHC_CLIENT_MAX + 1], user[AUTHC_NAME_MAX + 1];
    char akey[AUTHLIMIT_KEY_SIZE], ukey[AUTHLIMIT_KEY_SIZE];
    char password[AUTHC_PASSWORD_MAX + 1];
    size_t pwlen;
    /* the worker's result */
    int result; /* 1 ok, 0 wrong, -1 temporary */
    char why[160];
    char answer[AUTHC_LINE_MAX / 4];
};

struct worker {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct client *job;
    struct pwcheck_arena arena;
    int busy;
    uint64_t last_ms; /* when its last check ended (main thread) */
};

static struct yubin_conf conf;
static struct client clients[MAX_CLIENTS];
static size_t clients_used; /* slots [0, clients_used) have been used; the rest never touched */
static struct worker workers[MAX_WORKERS];
static struct authlimit limits;
static struct authlimit_entry limit_entries[LIMIT_ENTRIES];
static int done_pipe[2] = {-1, -1};
static uid_t handler_uid = (uid_t)-1;
static gid_t handler_gid = (gid_t)-1;
static uint64_t next_seq;
static volatile sig_atomic_t stopping;

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- the check itself (worker threads) ---------------------------------------------------- */

/* Looks the user up and verifies; fills c->result and c->why. Runs in a worker. */
static void check(struct worker *w, struct client *c)
{
    char hash[USERS_HASH_SIZE];
    const char *why = NULL;
    /* a name that is no token (a space, say) is no mailbox, even if a hand edit put it in the
     * file: the answer names the mailbox in one word */
    int found =
        strcmp(c->ukey, "u ?") == 0 ? 0 : users_lookup(conf.users_file, c->user, hash, sizeof hash);
    if (found < 0) {
        c->result = -1;
        str_format(c->why, sizeof c->why, "cannot read the users file %.100s: %s", conf.users_file,
                   strerror(errno));
        return;
    }
    if (found == 0 &&
        users_dummy_hash(hash, sizeof hash, conf.pwhash_opslimit, conf.pwhash_memlimit) < 0) {
        c->result = -1;
        str_copy(c->why, sizeof c->why, "cannot make the dummy hash");
        return;
    }
    int ok = pwcheck_verify(&w->arena, hash, c->password, c->pwlen, &why);
    c->result = ok < 0 ? -1 : found && ok;
    if (ok < 0)
        str_format(c->why, sizeof c->why, "its hash: %s", why);
    else if (c->result == 1 && users_needs_rehash(hash, conf.pwhash_opslimit, conf.pwhash_memlimit))
        str_copy(c->why, sizeof c->why, "rehash");
    sodium_memzero(hash, sizeof hash);
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->lock);
        while (w->job == NULL)
            pthread_cond_wait(&w->wake, &w->lock);
        struct client *c = w->job;
        pthread_mutex_unlock(&w->lock);
        check(w, c);
        sodium_memzero(c->password, sizeof c->password);
        pthread_mutex_lock(&w->lock);
        w->job = NULL;
        pthread_mutex_unlock(&w->lock);
        int index = (int)(c - clients);
        if (write_all(done_pipe[1], &index, sizeof index) != 0)
            abort(); /* the main thread could never learn of this result */
    }
    return NULL;
}

static int start_workers(char *err, size_t errlen)
{
    if (pipe2(done_pipe, O_CLOEXEC) != 0)
        return str_format(err, errlen, "pipe: %s", strerror(errno)), -1;
    for (unsigned i = 0; i < conf.auth_max_parallel; i++) {
        struct worker *w = &workers[i];
        pwcheck_arena_init(&w->arena, (size_t)conf.pwhash_memlimit);
        pthread_mutex_init(&w->lock, NULL);
        pthread_cond_init(&w->wake, NULL);
        int rc = pthread_create(&w->thread, NULL, worker_main, w);
        if (rc != 0)
            return str_format(err, errlen, "cannot start a worker: %s", strerror(rc)), -1;
    }
    return 0;
}

/* ---- answers ------------------------------------------------------------------------------ */

static void drop_client(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    sodium_memzero(c, sizeof *c);
    c->fd = -1;
    c->state = C_FREE;
}

/* Sends one answer line; the connection stays for the next request (or closes after BAD). */
static void answer(struct client *c, const char *text, int close_after)
{
    char line[AUTHC_LINE_MAX / 4 + 2];
    int n = snprintf(line, sizeof line, "%s\n", text);
    if (n < 0 || (size_t)n >= sizeof line ||
        send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT) != n || close_after) {
        drop_client(c);
        return;
    }
    sodium_memzero(c->password, sizeof c->password);
    c->state = C_READ;
    c->in_len = 0;
}

static void bad(struct client *c, const char *why)
{
    log_msg(LOG_WARNING, "bad request: %s", why);
    answer(c, why[0] == 'B' ? why : "BAD malformed request", 1);
}

/* ---- requests ----------------------------------------------------------------------------- */

/* A name fit for the answer and the limits table: printable ASCII, no space. */
static int plain_token(const char *s, size_t max)
{
    size_t n = strlen(s);
    for (const char *p = s; *p != '\0'; p++)
        if (*p <= ' ' || *p >= 127)
            return 0;
    return n > 0 && n <= max;
}

/* Decodes base64 text into out (NUL-terminated, no NUL inside). Its length, or -1. */
static long unb64(const char *text, char *out, size_t size)
{
    size_t len;
    if (sodium_base642bin((unsigned char *)out, size - 1, text, strlen(text), NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0 ||
        memchr(out, '\0', len) != NULL)
        return -1;
    out[len] = '\0';
    return (long)len;
}

static void user_request(struct client *c, char *arg)
{
    char user[AUTHC_NAME_MAX + 1], reply[AUTHC_NAME_MAX + 8];
    if (arg == NULL || strchr(arg, ' ') != NULL || unb64(arg, user, sizeof user) < 0)
        return bad(c, "BAD syntax: USER <base64 user>");
    if (!plain_token(user, AUTHC_NAME_MAX))
        return answer(c, "NO", 0);
    int found = users_lookup(conf.users_file, user, NULL, 0);
    if (found < 0) {
        log_msg(LOG_ERR, "cannot read the users file %s: %s", conf.users_file, strerror(errno));
        return answer(c, "TEMP cannot read the users file", 0);
    }
    str_lower(user);
    str_format(reply, sizeof reply, "OK %s", user);
    answer(c, found ? reply : "NO", 0);
}

static size_t waiting_ready(uint64_t now);
static size_t free_workers(void);

static void pass_request(struct client *c, char *arg, uint64_t now)
{
    char *f[4];
    for (int i = 0; i < 4; i++) {
        f[i] = arg != NULL ? strsep(&arg, " ") : NULL;
        if (f[i] == NULL || f[i][0] == '\0')
            return bad(c, "BAD syntax: PASS <service> <client> <base64 user> <base64 password>");
    }
    long pwlen = unb64(f[3], c->password, sizeof c->password);
    if (arg != NULL || !plain_token(f[0], 16) || !plain_token(f[1], AUTHC_CLIENT_MAX) ||
        unb64(f[2], c->user, sizeof c->user) < 0 || pwlen < 0)
        return bad(c, "BAD syntax: PASS <service> <client> <base64 user> <base64 password>");
    str_copy(c->service, sizeof c->service, f[0]);
    str_copy(c->addr, sizeof c->addr, f[1]);
    c->pwlen = (size_t)pwlen;
    str_lower(c->user);
    str_format(c->akey, sizeof c->akey, "a %s", c->addr);
    str_format(c->ukey, sizeof c->ukey, "u %s",
               plain_token(c->user, AUTHC_NAME_MAX) ? c->user : "?");
    c->seq = ++next_seq;
    c->arrived_ms = now;
    uint64_t wait = authlimit_wait(&limits, c->akey, now);
    uint64_t uwait = authlimit_wait(&limits, c->ukey, now);
    if (wait == 0 && uwait == 0 && waiting_ready(now) >= free_workers() + conf.auth_max_queue) {
        log_msg(LOG_WARNING, "busy: %u checks running and %u waiting; client=%s refused",
                conf.auth_max_parallel, conf.auth_max_queue, log_field(c->addr));
        return answer(c, "TEMP too many logins at once, try again later", 0);
    }
    c->state = C_WAIT;
}

/* One complete line from a handler. */
static void request(struct client *c, uint64_t now)
{
    char *arg = strchr(c->in, ' ');
    if (arg != NULL)
        *arg++ = '\0';
    if (strcmp(c->in, "PASS") == 0)
        pass_request(c, arg, now);
    else if (strcmp(c->in, "USER") == 0)
        user_request(c, arg);
    else
        bad(c, "BAD unknown request (PASS or USER)");
    sodium_memzero(c->in, sizeof c->in);
}

static void read_client(struct client *c, uint64_t now)
{
    ssize_t n = recv(c->fd, c->in + c->in_len, sizeof c->in - 1 - c->in_len, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0)
        return drop_client(c);
    c->in_len += (size_t)n;
    char *lf = memchr(c->in, '\n', c->in_len);
    if (lf == NULL) {
        if (c->in_len >= sizeof c->in - 1)
            bad(c, "BAD request line too long");
        return;
    }
    if (lf != c->in + c->in_len - 1 || memchr(c->in, '\0', c->in_len) != NULL)
        return bad(c, "BAD one request at a time, one line, no NUL");
    *lf = '\0';
    request(c, now);
}

/* ---- scheduling: who may be verified now -------------------------------------------------- */

static uint64_t wait_of(struct client *c, uint64_t now)
{
    uint64_t a = authlimit_wait(&limits, c->akey, now), u = authlimit_wait(&limits, c->ukey, now);
    return a > u ? a : u;
}

static int free_worker(void)
{
    for (unsigned i = 0; i < conf.auth_max_parallel; i++)
        if (!workers[i].busy)
            return (int)i;
    return -1;
}

static size_t free_workers(void)
{
    size_t n = 0;
    for (unsigned i = 0; i < conf.auth_max_parallel; i++)
        n += !workers[i].busy;
    return n;
}

static size_t waiting_ready(uint64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < clients_used; i++)
        if (clients[i].state == C_WAIT && wait_of(&clients[i], now) == 0)
            n++;
    return n;
}

/* The oldest waiting check no failure delay holds back, or NULL; *next_ms becomes the
 * earliest time a held-back one may start. */
static struct client *next_ready(uint64_t now, uint64_t *next_ms)
{
    struct client *best = NULL;
    for (size_t i = 0; i < clients_used; i++) {
        struct client *c = &clients[i];
        if (c->state != C_WAIT)
            continue;
        uint64_t w = wait_of(c, now);
        if (w == 0 && (best == NULL || c->seq < best->seq))
            best = c;
        else if (w != 0 && w != UINT64_MAX && now + w < *next_ms)
            *next_ms = now + w;
    }
    return best;
}

static void dispatch(uint64_t now, uint64_t *next_ms)
{
    int wi;
    struct client *c;
    while ((wi = free_worker()) >= 0 && (c = next_ready(now, next_ms)) != NULL) {
        struct worker *w = &workers[wi];
        authlimit_start(&limits, c->akey, now);
        authlimit_start(&limits, c->ukey, now);
        c->state = C_RUN;
        c->started_ms = now;
        w->busy = 1;
        pthread_mutex_lock(&w->lock);
        w->job = c;
        pthread_cond_signal(&w->wake);
        pthread_mutex_unlock(&w->lock);
    }
    next_ready(now, next_ms); /* the earliest start of what still waits */
}

/* A worker is done with c: count the result, answer now or hold a failure back. */
static void finish(struct client *c, uint64_t now)
{
    for (unsigned i = 0; i < conf.auth_max_parallel; i++)
        if (workers[i].busy && workers[i].job == NULL) {
            workers[i].busy = 0; /* exactly the worker that sent c */
            workers[i].last_ms = now;
        }
    int ok = c->result != 0; /* a temporary failure is not a failed login */
    unsigned fa = authlimit_end(&limits, c->akey, ok, 0, now);
    unsigned fu = authlimit_end(&limits, c->ukey, ok, 1, now);
    uint64_t waited = c->started_ms - c->arrived_ms; /* in the queue or held back */
    if (c->gone)
        return drop_client(c);
    if (c->result < 0) {
        log_msg(LOG_ERR, "cannot check a password: user=<%s> client=%s: %s", log_field(c->user),
                log_field(c->addr), c->why);
        return answer(c, "TEMP cannot check passwords now", 0);
    }
    if (c->result == 1) {
        if (strcmp(c->why, "rehash") == 0)
            log_msg(LOG_NOTICE,
                    "the password hash of <%s> uses other limits than yubin.conf; "
                    "re-key it with yubin-user passwd",
                    log_field(c->user));
        str_format(c->answer, sizeof c->answer, "OK %s %llu", c->user, (unsigned long long)waited);
        return answer(c, c->answer, 0);
    }
    uint64_t da = authlimit_delay(&limits, fa), du = authlimit_delay(&limits, fu);
    uint64_t hold = da > du ? da : du;
    c->hold_until_ms = now + hold;
    str_format(c->answer, sizeof c->answer, "NO %llu %u", (unsigned long long)(waited + hold), fa);
    c->state = C_HOLD;
    if (hold > 0)
        log_msg(LOG_NOTICE, "login delayed: client=%s failures=%u delay=%llums", log_field(c->addr),
                fa, (unsigned long long)(waited + hold));
}

static void release_held(uint64_t now, uint64_t *next_ms)
{
    for (size_t i = 0; i < clients_used; i++) {
        struct client *c = &clients[i];
        if (c->state != C_HOLD)
            continue;
        if (c->hold_until_ms <= now)
            answer(c, c->answer, 0);
        else if (c->hold_until_ms < *next_ms)
            *next_ms = c->hold_until_ms;
    }
}

/* Unmaps the arena of each worker idle for auth_arena_idle seconds: a burst of logins finds
 * its memory warm, a quiet service gives the memory back. Only an idle worker's arena is
 * touched, under its lock (the worker mapped it). */
static void release_idle_arenas(uint64_t now, uint64_t *next_ms)
{
    uint64_t idle_ms = (uint64_t)conf.auth_arena_idle * 1000;
    for (unsigned i = 0; i < conf.auth_max_parallel; i++) {
        struct worker *w = &workers[i];
        if (w->busy)
            continue;
        pthread_mutex_lock(&w->lock);
        if (w->arena.mem != NULL && now - w->last_ms >= idle_ms)
            pwcheck_arena_free(&w->arena);
        else if (w->arena.mem != NULL && w->last_ms + idle_ms < *next_ms)
            *next_ms = w->last_ms + idle_ms;
        pthread_mutex_unlock(&w->lock);
    }
}

static void read_done(uint64_t now)
{
    int index;
    while (read(done_pipe[0], &index, sizeof index) == (ssize_t)sizeof index) {
        if (index >= 0 && (size_t)index < clients_used && clients[index].state == C_RUN)
            finish(&clients[index], now);
        struct pollfd p = {.fd = done_pipe[0], .events = POLLIN};
        if (poll(&p, 1, 0) != 1)
            break;
    }
}

/* ---- connections -------------------------------------------------------------------------- */

/* Only the handlers' account, root and ourselves may ask. */
static int peer_allowed(int fd)
{
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
        return 0;
    if (cr.uid == 0 || cr.uid == geteuid() || cr.uid == handler_uid)
        return 1;
    log_msg(LOG_WARNING, "refused a connection from uid %ld pid %ld (not the account '%s')",
            (long)cr.uid, (long)cr.pid, conf.user);
    return 0;
}

static void accept_clients(int listen_fd)
{
    for (;;) {
        int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd < 0)
            return;
        size_t i = 0;
        while (i < clients_used && clients[i].state != C_FREE)
            i++;
        if (!peer_allowed(fd) || i == MAX_CLIENTS) {
            const char *text =
                i == MAX_CLIENTS ? "TEMP too many connections\n" : "BAD not allowed\n";
            if (i == MAX_CLIENTS)
                log_msg(LOG_WARNING, "%d connections already: one refused", MAX_CLIENTS);
            (void)!send(fd, text, strlen(text), MSG_NOSIGNAL | MSG_DONTWAIT);
            close(fd);
            continue;
        }
        if (i == clients_used)
            clients_used++; /* a slot never used before: all zero, as a free one is */
        clients[i].fd = fd;
        clients[i].state = C_READ;
        clients[i].in_len = 0;
    }
}

static int poll_timeout(uint64_t now, uint64_t next_ms)
{
    if (next_ms == UINT64_MAX)
        return -1;
    return next_ms <= now ? 0 : (int)(next_ms - now > 60000 ? 60000 : next_ms - now);
}

static void serve(int listen_fd)
{
    static struct pollfd fds[MAX_CLIENTS + 2];
    static size_t who[MAX_CLIENTS + 2];
    while (!stopping) {
        uint64_t now = now_ms(), next = UINT64_MAX;
        dispatch(now, &next);
        release_held(now, &next);
        release_idle_arenas(now, &next);
        size_t n = 0;
        fds[n++] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
        fds[n++] = (struct pollfd){.fd = done_pipe[0], .events = POLLIN};
        for (size_t i = 0; i < clients_used; i++) {
            if (clients[i].state == C_FREE || clients[i].gone)
                continue;
            who[n] = i;
            fds[n++] = (struct pollfd){.fd = clients[i].fd,
                                       .events = clients[i].state == C_READ ? POLLIN : POLLRDHUP};
        }
        if (poll(fds, n, poll_timeout(now, next)) < 0 && errno != EINTR)
            return log_msg(LOG_ERR, "poll: %s", strerror(errno));
        now = now_ms();
        if (fds[1].revents)
            read_done(now);
        for (size_t k = 2; k < n; k++) {
            struct client *c = &clients[who[k]];
            if (fds[k].revents == 0 || c->fd != fds[k].fd)
                continue;
            if (c->state == C_READ)
                read_client(c, now);
            else if (c->state == C_RUN)
                c->gone = 1; /* dropped when its worker is done */
            else if (c->state != C_FREE)
                drop_client(c); /* a waiting or held handler went away */
        }
        if (fds[0].revents)
            accept_clients(listen_fd);
    }
}

/* ---- start-up ----------------------------------------------------------------------------- */

/* The socket systemd passed (LISTEN_FDS, Accept=no), or -1 if there is none. */
static int systemd_socket(void)
{
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    uint64_t p, n;
    if (pid == NULL || fds == NULL || parse_u64(pid, &p) != 0 || p != (uint64_t)getpid() ||
        parse_u64(fds, &n) != 0 || n != 1)
        return -1;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    fcntl(3, F_SETFD, FD_CLOEXEC);
    return 3;
}

/* Binds auth_socket: 0660, owned by auth_user and the handlers' group when we are root. A
 * socket that still answers belongs to a running yubin-auth and is left alone. The socket is
 * bound under a temporary name, given its owner, then renamed into place, so a handler never
 * finds it at auth_socket with root's group (a connect() there would fail EACCES). */
static int bind_socket(uid_t auth_uid, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct sockaddr_un tmp = {.sun_family = AF_UNIX};
    struct stat st;
    if (str_copy(sun.sun_path, sizeof sun.sun_path, conf.auth_socket) != 0 ||
        str_format(tmp.sun_path, sizeof tmp.sun_path, "%s.new", conf.auth_socket) < 0)
        return str_format(err, errlen, "auth_socket is too long"), -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return str_format(err, errlen, "socket: %s", strerror(errno)), -1;
    if (lstat(conf.auth_socket, &st) == 0 && !S_ISSOCK(st.st_mode))
        return close(fd), str_format(err, errlen, "%s exists and is no socket", conf.auth_socket),
               -1;
    if (lstat(conf.auth_socket, &st) == 0) {
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int alive = probe >= 0 && connect(probe, (struct sockaddr *)&sun, sizeof sun) == 0;
        if (probe >= 0)
            close(probe);
        if (alive)
            return close(fd),
                   str_format(err, errlen, "%s: a yubin-auth already answers there",
                              conf.auth_socket),
                   -1;
    }
    char dir[sizeof sun.sun_path];
    char *slash;
    if (str_copy(dir, sizeof dir, conf.auth_socket) == 0 && (slash = strrchr(dir, '/')) != NULL &&
        slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0755) == 0 && geteuid() == 0 && chown(dir, auth_uid, (gid_t)-1) != 0)
            return str_format(err, errlen, "chown %s: %s", dir, strerror(errno)), close(fd), -1;
    }
    unlink(tmp.sun_path);
    mode_t old = umask(0117);
    int rc = bind(fd, (struct sockaddr *)&tmp, sizeof tmp);
    umask(old);
    if (rc != 0 || listen(fd, 256) != 0)
        return str_format(err, errlen, "cannot listen on %s: %s", tmp.sun_path, strerror(errno)),
               close(fd), unlink(tmp.sun_path), -1;
    if (geteuid() == 0 && handler_gid != (gid_t)-1 &&
        chown(tmp.sun_path, auth_uid, handler_gid) != 0)
        return str_format(err, errlen, "chown %s: %s", tmp.sun_path, strerror(errno)), close(fd),
               unlink(tmp.sun_path), -1;
    if (rename(tmp.sun_path, conf.auth_socket) != 0)
        return str_format(err, errlen, "rename %s: %s", tmp.sun_path, strerror(errno)), close(fd),
               unlink(tmp.sun_path), -1;
    return fd;
}

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void more_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < MAX_CLIENTS + 64) {
        rl.rlim_cur = rl.rlim_max < MAX_CLIENTS + 64 ? rl.rlim_max : MAX_CLIENTS + 64;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int usage(void)
{
    fprintf(stderr, "usage: yubin-auth [-C yubin.conf] [-D]\n");
    return 64;
}

/* -D, for rc scripts at inetd sites: the work goes on in a child of a new session (so the
 * socket's SO_PEERCRED names the real daemon); the parent exits 0 once the child is serving,
 * or with the child's own exit status if it could not start. */
static int ready_fd = -1;

static void detach(void)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0)
        exit(cli_fail("yubin-auth", 71, "pipe: %s", strerror(errno)));
    pid_t pid = fork();
    if (pid < 0)
        exit(cli_fail("yubin-auth", 71, "fork: %s", strerror(errno)));
    if (pid > 0) {
        char b;
        int st;
        close(p[1]);
        if (read(p[0], &b, 1) == 1)
            _exit(0);
        _exit(waitpid(pid, &st, 0) == pid && WIFEXITED(st) ? WEXITSTATUS(st) : 70);
    }
    close(p[0]);
    ready_fd = p[1];
    setsid();
}

/* The detached child is serving: off the terminal, and the parent may go. */
static void detached_ready(void)
{
    if (ready_fd < 0)
        return;
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
        dup2(null, 0), dup2(null, 1), dup2(null, 2);
        close(null);
    }
    (void)!write(ready_fd, "", 1);
    close(ready_fd);
    ready_fd = -1;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    int opt, background = 0;
    char err[512];
    while ((opt = getopt(argc, argv, "C:D")) != -1) {
        if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'D')
            background = 1;
        else
            return usage();
    }
    if (optind != argc)
        return usage();
    if (background)
        detach();
    if (sodium_init() < 0)
        return cli_fail("yubin-auth", 70, "libsodium cannot start");
    if (conf_load(&conf, conf_path, err, sizeof err) != 0)
        return cli_fail("yubin-auth", 78, "%s", err);
    log_open("yubin-auth", conf.syslog_socket);
    uid_t auth_uid = geteuid();
    gid_t auth_gid;
    if (privs_account(conf.user, &handler_uid, &handler_gid) != 0)
        handler_uid = (uid_t)-1, handler_gid = (gid_t)-1;
    if (geteuid() == 0 && privs_account(conf.auth_user, &auth_uid, &auth_gid) != 0)
        return cli_fail("yubin-auth", 67, "no such account '%s' (auth_user)", conf.auth_user);
    int listen_fd = systemd_socket(), bound = listen_fd < 0;
    if (listen_fd < 0 && (listen_fd = bind_socket(auth_uid, err, sizeof err)) < 0)
        return cli_fail("yubin-auth", 71, "%s", err);
    fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
    more_files();
    if (privs_drop(conf.auth_user, err, sizeof err) != 0)
        return cli_fail("yubin-auth", 77, "%s", err);
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    authlimit_init(&limits, limit_entries, LIMIT_ENTRIES, conf.auth_delay_ms, 60000);
    if (start_workers(err, sizeof err) != 0)
        return cli_fail("yubin-auth", 71, "%s", err);
    log_msg(LOG_INFO, "serving %s: %u checks at once, %u waiting at most, users file %s",
            conf.auth_socket, conf.auth_max_parallel, conf.auth_max_queue, conf.users_file);
    detached_ready();
    serve(listen_fd);
    log_msg(LOG_INFO, "stopping");
    if (bound)
        unlink(conf.auth_socket); /* ours: the directory is auth_user's when we made it */
    return 0;
}
