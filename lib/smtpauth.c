/*
 * smtpauth: the server side of one SMTP AUTH exchange (PLAIN, LOGIN); see smtpauth.h. It must
 * never log or keep a password, nor decide whether AUTH is offered (smtp-in does).
 */
#include "config.h"

#include <string.h>

#include "authc.h"
#include "log.h"
#include "smtpauth.h"
#include "util.h"

/* A reply line (CR LF added). */
static void say(struct smtpauth *a, const char *text)
{
    netio_printf(a->io, "%s\r\n", text);
}

/* A failed login: logged (never the password), delayed, and the end of the session after
 * max_auth_failures. held_ms: how long yubin-auth already held the answer back (its delays
 * count across connections); a failure it never saw is delayed here (auth_delay_ms, doubling
 * each time). */
static enum smtpauth_result failed(struct smtpauth *a, const char *who, const char *why,
                                   long held_ms)
{
    a->failures++;
    unsigned shift = a->failures - 1 > 6 ? 6 : a->failures - 1;
    unsigned long delay = (unsigned long)a->conf->auth_delay_ms << shift;
    delay = delay > 60000 ? 60000 : delay;
    if (held_ms < 0)
        sleep_ms(delay);
    log_msg(LOG_WARNING, "login failed: user=<%s> client=%s reason=\"%s\" failures=%u delay=%lums",
            log_field(who), a->client, why, a->failures,
            held_ms < 0 ? delay : (unsigned long)held_ms);
    if (a->failures >= a->conf->max_auth_failures) {
        netio_printf(a->io, "421 4.7.0 %s too many failed logins, closing connection\r\n",
                     a->conf->hostname);
        return SMTPAUTH_CLOSE;
    }
    say(a, "535 5.7.8 authentication credentials invalid");
    return SMTPAUTH_REFUSED;
}

/* An exchange that ended without a verdict (cancelled, undecodable): the reply, and a log line
 * with the client address. */
static enum smtpauth_result ended(struct smtpauth *a, const char *text)
{
    log_msg(LOG_NOTICE, "AUTH ended: client=%s reply=\"%s\"", a->client, text);
    say(a, text);
    return SMTPAUTH_REFUSED;
}

/* Asks yubin-auth about the password of address; a->login is set on success. */
static enum smtpauth_result check(struct smtpauth *a, const char *address, const char *password,
                                  size_t len)
{
    struct authc_answer ans;
    int ok = authc_login(a->conf, "smtp", a->client, address, password, len, &ans);
    if (ok < 0) {
        log_msg(LOG_ERR, "cannot check a password: user=<%s> client=%s: %s", log_field(address),
                a->client, ans.why);
        say(a, "454 4.7.0 temporary authentication failure");
        return SMTPAUTH_REFUSED;
    }
    if (ok == 0)
        return failed(a, address, "bad user name or password", (long)ans.delay_ms);
    str_copy(a->login, sizeof a->login, ans.mailbox);
    log_msg(LOG_INFO, "login user=<%s> client=%s", log_field(a->login), a->client);
    say(a, "235 2.7.0 authentication successful");
    return SMTPAUTH_OK;
}

/* Sends "334 challenge" and reads the client's response into line (without CR LF).
 * SMTPAUTH_OK: a response is in line; anything else ends the exchange (replied already). */
static enum smtpauth_result response(struct smtpauth *a, const char *challenge, char *line,
                                     size_t size)
{
    netio_printf(a->io, "334 %s\r\n", challenge);
    long n = netio_getline(a->io, line, size);
    if (n == NETIO_TIMEOUT) {
        netio_printf(a->io, "421 4.4.2 %s timeout, closing connection\r\n", a->conf->hostname);
        return SMTPAUTH_CLOSE;
    }
    if (n == NETIO_TOOLONG && a->io->toolong_crlf && !a->io->toolong_bare_cr)
        return ended(a, "500 5.5.6 authentication exchange line is too long");
    if (n == NETIO_TOOLONG)
        return SMTPAUTH_BARE;
    if (n <= 0 || line[n - 1] != '\n')
        return SMTPAUTH_EOF;
    if (n < 2 || line[n - 2] != '\r' || memchr(line, '\r', (size_t)n - 2) != NULL)
        return SMTPAUTH_BARE;
    line[n - 2] = '\0';
    if (strlen(line) != (size_t)n - 2)
        return ended(a, "501 5.5.2 NUL in the response");
    if (sasl_is_cancel(line))
        return ended(a, "501 5.7.0 authentication cancelled");
    return SMTPAUTH_OK;
}

static enum smtpauth_result plain(struct smtpauth *a, const char *initial, char *line, size_t size)
{
    struct sasl_creds c;
    enum smtpauth_result rc;
    if (initial == NULL) {
        if ((rc = response(a, "", line, size)) != SMTPAUTH_OK)
            return rc;
        initial = line;
    }
    if (sasl_plain_decode(initial, &c) != 0)
        rc = ended(a, "501 5.5.2 cannot decode the AUTH PLAIN response");
    else if (c.authzid[0] != '\0' && !str_ieq(c.authzid, c.authcid))
        rc = failed(a, c.authcid, "authorization identity differs", -1);
    else
        rc = check(a, c.authcid, c.passwd, c.passwd_len);
    sasl_creds_wipe(&c);
    return rc;
}

static enum smtpauth_result login(struct smtpauth *a, const char *initial, char *line, size_t size)
{
    struct sasl_creds c;
    long len;
    enum smtpauth_result rc = SMTPAUTH_OK;
    memset(&c, 0, sizeof c);
    if (initial == NULL && (rc = response(a, SASL_LOGIN_USER_CHALLENGE, line, size)) == SMTPAUTH_OK)
        initial = line;
    if (rc == SMTPAUTH_OK && sasl_login_decode(initial, c.authcid, sizeof c.authcid) < 0)
        rc = ended(a, "501 5.5.2 cannot decode the user name");
    if (rc == SMTPAUTH_OK &&
        (rc = response(a, SASL_LOGIN_PASS_CHALLENGE, line, size)) == SMTPAUTH_OK) {
        if ((len = sasl_login_decode(line, c.passwd, sizeof c.passwd)) < 0)
            rc = ended(a, "501 5.5.2 cannot decode the password");
        else
            rc = check(a, c.authcid, c.passwd, (size_t)len);
    }
    sasl_creds_wipe(&c);
    return rc;
}

enum smtpauth_result smtpauth_run(struct smtpauth *a, const char *mechanism, const char *initial,
                                  char *line, size_t size)
{
    if (str_ieq(mechanism, "PLAIN"))
        return plain(a, initial, line, size);
    if (str_ieq(mechanism, "LOGIN"))
        return login(a, initial, line, size);
    say(a, "504 5.5.4 unrecognized authentication mechanism (PLAIN and LOGIN)");
    return SMTPAUTH_REFUSED;
}
