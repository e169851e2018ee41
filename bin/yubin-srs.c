/*
 * yubin-srs: the administrator's tool for SRS (yubin.conf(5), "Forwarding (SRS)").
 *   newkey           puts a new random secret (32 libsodium random bytes, base64) first in
 *                    srs_secret_file and keeps the older ones after it, so that the addresses
 *                    they signed stay valid (16 at most: the oldest go). The file is rewritten
 *                    atomically: mode 0640 with the mail account's group when run as root,
 *                    else 0600.
 *   forward ADDRESS  the envelope sender smtp-in gives a copy from ADDRESS forwarded to an
 *                    alias member elsewhere.
 *   reverse ADDRESS  the address an SRS address of ours stands for, or why it is refused.
 * It never prints a secret, never leaves a half-written file, and changes nothing but
 * srs_secret_file.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sysexits.h>
#include <unistd.h>

#include <sodium.h>

#include "addr.h"
#include "conf.h"
#include "route.h"
#include "srs.h"
#include "util.h"

static const char prog[] = "yubin-srs";
static struct yubin_conf conf;

static int usage(void)
{
    fprintf(stderr, "usage: yubin-srs [-C yubin.conf] newkey\n"
                    "       yubin-srs [-C yubin.conf] forward address\n"
                    "       yubin-srs [-C yubin.conf] reverse address\n");
    return EX_USAGE;
}

/* ---- newkey ------------------------------------------------------------------------------ */

/* The secret lines of the current file (comments and blank lines dropped) into keep, at most
 * SRS_MAX_SECRETS - 1 of them. The number kept, or -1 (errno) when it cannot be read. */
static int old_secrets(const char *path, char *keep, size_t size)
{
    char line[1024];
    int n = 0;
    size_t used = 0;
    keep[0] = '\0';
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    while (fgets(line, sizeof line, f) != NULL) {
        char *s = str_trim(line);
        size_t len = strlen(s);
        if (len == 0 || s[0] == '#' || n >= SRS_MAX_SECRETS - 1 || used + len + 2 > size)
            continue;
        memcpy(keep + used, s, len);
        used += len;
        keep[used++] = '\n';
        keep[used] = '\0';
        n++;
    }
    int bad = ferror(f);
    fclose(f);
    sodium_memzero(line, sizeof line);
    return bad ? (errno = EIO, -1) : n;
}

/* Writes text to a new file next to path, then renames it over path. 0, or -1 (errno). */
static int replace_file(const char *path, const char *text)
{
    char tmp[PATH_MAX + 16], dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    if (str_format(tmp, sizeof tmp, "%s.tmpXXXXXX", path) < 0 ||
        str_copy_n(dir, sizeof dir, slash ? path : ".", slash ? (size_t)(slash - path) : 1) != 0)
        return errno = ENAMETOOLONG, -1;
    if (dir[0] == '\0')
        str_copy(dir, sizeof dir, "/");
    int fd = mkstemp(tmp);
    if (fd < 0)
        return -1;
    int rc = 0;
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(conf.user);
        if (pw == NULL)
            rc = -1, errno = ENOENT;
        else if (fchown(fd, 0, pw->pw_gid) != 0 || fchmod(fd, 0640) != 0)
            rc = -1;
    } else if (fchmod(fd, 0600) != 0) {
        rc = -1;
    }
    if (rc == 0 && (write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0))
        rc = -1;
    int err = errno;
    if (close(fd) != 0 && rc == 0)
        rc = -1, err = errno;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = -1, err = errno;
    if (rc != 0)
        unlink(tmp);
    else if (fsync_dir(dir) != 0)
        rc = -1, err = errno;
    errno = err;
    return rc;
}

static int cmd_newkey(void)
{
    static char keep[SRS_MAX_SECRETS * 1024], text[sizeof keep + 256];
    unsigned char key[32];
    char line[sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)];
    int n = old_secrets(conf.srs_secret_file, keep, sizeof keep);
    if (n < 0)
        return cli_fail(prog, EX_CANTCREAT, "cannot read %s: %s", conf.srs_secret_file,
                        strerror(errno));
    randombytes_buf(key, sizeof key);
    sodium_bin2base64(line, sizeof line, key, sizeof key, sodium_base64_VARIANT_ORIGINAL);
    int rc = str_format(text, sizeof text,
                        "# SRS secrets (yubin.conf(5)): the first signs, every one verifies.\n"
                        "%s\n%s",
                        line, keep) < 0
                 ? (errno = EOVERFLOW, -1)
                 : replace_file(conf.srs_secret_file, text);
    int err = errno;
    sodium_memzero(key, sizeof key);
    sodium_memzero(line, sizeof line);
    sodium_memzero(keep, sizeof keep);
    sodium_memzero(text, sizeof text);
    if (rc != 0)
        return cli_fail(prog, EX_CANTCREAT, "cannot write %s: %s", conf.srs_secret_file,
                        strerror(err));
    printf("%s: a new secret signs from now on; %d older one%s still verif%s\n",
           conf.srs_secret_file, n, n == 1 ? "" : "s", n == 1 ? "ies" : "y");
    return 0;
}

/* ---- forward and reverse ------------------------------------------------------------------ */

static int cmd_forward(struct route_ctx *ctx, const char *address)
{
    char out[ADDR_SIZE], why[400];
    struct addr a;
    if (address[0] != '\0' && addr_parse_mailbox(address, &a) != ADDR_OK)
        return cli_fail(prog, EX_DATAERR, "%s: not an address", address);
    if (route_forward_sender(ctx, address, out, sizeof out, why, sizeof why) != 0)
        return cli_fail(prog, EX_TEMPFAIL, "%s", why);
    if (why[0] != '\0')
        fprintf(stderr, "%s: %s\n", prog, why);
    printf("%s\n", out);
    return 0;
}

static int cmd_reverse(struct route_ctx *ctx, const char *address)
{
    struct addr a;
    struct route r;
    if (addr_parse_mailbox(address, &a) != ADDR_OK || !srs_is_srs(a.local))
        return cli_fail(prog, EX_DATAERR, "%s: not an SRS address", address);
    enum route_kind kind = route_rcpt(ctx, &a, 0, &r);
    int rc = 0;
    if (kind == ROUTE_LOCAL && r.forward && r.n_remote == 1 && r.n_local == 0)
        printf("%s\n", r.remote[0]);
    else if (kind == ROUTE_TEMPFAIL)
        rc = cli_fail(prog, EX_TEMPFAIL, "%s", r.why);
    else
        rc = cli_fail(prog, EX_NOUSER, "%s", kind == ROUTE_REFUSED ? r.reply : "not SRS here");
    route_free(&r);
    return rc;
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    char err[512];
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-C") == 0) {
        conf_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        return usage();
    const char *cmd = argv[i++];
    int args = argc - i, newkey = strcmp(cmd, "newkey") == 0;
    if (newkey ? args != 0
               : (strcmp(cmd, "forward") != 0 && strcmp(cmd, "reverse") != 0) || args != 1)
        return usage();
    if (sodium_init() < 0)
        return cli_fail(prog, EX_SOFTWARE, "libsodium cannot start");
    if (conf_load(&conf, conf_path, err, sizeof err) != 0)
        return cli_fail(prog, EX_CONFIG, "%s", err);
    if (newkey)
        return cmd_newkey();
    struct route_ctx ctx;
    route_init(&ctx, &conf);
    int rc = cmd[0] == 'f' ? cmd_forward(&ctx, argv[i]) : cmd_reverse(&ctx, argv[i]);
    route_ctx_free(&ctx);
    return rc;
}
