/*
 * test-dsn: lib/dsn. A bounce for two recipients and a delay warning, compared with golden
 * files (tests/unit/dsn/NAME.ref; the random boundary and Message-ID are replaced by fixed words
 * first, dates are in UTC), then the rules every report must keep whatever its input: LF only,
 * 7-bit, no line of 998 octets or more, Status of the action's class, the original header
 * section without its body or Return-Path and bounded, bad input refused, writer errors
 * returned, and delivery into a real Maildir message through dsn_write_maildir.
 * Set YUBIN_DSN_REGEN=1 to rewrite the golden files (then read them before committing).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "maildir.h"
#include "tap.h"

static char golden_dir[4096];
static char out[1 << 18];

/* A stored message: Return-Path, headers, blank line, body. */
static int stored(const char *text, off_t *offset)
{
    char path[] = "/tmp/test-dsn-msgXXXXXX";
    const char *rp = "Return-Path: <alice@example.org>\n";
    int fd = mkstemp(path);
    if (fd < 0)
        exit(2);
    unlink(path);
    if (write(fd, rp, strlen(rp)) < 0 || write(fd, text, strlen(text)) < 0)
        exit(2);
    *offset = (off_t)strlen(rp);
    return fd;
}

/* Runs dsn_write_fd into a temp file and reads the result into out. */
static int report(const struct dsn *d)
{
    char path[] = "/tmp/test-dsn-outXXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        exit(2);
    unlink(path);
    int rc = dsn_write_fd(d, fd);
    ssize_t n = pread(fd, out, sizeof out - 1, 0);
    out[n > 0 ? n : 0] = '\0';
    close(fd);
    return rc;
}

/* Replaces every occurrence of from (length n) in s by to (length n or less). */
static void replace(char *s, const char *from, const char *to)
{
    size_t fl = strlen(from), tl = strlen(to);
    char *p;
    while (fl > 0 && (p = strstr(s, from)) != NULL) {
        memcpy(p, to, tl);
        memmove(p + tl, p + fl, strlen(p + fl) + 1);
        s = p + tl;
    }
}

/* The report with its random parts replaced, for golden comparison. */
static void normalise(char *s)
{
    char boundary[80] = "", msgid[200] = "";
    const char *b = strstr(s, "boundary=\"");
    if (b != NULL && sscanf(b, "boundary=\"%79[^\"]\"", boundary) == 1)
        replace(s, boundary, "BOUNDARY");
    const char *m = strstr(s, "Message-ID: ");
    if (m != NULL && sscanf(m, "Message-ID: %199s", msgid) == 1)
        replace(s, msgid, "<MSGID>");
}

static void golden(const char *name, const char *got)
{
    char path[4200], want[1 << 16];
    snprintf(path, sizeof path, "%s/%s", golden_dir, name);
    if (getenv("YUBIN_DSN_REGEN") != NULL) {
        FILE *f = fopen(path, "w");
        if (f != NULL) {
            fputs(got, f);
            fclose(f);
        }
    }
    FILE *f = fopen(path, "r");
    size_t n = f != NULL ? fread(want, 1, sizeof want - 1, f) : 0;
    want[n] = '\0';
    if (f != NULL)
        fclose(f);
    CHECK(f != NULL && strcmp(got, want) == 0, "%s matches the golden file", name);
    if (f != NULL && strcmp(got, want) != 0)
        printf("# got:\n%s\n", got);
}

/* The rules every report keeps. */
static void invariants(const char *what, const char *s)
{
    int cr = 0, eight = 0, ctl = 0;
    size_t longest = 0, col = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        cr |= *p == '\r';
        eight |= *p >= 0x80;
        ctl |= (*p < 0x20 && *p != '\n' && *p != '\t') || *p == 0x7f;
        col = *p == '\n' ? 0 : col + 1;
        if (col > longest)
            longest = col;
    }
    CHECK(!cr && !eight && !ctl, "%s: LF only, 7-bit, no control bytes", what);
    CHECK(longest < 998, "%s: longest line %zu < 998", what, longest);
    CHECK(s[0] != '\0' && s[strlen(s) - 1] == '\n', "%s: ends with a line end", what);
}

static const time_t T0 = 1790000000; /* 2026-09-21 14:13:20 UTC */

static void test_bounce(void)
{
    off_t off;
    int fd = stored("From: Alice <alice@example.org>\nTo: bob@remote.test, carol@remote.test\n"
                    "Subject: caf\xc3\xa9 plans\r\nMessage-ID: <1@example.org>\n\n"
                    "Body text that must not be returned.\n",
                    &off);
    struct dsn_rcpt r[2] = {
        {.addr = "bob@remote.test",
         .action = DSN_FAILED,
         .status = "5.1.1",
         .remote_mta = "mx.remote.test",
         .diagnostic = "550 5.1.1 <bob@remote.test>: Recipient address rejected: User unknown "
                       "in virtual mailbox table",
         .reply_code = 550,
         .last_attempt = T0 + 60},
        {.addr = "carol@remote.test",
         .orig = "team@example.org",
         .action = DSN_FAILED,
         .status = "4.4.7",
         .reason = "delivery time expired: no MX host answered in 5 days",
         .last_attempt = T0 + 120},
    };
    struct dsn d = {.hostname = "mx.example.org",
                    .to = "alice@example.org",
                    .queue_id = "Q1",
                    .arrival = T0,
                    .now = T0 + 180,
                    .rcpts = r,
                    .n_rcpts = 2,
                    .msg_fd = fd,
                    .msg_offset = off};
    CHECK(report(&d) == 0, "a bounce is written");
    invariants("bounce", out);
    CHECK(strstr(out, "\nStatus: 5.4.7\n") != NULL, "a failed recipient's 4.4.7 becomes 5.4.7");
    CHECK(strstr(out, "Body text") == NULL && strstr(out, "Return-Path") == NULL,
          "the original's body and Return-Path are not returned");
    CHECK(strstr(out, "Subject: caf?? plans\n") != NULL, "8-bit header bytes become '?'");
    normalise(out);
    golden("bounce.ref", out);
    close(fd);
}

static void test_delay(void)
{
    struct dsn_rcpt r = {.addr = "bob@remote.test",
                         .action = DSN_DELAYED,
                         .status = "5.4.1",
                         .remote_mta = "mx.remote.test",
                         .diagnostic = "451 4.3.0 Temporary lookup failure",
                         .reply_code = 451,
                         .last_attempt = T0 + 3600,
                         .retry_until = T0 + 5 * 86400};
    struct dsn d = {.hostname = "mx.example.org",
                    .to = "alice@example.org",
                    .arrival = T0,
                    .now = T0 + 4 * 3600,
                    .rcpts = &r,
                    .n_rcpts = 1,
                    .msg_fd = -1};
    CHECK(report(&d) == 0, "a delay warning is written");
    invariants("delay", out);
    CHECK(strstr(out, "\nStatus: 4.4.1\n") != NULL, "a delayed recipient gets a 4.x.y status");
    CHECK(strstr(out, "text/rfc822-headers") == NULL, "no headers part without the original");
    normalise(out);
    golden("delay.ref", out);
}

static void test_hostile(void)
{
    static char diag[5000], addr[600], hdrs[200000];
    off_t off;
    memset(diag, 'x', sizeof diag - 1);
    memcpy(diag, "550 5.7.1 \x01\x80\r\n.\n", 16);
    memset(addr, 'a', sizeof addr - 1);
    memcpy(addr + 400, "@x", 2);
    size_t n = 0;
    while (n + 100 < sizeof hdrs) {
        memcpy(hdrs + n, "X-Long: ", 8);
        memset(hdrs + n + 8, 'h', 90);
        hdrs[n + 98] = '\n';
        n += 99;
    }
    memset(hdrs + 1000, 'L', 3000); /* one line of ~3000 octets among them */
    hdrs[n] = '\0';
    int fd = stored(hdrs, &off);
    struct dsn_rcpt r = {.addr = addr,
                         .action = DSN_FAILED,
                         .diagnostic = diag,
                         .reply_code = 550,
                         .status = "nonsense"};
    struct dsn d = {.hostname = "mx.example.org",
                    .to = "a\nb\x80@example.org",
                    .rcpts = &r,
                    .n_rcpts = 1,
                    .msg_fd = fd,
                    .msg_offset = off};
    CHECK(report(&d) == 0, "a report from hostile input is written");
    invariants("hostile", out);
    CHECK(strstr(out, "\nStatus: 5.0.0\n") != NULL, "a malformed status becomes 5.0.0");
    CHECK(strstr(out, "To: <a b?@example.org>\n") != NULL, "the To: address is cleaned");
    const char *h = strstr(out, "text/rfc822-headers");
    CHECK(h != NULL && strlen(h) <= DSN_MAX_HEADERS + 200 && strlen(h) > DSN_MAX_HEADERS / 2,
          "the header section is bounded (%zu octets)", h ? strlen(h) : 0);
    close(fd);

    struct dsn bad = d;
    bad.to = "";
    CHECK(report(&bad) == -1 && errno == EINVAL, "no report to the null sender");
    bad = d;
    bad.n_rcpts = 0;
    CHECK(report(&bad) == -1 && errno == EINVAL, "no report without recipients");
    bad = d;
    bad.hostname = "bad host";
    CHECK(report(&bad) == -1 && errno == EINVAL, "a host name with a space is refused");
}

static int fail_after;
static int failing(void *arg, const void *data, size_t len)
{
    (void)arg, (void)data, (void)len;
    if (fail_after-- > 0)
        return 0;
    errno = ENOSPC;
    return -1;
}

static void test_writers(void)
{
    struct dsn_rcpt r = {.addr = "bob@remote.test", .action = DSN_FAILED, .reply_code = 550};
    struct dsn d = {.hostname = "mx.example.org",
                    .to = "alice@example.org",
                    .rcpts = &r,
                    .n_rcpts = 1,
                    .msg_fd = -1};
    fail_after = 20;
    errno = 0;
    CHECK(dsn_write(&d, failing, NULL) == -1 && errno == ENOSPC, "a writer error is returned");

    char dir[] = "/tmp/test-dsn-stateXXXXXX", md[4200], name[400], path[4700];
    struct maildir_msg m;
    if (mkdtemp(dir) == NULL)
        exit(2);
    snprintf(md, sizeof md, "%s/mail/alice", dir);
    int ok = maildir_msg_begin(&m, dir, "mx.example.org") == 0 && dsn_write_maildir(&d, &m) == 0 &&
             maildir_msg_commit(&m) == 0 && maildir_msg_link(&m, md, name, sizeof name) == 0 &&
             maildir_msg_sync(&m) == 0;
    maildir_msg_end(&m, 0);
    CHECK(ok, "a bounce delivered into a Maildir with dsn_write_maildir");
    snprintf(path, sizeof path, "%s/new/%s", md, name);
    FILE *f = fopen(path, "r");
    size_t n = f ? fread(out, 1, sizeof out - 1, f) : 0;
    out[n] = '\0';
    if (f)
        fclose(f);
    CHECK(strncmp(out, "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\n", 58) == 0 &&
              strstr(out, "\nStatus: 5.0.0\n") != NULL,
          "the stored bounce reads back");
    char cmd[200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        printf("# could not remove %s\n", dir);
}

int main(void)
{
    const char *src = getenv("YUBIN_SRC");
    setenv("TZ", "UTC", 1);
    tzset();
    snprintf(golden_dir, sizeof golden_dir, "%s", src ? src : ".");
    if (src)
        snprintf(golden_dir, sizeof golden_dir, "%s/tests/unit/dsn", src);
    else
        snprintf(golden_dir, sizeof golden_dir, "dsn");
    test_bounce();
    test_delay();
    test_hostile();
    test_writers();
    return tap_done();
}
