/*
 * compare.d/tls-source.c: Postfix's smtp-source with STARTTLS (smtp-source has no TLS), for
 * bench/compare's TLS rows. A load generator in C, so that the client's own cost per message
 * stays far below the servers' (a Python client halved the ratios it measured). It must never
 * talk to anything but the address it is given, and never resume a TLS session.
 *
 *   tls-source [-s SESSIONS] [-m MESSAGES] [-l BYTES] [-d] [-p] [-v] HOST:PORT
 *
 * As smtp-source: SESSIONS processes at once send MESSAGES messages of about BYTES octets in
 * all; without -d each message has its own connection (connect, EHLO, STARTTLS, EHLO, MAIL,
 * RCPT, DATA, QUIT), with -d each process keeps its connection and sends message after message
 * (MAIL, RCPT and DATA in one write, no RSET, as smtp-source -d). -p (plain) leaves STARTTLS
 * out. No certificate is checked (a sending MTA under opportunistic TLS). -v prints the
 * protocol and cipher of the first connection. Exit 0 when every message got its 250.
 *
 * Build: cc -O2 -o tls-source tls-source.c -lssl -lcrypto
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

struct conn {
    int fd;
    SSL *ssl;
    char buf[8192];
    size_t len;
};

static struct sockaddr_in target;
static SSL_CTX *ctx;
static int verbose;

static int io_write(struct conn *c, const char *p, size_t n)
{
    while (n > 0) {
        int w = c->ssl ? SSL_write(c->ssl, p, (int)n) : (int)write(c->fd, p, n);
        if (w <= 0)
            return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* The next reply's last line starts with code (3 digits); 0, or -1. */
static int reply(struct conn *c, const char *code)
{
    for (;;) {
        char *eol;
        while ((eol = memchr(c->buf, '\n', c->len)) != NULL) {
            size_t line = (size_t)(eol - c->buf) + 1;
            int last = line >= 4 && c->buf[3] != '-';
            int ok = line >= 4 && memcmp(c->buf, code, 3) == 0;
            if (last && !ok)
                fprintf(stderr, "tls-source: expected %s, got %.*s", code, (int)line, c->buf);
            memmove(c->buf, c->buf + line, c->len - line);
            c->len -= line;
            if (last)
                return ok ? 0 : -1;
        }
        if (c->len == sizeof c->buf)
            return -1;
        int r = c->ssl ? SSL_read(c->ssl, c->buf + c->len, (int)(sizeof c->buf - c->len))
                       : (int)read(c->fd, c->buf + c->len, sizeof c->buf - c->len);
        if (r <= 0)
            return -1;
        c->len += (size_t)r;
    }
}

static int command(struct conn *c, const char *text, const char *code)
{
    return io_write(c, text, strlen(text)) == 0 ? reply(c, code) : -1;
}

static int open_session(struct conn *c, int tls)
{
    c->len = 0;
    c->ssl = NULL;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&target, sizeof target) != 0)
        return perror("tls-source: connect"), -1;
    if (reply(c, "220") != 0 || command(c, "EHLO client.test\r\n", "250") != 0)
        return -1;
    if (!tls)
        return 0;
    if (command(c, "STARTTLS\r\n", "220") != 0 || c->len != 0)
        return -1;
    c->ssl = SSL_new(ctx);
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_connect(c->ssl) != 1) {
        ERR_print_errors_fp(stderr);
        return -1;
    }
    if (verbose) {
        printf("%s %s\n", SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
        verbose = 0;
    }
    return command(c, "EHLO client.test\r\n", "250");
}

static void close_session(struct conn *c)
{
    (void)command(c, "QUIT\r\n", "221");
    if (c->ssl) {
        SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
}

/* One client process: takes messages from the shared count until none is left. */
static int client(int *left, int many, int tls, const char *body, size_t body_len)
{
    static const char envelope[] =
        "MAIL FROM:<bench@remote.test>\r\nRCPT TO:<demo@example.test>\r\nDATA\r\n";
    struct conn c;
    int open = 0;
    while (__atomic_sub_fetch(left, 1, __ATOMIC_SEQ_CST) >= 0) {
        if (!open && open_session(&c, tls) != 0)
            return 1;
        open = 1;
        if (io_write(&c, envelope, sizeof envelope - 1) != 0 || reply(&c, "250") != 0 ||
            reply(&c, "250") != 0 || reply(&c, "354") != 0 || io_write(&c, body, body_len) != 0 ||
            reply(&c, "250") != 0)
            return 1;
        if (!many) {
            close_session(&c);
            open = 0;
        }
    }
    if (open)
        close_session(&c);
    return 0;
}

static char *make_body(size_t size, size_t *len)
{
    static const char line[] =
        "The quick brown fox jumps over the lazy dog. 0123456789 abcdefghijklmnopqrstuv\r\n";
    static const char head[] = "From: <bench@remote.test>\r\nTo: <demo@example.test>\r\n"
                               "Subject: tls-source\r\n\r\n";
    size_t lines = size > sizeof head ? (size - sizeof head) / (sizeof line - 1) : 1;
    char *b = malloc(sizeof head + lines * (sizeof line - 1) + 4);
    if (b == NULL)
        exit(2);
    size_t n = sizeof head - 1;
    memcpy(b, head, n);
    for (size_t i = 0; i < lines; i++, n += sizeof line - 1)
        memcpy(b + n, line, sizeof line - 1);
    memcpy(b + n, ".\r\n", 3);
    *len = n + 3;
    return b;
}

int main(int argc, char **argv)
{
    int sessions = 1, messages = 1, many = 0, tls = 1, opt;
    size_t size = 4096;
    while ((opt = getopt(argc, argv, "s:m:l:dpv")) != -1) {
        switch (opt) {
        case 's':
            sessions = atoi(optarg);
            break;
        case 'm':
            messages = atoi(optarg);
            break;
        case 'l':
            size = (size_t)atol(optarg);
            break;
        case 'd':
            many = 1;
            break;
        case 'p':
            tls = 0;
            break;
        case 'v':
            verbose = 1;
            break;
        default:
            return 2;
        }
    }
    char *colon = optind < argc ? strrchr(argv[optind], ':') : NULL;
    if (colon == NULL || sessions < 1 || messages < 1)
        return fprintf(stderr, "usage: tls-source [-s N] [-m N] [-l N] [-d] [-p] [-v] "
                               "HOST:PORT\n"),
               2;
    *colon = '\0';
    target.sin_family = AF_INET;
    target.sin_port = htons((unsigned short)atoi(colon + 1));
    if (inet_pton(AF_INET, argv[optind], &target.sin_addr) != 1)
        return fprintf(stderr, "tls-source: %s: not an IPv4 address\n", argv[optind]), 2;
    signal(SIGPIPE, SIG_IGN);
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    size_t body_len;
    char *body = make_body(size, &body_len);
    int *left = mmap(NULL, sizeof *left, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (left == MAP_FAILED)
        return perror("mmap"), 2;
    *left = messages;
    if (verbose)
        return client(left, 0, tls, body, body_len);
    for (int i = 0; i < sessions; i++)
        if (fork() == 0)
            _exit(client(left, many, tls, body, body_len));
    int failed = 0, status;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    return failed;
}
