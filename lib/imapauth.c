/*
 * imapauth: LOGIN and AUTHENTICATE PLAIN for imap4-in (lib/imapauth.h), through yubin-auth.
 * It must never log a password, leave one in a buffer it owns, or answer a login before the
 * delay for a failure has passed.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "authc.h"
#include "imapauth.h"
#include "log.h"
#include "maildir.h"
#include "sasl.h"
#include "util.h"

#define SASL_LINE_MAX 2048 /* a client's SASL response */

int imapauth_allowed(const struct imapsess *s)
{
    return s->tls[0] != '\0' || s->local_client || s->conf.auth_without_tls;
}

/* Refuses a login before TLS (RFC 9051 §6.2.3, RFC 5530's PRIVACYREQUIRED). 1 when refused. */
static int needs_tls(struct imapsess *s)
{
    if (imapauth_allowed(s))
        return 0;
    imapsess_no(s, s->tls_ctx != NULL
                       ? "[PRIVACYREQUIRED] TLS required: send STARTTLS first"
                       : "[PRIVACYREQUIRED] logins need TLS, and none is configured");
    return 1;
}

/* A failed login: logged, delayed, and fatal after max_auth_failures. held_ms: how long
 * yubin-auth already held the answer back; a failure it never saw is delayed here. */
static int failed(struct imapsess *s, const char *who, const char *why, long held_ms)
{
    authc_failed(&s->conf, &s->auth_failures, s->client, who, why, held_ms);
    imapsess_no(s, "[AUTHENTICATIONFAILED] invalid user name or password");
    if (s->auth_failures < s->conf.max_auth_failures)
        return 0;
    imapsess_untagged(s, "BYE too many failed logins, closing the connection");
    s->done = 1;
    return -1;
}

/* Whether root already has what open_root makes, as a former login left it: tmp, new and cur,
 * and each special folder's maildirfolder file (made after the folder's own tmp, new and cur),
 * one lookup each below root. Then a login reads eight entries instead of walking every path
 * component again with mkdir (about seventy calls, each a directory read when the cache is
 * cold); anything missing or odd, and open_root makes or reports it as before. */
static int root_complete(const char *root)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char path[PATH_MAX], rel[PATH_MAX];
    struct stat st;
    size_t n = strlen(root);
    int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int ok = 1;
    for (size_t i = 0; ok && i < ARRAY_LEN(subs); i++)
        ok = fstatat(fd, subs[i], &st, 0) == 0 && S_ISDIR(st.st_mode);
    for (size_t i = 0; ok && i < mailbox_special_count; i++)
        ok = mailbox_folder_path(path, sizeof path, root, mailbox_special_folders[i].name) == 0 &&
             strncmp(path, root, n) == 0 && path[n] == '/' &&
             str_format(rel, sizeof rel, "%s/maildirfolder", path + n + 1) >= 0 &&
             fstatat(fd, rel, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
    close(fd);
    return ok;
}

/* The user's Maildir, made if missing, and its special folders. 0, or -1 (replied). */
static int open_root(struct imapsess *s, const char *address)
{
    char local[USERS_ADDRESS_SIZE];
    const char *at = strrchr(address, '@');
    if (at == NULL || str_copy_n(local, sizeof local, address, (size_t)(at - address)) != 0 ||
        maildir_path(s->root, sizeof s->root, s->conf.state_dir, local, at + 1) != 0) {
        imapsess_no(s, "[UNAVAILABLE] this mailbox name cannot be served");
        return -1;
    }
    if (!root_complete(s->root) &&
        (maildir_ensure(s->root) != 0 || mailbox_ensure_folders(s->root) != 0)) {
        log_msg(LOG_ERR, "cannot make the mailbox %s: %s", s->root, strerror(errno));
        imapsess_no(s, "[UNAVAILABLE] cannot open the mailbox, try again later");
        return -1;
    }
    return 0;
}

/* Asks yubin-auth about the password of address. As imapauth_login. */
static int check(struct imapsess *s, const char *address, const char *password, size_t pwlen)
{
    struct authc_answer a;
    int ok = authc_login(&s->conf, "imap", s->client, address, password, pwlen, &a);
    if (ok < 0) {
        log_msg(LOG_ERR, "cannot check a password: user=<%s> client=%s: %s", log_field(address),
                s->client, a.why);
        imapsess_no(s, "[UNAVAILABLE] cannot check passwords now, try again later");
        return 0;
    }
    if (ok == 0)
        return failed(s, address, "bad user name or password", (long)a.delay_ms);
    if (open_root(s, a.mailbox) != 0)
        return 0;
    str_copy(s->user, sizeof s->user, a.mailbox);
    s->state = IMAP_AUTH;
    log_msg(LOG_INFO, "login: user=<%s> client=%s%s", log_field(s->user), s->client,
            s->tls[0] != '\0' ? " tls=yes" : "");
    return 1;
}

int imapauth_login(struct imapsess *s, struct imaptok *args)
{
    char user[AUTHC_NAME_MAX + 1], password[AUTHC_PASSWORD_MAX + 1];
    size_t ulen, plen;
    if (needs_tls(s))
        return 0;
    int rc;
    if (imaptok_astring(args, user, sizeof user, &ulen) != 0 || imaptok_space(args) != 0 ||
        imaptok_astring(args, password, sizeof password, &plen) != 0 || !imaptok_at_end(args)) {
        rc = imapsess_bad(s, "LOGIN needs a user name and a password") < 0 ? -1 : 0;
    } else {
        rc = check(s, user, password, plen);
    }
    sodium_memzero(password, sizeof password);
    return rc;
}

/* The client's response after "+ " into line. 1, 0 (cancelled or malformed: replied), -1. */
static int response(struct imapsess *s, char *line, size_t size)
{
    if (netio_puts(&s->io, "+ \r\n") != 0)
        return -1;
    long n = netio_getline(&s->io, line, size);
    if (n == NETIO_TOOLONG) {
        imapsess_bad(s, "SASL response too long");
        return 0;
    }
    if (n <= 0)
        return -1;
    size_t len = (size_t)n;
    if (len < 2 || line[len - 2] != '\r' || line[len - 1] != '\n' ||
        memchr(line, '\0', len) != NULL || memchr(line, '\r', len - 2) != NULL) {
        imapsess_bad(s, "malformed SASL response");
        return 0;
    }
    line[len - 2] = '\0';
    if (sasl_is_cancel(line)) {
        imapsess_bad(s, "authentication cancelled");
        return 0;
    }
    return 1;
}

/* PLAIN's message (base64, "=" for empty) into credentials, and the check. */
static int plain(struct imapsess *s, const char *b64)
{
    struct sasl_creds c;
    int rc;
    if (sasl_plain_decode(b64, &c) != 0)
        rc = failed(s, "?", "malformed AUTHENTICATE PLAIN response", -1);
    else if (c.authzid[0] != '\0' && !str_ieq(c.authzid, c.authcid))
        rc = failed(s, c.authcid, "authorization identity differs", -1);
    else
        rc = check(s, c.authcid, c.passwd, c.passwd_len);
    sasl_creds_wipe(&c);
    return rc;
}

static int base64_text(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
              (p[i] >= '0' && p[i] <= '9') || p[i] == '+' || p[i] == '/' || p[i] == '='))
            return 0;
    return 1;
}

int imapauth_authenticate(struct imapsess *s, struct imaptok *args)
{
    const char *mech, *ir = NULL;
    size_t mlen, irlen = 0;
    if (needs_tls(s))
        return 0;
    if (imaptok_atom(args, &mech, &mlen) != 0)
        return imapsess_bad(s, "AUTHENTICATE needs a mechanism") < 0 ? -1 : 0;
    if (imaptok_space(args) == 0) {
        ir = args->p; /* SASL-IR: base64 or "=" */
        irlen = (size_t)(args->end - args->p);
    }
    if (!(mlen == 5 && strncasecmp(mech, "PLAIN", 5) == 0))
        return imapsess_no(s, "unsupported SASL mechanism (PLAIN is offered)") < 0 ? -1 : 0;
    char line[SASL_LINE_MAX + 3];
    int rc;
    if (ir != NULL) {
        if (irlen == 0 || irlen > SASL_LINE_MAX || !base64_text(ir, irlen))
            return imapsess_bad(s, "malformed initial response") < 0 ? -1 : 0;
        memcpy(line, ir, irlen);
        line[irlen] = '\0';
        rc = plain(s, line);
    } else {
        rc = response(s, line, sizeof line);
        if (rc > 0)
            rc = plain(s, line);
    }
    sodium_memzero(line, sizeof line);
    netio_wipe_consumed(&s->io);
    return rc;
}
