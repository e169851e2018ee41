/*
 * tests/fuzz/site.c: the helpers of fuzz.h: a throw-away yubin site, descriptor-leak checks,
 * the client's byte stream on a socketpair. For tests only: it must never touch anything
 * outside the site directory it made.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "conf.h"
#include "fuzz.h"
#include "log.h"
#include "privs.h"

static struct fuzz_site *the_site;
static pid_t site_owner;

void fuzz_fail(const char *what, const void *data, size_t len)
{
    fprintf(stderr, "fuzz: %s (errno: %s)\n", what, strerror(errno));
    if (data != NULL) {
        fprintf(stderr, "--- %zu octets:\n", len);
        fwrite(data, 1, len > 4096 ? 4096 : len, stderr);
        fprintf(stderr, "\n---\n");
    }
    abort();
}

char *fuzz_string_after_first(const uint8_t *data, size_t size)
{
    char *s = size > 0 ? malloc(size) : NULL;
    if (s != NULL) {
        memcpy(s, data + 1, size - 1);
        s[size - 1] = '\0';
    }
    return s;
}

void fuzz_write_file(const char *path, const void *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        fuzz_fail(path, NULL, 0);
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w <= 0)
            fuzz_fail("write", NULL, 0);
        p += w;
        len -= (size_t)w;
    }
    if (close(fd) != 0)
        fuzz_fail("close", NULL, 0);
}

void fuzz_put_message(const char *md, const char *sub, int n, const char *text, const char *flags)
{
    char path[4096];
    size_t len = strlen(text), lfs = 0;
    for (const char *p = text; *p; p++)
        lfs += *p == '\n';
    int w =
        snprintf(path, sizeof path, "%s/%s/17000000%02d.M%06dR0123456789abcdef.fuzz,S=%zu,W=%zu%s",
                 md, sub, n, n, len, len + lfs, flags);
    if (w < 0 || (size_t)w >= sizeof path)
        fuzz_fail("message path too long", md, strlen(md));
    fuzz_write_file(path, text, len);
}

static int remove_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    if (ftw->level == 0)
        return 0;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

void fuzz_clear_dir(const char *dir)
{
    if (nftw(dir, remove_one, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        fuzz_fail("cannot clear a directory", dir, strlen(dir));
}

static void remove_site(void)
{
    if (the_site == NULL || getpid() != site_owner)
        return;
    fuzz_clear_dir(the_site->dir);
    rmdir(the_site->dir);
}

static int chown_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    struct passwd *pw = getpwnam("yubin");
    return pw == NULL || lchown(path, pw->pw_uid, pw->pw_gid) == 0 ? 0 : -1;
}

void fuzz_site_make(struct fuzz_site *fs, const char *extra_conf)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
    char hash[crypto_pwhash_STRBYTES], text[4096];
    if (sodium_init() < 0)
        fuzz_fail("sodium_init", NULL, 0);
    snprintf(fs->dir, sizeof fs->dir, "%s/yubin-fuzz-XXXXXX", base ? base : "/tmp");
    if (mkdtemp(fs->dir) == NULL || chmod(fs->dir, 0755) != 0)
        fuzz_fail("mkdtemp", NULL, 0);
    the_site = fs;
    site_owner = getpid();
    atexit(remove_site);
    snprintf(fs->conf, sizeof fs->conf, "%s/yubin.conf", fs->dir);
    snprintf(fs->state, sizeof fs->state, "%s/state", fs->dir);
    snprintf(fs->scratch, sizeof fs->scratch, "%s/scratch", fs->dir);
    if (mkdir(fs->state, 0700) != 0 || mkdir(fs->scratch, 0700) != 0)
        fuzz_fail("mkdir", NULL, 0);
    if (crypto_pwhash_str(hash, "demo", 4, crypto_pwhash_OPSLIMIT_MIN,
                          crypto_pwhash_MEMLIMIT_MIN) != 0)
        fuzz_fail("crypto_pwhash_str", NULL, 0);
    snprintf(
        text, sizeof text,
        "demo@example.test:%s\ninfo@example.test:%s\nalice@example.test:%s\nbob@example.test:%s\n",
        hash, hash, hash, hash);
    snprintf(fs->scratch, sizeof fs->scratch, "%s/users", fs->dir);
    fuzz_write_file(fs->scratch, text, strlen(text));
    snprintf(fs->scratch, sizeof fs->scratch, "%s/aliases", fs->dir);
    const char *aliases = "# fuzz site\n"
                          "postmaster@example.test: demo\n"
                          "team@example.test: demo, info@example.test, far@remote.test\n"
                          "owner-team@example.test: demo\n"
                          "loop@example.test: loop, demo\n"
                          "nest@example.test: team, postmaster@example.test\n"
                          "list@other.test: demo@example.test,\n"
                          "  info@example.test\n";
    fuzz_write_file(fs->scratch, aliases, strlen(aliases));
    snprintf(fs->scratch, sizeof fs->scratch, "%s/scratch", fs->dir);
    int n = snprintf(text, sizeof text,
                     "hostname mx.example.test\n"
                     "local_domains example.test other.test\n"
                     "state_dir %s\n"
                     "users_file %s/users\n"
                     "aliases_file %s/aliases\n"
                     "user yubin\n"
                     "syslog_socket %s/no-syslog.sock\n"
                     "command_timeout 5\n"
                     "data_timeout 5\n"
                     "max_message_size 65536\n"
                     "max_recipients 20\n"
                     "auth_delay_ms 0\n"
                     "pwhash_opslimit 1\n"
                     "pwhash_memlimit 8192\n"
                     "%s",
                     fs->state, fs->dir, fs->dir, fs->dir, extra_conf ? extra_conf : "");
    if (n < 0 || (size_t)n >= sizeof text)
        fuzz_fail("conf too long", NULL, 0);
    fuzz_write_file(fs->conf, text, (size_t)n);
    if (chmod(fs->conf, 0644) != 0)
        fuzz_fail("chmod", NULL, 0);
    if (geteuid() == 0 && nftw(fs->dir, chown_one, 16, FTW_PHYS) != 0)
        fuzz_fail("chown", NULL, 0);
}

void fuzz_drop_privs(void)
{
    char err[300];
    if (privs_drop("yubin", err, sizeof err) != 0)
        fuzz_fail(err, NULL, 0);
}

uint64_t fuzz_open_fds(void)
{
    uint64_t mask = 0;
    for (int fd = 0; fd < 64; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            mask |= UINT64_C(1) << fd;
    return mask;
}

void fuzz_check_fds(uint64_t before, const char *where)
{
    uint64_t now = fuzz_open_fds();
    if (now != before) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s: descriptors leaked or closed: before %#llx after %#llx",
                 where, (unsigned long long)before, (unsigned long long)now);
        fuzz_fail(msg, NULL, 0);
    }
}

void fuzz_client_stream(const uint8_t *data, size_t size, int *client, int *server)
{
    int sv[2];
    int big = 1 << 20;
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        fuzz_fail("socketpair", NULL, 0);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    int flags = fcntl(sv[0], F_GETFL);
    if (flags < 0 || fcntl(sv[0], F_SETFL, flags | O_NONBLOCK) != 0)
        fuzz_fail("fcntl", NULL, 0);
    while (size > 0) {
        ssize_t w = write(sv[0], data, size);
        if (w <= 0)
            break; /* the socket buffer is full: the rest is cut off */
        data += w;
        size -= (size_t)w;
    }
    if (shutdown(sv[0], SHUT_WR) != 0)
        fuzz_fail("shutdown", NULL, 0);
    *client = sv[0];
    *server = sv[1];
}

int fuzz_memfd(const char *name)
{
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0)
        fuzz_fail("memfd_create", NULL, 0);
    return fd;
}

void fuzz_handler_site(struct fuzz_site *fs, struct yubin_conf *conf, const char *extra_conf,
                       int *saved_in, int *saved_out)
{
    char err[600];
    umask(077);
    signal(SIGPIPE, SIG_IGN);
    fuzz_site_make(fs, extra_conf);
    if (conf_load(conf, fs->conf, err, sizeof err) != 0)
        fuzz_fail(err, NULL, 0);
    fuzz_save_stdio(saved_in, saved_out);
    log_open("fuzz", NULL); /* the log socket stays open from run to run, as in the program */
    fuzz_drop_privs();
}

void fuzz_check_framing(int fd, const char *greeting, const char *what)
{
    char head[5] = "", tail[2] = "";
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < 6 || pread(fd, head, 4, 0) != 4 || memcmp(head, greeting, 4) != 0 ||
        pread(fd, tail, 2, len - 2) != 2 || memcmp(tail, "\r\n", 2) != 0)
        fuzz_fail(what, head, 4);
}

void fuzz_show_output(int fd)
{
    char buf[4096];
    ssize_t r;
    off_t off = 0;
    if (getenv("FUZZ_SHOW") == NULL)
        return;
    while ((r = pread(fd, buf, sizeof buf, off)) > 0) {
        fwrite(buf, 1, (size_t)r, stderr);
        off += r;
    }
}

int fuzz_listen_loopback(void)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) != 0 || listen(fd, 8) != 0)
        fuzz_fail("cannot listen on 127.0.0.1", NULL, 0);
    return fd;
}

void fuzz_close_abort(int fd)
{
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    close(fd);
}

void fuzz_tcp_stream(int listener, const uint8_t *data, size_t size, int *client, int *server)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int big = 1 << 20;
    if (getsockname(listener, (struct sockaddr *)&ss, &len) != 0)
        fuzz_fail("getsockname", NULL, 0);
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*client < 0)
        fuzz_fail("socket", NULL, 0);
    setsockopt(*client, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
    /* A signal (libFuzzer's timer) may interrupt connect: it then goes on by itself. */
    if (connect(*client, (struct sockaddr *)&ss, len) != 0 && errno != EINTR)
        fuzz_fail("connect", NULL, 0);
    do
        *server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    while (*server < 0 && errno == EINTR);
    if (*server < 0)
        fuzz_fail("accept", NULL, 0);
    struct linger l = {.l_onoff = 1, .l_linger = 0};
    setsockopt(*server, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    while (size > 0) {
        ssize_t w = send(*client, data, size, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (w <= 0)
            break; /* the socket buffers are full: the rest is cut off */
        data += w;
        size -= (size_t)w;
    }
    if (shutdown(*client, SHUT_WR) != 0)
        fuzz_fail("shutdown", NULL, 0);
}

void fuzz_copy_conf(const char *to, const char *from, const char *extra)
{
    char text[8192];
    FILE *f = fopen(from, "r");
    if (f == NULL)
        fuzz_fail("cannot read the conf", from, strlen(from));
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    size_t x = strlen(extra);
    if (n + x >= sizeof text)
        fuzz_fail("conf too long", NULL, 0);
    memcpy(text + n, extra, x);
    fuzz_write_file(to, text, n + x);
    if (chmod(to, 0644) != 0)
        fuzz_fail("chmod", NULL, 0);
}

void fuzz_save_stdio(int *in, int *out)
{
    for (int fd = 0; fd <= 1; fd++)
        if (fcntl(fd, F_GETFD) == -1 && open("/dev/null", O_RDWR) != fd)
            fuzz_fail("cannot open /dev/null", NULL, 0);
    *in = fcntl(0, F_DUPFD_CLOEXEC, 10);
    *out = fcntl(1, F_DUPFD_CLOEXEC, 10);
    if (*in < 0 || *out < 0)
        fuzz_fail("cannot keep stdin and stdout", NULL, 0);
}
