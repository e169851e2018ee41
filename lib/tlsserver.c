/*
 * tlsserver: a handler's certificate and key, read as root, made into a server context when a
 * session first asks for TLS (see tlsserver.h). It must never prompt for a passphrase (under
 * inetd stdin is the socket), never open a file after tls_server_read, never keep the key's
 * bytes after tls_server_get, and never hand out a context that cannot serve.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf.h"
#include "tls.h"
#include "tlskey.h"
#include "tlsprov.h"
#include "tlsserver.h"
#include "util.h"

/* The bytes of one file, as read as root. */
struct tls_file {
    char *data;
    size_t len;
};

struct tls_server {
    const struct yubin_conf *conf;
    struct tls_file cert, key; /* key.data == NULL: the key is in cert */
    SSL_CTX *ctx;              /* made: the answer of every later tls_server_get */
    int tried;                 /* tls_server_get has run: ctx, or why not in err */
    char err[700];
};

/* path's bytes into f (at most TLS_FILE_MAX). 0, or -1 with "key path: why" in err. */
static int read_file(struct tls_file *f, const char *key, const char *path, char *err,
                     size_t errlen)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        str_format(err, errlen, "%s %s: %s", key, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    size_t cap = S_ISREG(st.st_mode) && st.st_size < TLS_FILE_MAX ? (size_t)st.st_size + 1
                                                                  : TLS_FILE_MAX + 1;
    f->data = malloc(cap);
    f->len = 0;
    ssize_t got = 1;
    while (f->data != NULL && f->len < cap && got > 0) {
        got = read(fd, f->data + f->len, cap - f->len);
        if (got < 0 && errno == EINTR)
            got = 1;
        else if (got > 0)
            f->len += (size_t)got;
    }
    int saved = errno;
    close(fd);
    if (f->data == NULL)
        return str_format(err, errlen, "%s %s: out of memory", key, path), -1;
    if (got < 0)
        return str_format(err, errlen, "%s %s: %s", key, path, strerror(saved)), -1;
    if (f->len > TLS_FILE_MAX)
        return str_format(err, errlen, "%s %s: larger than %d KiB", key, path, TLS_FILE_MAX / 1024),
               -1;
    return 0;
}

static void wipe_file(struct tls_file *f)
{
    if (f->data != NULL)
        OPENSSL_cleanse(f->data, f->len);
    free(f->data);
    f->data = NULL;
    f->len = 0;
}

void tls_server_free(struct tls_server *t)
{
    if (t == NULL)
        return;
    wipe_file(&t->key);
    wipe_file(&t->cert);
    SSL_CTX_free(t->ctx);
    free(t);
}

struct tls_server *tls_server_read(const struct yubin_conf *c, char *err, size_t errlen)
{
    err[0] = '\0';
    if (c->tls_cert_file[0] == '\0')
        return NULL;
    struct tls_server *t = calloc(1, sizeof *t);
    if (t == NULL)
        return str_format(err, errlen, "tls_cert_file: out of memory"), NULL;
    t->conf = c;
    if (read_file(&t->cert, "tls_cert_file", c->tls_cert_file, err, errlen) != 0 ||
        (c->tls_key_file[0] != '\0' &&
         read_file(&t->key, "tls_key_file", c->tls_key_file, err, errlen) != 0)) {
        tls_server_free(t);
        return NULL;
    }
    return t;
}

/* "2026-12-01 09:30 UTC" for a certificate date. */
static void asn1_date(const ASN1_TIME *t, char *out, size_t size)
{
    struct tm tm;
    if (ASN1_TIME_to_tm(t, &tm) != 1 || strftime(out, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        str_copy(out, size, "(unreadable date)");
}

/* The leaf certificate is valid now. 0, or -1 with why in err. */
static int check_dates(SSL_CTX *ctx, const char *path, char *err, size_t errlen)
{
    char when[64];
    X509 *x = SSL_CTX_get0_certificate(ctx);
    if (x == NULL)
        return str_format(err, errlen, "tls_cert_file %s: no certificate in it", path), -1;
    if (X509_cmp_current_time(X509_get0_notAfter(x)) <= 0) {
        asn1_date(X509_get0_notAfter(x), when, sizeof when);
        return str_format(err, errlen, "tls_cert_file %s: the certificate expired on %s", path,
                          when),
               -1;
    }
    if (X509_cmp_current_time(X509_get0_notBefore(x)) >= 0) {
        asn1_date(X509_get0_notBefore(x), when, sizeof when);
        return str_format(err, errlen, "tls_cert_file %s: the certificate is not valid before %s",
                          path, when),
               -1;
    }
    return 0;
}

/* A read-only BIO over f's bytes, or NULL. */
static BIO *file_bio(const struct tls_file *f)
{
    return f->len <= (size_t)TLS_FILE_MAX ? BIO_new_mem_buf(f->data, (int)f->len) : NULL;
}

/* The next PEM certificate in b, made in the server's library context (lib/tlsprov), or NULL
 * (none: OpenSSL's error queued). */
static X509 *next_cert(BIO *b)
{
    X509 *x = b != NULL ? X509_new_ex(tls_libctx(), NULL) : NULL;
    if (x != NULL && PEM_read_bio_X509_AUX(b, &x, tls_no_passphrase, NULL) == NULL)
        X509_free(x), x = NULL; /* x is freed and NULL already when its DER did not decode */
    return x;
}

/* The leaf certificate, then its chain, from the PEM bytes f (as
 * SSL_CTX_use_certificate_chain_file reads a file). 1, or 0 with OpenSSL's error queued. */
static int use_chain(SSL_CTX *ctx, const struct tls_file *f)
{
    BIO *b = file_bio(f);
    X509 *x = next_cert(b);
    int ok =
        x != NULL && SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_clear_chain_certs(ctx) == 1;
    X509_free(x);
    while (ok && (x = next_cert(b)) != NULL)
        if (SSL_CTX_add0_chain_cert(ctx, x) != 1)
            X509_free(x), ok = 0;
    unsigned long e = ERR_peek_last_error();
    if (ok && ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE)
        ERR_clear_error(); /* the end of the chain */
    else if (ok && e != 0)
        ok = 0;
    BIO_free(b);
    return ok;
}

/* The private key from the PEM bytes f into ctx. 1, or 0 with OpenSSL's error queued. */
static int use_key(SSL_CTX *ctx, const struct tls_file *f)
{
    EVP_PKEY *k = tls_key_from_pem(f->data, f->len, tls_libctx());
    int ok = k != NULL && SSL_CTX_use_PrivateKey(ctx, k) == 1;
    EVP_PKEY_free(k);
    return ok;
}

/* Certificate chain, key, match and dates into ctx. 0, or -1 with why in err. */
static int load_pair(SSL_CTX *ctx, const struct tls_server *t, char *err, size_t errlen)
{
    char why[256];
    const struct yubin_conf *c = t->conf;
    const char *cert = c->tls_cert_file;
    const char *key = t->key.data != NULL ? c->tls_key_file : c->tls_cert_file;
    const char *key_name = t->key.data != NULL ? "tls_key_file" : "tls_cert_file";
    if (use_chain(ctx, &t->cert) != 1)
        return str_format(err, errlen, "tls_cert_file %s: no PEM certificate (%s)", cert,
                          tls_error_text(why, sizeof why, "?")),
               -1;
    if (use_key(ctx, t->key.data != NULL ? &t->key : &t->cert) != 1 &&
        ERR_GET_REASON(ERR_peek_last_error()) == X509_R_KEY_VALUES_MISMATCH)
        return str_format(err, errlen, "%s %s: the key does not match the certificate in %s",
                          key_name, key, cert),
               ERR_clear_error(), -1;
    if (SSL_CTX_get0_privatekey(ctx) == NULL)
        return str_format(err, errlen, "%s %s: no usable PEM private key (%s)", key_name, key,
                          tls_error_text(why, sizeof why, "?")),
               -1;
    if (SSL_CTX_check_private_key(ctx) != 1)
        return str_format(err, errlen, "%s %s: the key does not match the certificate in %s",
                          key_name, key, cert),
               ERR_clear_error(), -1;
    return check_dates(ctx, cert, err, errlen);
}

/* The context from t's bytes: NULL with why in err. */
static SSL_CTX *make_ctx(const struct tls_server *t, char *err, size_t errlen)
{
    char why[256];
    /* Not openssl.cnf: the policy is ours, and the handler starts faster without it. Not the
     * legacy tables of every cipher and digest by name (EVP_get_cipherbyname) either: libssl
     * fetches what it uses from the provider, and filling them was a third of the CPU time of
     * a handler's TLS set-up (bench/README.md). The first call decides; OPENSSL_init_ssl's
     * own request for them is then a no-op. */
    OPENSSL_init_crypto(OPENSSL_INIT_NO_ADD_ALL_CIPHERS | OPENSSL_INIT_NO_ADD_ALL_DIGESTS |
                            OPENSSL_INIT_NO_LOAD_CONFIG,
                        NULL);
    OPENSSL_init_ssl(OPENSSL_INIT_NO_LOAD_CONFIG, NULL);
    SSL_CTX *ctx = SSL_CTX_new_ex(tls_libctx(), NULL, TLS_server_method());
    if (ctx == NULL) {
        str_format(err, errlen, "cannot make a TLS context: %s",
                   tls_error_text(why, sizeof why, "out of memory"));
        return NULL;
    }
    SSL_CTX_set_default_passwd_cb(ctx, tls_no_passphrase);
    if (tls_policy(ctx, t->conf->tls_protocols, t->conf->tls_ciphers, err, errlen) != 0 ||
        load_pair(ctx, t, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    return ctx;
}

SSL_CTX *tls_server_get(struct tls_server *t, char *err, size_t errlen)
{
    if (!t->tried) {
        t->tried = 1;
        t->ctx = make_ctx(t, t->err, sizeof t->err);
        wipe_file(&t->key); /* the bytes are needed no more, either way */
        wipe_file(&t->cert);
    }
    if (t->ctx == NULL)
        str_copy(err, errlen, t->err);
    return t->ctx;
}

int tls_cert_info(SSL_CTX *ctx, char *subject, size_t subject_size, char *until, size_t until_size,
                  int *days_left)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    int days = 0, seconds = 0;
    if (x == NULL)
        return -1;
    asn1_date(X509_get0_notAfter(x), until, until_size);
    if (ASN1_TIME_diff(&days, &seconds, NULL, X509_get0_notAfter(x)) != 1)
        days = -1;
    *days_left = days;
    subject[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b != NULL && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
        int n = BIO_read(b, subject, subject_size > 1 ? (int)subject_size - 1 : 0);
        subject[n > 0 ? n : 0] = '\0';
    }
    BIO_free(b);
    return 0;
}
