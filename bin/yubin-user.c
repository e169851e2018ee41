/*
 * yubin-user: the administrator's tool for the users file (yubin-users(5)): add, passwd, del
 * and list mailboxes. Passwords come from the terminal without echo (asked twice) or, with
 * --stdin, as one line of standard input; never from the command line. The users file is
 * rewritten atomically keeping its mode and owner; `add` creates the Maildir owned by the mail
 * account. It must never print, log or keep a password, and never remove mail without asking
 * (or --yes).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <sodium.h>

#include "aliases.h"
#include "conf.h"
#include "maildir.h"
#include "safedir.h"
#include "users.h"
#include "util.h"

#define EX_USAGE 64

struct options {
    const char *conf_path;
    const char *command;
    const char *address;
    int use_stdin, keep_mail, yes;
};

static struct yubin_conf conf;

static int usage(void)
{
    fprintf(stderr, "usage: yubin-user [-C yubin.conf] add [--stdin] user@domain\n"
                    "       yubin-user [-C yubin.conf] passwd [--stdin] user@domain\n"
                    "       yubin-user [-C yubin.conf] del [--keep-mail | --yes] user@domain\n"
                    "       yubin-user [-C yubin.conf] list\n");
    return EX_USAGE;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
    va_list ap;
    fputs("yubin-user: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* ---- passwords ---------------------------------------------------------------------- */

/* Reads one line from fd byte by byte (no stdio buffer keeps a copy) into buf. Returns its
 * length without the line end, or -1 (too long, or nothing to read). */
static long read_secret_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    char ch;
    ssize_t r;
    while ((r = read(fd, &ch, 1)) == 1 && ch != '\n') {
        if (len + 1 >= size) {
            sodium_memzero(buf, size);
            return -1;
        }
        buf[len++] = ch;
    }
    if (r < 0 || (r == 0 && len == 0))
        return -1;
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    buf[len] = '\0';
    return (long)len;
}

/* Prompts on the terminal with echo off. */
static long ask_tty(int tty, const char *prompt, char *buf, size_t size)
{
    struct termios old, quiet;
    if (tcgetattr(tty, &old) != 0)
        return -1;
    quiet = old;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
    quiet.c_lflag |= ICANON;
    /* echo off first, then the prompt: nothing typed after the prompt is ever shown */
    if (tcsetattr(tty, TCSAFLUSH, &quiet) != 0)
        return -1;
    if (write_all(tty, prompt, strlen(prompt)) != 0) {
        tcsetattr(tty, TCSAFLUSH, &old);
        return -1;
    }
    long n = read_secret_line(tty, buf, size);
    tcsetattr(tty, TCSAFLUSH, &old);
    (void)write_all(tty, "\n", 1);
    return n;
}

/* The new password into pw: one line of stdin, or twice from the terminal. */
static long read_password(const struct options *o, char *pw, size_t size)
{
    if (o->use_stdin) {
        long n = read_secret_line(0, pw, size);
        if (n < 0)
            fail("no password on standard input (one line, at most %zu bytes)", size - 1);
        return n;
    }
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0) {
        fail("no terminal to ask for the password: use --stdin");
        return -1;
    }
    char again[USERS_MAX_PASSWORD];
    long n = ask_tty(tty, "New password: ", pw, size);
    long m = n >= 0 ? ask_tty(tty, "Again: ", again, sizeof again) : -1;
    close(tty);
    int same = n >= 0 && m == n && sodium_memcmp(pw, again, (size_t)n) == 0;
    sodium_memzero(again, sizeof again);
    if (n < 0 || m < 0)
        fail("could not read the password from the terminal");
    else if (!same)
        fail("the two passwords differ; nothing changed");
    return n >= 0 && same ? n : -1;
}

/* Reads, checks and hashes the new password. 0 or 1 (reported). */
static int new_hash(const struct options *o, char *hash, size_t size)
{
    char pw[USERS_MAX_PASSWORD];
    long n = read_password(o, pw, sizeof pw);
    if (n < 0)
        return 1;
    int rc = 0;
    if (n == 0)
        rc = fail("an empty password is not allowed; nothing changed");
    else if (users_hash(hash, size, pw, (size_t)n, conf.pwhash_opslimit, conf.pwhash_memlimit) != 0)
        rc = fail("could not hash the password (pwhash limits or memory); nothing changed");
    sodium_memzero(pw, sizeof pw);
    return rc;
}

/* ---- Maildirs ----------------------------------------------------------------------- */

/* state_dir belongs to the mail account, so run as root this tool reaches everything below
 * it through lib/safedir (DESIGN.md §5.7): no link is followed, owners are set by descriptor
 * and removal is by descriptor. */

/* "mail/<domain>/<user>" below state_dir into rel, the whole path (for messages) into dir. */
static int mailbox_dir(const char *address, char *rel, size_t relsize, char *dir, size_t size)
{
    char local[USERS_ADDRESS_SIZE], path[PATH_MAX];
    const char *at = strrchr(address, '@');
    if (at == NULL || str_copy_n(local, sizeof local, address, (size_t)(at - address)) != 0 ||
        maildir_path(path, sizeof path, "", local, at + 1) != 0 ||
        str_copy(rel, relsize, path + 1) != 0 || /* path is "/mail/<domain>/<user>" */
        str_format(dir, size, "%s/%s", conf.state_dir, rel) < 0)
        return fail("%s: no Maildir path for this address", address);
    return 0;
}

/* Creates the Maildir; run as root, what it makes is given to the mail account. */
static int create_maildir(const char *rel)
{
    static const char *const subs[] = {"tmp", "new", "cur"};
    char sub[PATH_MAX], err[PATH_MAX + 200];
    struct passwd *pw = getpwnam(conf.user);
    if (pw == NULL)
        return fail("the mail account '%s' (yubin.conf user) does not exist", conf.user);
    struct safedir_owner owner = {pw->pw_uid, pw->pw_gid};
    for (size_t i = 0; i < ARRAY_LEN(subs); i++) {
        int fd = str_format(sub, sizeof sub, "%s/%s", rel, subs[i]) < 0
                     ? -1
                     : safedir_open(conf.state_dir, sub, SAFEDIR_CREATE,
                                    geteuid() == 0 ? &owner : NULL, err, sizeof err);
        if (fd < 0)
            return fail("cannot create the Maildir: %s", err);
        close(fd);
    }
    return 0;
}

/* The directory that holds the Maildir (state_dir/mail/<domain>), opened without following
 * links, with the Maildir's own name in *leaf. 0 (*fd -1 if there is none), or 1 (reported). */
static int open_parent(const char *rel, char *parent, size_t size, const char **leaf, int *fd)
{
    char err[PATH_MAX + 200];
    const char *slash = strrchr(rel, '/');
    *leaf = slash + 1;
    if (str_copy_n(parent, size, rel, (size_t)(slash - rel)) != 0)
        return fail("%s: path too long", rel);
    *fd = safedir_open(conf.state_dir, parent, 0, NULL, err, sizeof err);
    if (*fd < 0 && errno != ENOENT)
        return fail("%s; nothing changed", err);
    return 0;
}

/* Is there a Maildir `leaf` in parent? 1 yes, 0 no, -1 something else is there (reported). */
static int maildir_there(int parent, const char *leaf, const char *dir)
{
    struct stat st;
    if (parent < 0)
        return 0;
    if (fstatat(parent, leaf, &st, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT)
            return 0;
        fail("%s: %s; nothing changed", dir, strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode))
        return 1;
    fail("%s is %s: refused (links below the state directory are never followed); nothing "
         "changed",
         dir, S_ISLNK(st.st_mode) ? "a symbolic link" : "not a directory");
    return -1;
}

static long count_in(int parent, const char *leaf, const char *sub)
{
    char rel[NAME_MAX * 2 + 2], err[PATH_MAX + 200];
    long n = 0;
    int fd = str_format(rel, sizeof rel, "%s/%s", leaf, sub) < 0
                 ? -1
                 : safedir_openat(parent, "", rel, 0, NULL, err, sizeof err);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* ---- the commands ------------------------------------------------------------------- */

/* Checks the address (well formed, in a local domain) and lower-cases it into out. */
static int check_address(const char *address, char *out, size_t size)
{
    const char *why;
    if (!users_address_ok(address, &why))
        return fail("'%s' is not a valid mailbox address: %s", address, why);
    if (!conf_is_local_domain(&conf, strrchr(address, '@') + 1))
        return fail("'%s': %s is not in local_domains of %s", address, strrchr(address, '@') + 1,
                    conf.path);
    str_copy(out, size, address);
    str_lower(out);
    return 0;
}

/* A new users file is root's, group auth_user, mode 0640: yubin-auth(8) reads it, the
 * handlers cannot. */
static long users_gid(void)
{
    struct passwd *pw = getpwnam(conf.auth_user);
    return pw != NULL ? (long)pw->pw_gid : -1;
}

static int cmd_add(const struct options *o)
{
    char address[USERS_ADDRESS_SIZE], hash[USERS_HASH_SIZE], rel[PATH_MAX], dir[PATH_MAX];
    char err[600];
    if (check_address(o->address, address, sizeof address) != 0)
        return 1;
    int exists = users_exists(conf.users_file, address);
    if (exists != 0)
        return exists < 0 ? fail("cannot read %s: %s", conf.users_file, strerror(errno))
                          : fail("%s already exists (use passwd to change its password)", address);
    if (mailbox_dir(address, rel, sizeof rel, dir, sizeof dir) != 0 ||
        new_hash(o, hash, sizeof hash) != 0 || create_maildir(rel) != 0)
        return 1;
    if (users_update(conf.users_file, address, hash, users_gid(), err, sizeof err) < 0)
        return fail("%s; nothing changed", err);
    printf("added %s (Maildir %s)\n", address, dir);
    return 0;
}

static int cmd_passwd(const struct options *o)
{
    char old[USERS_HASH_SIZE], hash[USERS_HASH_SIZE], err[600];
    int found = users_lookup(conf.users_file, o->address, old, sizeof old);
    if (found <= 0)
        return found < 0 ? fail("cannot read %s: %s", conf.users_file, strerror(errno))
                         : fail("no such user: %s", o->address);
    if (new_hash(o, hash, sizeof hash) != 0)
        return 1;
    if (users_update(conf.users_file, o->address, hash, -1, err, sizeof err) < 0)
        return fail("%s; nothing changed", err);
    if (users_needs_rehash(old, conf.pwhash_opslimit, conf.pwhash_memlimit))
        printf("the old hash used other limits; the new one uses pwhash_opslimit %llu and "
               "pwhash_memlimit %llu\n",
               (unsigned long long)conf.pwhash_opslimit, (unsigned long long)conf.pwhash_memlimit);
    printf("changed the password of %s\n", o->address);
    return 0;
}

/* Asks on the terminal whether to remove n messages. 1 yes, 0 no, -1 no terminal. */
static int confirm(const char *address, const char *dir, long n)
{
    char prompt[PATH_MAX + 200], answer[16];
    int tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (tty < 0)
        return -1;
    str_format(prompt, sizeof prompt, "Remove %s and its Maildir %s (%ld messages)? [y/N] ",
               address, dir, n);
    long len = write_all(tty, prompt, strlen(prompt)) == 0
                   ? read_secret_line(tty, answer, sizeof answer)
                   : -1;
    close(tty);
    return len > 0 && (answer[0] == 'y' || answer[0] == 'Y');
}

/* Asks (unless --yes) and takes the user out of the users file. 0 or 1 (reported). */
static int del_user(const struct options *o, int parent, const char *leaf, const char *dir,
                    int remove_mail)
{
    char err[600];
    if (remove_mail && !o->yes) {
        int ok =
            confirm(o->address, dir, count_in(parent, leaf, "new") + count_in(parent, leaf, "cur"));
        if (ok < 0)
            return fail("no terminal to ask whether to remove the mail in %s: use --keep-mail "
                        "or --yes",
                        dir);
        if (ok == 0)
            return fail("nothing changed");
    }
    if (users_update(conf.users_file, o->address, NULL, -1, err, sizeof err) < 0)
        return fail("%s; nothing changed", err);
    return 0;
}

static int cmd_del(const struct options *o)
{
    char rel[PATH_MAX], dir[PATH_MAX], parent_rel[PATH_MAX], parent_dir[PATH_MAX + 8], err[600];
    const char *leaf;
    int found = users_exists(conf.users_file, o->address), parent = -1;
    if (found <= 0)
        return found < 0 ? fail("cannot read %s: %s", conf.users_file, strerror(errno))
                         : fail("no such user: %s", o->address);
    if (mailbox_dir(o->address, rel, sizeof rel, dir, sizeof dir) != 0 ||
        (!o->keep_mail && open_parent(rel, parent_rel, sizeof parent_rel, &leaf, &parent) != 0))
        return 1;
    int remove_mail = o->keep_mail ? 0 : maildir_there(parent, leaf, dir);
    int rc = remove_mail < 0 ? 1 : del_user(o, parent, leaf, dir, remove_mail);
    if (rc == 0 && remove_mail) {
        str_format(parent_dir, sizeof parent_dir, "%s/%s", conf.state_dir, parent_rel);
        if (safedir_remove(parent, parent_dir, leaf, err, sizeof err) != 0)
            rc = fail("removed %s from %s, but not all of its mail: %s", o->address,
                      conf.users_file, err);
    }
    if (parent >= 0)
        close(parent);
    if (rc == 0)
        printf("removed %s (%s)\n", o->address, remove_mail ? "mail removed" : "mail kept");
    return rc;
}

static int print_user(const char *address, const char *hash, void *ctx)
{
    (void)ctx;
    if (users_needs_rehash(hash, conf.pwhash_opslimit, conf.pwhash_memlimit))
        printf("%s\tneeds-rehash\n", address);
    else
        printf("%s\n", address);
    return 0;
}

static void warn_line(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "yubin-user: warning: %s\n", msg);
}

/* What the list cannot show: lines of the users file it skipped, and a broken aliases file
 * (smtp-in then answers 451 to every local recipient). yubin-check(8) checks the rest. */
static void warn_broken_files(void)
{
    char err[600];
    struct aliases a;
    users_check(conf.users_file, warn_line, NULL);
    if (aliases_load(&a, conf.aliases_file, err, sizeof err) != 0)
        fprintf(stderr,
                "yubin-user: warning: %s: until it is fixed, every local recipient gets 451 "
                "(yubin-check shows every error)\n",
                err);
    aliases_free(&a);
}

static int cmd_list(const struct options *o)
{
    (void)o;
    if (users_each(conf.users_file, print_user, NULL) != 0)
        return fail("cannot read %s: %s", conf.users_file, strerror(errno));
    if (fflush(stdout) != 0)
        return fail("cannot write the list: %s", strerror(errno));
    warn_broken_files();
    return 0;
}

/* ---- start-up ----------------------------------------------------------------------- */

static int parse(int argc, char **argv, struct options *o)
{
    int i = 1;
    if (i + 1 < argc && strcmp(argv[i], "-C") == 0) {
        o->conf_path = argv[i + 1];
        i += 2;
    }
    if (i >= argc)
        return -1;
    o->command = argv[i++];
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--stdin") == 0)
            o->use_stdin = 1;
        else if (strcmp(argv[i], "--keep-mail") == 0)
            o->keep_mail = 1;
        else if (strcmp(argv[i], "--yes") == 0)
            o->yes = 1;
        else if (argv[i][0] == '-' || o->address != NULL)
            return -1;
        else
            o->address = argv[i];
    }
    int wants_address = strcmp(o->command, "list") != 0;
    if (wants_address != (o->address != NULL) || (o->keep_mail && o->yes))
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct {
        const char *name;
        int (*run)(const struct options *);
    } commands[] = {{"add", cmd_add}, {"passwd", cmd_passwd}, {"del", cmd_del}, {"list", cmd_list}};
    struct options o = {0};
    char err[512];
    umask(027);
    if (parse(argc, argv, &o) != 0)
        return usage();
    if (sodium_init() < 0)
        return fail("libsodium cannot start");
    if (conf_load(&conf, o.conf_path, err, sizeof err) != 0)
        return fail("%s", err);
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(o.command, commands[i].name) == 0)
            return commands[i].run(&o);
    return usage();
}
