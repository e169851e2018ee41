/*
 * relay: queue-run's remote delivery to one destination (see relay.h). It must never lock an
 * entry or pick its recipients, hold a message in memory, send in clear where the policy
 * requires TLS, or go on past the destination's deadline.
 */
#define _GNU_SOURCE
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "deadline.h"
#include "log.h"
#include "relay.h"
#include "smtpc.h"
#include "tlsdest.h"
#include "transcript.h"
#include "util.h"

/* What one worker holds while it talks to one destination. */
struct relay {
    const struct relay_env *env;
    struct relay_dest d;
    struct smtpc *c;
    int up;            /* c is connected */
    size_t host, addr; /* the next address to try */
    int exhausted;     /* every address was tried */
    int in_clear;      /* the next attempt is the one retry in clear after a failed handshake */
    int all_perm;      /* every address refused for good (5xx greeting) */
    char why[SMTPC_TEXT_SIZE];
    char why_host[MX_NAME_SIZE]; /* the host a 5xx greeting came from, else "" */
    char host_name[MX_NAME_SIZE];
    size_t cur_host;         /* the host c is connected to */
    struct relay *next;      /* lower-preference hosts, for recipients that got a 4xx here */
    struct smtpc_reply *res; /* SMTPC_MAX_RCPTS replies of one transaction */
    unsigned n_conns, n_msgs;
    struct transcript *tr;       /* this connection's dialogue (transcript_dir), or NULL */
    const struct smtpc_msg *msg; /* the message being sent, for the transcript */
};

/* What one recipient's attempt came to, across the MX hosts tried. */
struct outcome {
    int result; /* 0, 1 or -1 */
    char text[SMTPC_TEXT_SIZE];
    char host[MX_NAME_SIZE];  /* the host that replied, "" if none did */
    char tls[SMTPC_TLS_SIZE]; /* the TLS of the connection that replied, "" if none did */
};

/* A -v line. */
static void say(const struct relay *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const struct relay *k, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    if (k->env->say == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    k->env->say(k->env->say_arg, line);
}

/* smtpc's dialogue: into the transcript file, and with -v onto stderr. */
static void transcript(void *arg, char dir, const char *line, size_t len)
{
    struct relay *k = arg;
    if (k->tr != NULL && dir == 'C' && k->msg != NULL && len > 10 &&
        memcmp(line, "<message: ", 10) == 0)
        transcript_file(k->tr, 'C', k->msg->fd, (uint64_t)k->msg->offset,
                        strtoull(line + 10, NULL, 10)); /* smtpc's "<message: N octets>" */
    else if (k->tr != NULL)
        transcript_line(k->tr, dir, line, len);
    if (k->env->verbose)
        fprintf(stderr, "%s[%ld]: %c: %.*s\n", k->env->prog, (long)getpid(), dir, (int)len, line);
}

static void set_port(struct sockaddr_storage *sa, unsigned port, socklen_t *len)
{
    if (sa->ss_family == AF_INET6) {
        ((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in6);
    } else {
        ((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
        *len = sizeof(struct sockaddr_in);
    }
}

static struct relay *conn_new(const struct relay_env *env, const struct relay_dest *d,
                              size_t first_host)
{
    struct relay *k = calloc(1, sizeof *k);
    if (!k)
        return NULL;
    k->env = env;
    k->d = *d;
    k->all_perm = 1;
    k->host = first_host;
    k->c = malloc(sizeof *k->c);
    k->res = malloc(SMTPC_MAX_RCPTS * sizeof *k->res);
    if (!k->c || !k->res) {
        free(k->c);
        free(k->res);
        free(k);
        return NULL;
    }
    k->c->fd = -1;
    k->c->ssl = NULL;
    return k;
}

void relay_free(struct relay *k, unsigned *conns, unsigned *msgs)
{
    while (k) {
        struct relay *next = k->next;
        if (k->up)
            smtpc_quit(k->c);
        transcript_close(k->tr);
        *conns += k->n_conns;
        *msgs += k->n_msgs;
        free(k->c);
        free(k->res);
        free(k);
        k = next;
    }
}

/* The TLS of the next connection to h (lib/tlsdest): 0 to connect, or 1 when h must wait
 * (k->why says why). */
static int conn_tls(struct relay *k, const struct mx_host *h, struct smtpc_opts *o)
{
    const struct tlsdest td = {k->env->tls_ctx, k->env->tls_policy, k->env->resolver};
    int smarthost = k->env->conf->smarthost[0] != '\0', in_clear = k->in_clear;
    char note[200], why[SMTPC_TEXT_SIZE];
    k->in_clear = 0;
    if (tlsdest_prepare(&td, smarthost ? h->name : k->d.name, k->d.mx, h, k->d.port, smarthost,
                        in_clear, o, note, sizeof note, why, sizeof why) == 0) {
        say(k, "%s: TLS %s%s", h->name, note,
            in_clear ? ", in clear after a failed handshake" : "");
        return 0;
    }
    k->all_perm = 0;
    k->why_host[0] = '\0';
    str_copy(k->why, sizeof k->why, why);
    say(k, "%s: %s", h->name, why);
    log_msg(LOG_NOTICE, "%s (%s): %s", h->name, k->d.name, log_field(why));
    k->host++; /* the next host: this one cannot take the mail as its policy asks */
    k->addr = 0;
    return 1;
}

/* Connects to the next address of the destination that answers. 0, or -1 when every
 * address has been tried or the destination's time is up (k->why says why). */
static int conn_open(struct relay *k)
{
    const struct mx_result *mx = k->d.mx;
    struct smtpc_opts o = {.helo = k->env->conf->hostname,
                           .connect_timeout = k->env->conf->connect_timeout,
                           .transcript = transcript,
                           .transcript_arg = k,
                           .auth_user = k->env->auth_user[0] ? k->env->auth_user : NULL,
                           .auth_pass = k->env->auth_pass};
    while (!k->exhausted) {
        if ((o.session_limit = deadline_left(k->d.deadline, k->env->conf->relay_session_limit)) ==
            0) {
            k->exhausted = 1;
            k->all_perm = 0;
            k->why_host[0] = '\0';
            str_format(k->why, sizeof k->why, "4.4.2 time limit for %s in this pass (%u s) reached",
                       k->d.name, k->env->conf->relay_destination_limit);
            break;
        }
        if (k->host >= mx->n_hosts) {
            k->exhausted = 1;
            break;
        }
        const struct mx_host *h = &mx->hosts[k->host];
        if (k->addr >= h->n_addrs) {
            k->host++;
            k->addr = 0;
            continue;
        }
        struct sockaddr_storage sa = h->addrs[k->addr++];
        socklen_t len;
        struct smtpc_reply why;
        set_port(&sa, k->d.port, &len);
        if (conn_tls(k, h, &o) != 0)
            continue;
        say(k, "connecting to %s (preference %u)", h->name, h->pref);
        k->tr = transcript_start(k->env->conf->transcript_dir, k->env->conf->transcript_max_size,
                                 k->env->prog, h->name);
        int r = smtpc_connect(k->c, (struct sockaddr *)&sa, len, &o, &why);
        if (r != 0) {
            transcript_close(k->tr); /* a file per attempt: it shows why it failed */
            k->tr = NULL;
        }
        if (r == 0) {
            k->up = 1;
            k->n_conns++;
            k->cur_host = k->host;
            str_copy(k->host_name, sizeof k->host_name, h->name);
            return 0;
        }
        if (r > 0)
            k->all_perm = 0;
        if (k->c->tls_failed) { /* `may`: the same address once more, in clear */
            log_msg(LOG_NOTICE, "%s (%s): %s: trying again without TLS", h->name, k->d.name,
                    log_field(why.text));
            say(k, "%s: %s: trying again without TLS", h->name, why.text);
            k->in_clear = 1;
            k->addr--;
        }
        str_copy(k->why, sizeof k->why, why.text);
        str_copy(k->why_host, sizeof k->why_host, why.code ? h->name : "");
        say(k, "%s: %s", h->name, why.text);
        log_msg(LOG_NOTICE, "%s (%s): %s", h->name, k->d.name, log_field(why.text));
    }
    return -1;
}

static void set_outcome(struct outcome *o, int result, const char *text, const char *host)
{
    o->result = result;
    if (str_copy(o->text, sizeof o->text, text) < 0)
        str_copy_n(o->text, sizeof o->text, text, sizeof o->text - 1);
    str_copy(o->host, sizeof o->host, host ? host : "");
    o->tls[0] = '\0';
}

static void send_some(struct relay *k, struct queue_entry *e, const size_t *idx, size_t *pos,
                      size_t n, struct outcome *out, int fallback);

/* Recipients pos[0..n) got a 4xx at k's host: the lower-preference MX hosts get a try
 * (RFC 5321 §5.1) over one more connection, kept for the job's other messages. */
static void try_next_mx(struct relay *k, struct queue_entry *e, const size_t *idx, size_t *pos,
                        size_t n, struct outcome *out)
{
    if (k->cur_host + 1 >= k->d.mx->n_hosts)
        return;
    if (!k->next && !(k->next = conn_new(k->env, &k->d, k->cur_host + 1)))
        return;
    say(k, "%zu recipient(s) deferred by %s: trying the next MX", n, k->host_name);
    send_some(k->next, e, idx, pos, n, out, 1);
}

/* Sends recipients idx[pos[0..n)] of e over k (n <= SMTPC_MAX_RCPTS) and sets out[pos[i]].
 * On a lost connection the recipients that got no answer go to the next address; a 4xx goes
 * to the next MX host. fallback: k is such a next host, and not reaching it (or losing it)
 * leaves the better host's answer in out. */
static void send_some(struct relay *k, struct queue_entry *e, const size_t *idx, size_t *pos,
                      size_t n, struct outcome *out, int fallback)
{
    const char *rcpts[SMTPC_MAX_RCPTS];
    size_t grey[SMTPC_MAX_RCPTS];
    while (n > 0) {
        if (!k->up && conn_open(k) != 0) {
            for (size_t i = 0; i < n && !fallback; i++)
                set_outcome(&out[pos[i]], k->all_perm ? -1 : 1, k->why, k->why_host);
            return;
        }
        uint64_t size;
        int fd = queue_open_data(e, &size);
        if (fd < 0) {
            for (size_t i = 0; i < n; i++)
                set_outcome(&out[pos[i]], 1, "4.3.0 cannot read the queued message", NULL);
            return;
        }
        for (size_t i = 0; i < n; i++)
            rcpts[i] = e->rcpts[idx[pos[i]]].addr;
        struct smtpc_msg m = {
            .sender = e->sender, .rcpts = rcpts, .n_rcpts = n, .fd = fd, .offset = (off_t)e->skip};
        k->msg = &m;
        int r = smtpc_send_all(k->c, &m, k->res, k->env->conf->relay_max_rcpts);
        k->msg = NULL;
        close(fd);
        k->n_msgs++;
        size_t again = 0, n_grey = 0;
        for (size_t i = 0; i < n; i++) {
            const struct smtpc_reply *res = &k->res[i];
            int rr = smtpc_reply_result(res);
            if (r == 1 && rr == 1 && res->code == 0) {
                pos[again++] = pos[i];
                continue;
            }
            if (!fallback || res->code != 0)
                set_outcome(&out[pos[i]], rr, res->text, res->code ? k->host_name : NULL);
            if (res->code != 0)
                str_copy(out[pos[i]].tls, sizeof out[pos[i]].tls, k->c->tls);
            if (rr == 1 && res->code >= 400)
                grey[n_grey++] = pos[i];
        }
        if (r == 1)
            k->up = 0;
        if (n_grey > 0)
            try_next_mx(k, e, idx, grey, n_grey, out);
        n = again;
    }
}

void relay_deliver(struct relay *k, struct queue_entry *e, const size_t *idx, size_t n, time_t now)
{
    const struct mx_result *mx = k->d.mx;
    size_t chunk = n < SMTPC_MAX_RCPTS ? n : SMTPC_MAX_RCPTS;
    struct outcome *out = mx->status == MX_OK ? calloc(chunk, sizeof *out) : NULL;
    size_t *pos = out ? malloc(chunk * sizeof *pos) : NULL;
    if (!pos) {
        for (size_t i = 0; i < n; i++)
            bounce_record(k->env->bounces, e, idx[i], mx->status == MX_PERMFAIL ? -1 : 1,
                          mx->status == MX_OK ? "4.3.0 out of memory" : mx->why, NULL, now);
        free(out);
        return;
    }
    for (size_t s = 0; s < n; s += chunk) {
        size_t m = n - s < chunk ? n - s : chunk;
        for (size_t i = 0; i < m; i++) {
            pos[i] = i;
            set_outcome(&out[i], 1, "4.4.0 not attempted", NULL);
        }
        send_some(k, e, idx + s, pos, m, out, 0);
        for (size_t i = 0; i < m; i++) {
            str_copy(e->rcpts[idx[s + i]].tls, sizeof e->rcpts[idx[s + i]].tls, out[i].tls);
            bounce_record(k->env->bounces, e, idx[s + i], out[i].result, out[i].text,
                          out[i].host[0] ? out[i].host : NULL, now);
        }
    }
    free(out);
    free(pos);
}

struct relay *relay_new(const struct relay_env *env, const struct relay_dest *d)
{
    return conn_new(env, d, 0);
}
