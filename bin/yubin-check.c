/*
 * yubin-check: checks a yubin site, or shows where addresses would go (yubin-check(8));
 * `sendmail -bv` and `sendmail -bt` run it.
 *
 *     yubin-check [-C conf] [-n]              check yubin.conf, the users and aliases files,
 *                                             the account, the state directories (-n: DNS)
 *     yubin-check [-C conf] address...        where each address would go, and why
 *     yubin-check [-C conf] -a                the same for addresses read from stdin
 *
 * Every file is read with the code the servers use (lib/conf, lib/users, lib/aliases,
 * lib/route, lib/mx, lib/tls, lib/tlsc), in its check mode that reports every error with
 * file:line instead of stopping at the first. Problems are printed as "error: ..." and "warning:
 * ..." lines on stdout; the exit status follows <sysexits.h>.
 *
 * It never changes a file, never creates a directory, never sends mail, and never follows a
 * symbolic link inside the state directory (it walks it with openat(O_NOFOLLOW)); as root it
 * drops to the mail account only in a child that tests what that account can reach.
 */
#define _GNU_SOURCE
#include "config.h"

#include "addr.h"
#include "aliases.h"
#include "conf.h"
#include "maildir.h"
#include "mx.h"
#include "privs.h"
#include "route.h"
#include "tls.h"
#include "tlsc.h"
#include "tlsserver.h"
#include "users.h"
#include "util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#define WALK_DEPTH 4 /* state_dir/mail/<domain>/<user>/{tmp,new,cur} */

static const char *prog = "yubin-check";
static struct yubin_conf conf;
static unsigned n_errors, n_warnings;
static struct mx_resolver *resolver;

static void finding(const char *kind, unsigned *count, const char *fmt, va_list ap)
{
    printf("%s: ", kind);
    vprintf(fmt, ap);
    putchar('\n');
    (*count)++;
}

static void error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void ok(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finding("error", &n_errors, fmt, ap);
    va_end(ap);
}

static void warning(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    finding("warning", &n_warnings, fmt, ap);
    va_end(ap);
}

static void ok(const char *fmt, ...)
{
    unsigned none = 0;
    va_list ap;
    va_start(ap, fmt);
    finding("ok", &none, fmt, ap);
    va_end(ap);
}

static void report_error(void *arg, const char *msg)
{
    (void)arg;
    error("%s", msg);
}

/* ---------------- the files ---------------- */

static int check_conf(const char *path, int quiet_ok)
{
    int n = conf_check(&conf, path, report_error, NULL);
    if (n < 0)
        return -1;
    if (n == 0 && !quiet_ok)
        ok("%s: hostname %s, %zu local domain(s), first %s", conf.path, conf.hostname,
           conf.n_local_domains, conf.local_domains[0]);
    return 0;
}

struct count {
    size_t n;
};

static int count_user(const char *address, const char *hash, void *arg)
{
    (void)address, (void)hash;
    ((struct count *)arg)->n++;
    return 0;
}

/* Who may read the users file: yubin-auth(8) alone, the users file being root's (or
 * auth_user's), group auth_user, mode 0640 at most (yubin-users(5)). That the handlers'
 * account cannot read it is checked as that account (reachable_as_account). */
static void check_users_mode(const struct stat *st, const struct passwd *pw)
{
    uid_t auth_uid;
    gid_t auth_gid;
    (void)pw; /* getpwnam's buffer: kept intact for the caller (privs_account reads apart) */
    if (st->st_mode & 0007)
        error("%s: mode %04o: every account can read the password hashes (chmod o-rwx)",
              conf.users_file, (unsigned)(st->st_mode & 07777));
    if (st->st_mode & 0022)
        error("%s: mode %04o: writable by others than its owner", conf.users_file,
              (unsigned)(st->st_mode & 07777));
    if (privs_account(conf.auth_user, &auth_uid, &auth_gid) != 0)
        return error("auth_user %s: no such account (useradd --system %s)", conf.auth_user,
                     conf.auth_user);
    if (st->st_uid != 0 && st->st_uid != auth_uid)
        warning("%s: owned by uid %u, neither root nor %s", conf.users_file, (unsigned)st->st_uid,
                conf.auth_user);
    if (!(st->st_uid == auth_uid && (st->st_mode & 0400)) &&
        !(st->st_gid == auth_gid && (st->st_mode & 0040)))
        error("%s: %s (the password service) cannot read it (chgrp %s, chmod 0640)",
              conf.users_file, conf.auth_user, conf.auth_user);
}

static void check_users(const struct passwd *pw)
{
    struct stat st;
    struct count c = {0};
    if (stat(conf.users_file, &st) != 0) {
        if (errno == ENOENT)
            warning("%s: no users file: no mailbox exists", conf.users_file);
        else
            error("%s: %s", conf.users_file, strerror(errno));
        return;
    }
    check_users_mode(&st, pw);
    int n = users_check(conf.users_file, report_error, NULL);
    if (n == 0 && users_each(conf.users_file, count_user, &c) == 0)
        ok("%s: %zu mailbox(es)", conf.users_file, c.n);
}

static int is_mailbox_or_alias(const struct aliases *a, const char *address)
{
    return aliases_find(a, address) != NULL || users_exists(conf.users_file, address) == 1;
}

/* What the servers would trip over in a table that loaded: names outside the local
 * domains, members that exist nowhere, expansions too deep or too large, no postmaster. */
static void check_alias_table(const struct aliases *a)
{
    char pm[ADDR_SIZE];
    for (size_t i = 0; i < a->n_entries; i++) {
        const struct alias_entry *e = &a->entries[i];
        const char *dom = strrchr(e->name, '@') + 1;
        if (!conf_is_local_domain(&conf, dom))
            warning("%s:%u: %s is not in a local domain: never used", conf.aliases_file, e->line,
                    e->name);
        for (size_t t = 0; t < e->count; t++) {
            const char *m = a->targets[e->first + t], *md = strrchr(m, '@') + 1;
            if (conf_is_local_domain(&conf, md) && !is_mailbox_or_alias(a, m))
                warning("%s:%u: %s: member %s is neither a mailbox nor an alias", conf.aliases_file,
                        e->line, e->name, m);
        }
        struct aliases_result r;
        int rc = aliases_expand(a, e->name, &r);
        aliases_result_free(&r);
        if (rc == ALIASES_TOO_DEEP)
            error("%s:%u: %s: nested deeper than %d levels", conf.aliases_file, e->line, e->name,
                  ALIASES_MAX_DEPTH);
        else if (rc == ALIASES_TOO_MANY)
            error("%s:%u: %s: more than %d members", conf.aliases_file, e->line, e->name,
                  ALIASES_MAX_TARGETS);
    }
    for (size_t d = 0; d < conf.n_local_domains; d++)
        if (str_format(pm, sizeof pm, "postmaster@%s", conf.local_domains[d]) > 0 &&
            !is_mailbox_or_alias(a, pm))
            warning("%s: no alias or mailbox %s (RFC 5321 section 4.5.1 requires it)",
                    conf.aliases_file, pm);
}

static void check_aliases(void)
{
    struct aliases a;
    int n = aliases_check(&a, conf.aliases_file, report_error, NULL);
    if (n >= 0) {
        check_alias_table(&a);
        if (n == 0)
            ok("%s: %zu alias(es)", conf.aliases_file, a.n_entries);
    }
    aliases_free(&a);
}

/* ---------------- the account and the state directory ---------------- */

static const struct passwd *check_account(void)
{
    const struct passwd *pw = getpwnam(conf.user);
    if (pw == NULL)
        error("user %s: no such account (useradd --system %s)", conf.user, conf.user);
    else if (pw->pw_uid == 0)
        error("user %s: uid 0: the handlers refuse to serve as root", conf.user);
    else
        ok("user %s: uid %u", conf.user, (unsigned)pw->pw_uid);
    return pw;
}

/* One directory of the state tree: owned by the account, closed to everybody else. */
static void check_dir_stat(const char *path, const struct stat *st, const struct passwd *pw)
{
    if (pw != NULL && st->st_uid != pw->pw_uid)
        /* one directory, never chown -R: root recursing through the account's tree would
         * also give away any file it had hard-linked into it */
        error("%s: owned by uid %u, not by %s (chown %s: %s)", path, (unsigned)st->st_uid,
              conf.user, conf.user, path);
    if (st->st_mode & 0077)
        warning("%s: mode %04o: other accounts can look inside (chmod 700)", path,
                (unsigned)(st->st_mode & 07777));
}

static void walk(int dfd, const char *path, int depth, const struct passwd *pw)
{
    struct stat st;
    if (fstat(dfd, &st) != 0)
        return error("%s: %s", path, strerror(errno));
    check_dir_stat(path, &st, pw);
    if (depth == WALK_DEPTH)
        return;
    DIR *d = fdopendir(dfd);
    if (d == NULL)
        return error("%s: %s", path, strerror(errno));
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char sub[PATH_MAX];
        if (de->d_name[0] == '.' ||
            (depth == 0 && strcmp(de->d_name, "mail") != 0 && strcmp(de->d_name, "queue") != 0 &&
             strcmp(de->d_name, "tmp") != 0))
            continue;
        if (str_format(sub, sizeof sub, "%s/%s", path, de->d_name) < 0)
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            error("%s: a symbolic link inside the state directory", sub);
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
            error("%s: %s", sub, strerror(errno));
        else
            walk(fd, sub, depth + 1, pw); /* closes fd */
    }
    closedir(d);
}

/* As the account (a child that drops to it when we are root): can it reach what the
 * handlers and queue-run open after privs_drop? Returns the number of errors. */
static int reachable_as_account(void)
{
    char run[PATH_MAX], err[256];
    int bad = 0;
    if (privs_drop(conf.user, err, sizeof err) != 0) {
        printf("error: %s\n", err);
        return 1;
    }
    if (access(conf.state_dir, R_OK | W_OK | X_OK) != 0 && ++bad)
        printf("error: %s: the account %s cannot use it: %s\n", conf.state_dir, conf.user,
               strerror(errno));
    if (access(conf.users_file, R_OK) == 0 && ++bad)
        printf("error: %s: the account %s can read the password hashes: only %s may "
               "(chgrp %s, chmod 0640; see yubin-users(5))\n",
               conf.users_file, conf.user, conf.auth_user, conf.auth_user);
    if (access(conf.aliases_file, R_OK) != 0 && errno != ENOENT && ++bad)
        printf("error: %s: the account %s cannot read it: %s\n", conf.aliases_file, conf.user,
               strerror(errno));
    if (self_sibling(run, sizeof run, "queue-run") == 0 && access(run, X_OK) != 0 && ++bad)
        printf("error: %s: the account %s cannot run it (smtp-in starts it after a message "
               "for another domain): %s\n",
               run, conf.user, strerror(errno));
    return bad;
}

static void check_reach(void)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        int bad = reachable_as_account();
        fflush(stdout);
        _exit(bad > 100 ? 100 : bad);
    }
    int st;
    if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
        return error("cannot test what %s can reach", conf.user);
    n_errors += (unsigned)WEXITSTATUS(st);
}

static void check_state(const struct passwd *pw)
{
    int fd = open(conf.state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return error("%s: %s (install -d -o %s -g %s -m 700 %s)", conf.state_dir, strerror(errno),
                     conf.user, conf.user, conf.state_dir);
    unsigned before = n_errors + n_warnings;
    walk(fd, conf.state_dir, 0, pw);
    if (pw != NULL && pw->pw_uid != 0)
        check_reach();
    if (n_errors + n_warnings == before)
        ok("%s: owned by %s, closed to other accounts", conf.state_dir, conf.user);
}

/* ---------------- TLS ---------------- */

#define TLS_RENEW_DAYS 14 /* a certificate closer than this to its end is a warning */

/* tls_cert_file and tls_key_file as the handlers read them at start-up (missing, unreadable)
 * and parse them at STARTTLS (not PEM, key mismatch, expired, not yet valid), and how long the
 * certificate has left. */
static void check_server_tls(void)
{
    char err[1024], subject[256], until[64];
    int days;
    struct tls_server *t = tls_server_read(&conf, err, sizeof err);
    SSL_CTX *ctx = t != NULL ? tls_server_get(t, err, sizeof err) : NULL;
    if (ctx == NULL) {
        error("%s (%s)", err,
              t == NULL ? "smtp-in answers 421 and pop3-in -ERR to every client"
                        : "STARTTLS and STLS are refused, with 454 and -ERR, and -T closes");
        if (geteuid() != 0 && strstr(err, strerror(EACCES)) != NULL)
            warning("run yubin-check as root: the handlers read the key as root");
        tls_server_free(t);
        return;
    }
    if (tls_cert_info(ctx, subject, sizeof subject, until, sizeof until, &days) == 0) {
        if (days < TLS_RENEW_DAYS)
            warning("tls_cert_file %s: the certificate expires on %s, in %d days: renew it",
                    conf.tls_cert_file, until, days);
        ok("tls_cert_file %s: %s, valid until %s (%d days)", conf.tls_cert_file, subject, until,
           days);
    }
    tls_server_free(t);
}

/* The certificate, or without one the policy queue-run's client context takes
 * (tls_protocols, tls_ciphers); and the tls_policy_file. */
static void check_tls(void)
{
    static struct tlsc_policy policy;
    char err[512];
    if (conf.tls_cert_file[0] != '\0') {
        check_server_tls();
    } else {
        if (conf.tls_key_file[0] != '\0')
            warning("tls_key_file is set without tls_cert_file: no TLS is offered");
        SSL_CTX *ctx = tlsc_ctx_new(conf.tls_protocols, conf.tls_ciphers, err, sizeof err);
        if (ctx == NULL)
            error("%s (queue-run: no outbound TLS)", err);
        SSL_CTX_free(ctx);
    }
    if (tlsc_policy_load(&policy, conf.tls_policy_file, err, sizeof err) != 0)
        error("tls_policy_file %s", err);
}

/* ---------------- DNS ---------------- */

static int open_resolver(void)
{
    char err[256];
    if (resolver == NULL &&
        (resolver = mx_resolver_new(conf.dns_resolver, 0, err, sizeof err)) == NULL) {
        error("DNS: %s", err);
        return -1;
    }
    return 0;
}

/* "192.0.2.1, 2001:db8::1" */
static void addresses(const struct mx_host *h, char *out, size_t size)
{
    char a[64];
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < h->n_addrs; i++)
        if (mx_addr_format(&h->addrs[i], a, sizeof a) == 0 && used + strlen(a) + 3 < size)
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", a);
}

/* The hosts of r in the order queue-run tries them, indented. */
static void print_hosts(const struct mx_result *r, const char *indent)
{
    char addrs[600];
    for (size_t i = 0; i < r->n_hosts; i++) {
        const struct mx_host *h = &r->hosts[i];
        addresses(h, addrs, sizeof addrs);
        printf("%s%zu. %s%u %s: %s%s\n", indent, i + 1, r->implicit ? "implicit MX " : "MX ",
               h->pref, h->name, addrs, str_ieq(h->name, conf.hostname) ? "  (this host)" : "");
    }
}

static void check_domain_dns(const char *domain)
{
    struct mx_result r;
    mx_lookup(resolver, domain, &r);
    if (r.status == MX_TEMPFAIL)
        return warning("DNS %s: lookup failed: %s", domain, r.why);
    if (r.status == MX_PERMFAIL)
        return error("DNS %s: %s: no mail can reach it", domain, r.why);
    int here = 0;
    for (size_t i = 0; i < r.n_hosts; i++)
        here |= str_ieq(r.hosts[i].name, conf.hostname);
    if (r.implicit)
        here |= str_ieq(domain, conf.hostname);
    printf("DNS %s:%s\n", domain,
           r.implicit ? " no MX record: implicit MX, the domain itself" : "");
    print_hosts(&r, "    ");
    if (here)
        ok("DNS %s: an MX names this host (%s)", domain, conf.hostname);
    else
        warning("DNS %s: no MX names this host (%s): mail for it goes elsewhere", domain,
                conf.hostname);
}

static void check_dns(void)
{
    if (open_resolver() != 0)
        return;
    for (size_t i = 0; i < conf.n_local_domains; i++)
        check_domain_dns(conf.local_domains[i]);
}

static int check_site(int dns)
{
    const struct passwd *pw = check_account();
    check_users(pw);
    check_aliases();
    check_state(pw);
    check_tls();
    if (dns)
        check_dns();
    printf("%u error(s), %u warning(s)\n", n_errors, n_warnings);
    return n_errors ? EX_CONFIG : 0;
}

/* ---------------- addresses ---------------- */

/* Where a remote address goes: the MX hosts in queue-run's order, or why none. */
static void show_remote(const char *address, const char *indent)
{
    char in2[64];
    struct mx_result r;
    const char *domain = strrchr(address, '@') + 1;
    str_format(in2, sizeof in2, "%s    ", indent);
    if (open_resolver() != 0)
        return;
    if (conf.smarthost[0]) {
        printf("%sremote: every remote recipient goes to the smarthost %s\n", indent,
               conf.smarthost);
        return;
    }
    mx_lookup(resolver, domain, &r);
    if (r.status == MX_OK) {
        printf("%sremote: %s, tried in this order (equal preferences in random order)%s:\n", indent,
               domain,
               r.implicit ? "; no MX record, so the domain's own address "
                            "(implicit MX)"
                          : "");
        print_hosts(&r, in2);
    } else if (strncmp(r.why, "5.1.10", 6) == 0) {
        printf("%sremote: %s has a null MX: it accepts no mail; a message bounces (%s)\n", indent,
               domain, r.why);
    } else {
        printf("%sremote: %s: %s; a message %s\n", indent, domain, r.why,
               r.status == MX_TEMPFAIL ? "waits in the queue and is retried" : "bounces");
    }
}

struct tree {
    const struct aliases *a;
    const char *indent;
};

static void show_node(void *arg, size_t depth, const char *address, const struct alias_entry *e,
                      int loop)
{
    struct tree *t = arg;
    char owner[ADDR_SIZE], pad[64], leaf[80];
    size_t n = depth * 4 < 40 ? depth * 4 : 40;
    memset(pad, ' ', n);
    pad[n] = '\0';
    const char *domain = strrchr(address, '@') + 1;
    if (e != NULL) {
        int has_owner = aliases_owner(t->a, address, owner, sizeof owner);
        printf("%s%s%s: alias (%s:%u)%s%s\n", t->indent, pad, address, conf.aliases_file, e->line,
               has_owner ? ", owner " : "", has_owner ? owner : "");
    } else if (!conf_is_local_domain(&conf, domain)) {
        printf("%s%s%s:\n", t->indent, pad, address);
        str_format(leaf, sizeof leaf, "%s%s    ", t->indent, pad);
        show_remote(address, leaf);
    } else {
        int found = users_exists(conf.users_file, address);
        printf("%s%s%s: %s%s\n", t->indent, pad, address,
               found > 0    ? "local mailbox"
               : found == 0 ? "no such mailbox: left out"
                            : "the users file cannot be read",
               loop ? " (an alias met again inside itself: taken as a mailbox)" : "");
    }
}

/* An alias as a tree; 0 if a is no alias. */
static int show_tree(struct route_ctx *ctx, const struct addr *a)
{
    struct aliases_result x;
    struct tree t = {&ctx->aliases, "    "};
    if (ctx->aliases_state != 1 || aliases_find(&ctx->aliases, a->text) == NULL)
        return 0;
    aliases_walk(&ctx->aliases, a->text, show_node, &t, &x);
    aliases_result_free(&x);
    return 1;
}

static void show_local(struct route_ctx *ctx, const struct addr *a, const struct route *r)
{
    char md[PATH_MAX], local[ADDR_SIZE];
    if (show_tree(ctx, a)) {
        /* shown */
    } else if (r->n_local == 1) {
        const char *at = strrchr(r->local[0], '@');
        if (str_copy_n(local, sizeof local, r->local[0], (size_t)(at - r->local[0])) == 0 &&
            maildir_path(md, sizeof md, conf.state_dir, local, at + 1) == 0)
            printf("    local mailbox: %s/\n", md);
    }
    printf("    smtp-in accepts it: %zu local mailbox(es), %zu remote address(es)%s%s\n",
           r->n_local, r->n_remote, r->owner[0] ? "; bounces go to the list owner " : "", r->owner);
    if (r->why[0])
        printf("    note: %s\n", r->why);
}

/* One address: 0, EX_NOUSER (refused), EX_TEMPFAIL, or EX_DATAERR (not an address). */
static int show_address(struct route_ctx *ctx, const char *text)
{
    char q[ADDR_SIZE + CONF_DOMAIN_SIZE];
    struct addr a;
    struct route r;
    int n = strchr(text, '@') == NULL
                ? str_format(q, sizeof q, "%s@%s", text, conf.local_domains[0])
                : str_copy(q, sizeof q, text);
    const char *end = "";
    int rc = n < 0            ? ADDR_ERR_PATH_LONG
             : text[0] == '<' ? addr_parse_path(text, ADDR_POSTMASTER_OK, &a, &end)
                              : addr_parse_mailbox(q, &a);
    if (rc == ADDR_OK && *end != '\0')
        rc = ADDR_ERR_SYNTAX;
    if (rc != ADDR_OK) {
        printf("%s\n    not an address: %s\n", text, addr_error_text(rc));
        return EX_DATAERR;
    }
    printf("%s\n", a.text);
    switch (route_rcpt(ctx, &a, 1, &r)) {
    case ROUTE_LOCAL:
        show_local(ctx, &a, &r);
        rc = 0;
        break;
    case ROUTE_RELAY:
        printf("    another domain: relayed only for authenticated sessions and relay_networks "
               "(others get 554 5.7.1)\n");
        show_remote(a.text, "    ");
        rc = 0;
        break;
    case ROUTE_REFUSED:
        show_tree(ctx, &a); /* an alias whose members exist nowhere */
        printf("    refused: %s\n    why: %s\n", r.reply, r.why);
        rc = EX_NOUSER;
        break;
    case ROUTE_TEMPFAIL:
        printf("    temporary failure: %s\n    why: %s\n", r.reply, r.why);
        rc = EX_TEMPFAIL;
        break;
    }
    route_free(&r);
    return rc;
}

/* The worst status: not an address, then refused, then temporary. */
static int worse(int a, int b)
{
    static const int order[] = {EX_DATAERR, EX_NOUSER, EX_TEMPFAIL};
    for (size_t i = 0; i < ARRAY_LEN(order); i++)
        if (a == order[i] || b == order[i])
            return order[i];
    return 0;
}

static int show_addresses(char **args, int n, int from_stdin)
{
    struct route_ctx ctx;
    char line[1024];
    int rc = 0;
    route_init(&ctx, &conf);
    if (access(conf.users_file, R_OK) == 0) /* root: no need of yubin-auth to answer */
        ctx.mailbox_exists = route_read_users_file;
    for (int i = 0; i < n; i++)
        rc = worse(rc, show_address(&ctx, args[i]));
    while (from_stdin && fgets(line, sizeof line, stdin) != NULL) {
        char *p = line + strspn(line, " \t");
        p[strcspn(p, " \t\r\n")] = '\0';
        if (*p != '\0' && *p != '#')
            rc = worse(rc, show_address(&ctx, p));
    }
    route_ctx_free(&ctx);
    return rc;
}

static int usage(void)
{
    return cli_fail(prog, EX_USAGE,
                    "usage: yubin-check [-C conf] [-n] | [-C conf] [-a] "
                    "[address...]");
}

int main(int argc, char **argv)
{
    const char *conf_path = NULL;
    int opt, dns = 0, from_stdin = 0;
    while ((opt = getopt(argc, argv, "C:na")) != -1) {
        if (opt == 'C')
            conf_path = optarg;
        else if (opt == 'n')
            dns = 1;
        else if (opt == 'a')
            from_stdin = 1;
        else
            return usage();
    }
    int addresses_mode = from_stdin || optind < argc;
    if (addresses_mode && dns)
        return usage();
    if (sodium_init() < 0)
        return cli_fail(prog, EX_SOFTWARE, "libsodium cannot start");
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (check_conf(conf_path, addresses_mode) != 0)
        return EX_NOINPUT;
    if (addresses_mode && n_errors > 0)
        return cli_fail(prog, EX_CONFIG, "fix %s first", conf.path);
    int rc =
        addresses_mode ? show_addresses(argv + optind, argc - optind, from_stdin) : check_site(dns);
    if (resolver != NULL)
        mx_resolver_free(resolver);
    return rc;
}
