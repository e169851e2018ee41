/*
 * sendmail: the sendmail(8) interface for local programs (cron, mail(1), git send-email, PHP).
 *
 *     sendmail [-t] [-i] [-f sender] [-F fullname] [-v] [-C conf] [-bm] [-o*] [--] [address...]
 *     sendmail -bp        (runs mailq)         sendmail -q        (runs queue-run)
 *     sendmail -bv|-bt [address...]            (runs yubin-check: where each would go)
 *
 * Reads one message from stdin (LF or CRLF line ends; a NUL octet or a CR not right before LF
 * refuses it with EX_DATAERR before anything is sent, DESIGN.md §5) and submits it over SMTP
 * (lib/smtpc) on the Unix-domain socket local_socket of yubin.conf, where smtp-in learns the
 * caller's uid from the kernel (SO_PEERCRED) and records it; or, when submission_address is set,
 * over TCP to that host:port (whose server must then let this host submit: submit_networks). Only
 * the header section is held in memory (at most HEADER_MAX octets): it is parsed for -t (To/Cc/Bcc,
 * or the Resent- ones), Bcc is removed, and From, Date and Message-ID are added when missing. The
 * whole message then goes through a fixed buffer into an unlinked temporary file (so SIZE is known
 * and a broken input never leaves half a message at the server), which smtpc streams to the server
 * with CRLF line ends and dot-stuffing. Exit codes come from <sysexits.h>.
 *
 * It runs as the calling user and needs no privileges: it must never be installed setuid or
 * setgid (it refuses to run so), never pass an address or header to a shell, never hold the
 * message body in memory, and never say EX_OK unless the server accepted the message for every
 * recipient. It never queues on its own: when the server cannot be reached it says so on
 * stderr and exits EX_TEMPFAIL with nothing sent.
 */
#include "config.h"

#include "addr.h"
#include "addrlist.h"
#include "conf.h"
#include "deliver.h"
#include "header.h"
#include "smtpc.h"
#include "trace.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <pwd.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_PORT 587
#define ADDR_ARGS_MAX 1000 /* addresses passed on to yubin-check by -bv / -bt */

static const char *prog = "sendmail";

enum mode { MODE_SEND, MODE_MAILQ, MODE_QUEUE, MODE_NOOP, MODE_CHECK };

struct opts {
    const char *conf_path; /* -C; NULL = the compiled-in default */
    const char *sender;    /* -f / -r; NULL = the calling user */
    const char *fullname;  /* -F */
    int extract;           /* -t */
    int dots_end;          /* without -i / -oi, a line of a single '.' ends the input */
    int verbose;           /* -v */
    enum mode mode;
    char **args; /* the recipient arguments */
    int n_args;
};

/* The recipients, each once. */
struct rcpts {
    char (*a)[ADDR_SIZE];
    size_t n;
};

struct ctx {
    struct opts o;
    struct yubin_conf conf;
    const char *domain;        /* for addresses without one: the first local domain */
    char sender[ADDR_SIZE];    /* the envelope sender, "" for <> */
    char from_addr[ADDR_SIZE]; /* for an added From: */
    char login[ADDR_SIZE];     /* the calling user's address */
    struct rcpts rcpts;
    struct header h;
    struct deliver_text text; /* every octet read: no NUL, no bare CR (lib/deliver) */
    FILE *spool;
};

static int usage(void)
{
    return cli_fail(prog, EX_USAGE,
                    "usage: sendmail [-t] [-i] [-f sender] [-F fullname] [-v] [-C conf] "
                    "[--] [address...] | -bp | -q | -bv [address...] | -bt [address...]");
}

/* ---- command line ---- */

/* Options taking a value: -f -r -F -C, and those accepted and ignored (-B -N -R -V -X -L -h
 * -O -p). The value is the rest of the argument or the next one. */
static int takes_value(char ch)
{
    return strchr("frFCBNRVXLhOpo", ch) != NULL;
}

static int set_mode(struct opts *o, const char *rest)
{
    if (strcmp(rest, "m") == 0)
        o->mode = MODE_SEND;
    else if (strcmp(rest, "p") == 0)
        o->mode = MODE_MAILQ;
    else if (strcmp(rest, "i") == 0)
        o->mode = MODE_NOOP; /* newaliases: the aliases file is read directly */
    else if (strcmp(rest, "v") == 0 || strcmp(rest, "t") == 0)
        o->mode = MODE_CHECK; /* address test mode: yubin-check */
    else
        return cli_fail(prog, EX_USAGE, "-b%s is not supported (only -bm, -bp, -bi, -bv and -bt)",
                        rest);
    return 0;
}

static void set_value(struct opts *o, char ch, const char *v)
{
    if (ch == 'f' || ch == 'r')
        o->sender = v;
    else if (ch == 'F')
        o->fullname = v;
    else if (ch == 'C')
        o->conf_path = v;
    else if (ch == 'o' && strcmp(v, "i") == 0)
        o->dots_end = 0; /* -oi; every other -o option is accepted and ignored */
}

/* One argument of flags, "-ti" or "-fuser" or "-f" "user"; *i moves past what it used. */
static int parse_flags(int argc, char **argv, int *i, struct opts *o)
{
    const char *a = argv[*i] + 1;
    for (; *a != '\0'; a++) {
        if (takes_value(*a)) {
            if (a[1] == '\0' && *i + 1 >= argc)
                return cli_fail(prog, EX_USAGE, "-%c needs a value", *a);
            set_value(o, *a, a[1] != '\0' ? a + 1 : argv[++*i]);
            return 0;
        }
        if (*a == 'b')
            return set_mode(o, a + 1);
        if (*a == 'q') {
            if (a[1] != '\0')
                return cli_fail(prog, EX_USAGE, "-q%s is not supported: -q runs queue-run once",
                                a + 1);
            o->mode = MODE_QUEUE;
            return 0;
        }
        if (*a == 't')
            o->extract = 1;
        else if (*a == 'i')
            o->dots_end = 0;
        else if (*a == 'v')
            o->verbose = 1;
        else if (strchr("mnUGA", *a) == NULL)
            return cli_fail(prog, EX_USAGE, "unknown option -%c", *a), usage();
    }
    return 0;
}

/* Options up to the first argument that is not one (or "--"); the rest are recipients. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    int i = 1, rc;
    o->dots_end = 1;
    for (; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0) {
            i++;
            break;
        }
        if (argv[i][0] != '-' || argv[i][1] == '\0')
            break;
        if ((rc = parse_flags(argc, argv, &i, o)) != 0)
            return rc;
    }
    o->args = argv + i;
    o->n_args = argc - i;
    return 0;
}

/* ---- -bp and -q: the other programs ---- */

/* NAME next to this program (so a build tree or another prefix finds its own), else in the
 * bindir or sbindir it was built for (mailq goes to bindir, queue-run to sbindir). */
static int find_program(char *out, size_t size, const char *name)
{
    static const char *const dirs[] = {YUBIN_BINDIR, YUBIN_SBINDIR};
    if (self_sibling(out, size, name) == 0 && access(out, X_OK) == 0)
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(dirs); i++)
        if (str_format(out, size, "%s/%s", dirs[i], name) >= 0 && access(out, X_OK) == 0)
            return 0;
    return str_format(out, size, "%s/%s", YUBIN_SBINDIR, name) < 0 ? -1 : 0;
}

static int run_other(const struct opts *o, const char *name)
{
    char path[PATH_MAX];
    const char *argv[6 + ADDR_ARGS_MAX];
    int n = 0;
    if (find_program(path, sizeof path, name) != 0)
        return cli_fail(prog, EX_SOFTWARE, "cannot name the %s program", name);
    argv[n++] = name;
    if (o->conf_path != NULL) {
        argv[n++] = "-C";
        argv[n++] = o->conf_path;
    }
    if (o->verbose && o->mode == MODE_QUEUE)
        argv[n++] = "-v";
    if (o->mode == MODE_CHECK && o->n_args == 0)
        argv[n++] = "-a"; /* addresses from stdin, one a line */
    if (o->mode == MODE_CHECK && o->n_args > ADDR_ARGS_MAX)
        return cli_fail(prog, EX_USAGE, "at most %d addresses at once", ADDR_ARGS_MAX);
    if (o->mode == MODE_CHECK)
        argv[n++] = "--";
    for (int i = 0; o->mode == MODE_CHECK && i < o->n_args; i++)
        argv[n++] = o->args[i];
    argv[n] = NULL;
    fflush(NULL);
    execv(path, (char *const *)argv);
    return cli_fail(prog, EX_UNAVAILABLE, "cannot run %s: %s", path, strerror(errno));
}

/* ---- addresses ---- */

/* Adds one address (qualified with ctx->domain when it has none) unless it is there. */
static int add_rcpt(struct ctx *x, const char *text, const char *where)
{
    char q[ADDR_SIZE + CONF_DOMAIN_SIZE];
    struct addr a;
    int n = strrchr(text, '@') == NULL ? str_format(q, sizeof q, "%s@%s", text, x->domain)
                                       : str_copy(q, sizeof q, text);
    if (n < 0 || addr_parse_mailbox(q, &a) != ADDR_OK || a.text[0] == '\0')
        return cli_fail(prog, EX_DATAERR, "%s: not a valid address: %s", where, text);
    for (size_t i = 0; i < x->rcpts.n; i++)
        if (str_ieq(x->rcpts.a[i], a.text))
            return 0;
    if (x->rcpts.n == SMTPC_MAX_RCPTS)
        return cli_fail(prog, EX_DATAERR, "more than %d recipients", SMTPC_MAX_RCPTS);
    (void)str_copy(x->rcpts.a[x->rcpts.n++], ADDR_SIZE, a.text);
    return 0;
}

struct taker {
    struct ctx *x;
    const char *where;
};

static int take_rcpt(void *arg, const char *text)
{
    const struct taker *t = arg;
    return add_rcpt(t->x, text, t->where);
}

/* The recipients of an address list (To:, Cc:, a command-line argument), lib/addrlist. */
static int scan_list(struct ctx *x, const char *v, size_t len, const char *where)
{
    char why[ADDR_SIZE + 64];
    struct taker tk = {x, where};
    struct addrlist_taker t = {take_rcpt, &tk, why, sizeof why};
    int rc = addrlist_scan(v, len, &t);
    return rc == -1 ? cli_fail(prog, EX_DATAERR, "%s: %s", where, why) : rc;
}

/* A sender for -f: "", "<>", "user", "user@domain" or "<user@domain>". */
static int set_sender(struct ctx *x, const char *s)
{
    char bare[ADDR_SIZE], q[ADDR_SIZE + CONF_DOMAIN_SIZE];
    struct addr a;
    size_t len = strlen(s);
    if (len >= 2 && s[0] == '<' && s[len - 1] == '>') {
        s++;
        len -= 2;
    }
    if (str_copy_n(bare, sizeof bare, s, len) != 0)
        return cli_fail(prog, EX_USAGE, "-f: the sender address is too long");
    if (bare[0] == '\0') {
        x->sender[0] = '\0';
        return 0;
    }
    int n = strchr(bare, '@') == NULL ? str_format(q, sizeof q, "%s@%s", bare, x->domain)
                                      : str_copy(q, sizeof q, bare);
    if (n < 0 || addr_parse_mailbox(q, &a) != ADDR_OK)
        return cli_fail(prog, EX_USAGE, "-f: not a valid address: %s", bare);
    (void)str_copy(x->sender, sizeof x->sender, a.text);
    (void)str_copy(x->from_addr, sizeof x->from_addr, a.text);
    return 0;
}

/* The calling user's address (login@domain) and name (-F, else the GECOS field). */
static int who_am_i(struct ctx *x, char *name, size_t size)
{
    struct passwd *pw = getpwuid(getuid());
    const char *login = pw != NULL ? pw->pw_name : getenv("LOGNAME");
    if (login == NULL || login[0] == '\0')
        return cli_fail(prog, EX_OSERR, "the calling user (uid %lu) has no account name; use -f",
                        (unsigned long)getuid());
    if (str_format(x->login, sizeof x->login, "%s@%s", login, x->domain) < 0)
        return cli_fail(prog, EX_USAGE, "the account name %s is too long", login);
    name[0] = '\0';
    if (x->o.fullname != NULL) {
        if (str_copy(name, size, x->o.fullname) != 0)
            return cli_fail(prog, EX_USAGE, "-F: the full name is too long");
    } else if (pw != NULL && pw->pw_gecos != NULL) {
        size_t n = strcspn(pw->pw_gecos, ",");
        if (str_copy_n(name, size, pw->pw_gecos, n) != 0)
            name[0] = '\0';
    }
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++)
        if (*p < 0x20 || *p == 0x7f) {
            if (x->o.fullname != NULL)
                return cli_fail(prog, EX_USAGE, "-F: the full name holds a control character");
            name[0] = '\0';
            break;
        }
    return 0;
}

/* ---- the header section (lib/header) ---- */

/* Reads the header section; a sysexits code after saying why it cannot. */
static int read_header(struct ctx *x, char *line, size_t size, long *line_len)
{
    int rc = header_read(&x->h, stdin, x->o.dots_end, line, size, line_len, &x->text);
    if (rc == HEADER_IOERR)
        return cli_fail(prog, EX_IOERR, "cannot read the message: %s", strerror(errno));
    if (rc == HEADER_TOOLONG)
        return cli_fail(prog, EX_DATAERR, "the header section is longer than %d octets",
                        HEADER_MAX);
    return 0;
}

/* -t: the recipients of To, Cc and Bcc (or of Resent-To, -Cc and -Bcc when there are any). */
static int extract_rcpts(struct ctx *x)
{
    struct header *h = &x->h;
    size_t pos = 0, s, e, n;
    static const char *const plain[] = {"To", "Cc", "Bcc"};
    static const char *const resent[] = {"Resent-To", "Resent-Cc", "Resent-Bcc"};
    const char *const *names = h->has_resent ? resent : plain;
    int rc = 0;
    while (rc == 0 && header_next_field(h, &pos, &s, &e, &n)) {
        for (size_t k = 0; k < 3 && rc == 0; k++) {
            if (!header_name_is(h, s, n, names[k]))
                continue;
            const char *colon = memchr(h->buf + s, ':', e - s);
            size_t v = (size_t)(colon - h->buf) + 1;
            rc = scan_list(x, h->buf + v, e - v, names[k]);
        }
    }
    return rc;
}

/* ---- the spool file ---- */

static FILE *open_spool(char *why, size_t size)
{
    const char *dir = getenv("TMPDIR");
    char path[PATH_MAX];
    int fd;
    if (dir == NULL || dir[0] != '/')
        dir = "/tmp";
    fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0 && str_format(path, sizeof path, "%s/sendmail.XXXXXX", dir) >= 0 &&
        (fd = mkstemp(path)) >= 0)
        (void)unlink(path);
    if (fd < 0) {
        (void)str_format(why, size, "%s: %s", dir, strerror(errno));
        return NULL;
    }
    FILE *f = fdopen(fd, "w+");
    if (f == NULL) {
        (void)str_format(why, size, "%s: %s", dir, strerror(errno));
        close(fd);
    }
    return f;
}

/* A display name as a phrase: as it is when it has no special character (8-bit octets are
 * kept as they are, RFC 6532), else as a quoted string. */
static void put_name(FILE *f, const char *name)
{
    const char *p;
    if (strpbrk(name, "()<>[]:;@\\,.\"") == NULL && name[0] != ' ') {
        fprintf(f, "%s ", name);
        return;
    }
    putc('"', f);
    for (p = name; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            putc('\\', f);
        putc(*p, f);
    }
    fputs("\" ", f);
}

/* The header section without Bcc, then the fields that were missing, then the empty line. */
static int write_header(struct ctx *x, const char *name)
{
    struct header *h = &x->h;
    FILE *f = x->spool;
    size_t pos = 0, s, e, n;
    char buf[512];
    while (header_next_field(h, &pos, &s, &e, &n))
        if (!header_is_bcc(h, s, n))
            fwrite(h->buf + s, 1, e - s, f);
    if (!h->has_from) {
        fputs("From: ", f);
        if (name[0] != '\0')
            put_name(f, name);
        fprintf(f, "<%s>\n", x->from_addr);
    }
    if (!h->has_date && trace_date(buf, sizeof buf, time(NULL)) > 0)
        fprintf(f, "Date: %s\n", buf);
    if (!h->has_msgid && trace_message_id(buf, sizeof buf, x->conf.hostname) > 0)
        fprintf(f, "Message-ID: %s\n", buf);
    putc('\n', f);
    return 0;
}

/* The next octet of the body, checked as it passes (lib/deliver: no NUL, no bare CR). */
static int next_octet(struct ctx *x)
{
    int c = getc(stdin);
    if (c != EOF) {
        unsigned char octet = (unsigned char)c;
        deliver_text_scan(&x->text, &octet, 1);
    }
    return c;
}

/* Copies the body from stdin to the spool as it is; without -i a lone '.' line ends it. */
static int copy_body(struct ctx *x)
{
    FILE *in = stdin, *f = x->spool;
    int c, bol = 1;
    while ((c = next_octet(x)) != EOF) {
        if (bol && c == '.' && x->o.dots_end) {
            int d = next_octet(x), e = d == '\r' ? next_octet(x) : EOF;
            if (d == '\n' || (d == '\r' && e == '\n'))
                return 0;
            putc('.', f);
            if (d == '\r')
                putc('\r', f);
            c = d == '\r' ? e : d;
            if (c == EOF)
                break;
        }
        putc(c, f);
        bol = c == '\n';
    }
    if (ferror(in))
        return cli_fail(prog, EX_IOERR, "cannot read the message: %s", strerror(errno));
    return 0;
}

/* Reads stdin into the spool file: header section (parsed), added fields, body. */
static int spool_message(struct ctx *x, const char *name)
{
    static char line[HEADER_MAX];
    char why[PATH_MAX + 100];
    long first_len;
    int rc;
    if ((x->spool = open_spool(why, sizeof why)) == NULL)
        return cli_fail(prog, EX_TEMPFAIL, "cannot make a temporary file in %s", why);
    if ((rc = read_header(x, line, sizeof line, &first_len)) != 0)
        return rc;
    header_note_fields(&x->h);
    if (x->o.extract && (rc = extract_rcpts(x)) != 0)
        return rc;
    write_header(x, name);
    if (first_len > 0)
        fwrite(line, 1, (size_t)first_len, x->spool);
    if (!x->h.ended && (rc = copy_body(x)) != 0)
        return rc;
    if (deliver_text_end(&x->text) != DELIVER_TEXT_OK)
        return cli_fail(prog, EX_DATAERR,
                        "the message holds %s at octet %llu: refused, nothing was sent",
                        deliver_text_error(x->text.first), (unsigned long long)x->text.where + 1);
    if (fflush(x->spool) != 0 || ferror(x->spool))
        return cli_fail(prog, EX_TEMPFAIL, "cannot write the temporary copy of the message: %s",
                        strerror(errno));
    return 0;
}

/* ---- submission ---- */

static void transcript(void *arg, char dir, const char *line, size_t len)
{
    (void)arg;
    fprintf(stderr, "%s: %s %.*s\n", prog,
            dir == 'C'   ? ">>>"
            : dir == 'S' ? "<<<"
                         : "***",
            (int)len, line);
}

static void smtp_opts(struct ctx *x, struct smtpc_opts *o)
{
    o->helo = x->conf.hostname;
    o->connect_timeout = x->conf.connect_timeout;
    o->transcript = x->o.verbose ? transcript : NULL;
}

/* Connects to smtp-in on the Unix-domain socket local_socket. 0, or a sysexits code after
 * saying why. */
static int submit_local(struct ctx *x, struct smtpc *c)
{
    const char *path = x->conf.local_socket;
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    struct smtpc_opts o = {0};
    struct smtpc_reply why = {0};
    if (str_copy(sun.sun_path, sizeof sun.sun_path, path) != 0)
        return cli_fail(prog, EX_CONFIG, "%s: local_socket %s: path too long", x->conf.path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof sun) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return cli_fail(prog, EX_TEMPFAIL,
                        "cannot submit the message to %s (local_socket in %s): %s; nothing was "
                        "sent",
                        path, x->conf.path, strerror(err));
    }
    smtp_opts(x, &o);
    int rc = smtpc_start(c, fd, path, &o, &why);
    if (rc == 0)
        return 0;
    return cli_fail(prog, rc > 0 ? EX_TEMPFAIL : EX_UNAVAILABLE,
                    "cannot submit the message to %s (local_socket in %s): %s; nothing was sent",
                    path, x->conf.path, why.text);
}

/* Connects to the first address of submission_address that answers (or to local_socket when
 * it is not set). 0, or a sysexits code after saying why. */
static int submit_connect(struct ctx *x, struct smtpc *c)
{
    const char *sa = x->conf.submission_address;
    char host[300], port[32];
    struct addrinfo hints = {0}, *res = NULL;
    struct smtpc_opts o = {0};
    struct smtpc_reply why = {0};
    int rc = 1, err;
    if (sa[0] == '\0')
        return submit_local(x, c);
    unsigned port_number;
    if (parse_hostport(sa, host, sizeof host, &port_number, DEFAULT_PORT) != 0 ||
        str_format(port, sizeof port, "%u", port_number) < 0)
        return cli_fail(prog, EX_CONFIG, "%s: submission_address %s is not host:port", x->conf.path,
                        sa);
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    if ((err = getaddrinfo(host, port, &hints, &res)) != 0)
        return cli_fail(prog, EX_TEMPFAIL,
                        "cannot submit the message to %s (submission_address in %s): %s", sa,
                        x->conf.path, gai_strerror(err));
    smtp_opts(x, &o);
    for (struct addrinfo *ai = res; ai != NULL && rc != 0; ai = ai->ai_next)
        rc = smtpc_connect(c, ai->ai_addr, ai->ai_addrlen, &o, &why);
    freeaddrinfo(res);
    if (rc == 0)
        return 0;
    return cli_fail(
        prog, rc > 0 ? EX_TEMPFAIL : EX_UNAVAILABLE,
        "cannot submit the message to %s (submission_address in %s): %s; nothing was sent", sa,
        x->conf.path, why.text);
}

/* What a refusal means to the caller: an unknown recipient, a refusal of another kind, or a
 * temporary failure. */
static int refusal_code(const struct smtpc_reply *r)
{
    if (smtpc_reply_result(r) != SMTPC_PERM)
        return EX_TEMPFAIL;
    if (strcmp(r->enhanced, "5.3.4") == 0 || strcmp(r->enhanced, "5.1.3") == 0)
        return EX_DATAERR; /* too big; a malformed address */
    if (strncmp(r->enhanced, "5.1.", 4) == 0 && strcmp(r->enhanced, "5.1.7") != 0 &&
        strcmp(r->enhanced, "5.1.8") != 0)
        return EX_NOUSER;
    if (r->enhanced[0] == '\0' && (r->code == 550 || r->code == 551))
        return EX_NOUSER;
    return EX_UNAVAILABLE;
}

/* The worse of two exit codes: a permanent refusal over a temporary one, and an unknown
 * recipient over any other refusal (it is the one a person can fix). */
static int worse(int a, int b)
{
    static const int order[] = {EX_OK, EX_TEMPFAIL, EX_UNAVAILABLE, EX_DATAERR, EX_NOUSER};
    size_t ra = 0, rb = 0;
    for (size_t i = 0; i < ARRAY_LEN(order); i++) {
        ra = order[i] == a ? i : ra;
        rb = order[i] == b ? i : rb;
    }
    return rb > ra ? b : a;
}

/* One line per recipient that did not get the message; the exit code for all of them. */
static int report(struct ctx *x, const struct smtpc_reply *res)
{
    int code = EX_OK;
    size_t ok = 0;
    for (size_t i = 0; i < x->rcpts.n; i++) {
        if (smtpc_reply_result(&res[i]) == SMTPC_OK) {
            ok++;
            continue;
        }
        code = worse(code, cli_fail(prog, refusal_code(&res[i]), "not sent to <%s>: %s",
                                    x->rcpts.a[i], res[i].text));
    }
    if (code != EX_OK && ok > 0)
        cli_fail(prog, code, "the message was sent to the other %zu recipient%s", ok,
                 ok == 1 ? "" : "s");
    else if (code == EX_OK && x->o.verbose)
        cli_fail(prog, code, "sent to %zu recipient%s via %s: %s", ok, ok == 1 ? "" : "s",
                 x->conf.submission_address[0] ? x->conf.submission_address : x->conf.local_socket,
                 res[0].text);
    return code;
}

/* Sends to every recipient over one connection, in as many transactions as the server's
 * limit on recipients asks for (lib/smtpc smtpc_send_all, RFC 5321 §4.5.3.1.10). */
static int submit(struct ctx *x)
{
    static struct smtpc c;
    static const char *list[SMTPC_MAX_RCPTS];
    struct smtpc_reply *res = calloc(x->rcpts.n, sizeof *res);
    struct smtpc_msg m = {x->sender, list, x->rcpts.n, fileno(x->spool), 0};
    int rc;
    if (res == NULL)
        return cli_fail(prog, EX_TEMPFAIL, "out of memory");
    for (size_t i = 0; i < x->rcpts.n; i++)
        list[i] = x->rcpts.a[i];
    if ((rc = submit_connect(x, &c)) != 0) {
        free(res);
        return rc;
    }
    if ((rc = smtpc_send_all(&c, &m, res, 0)) == 0)
        smtpc_quit(&c);
    else
        smtpc_close(&c);
    rc = report(x, res);
    free(res);
    return rc;
}

/* ---- main ---- */

static int setup(struct ctx *x, char *name, size_t size)
{
    char err[PATH_MAX + 200];
    if (conf_load(&x->conf, x->o.conf_path, err, sizeof err) != 0)
        return cli_fail(prog, EX_CONFIG, "%s", err);
    x->domain = x->conf.n_local_domains > 0 ? x->conf.local_domains[0] : x->conf.hostname;
    int rc = who_am_i(x, name, size);
    if (rc != 0)
        return rc;
    (void)str_copy(x->sender, sizeof x->sender, x->login);
    (void)str_copy(x->from_addr, sizeof x->from_addr, x->login);
    if (x->o.sender != NULL && (rc = set_sender(x, x->o.sender)) != 0)
        return rc;
    if (x->o.fullname == NULL && !str_ieq(x->from_addr, x->login))
        name[0] = '\0'; /* the GECOS name belongs to the user's own address only */
    for (int i = 0; i < x->o.n_args && rc == 0; i++)
        rc = scan_list(x, x->o.args[i], strlen(x->o.args[i]), "recipient");
    return rc;
}

int main(int argc, char **argv)
{
    static struct ctx x;
    static char rcpt_store[SMTPC_MAX_RCPTS][ADDR_SIZE];
    char name[256];
    int rc;
    signal(SIGPIPE, SIG_IGN);
    if (getuid() != geteuid() || getgid() != getegid())
        return cli_fail(prog, EX_SOFTWARE, "must not run setuid or setgid; it needs no privileges");
    if (sodium_init() < 0)
        return cli_fail(prog, EX_SOFTWARE, "libsodium cannot start");
    if ((rc = parse_args(argc, argv, &x.o)) != 0)
        return rc;
    if (x.o.mode == MODE_MAILQ)
        return run_other(&x.o, "mailq");
    if (x.o.mode == MODE_QUEUE)
        return run_other(&x.o, "queue-run");
    if (x.o.mode == MODE_CHECK)
        return run_other(&x.o, "yubin-check");
    if (x.o.mode == MODE_NOOP)
        return EX_OK;
    if (!x.o.extract && x.o.n_args == 0)
        return cli_fail(prog, EX_USAGE,
                        "no recipients: give addresses, or -t to take them from the "
                        "To:, Cc: and Bcc: fields");
    x.rcpts.a = rcpt_store;
    if ((rc = setup(&x, name, sizeof name)) != 0 || (rc = spool_message(&x, name)) != 0)
        return rc;
    if (x.rcpts.n == 0)
        return cli_fail(prog, EX_USAGE, "no recipients in the To:, Cc: or Bcc: fields");
    rc = submit(&x);
    fclose(x.spool);
    return rc;
}
