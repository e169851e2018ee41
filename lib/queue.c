/*
 * queue: outbound queue entries on disk; the format is in yubin-queue(5), the rules in
 * queue.h. It never rewrites a .msg file, never holds a message in memory, and never leaves
 * a half-written envelope where a run could read it.
 */
#define _GNU_SOURCE
#include "queue.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util.h"

#define ENV_MAX_SIZE (QUEUE_MAX_RCPTS * 1200 + 8192)

static const unsigned retry_table[] = {300, 900, 1800, 3600, 7200, 14400};

unsigned queue_retry_delay(unsigned n)
{
    if (n == 0)
        return 0;
    if (n > ARRAY_LEN(retry_table))
        n = ARRAY_LEN(retry_table);
    return retry_table[n - 1];
}

const char *queue_state_name(enum queue_state s)
{
    return s == QUEUE_DONE      ? "done"
           : s == QUEUE_FAILED  ? "failed"
           : s == QUEUE_BOUNCED ? "bounced"
                                : "pending";
}

int queue_entry_init(struct queue_entry *e, const char *state_dir, const char *sender,
                     uint64_t skip)
{
    memset(e, 0, sizeof *e);
    e->lock_fd = -1;
    e->skip = skip;
    e->created = time(NULL);
    if (str_format(e->dir, sizeof e->dir, "%s/queue", state_dir) < 0 ||
        str_copy(e->sender, sizeof e->sender, sender) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static struct queue_rcpt *rcpt_new(struct queue_entry *e)
{
    if (e->n_rcpts >= QUEUE_MAX_RCPTS) {
        errno = E2BIG;
        return NULL;
    }
    if (e->n_rcpts == e->rcpts_alloc) {
        size_t n = e->rcpts_alloc ? e->rcpts_alloc * 2 : 8;
        struct queue_rcpt *r = realloc(e->rcpts, n * sizeof *r);
        if (!r)
            return NULL;
        e->rcpts = r;
        e->rcpts_alloc = n;
    }
    struct queue_rcpt *r = &e->rcpts[e->n_rcpts];
    memset(r, 0, sizeof *r);
    return r;
}

int queue_entry_add(struct queue_entry *e, const char *addr)
{
    for (size_t i = 0; i < e->n_rcpts; i++)
        if (str_ieq(e->rcpts[i].addr, addr))
            return 0;
    if (addr[0] == '\0') {
        errno = EINVAL;
        return -1;
    }
    struct queue_rcpt *r = rcpt_new(e);
    if (!r)
        return -1;
    if (str_copy(r->addr, sizeof r->addr, addr) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    e->n_rcpts++;
    return 0;
}

void queue_entry_free(struct queue_entry *e)
{
    free(e->rcpts);
    e->rcpts = NULL;
    e->n_rcpts = e->rcpts_alloc = 0;
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    e->lock_fd = -1;
}

size_t queue_count(const struct queue_entry *e, enum queue_state state)
{
    size_t n = 0;
    for (size_t i = 0; i < e->n_rcpts; i++)
        n += e->rcpts[i].state == state;
    return n;
}

/* Copies text cut to fit, control bytes (and spaces, when no_space) as spaces or '_'. */
static void clean_copy(char *dst, size_t size, const char *src, int no_space)
{
    size_t n = 0;
    for (const char *p = src ? src : ""; *p && n + 1 < size; p++)
        dst[n++] = ((unsigned char)*p <= 32 || *p == 127) ? (no_space ? '_' : ' ') : *p;
    dst[n] = '\0';
}

void queue_set_result(struct queue_entry *e, size_t i, int result, const char *reply,
                      const char *host, time_t now)
{
    struct queue_rcpt *r = &e->rcpts[i];
    clean_copy(r->reply, sizeof r->reply, reply, 0);
    clean_copy(r->host, sizeof r->host, host, 1);
    r->attempts++;
    if (result == 0) {
        r->state = QUEUE_DONE;
    } else if (result < 0) {
        r->state = QUEUE_FAILED;
    } else {
        r->state = QUEUE_PENDING;
        r->next_attempt = now + queue_retry_delay(r->attempts);
    }
}

/* ---- envelope text ---- */

struct sbuf {
    char *p;
    size_t len, cap;
    int failed;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_str(struct sbuf *b, const char *s)
{
    sb_add(b, s, strlen(s));
}

static void sb_u64(struct sbuf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v);
    if (n < 0 || (size_t)n >= sizeof tmp)
        b->failed = 1;
    else
        sb_add(b, tmp, (size_t)n);
}

/* xtext (RFC 3461): bytes outside '!'..'~', '+' and '=' become +HH. "" is written "<>". */
static void sb_xtext(struct sbuf *b, const char *s)
{
    if (*s == '\0') {
        sb_str(b, "<>");
        return;
    }
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 33 || c > 126 || c == '+' || c == '=') {
            char hex[4];
            snprintf(hex, sizeof hex, "+%02X", c);
            sb_add(b, hex, 3);
        } else {
            sb_add(b, s, 1);
        }
    }
}

static int unxtext(char *dst, size_t size, const char *s, size_t len)
{
    size_t o = 0;
    if (len == 2 && s[0] == '<' && s[1] == '>')
        len = 0;
    for (size_t i = 0; i < len; i++) {
        int c = (unsigned char)s[i];
        if (c == '+') {
            if (i + 2 >= len)
                return -1;
            int hi = hex_value((unsigned char)s[i + 1]), lo = hex_value((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
                return -1;
            c = hi * 16 + lo;
            i += 2;
        }
        if (o + 1 >= size)
            return -1;
        dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return 0;
}

int queue_env_format(const struct queue_entry *e, char **buf, size_t *len)
{
    struct sbuf b = {0};
    sb_str(&b, "yubin-queue 1\nid ");
    sb_str(&b, e->id);
    sb_str(&b, "\ncreated ");
    sb_u64(&b, (uint64_t)e->created);
    sb_str(&b, "\nsender ");
    sb_xtext(&b, e->sender);
    sb_str(&b, "\nskip ");
    sb_u64(&b, e->skip);
    sb_str(&b, "\nflags");
    sb_str(&b, e->flags == 0 ? " -" : "");
    sb_str(&b, (e->flags & QUEUE_F_WARNED) ? " warned" : "");
    sb_str(&b, (e->flags & QUEUE_F_BOUNCE) ? " bounce" : "");
    sb_str(&b, (e->flags & QUEUE_F_HELD) ? " held" : "");
    sb_str(&b, "\n");
    for (size_t i = 0; i < e->n_rcpts; i++) {
        const struct queue_rcpt *r = &e->rcpts[i];
        sb_str(&b, "rcpt ");
        sb_str(&b, queue_state_name(r->state));
        sb_str(&b, " ");
        sb_u64(&b, r->attempts);
        sb_str(&b, " ");
        sb_u64(&b, (uint64_t)r->next_attempt);
        sb_str(&b, " ");
        sb_xtext(&b, r->addr);
        sb_str(&b, " ");
        sb_str(&b, r->host[0] ? r->host : "-");
        sb_str(&b, " ");
        sb_str(&b, r->reply);
        sb_str(&b, "\n");
        if (r->tls[0]) { /* since issue 9; an older envelope has no such lines */
            sb_str(&b, "tls ");
            sb_str(&b, r->tls);
            sb_str(&b, "\n");
        }
    }
    sb_str(&b, "end\n");
    if (b.failed) {
        free(b.p);
        errno = ENOMEM;
        return -1;
    }
    *buf = b.p;
    *len = b.len;
    return 0;
}

/* Splits off the next space-separated word of *s (up to end). */
static int next_word(const char **s, const char *end, const char **w, size_t *wlen)
{
    const char *p = *s;
    const char *q = p;
    while (q < end && *q != ' ')
        q++;
    if (q == p)
        return -1;
    *w = p;
    *wlen = (size_t)(q - p);
    *s = q < end ? q + 1 : q;
    return 0;
}

static int word_u64(const char *w, size_t len, uint64_t *v)
{
    char tmp[24];
    if (str_copy_n(tmp, sizeof tmp, w, len) < 0)
        return -1;
    return parse_u64(tmp, v);
}

static int word_is(const char *w, size_t len, const char *s)
{
    return strlen(s) == len && memcmp(w, s, len) == 0;
}

static int parse_state(const char *w, size_t len, enum queue_state *st)
{
    if (word_is(w, len, "pending"))
        *st = QUEUE_PENDING;
    else if (word_is(w, len, "done"))
        *st = QUEUE_DONE;
    else if (word_is(w, len, "failed"))
        *st = QUEUE_FAILED;
    else if (word_is(w, len, "bounced"))
        *st = QUEUE_BOUNCED;
    else
        return -1;
    return 0;
}

static int parse_rcpt(struct queue_entry *e, const char *p, const char *end)
{
    const char *w;
    size_t len;
    uint64_t attempts, next;
    struct queue_rcpt *r = rcpt_new(e);
    if (!r || next_word(&p, end, &w, &len) < 0 || parse_state(w, len, &r->state) < 0 ||
        next_word(&p, end, &w, &len) < 0 || word_u64(w, len, &attempts) < 0 ||
        attempts > UINT_MAX || next_word(&p, end, &w, &len) < 0 || word_u64(w, len, &next) < 0 ||
        next > (uint64_t)INT64_MAX || next_word(&p, end, &w, &len) < 0 ||
        unxtext(r->addr, sizeof r->addr, w, len) < 0 || r->addr[0] == '\0' ||
        next_word(&p, end, &w, &len) < 0 ||
        str_copy_n(r->host, sizeof r->host, w, word_is(w, len, "-") ? 0 : len) < 0 ||
        str_copy_n(r->reply, sizeof r->reply, p, (size_t)(end - p)) < 0)
        return -1;
    r->attempts = (unsigned)attempts;
    r->next_attempt = (time_t)next;
    e->n_rcpts++;
    return 0;
}

static int parse_flags(struct queue_entry *e, const char *p, const char *end)
{
    const char *w;
    size_t len;
    e->flags = 0;
    while (p < end && next_word(&p, end, &w, &len) == 0) {
        if (word_is(w, len, "warned"))
            e->flags |= QUEUE_F_WARNED;
        else if (word_is(w, len, "bounce"))
            e->flags |= QUEUE_F_BOUNCE;
        else if (word_is(w, len, "held"))
            e->flags |= QUEUE_F_HELD;
        else if (!word_is(w, len, "-"))
            return -1;
    }
    return 0;
}

/* One "key value" line; *done is set by "end". */
static int parse_line(struct queue_entry *e, const char *p, const char *end, int *done)
{
    const char *key;
    size_t klen;
    uint64_t v;
    if (next_word(&p, end, &key, &klen) < 0)
        return -1;
    if (word_is(key, klen, "end"))
        return *done = 1, p == end ? 0 : -1;
    if (word_is(key, klen, "rcpt"))
        return parse_rcpt(e, p, end);
    if (word_is(key, klen, "tls")) /* the TLS of the recipient just before */
        return e->n_rcpts == 0 ? -1
                               : str_copy_n(e->rcpts[e->n_rcpts - 1].tls, sizeof e->rcpts[0].tls, p,
                                            (size_t)(end - p));
    if (word_is(key, klen, "flags"))
        return parse_flags(e, p, end);
    if (word_is(key, klen, "sender"))
        return unxtext(e->sender, sizeof e->sender, p, (size_t)(end - p));
    if (word_is(key, klen, "id"))
        return e->id[0] == '\0' ? str_copy_n(e->id, sizeof e->id, p, (size_t)(end - p))
                                : (word_is(p, (size_t)(end - p), e->id) ? 0 : -1);
    if (word_u64(p, (size_t)(end - p), &v) < 0)
        return -1;
    if (word_is(key, klen, "created") && v <= (uint64_t)INT64_MAX)
        e->created = (time_t)v;
    else if (word_is(key, klen, "skip"))
        e->skip = v;
    else
        return -1;
    return 0;
}

int queue_env_parse(struct queue_entry *e, const char *text, size_t len)
{
    static const char magic[] = "yubin-queue 1\n";
    const char *p = text, *end = text + len;
    int done = 0;
    e->n_rcpts = 0;
    if (len < sizeof magic - 1 || memcmp(text, magic, sizeof magic - 1) != 0)
        goto bad;
    p += sizeof magic - 1;
    while (p < end && !done) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl || memchr(p, '\0', (size_t)(nl - p)) || parse_line(e, p, nl, &done) < 0)
            goto bad;
        p = nl + 1;
    }
    if (done && p == end)
        return 0;
bad:
    errno = EINVAL;
    return -1;
}

/* ---- files ---- */

static int entry_path(char *dst, size_t size, const struct queue_entry *e, const char *ext)
{
    if (str_format(dst, size, "%s/%s.%s", e->dir, e->id, ext) < 0) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

static int temp_errno(void)
{
    return (errno == ENAMETOOLONG || errno == EINVAL) ? -1 : 1;
}

/* Writes <id>.new, fsyncs it and renames it to <id>.env (the directory is not synced). */
static int env_write(struct queue_entry *e)
{
    char tmp[PATH_MAX + 200], env[PATH_MAX + 200];
    char *text = NULL;
    size_t len;
    if (entry_path(tmp, sizeof tmp, e, "new") < 0 || entry_path(env, sizeof env, e, "env") < 0 ||
        queue_env_format(e, &text, &len) < 0)
        return -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        free(text);
        return -1;
    }
    int rc = write_all(fd, text, len);
    free(text);
    if (rc == 0)
        rc = fsync(fd);
    int saved = errno;
    if (close(fd) != 0 && rc == 0)
        rc = -1, saved = errno;
    if (rc == 0 && rename(tmp, env) != 0)
        rc = -1, saved = errno;
    if (rc != 0)
        unlink(tmp);
    errno = saved;
    return rc;
}

/* Makes state_dir/queue when it is missing, and then syncs state_dir so the new directory
 * itself survives a crash (one more fsync, for the first entry only). */
static int ensure_dir(const char *dir)
{
    char parent[PATH_MAX];
    struct stat st;
    if (stat(dir, &st) == 0)
        return 0;
    if (mkdir(dir, 0700) != 0)
        return errno == EEXIST ? 0 : -1;
    char *slash = strrchr(dir, '/');
    if (!slash || str_copy_n(parent, sizeof parent, dir, (size_t)(slash - dir)) < 0)
        return -1;
    return fsync_dir(parent[0] ? parent : "/");
}

int queue_create(struct queue_entry *e, const char *data_path, const char *host)
{
    char msg[PATH_MAX + 200], env[PATH_MAX + 200];
    if (e->n_rcpts == 0 || unique_name(e->id, sizeof e->id, host) < 0 ||
        entry_path(msg, sizeof msg, e, "msg") < 0 || entry_path(env, sizeof env, e, "env") < 0) {
        errno = EINVAL;
        return -1;
    }
    if (ensure_dir(e->dir) < 0)
        return temp_errno();
    if (link(data_path, msg) != 0)
        return temp_errno();
    if (env_write(e) == 0 && fsync_dir(e->dir) == 0)
        return 0;
    int saved = errno;
    unlink(env);
    unlink(msg);
    errno = saved;
    return 1;
}

int queue_save(struct queue_entry *e)
{
    if (e->lock_fd < 0) {
        errno = EPERM;
        return -1;
    }
    if (env_write(e) != 0 || fsync_dir(e->dir) != 0)
        return -1;
    return 0;
}

int queue_remove(struct queue_entry *e)
{
    char msg[PATH_MAX + 200], env[PATH_MAX + 200];
    if (e->lock_fd < 0) {
        errno = EPERM;
        return -1;
    }
    if (entry_path(msg, sizeof msg, e, "msg") < 0 || entry_path(env, sizeof env, e, "env") < 0)
        return -1;
    if (unlink(env) != 0 && errno != ENOENT)
        return -1;
    if (unlink(msg) != 0 && errno != ENOENT)
        return -1;
    return fsync_dir(e->dir);
}

static int read_env(struct queue_entry *e)
{
    char env[PATH_MAX + 200];
    if (entry_path(env, sizeof env, e, "env") < 0)
        return -1;
    int fd = open(env, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 1 : -1;
    struct stat st;
    char *text = NULL;
    int rc = -1;
    if (fstat(fd, &st) != 0)
        goto out;
    if (st.st_size <= 0 || st.st_size > ENV_MAX_SIZE) {
        errno = EINVAL;
        goto out;
    }
    size_t len = (size_t)st.st_size, got = 0;
    if (!(text = malloc(len)))
        goto out;
    while (got < len) {
        ssize_t n = read(fd, text + got, len - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            errno = n == 0 ? EINVAL : errno;
            goto out;
        }
        got += (size_t)n;
    }
    rc = queue_env_parse(e, text, len);
out:
    free(text);
    close(fd);
    return rc;
}

static int entry_setup(struct queue_entry *e, const char *state_dir, const char *id)
{
    memset(e, 0, sizeof *e);
    e->lock_fd = -1;
    if (str_format(e->dir, sizeof e->dir, "%s/queue", state_dir) < 0 ||
        str_copy(e->id, sizeof e->id, id) < 0 || id[0] == '\0' || id[0] == '.' || strchr(id, '/')) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

int queue_load(struct queue_entry *e, const char *state_dir, const char *id)
{
    if (entry_setup(e, state_dir, id) < 0)
        return -1;
    return read_env(e);
}

int queue_lock(struct queue_entry *e, const char *state_dir, const char *id)
{
    char msg[PATH_MAX + 200];
    if (entry_setup(e, state_dir, id) < 0 || entry_path(msg, sizeof msg, e, "msg") < 0)
        return -1;
    int fd = open(msg, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 2 : -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return saved == EWOULDBLOCK ? 1 : -1;
    }
    e->lock_fd = fd;
    int rc = read_env(e); /* after the lock: a run that removed it leaves no .env */
    if (rc == 1)
        rc = 2;
    if (rc != 0)
        queue_entry_free(e);
    return rc;
}

int queue_open_data(const struct queue_entry *e, uint64_t *size)
{
    char msg[PATH_MAX + 200];
    struct stat st;
    if (entry_path(msg, sizeof msg, e, "msg") < 0)
        return -1;
    int fd = open(msg, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size < e->skip ||
        lseek(fd, (off_t)e->skip, SEEK_SET) < 0) {
        int saved = errno ? errno : EINVAL;
        close(fd);
        errno = saved;
        return -1;
    }
    *size = (uint64_t)st.st_size - e->skip;
    return fd;
}

int queue_each(const char *state_dir, int (*fn)(const char *id, void *arg), void *arg)
{
    char dir[PATH_MAX];
    if (str_format(dir, sizeof dir, "%s/queue", state_dir) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    int rc = 0;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        char id[QUEUE_ID_SIZE];
        if (de->d_name[0] == '.' || n <= 4 || strcmp(de->d_name + n - 4, ".env") != 0 ||
            str_copy_n(id, sizeof id, de->d_name, n - 4) < 0)
            continue;
        rc = fn(id, arg);
    }
    closedir(d);
    return rc;
}

/* Is dir/<name without ext><ext2> there? */
static int sibling_exists(int dfd, const char *name, size_t stem, const char *ext2)
{
    char other[NAME_MAX + 8];
    struct stat st;
    if (str_copy_n(other, sizeof other - 8, name, stem) < 0)
        return 1; /* cannot tell: keep it */
    strcat(other, ext2);
    return fstatat(dfd, other, &st, 0) == 0 || errno != ENOENT;
}

int queue_clean(const char *state_dir, unsigned max_age)
{
    char dir[PATH_MAX];
    if (str_format(dir, sizeof dir, "%s/queue", state_dir) < 0)
        return -1;
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -1;
    struct dirent *de;
    struct stat st;
    time_t now = time(NULL);
    int n = 0;
    while ((de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        int is_new = len > 4 && strcmp(de->d_name + len - 4, ".new") == 0;
        int is_msg = len > 4 && strcmp(de->d_name + len - 4, ".msg") == 0;
        if (de->d_name[0] == '.' || (!is_new && !is_msg) ||
            fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            now - st.st_mtime < (time_t)max_age ||
            (is_msg && sibling_exists(dirfd(d), de->d_name, len - 4, ".env")))
            continue;
        if (unlinkat(dirfd(d), de->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    if (n > 0)
        fsync_dir(dir);
    return n;
}

static void exec_run(const char *prog, const char *conf_path, const char *id)
{
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0 || dup2(fd, 0) < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
        _exit(71);
    if (fd > 2)
        close(fd);
    (void)close_range(3, ~0U, 0); /* nothing of the caller's (sockets, locks) goes along */
    signal(SIGPIPE, SIG_DFL);
    char *argv[8];
    int i = 0;
    argv[i++] = (char *)"queue-run";
    if (conf_path && conf_path[0]) {
        argv[i++] = (char *)"-C";
        argv[i++] = (char *)conf_path;
    }
    argv[i++] = (char *)"-i";
    argv[i++] = (char *)id;
    argv[i] = NULL;
    execv(prog, argv);
    _exit(71);
}

int queue_start_run(const char *conf_path, const char *id)
{
    char prog[PATH_MAX];
    if (self_sibling(prog, sizeof prog, "queue-run") < 0)
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (setsid() < 0 || fork() != 0)
            _exit(0); /* the grandchild (or nothing, if the fork failed) goes on */
        exec_run(prog, conf_path, id);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return 0;
}
