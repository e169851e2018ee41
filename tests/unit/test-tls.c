/*
 * test-tls: lib/tls's server contexts (no certificate, a missing file, garbage, a key that
 * does not match, an expired and a not-yet-valid certificate, a bad tls_protocols and
 * tls_ciphers, a good pair) and netio's TLS transport over a socketpair with a real OpenSSL
 * client in a child process: lines both ways, a reply bigger than the socket buffers (partial
 * writes, WANT_WRITE), a pipelined plaintext line before TLS refused, the handshake timeout,
 * what tls_describe names, and over TCP on 127.0.0.1 that the client's TLS 1.3 Finished is
 * acknowledged at once (not left to the delayed-ACK timer, which Nagle makes the client wait
 * for before its next command). Certificates are made here with OpenSSL (P-256, self-signed).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf.h"
#include "netio.h"
#include "tap.h"
#include "tls.h"
#include "tlsserver.h"

static char dir[] = "/tmp/test-tls-XXXXXX";
static struct yubin_conf conf;

/* A self-signed P-256 certificate valid from `from` to `to` seconds from now, and its key,
 * written as PEM to cert and key. */
static void make_pair(const char *cert, const char *key, long from, long to)
{
    EVP_PKEY *pk = EVP_EC_gen("P-256");
    X509 *x = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_gmtime_adj(X509_getm_notBefore(x), from);
    X509_gmtime_adj(X509_getm_notAfter(x), to);
    X509_set_pubkey(x, pk);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"mx.test", -1, -1,
                               0);
    X509_set_issuer_name(x, name);
    X509_sign(x, pk, EVP_sha256());
    FILE *f = fopen(cert, "w");
    PEM_write_X509(f, x);
    fclose(f);
    f = fopen(key, "w");
    PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    X509_free(x);
    EVP_PKEY_free(pk);
}

static char path_buf[8][300];

static const char *path(int i, const char *name)
{
    snprintf(path_buf[i], sizeof path_buf[i], "%s/%s", dir, name);
    return path_buf[i];
}

/* tls_server_read then tls_server_get, as a handler at STARTTLS: a context the caller frees,
 * or NULL with why in err (err[0] == '\0': no certificate configured). */
static SSL_CTX *server_ctx(char *err, size_t errlen)
{
    struct tls_server *t = tls_server_read(&conf, err, errlen);
    SSL_CTX *ctx = t != NULL ? tls_server_get(t, err, errlen) : NULL;
    if (ctx != NULL)
        SSL_CTX_up_ref(ctx);
    tls_server_free(t);
    return ctx;
}

/* server_ctx with these files; returns whether a context came back, err filled. */
static int try_ctx(const char *cert, const char *key, char *err, size_t errlen)
{
    snprintf(conf.tls_cert_file, sizeof conf.tls_cert_file, "%s", cert);
    snprintf(conf.tls_key_file, sizeof conf.tls_key_file, "%s", key);
    SSL_CTX *ctx = server_ctx(err, errlen);
    SSL_CTX_free(ctx);
    return ctx != NULL;
}

static void test_contexts(void)
{
    char err[600];
    make_pair(path(0, "good.pem"), path(1, "good.key"), -60, 86400);
    make_pair(path(2, "old.pem"), path(3, "old.key"), -86400, -60);
    make_pair(path(4, "new.pem"), path(5, "new.key"), 86400, 2 * 86400);
    FILE *f = fopen(path(6, "junk.pem"), "w");
    fputs("this is not PEM\n", f);
    fclose(f);

    conf.tls_cert_file[0] = '\0';
    CHECK(server_ctx(err, sizeof err) == NULL && err[0] == '\0',
          "no certificate configured: no context and no error");
    CHECK(try_ctx(path_buf[0], path_buf[1], err, sizeof err), "a good pair: a context (%s)", err);
    CHECK(!try_ctx(path(7, "missing.pem"), path_buf[1], err, sizeof err) &&
              strstr(err, "tls_cert_file") && strstr(err, "No such file"),
          "a missing certificate: %s", err);
    CHECK(!try_ctx(path_buf[0], path(7, "missing.key"), err, sizeof err) &&
              strstr(err, "tls_key_file") && strstr(err, "No such file"),
          "a missing key: %s", err);
    CHECK(!try_ctx(path_buf[6], path_buf[1], err, sizeof err) && strstr(err, "no PEM certificate"),
          "garbage for a certificate: %s", err);
    CHECK(!try_ctx(path_buf[0], path_buf[6], err, sizeof err) && strstr(err, "no usable PEM"),
          "garbage for a key: %s", err);
    CHECK(!try_ctx(path_buf[0], path_buf[3], err, sizeof err) && strstr(err, "does not match"),
          "a key of another certificate: %s", err);
    CHECK(!try_ctx(path_buf[2], path_buf[3], err, sizeof err) && strstr(err, "expired on"),
          "an expired certificate: %s", err);
    CHECK(!try_ctx(path_buf[4], path_buf[5], err, sizeof err) && strstr(err, "not valid before"),
          "a certificate not valid yet: %s", err);

    snprintf(conf.tls_protocols, sizeof conf.tls_protocols, "TLSv1.2 SSLv3");
    CHECK(!try_ctx(path_buf[0], path_buf[1], err, sizeof err) && strstr(err, "SSLv3"),
          "an unknown protocol in tls_protocols: %s", err);
    snprintf(conf.tls_protocols, sizeof conf.tls_protocols, "TLSv1.2 TLSv1.3");
    snprintf(conf.tls_ciphers, sizeof conf.tls_ciphers, "NOSUCHCIPHER");
    CHECK(!try_ctx(path_buf[0], path_buf[1], err, sizeof err) && strstr(err, "tls_ciphers"),
          "no usable cipher in tls_ciphers: %s", err);
    conf_defaults(&conf);
}

/* path's bytes, then more's appended, into out (a PEM bundle). */
static void concat(const char *out, const char *first, const char *more)
{
    char buf[8192];
    FILE *o = fopen(out, "w");
    for (int i = 0; i < 2; i++) {
        FILE *f = fopen(i == 0 ? first : more, "r");
        size_t n = f != NULL ? fread(buf, 1, sizeof buf, f) : 0;
        fwrite(buf, 1, n, o);
        if (f != NULL)
            fclose(f);
    }
    fclose(o);
}

/* tls_server_read takes the bytes; tls_server_get parses them later, never the files. */
static void test_read_then_get(void)
{
    char err[600];
    snprintf(conf.tls_cert_file, sizeof conf.tls_cert_file, "%s", path(7, "lazy.pem"));
    snprintf(conf.tls_key_file, sizeof conf.tls_key_file, "%s", path_buf[1]);
    concat(path_buf[7], path_buf[0], path_buf[2]); /* good.pem, then old.pem as its chain */
    struct tls_server *t = tls_server_read(&conf, err, sizeof err);
    CHECK(t != NULL, "read: the bytes (%s)", err);
    unlink(path_buf[7]); /* gone, and the key file another key: */
    concat(path(6, "junk.pem"), path_buf[3], path_buf[3]);
    rename(path_buf[6], path_buf[1]);
    make_pair(path_buf[0], path(6, "good2.key"), -60, 86400); /* a new good pair at 0, 6 */
    SSL_CTX *ctx = t != NULL ? tls_server_get(t, err, sizeof err) : NULL;
    STACK_OF(X509) *chain = NULL;
    CHECK(ctx != NULL, "get: a context from the bytes read, not from the files now (%s)", err);
    CHECK(ctx != NULL && SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && sk_X509_num(chain) == 1,
          "the certificate after the first is its chain");
    CHECK(t != NULL && tls_server_get(t, err, sizeof err) == ctx, "get again: the same context");
    tls_server_free(t);

    snprintf(conf.tls_key_file, sizeof conf.tls_key_file, "%s", path_buf[1]); /* old's key */
    snprintf(conf.tls_cert_file, sizeof conf.tls_cert_file, "%s", path_buf[0]);
    t = tls_server_read(&conf, err, sizeof err);
    CHECK(t != NULL, "read: a pair that does not match is read (%s)", err);
    CHECK(t != NULL && tls_server_get(t, err, sizeof err) == NULL && strstr(err, "does not match"),
          "get: it cannot serve: %s", err);
    err[0] = '\0';
    CHECK(t != NULL && tls_server_get(t, err, sizeof err) == NULL && strstr(err, "does not match"),
          "get again: the same answer: %s", err);
    tls_server_free(t);

    concat(path(7, "both.pem"), path_buf[0], path_buf[6]); /* the key in the certificate file */
    snprintf(conf.tls_cert_file, sizeof conf.tls_cert_file, "%s", path_buf[7]);
    conf.tls_key_file[0] = '\0';
    CHECK(try_ctx(path_buf[7], "", err, sizeof err), "the key in tls_cert_file (%s)", err);

    FILE *f = fopen(path_buf[7], "w");
    for (int i = 0; i < TLS_FILE_MAX / 64 + 1; i++)
        fputs("0123456789012345678901234567890123456789012345678901234567890123", f);
    fclose(f);
    CHECK(!try_ctx(path_buf[7], path_buf[6], err, sizeof err) && strstr(err, "larger than"),
          "a certificate file over TLS_FILE_MAX: %s", err);
    unlink(path_buf[7]);
    make_pair(path_buf[0], path_buf[1], -60, 86400); /* good.pem, good.key for what follows */
    conf_defaults(&conf);
}

/* The client in the child: TLS version `version` (0 any) over fd; sends `hello`, then reads
 * until EOF and checks that it got `want_bytes` octets ending in "END\r\n". Exit 0 if so. */
static void client(int fd, int version, const char *hello, size_t want_bytes)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (version != 0) {
        SSL_CTX_set_min_proto_version(ctx, version);
        SSL_CTX_set_max_proto_version(ctx, version);
    }
    SSL *ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    char greeting[14];
    if (read(fd, greeting, sizeof greeting) != sizeof greeting ||
        memcmp(greeting, "220 go ahead\r\n", 14) != 0)
        _exit(6);
    if (SSL_connect(ssl) != 1)
        _exit(3);
    if (SSL_write(ssl, hello, (int)strlen(hello)) <= 0)
        _exit(4);
    static char got[300000];
    size_t used = 0;
    int r;
    sleep(1); /* let the server's big reply fill the socket buffers: partial writes */
    while (used < sizeof got && (r = SSL_read(ssl, got + used, (int)(sizeof got - used))) > 0)
        used += (size_t)r;
    _exit(used == want_bytes && memcmp(got + used - 5, "END\r\n", 5) == 0 ? 0 : 5);
}

static int wait_child(pid_t pid)
{
    int status;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

static void test_transport(SSL_CTX *ctx, int version, const char *what)
{
    int sv[2];
    char line[64], desc[200];
    static char big[200000];
    struct netio n;
    socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        client(sv[1], version, "EHLO client\r\nQUIT\r\n", sizeof big + 5);
    }
    close(sv[1]);
    netio_init(&n, sv[0], sv[0], 10);
    netio_puts(&n, "220 go ahead\r\n"); /* owed in plaintext: out before the handshake */
    CHECK(netio_tls_accept(&n, ctx) == 0 && netio_tls(&n) != NULL, "%s: the handshake", what);
    CHECK(netio_getline(&n, line, sizeof line) == 13 && memcmp(line, "EHLO client\r\n", 13) == 0,
          "%s: a line through TLS", what);
    CHECK(netio_pending(&n), "%s: the pipelined second line is pending", what);
    CHECK(netio_getline(&n, line, sizeof line) == 6 && memcmp(line, "QUIT\r\n", 6) == 0,
          "%s: and read", what);
    tls_describe(netio_tls(&n), desc, sizeof desc);
    CHECK(strstr(desc, version == TLS1_2_VERSION ? "TLSv1.2 with cipher ECDHE-"
                                                 : "TLSv1.3 with cipher TLS_") != NULL &&
              strstr(desc, " bits)") != NULL,
          "%s: tls_describe: %s", what, desc);
    memset(big, 'x', sizeof big);
    CHECK(netio_write(&n, big, sizeof big) == 0 && netio_puts(&n, "END\r\n") == 0 &&
              netio_flush(&n) == 0,
          "%s: 200 kB out past the socket buffers", what);
    netio_free(&n);
    close(sv[0]);
    CHECK(wait_child(pid) == 0, "%s: the client got all of it", what);
}

/* A socketpair with netio on sv[0] (the server's end), timeout seconds. */
static void pair_open(int sv[2], struct netio *n, int timeout)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        _exit(2);
    netio_init(n, sv[0], sv[0], timeout);
}

/* netio freed, both ends closed. */
static void pair_close(int sv[2], struct netio *n)
{
    netio_free(n);
    close(sv[0]);
    close(sv[1]);
}

/* STARTTLS with plaintext pipelined after it: netio refuses to start TLS at all. */
static void test_pending_plaintext(SSL_CTX *ctx)
{
    int sv[2];
    char line[64];
    struct netio n;
    pair_open(sv, &n, 2);
    if (write(sv[1], "STARTTLS\r\nRSET\r\n", 16) != 16)
        _exit(2);
    CHECK(netio_getline(&n, line, sizeof line) == 10, "STARTTLS read");
    errno = 0;
    CHECK(netio_tls_accept(&n, ctx) == NETIO_ERROR && errno == EPROTO,
          "plaintext after STARTTLS: TLS refused (EPROTO)");
    CHECK(netio_getline(&n, line, sizeof line) == NETIO_ERROR,
          "and nothing more is read from that connection");
    pair_close(sv, &n);
}

/* A client that connects and says nothing: the handshake ends at the timeout. */
static void test_handshake_timeout(SSL_CTX *ctx)
{
    int sv[2];
    struct netio n;
    pair_open(sv, &n, 1);
    CHECK(netio_tls_accept(&n, ctx) == NETIO_TIMEOUT, "a silent client: the handshake times out");
    pair_close(sv, &n);
}

/* A client that goes away in the middle of the handshake (or before it): an end, not a spin. */
static void test_handshake_eof(SSL_CTX *ctx)
{
    int sv[2];
    struct netio n;
    pair_open(sv, &n, 5);
    close(sv[1]);
    errno = 0;
    int rc = netio_tls_accept(&n, ctx);
    CHECK(rc == NETIO_ERROR && errno == ECONNRESET, "the client closed before its hello: %d", rc);
    netio_free(&n);
    close(sv[0]);
}

/* A connected TCP pair on 127.0.0.1 (sv[0] the server's end). 0, or -1. */
static int tcp_pair(int sv[2])
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 1) != 0 ||
        getsockname(l, (struct sockaddr *)&a, &len) != 0)
        return -1;
    sv[1] = socket(AF_INET, SOCK_STREAM, 0);
    if (sv[1] < 0 || connect(sv[1], (struct sockaddr *)&a, sizeof a) != 0)
        return -1;
    sv[0] = accept(l, NULL, NULL);
    close(l);
    return sv[0] < 0 ? -1 : 0;
}

/* After the TLS 1.3 handshake the server owes the client an ACK of its Finished and has
 * nothing to send with it (no tickets): netio sends it at once. Linux says whether the socket
 * would delay its next ACK (interactive "pingpong" mode) as TCP_QUICKACK 0. */
static void test_finished_acked(SSL_CTX *ctx)
{
    int sv[2], quick = 0;
    socklen_t len = sizeof quick;
    struct netio n;
    if (tcp_pair(sv) != 0) {
        CHECK(0, "a TCP pair on 127.0.0.1: %s", strerror(errno));
        return;
    }
    pid_t pid = fork();
    if (pid == 0) {
        close(sv[0]);
        client(sv[1], TLS1_3_VERSION, "QUIT\r\n", 5);
    }
    close(sv[1]);
    netio_init(&n, sv[0], sv[0], 10);
    netio_puts(&n, "220 go ahead\r\n");
    CHECK(netio_tls_accept(&n, ctx) == 0, "TCP: the handshake");
    CHECK(getsockopt(sv[0], IPPROTO_TCP, TCP_QUICKACK, &quick, &len) == 0 && quick == 1,
          "TCP: the client's Finished is acknowledged at once (TCP_QUICKACK %d)", quick);
    char line[64];
    CHECK(netio_getline(&n, line, sizeof line) == 6, "TCP: a line through TLS");
    CHECK(netio_puts(&n, "END\r\n") == 0 && netio_flush(&n) == 0, "TCP: the reply");
    netio_free(&n);
    close(sv[0]);
    int rc = wait_child(pid);
    CHECK(rc == 0, "TCP: the client got the reply (%d)", rc);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    if (mkdtemp(dir) == NULL)
        return 2;
    conf_defaults(&conf);
    test_contexts();
    test_read_then_get();
    char err[600];
    snprintf(conf.tls_cert_file, sizeof conf.tls_cert_file, "%s", path_buf[0]);
    snprintf(conf.tls_key_file, sizeof conf.tls_key_file, "%s", path_buf[1]);
    SSL_CTX *ctx = server_ctx(err, sizeof err);
    CHECK(ctx != NULL, "the server context (%s)", err);
    if (ctx != NULL) {
        test_transport(ctx, 0, "TLS 1.3");
        test_transport(ctx, TLS1_2_VERSION, "TLS 1.2");
        test_pending_plaintext(ctx);
        test_handshake_timeout(ctx);
        test_handshake_eof(ctx);
        test_finished_acked(ctx);
        SSL_CTX_free(ctx);
    }
    for (int i = 0; i < 7; i++)
        unlink(path_buf[i]);
    rmdir(dir);
    return tap_done();
}
