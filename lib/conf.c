/*
 * conf: yubin.conf (see conf.h and yubin.conf(5)). One table names every key, its type, its
 * limits and where it goes in the struct; the parser checks the value, then stores it.
 * It never resolves names and never leaves a half-filled value behind an error.
 */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "domain.h"
#include "util.h"

#ifndef YUBIN_CONF_PATH
#define YUBIN_CONF_PATH "/etc/yubin/yubin.conf"
#endif
#ifndef YUBIN_SYSCONFDIR
#define YUBIN_SYSCONFDIR "/etc/yubin"
#endif

enum conf_type { T_STRING, T_PATH, T_HOST, T_UINT, T_SIZE, T_BOOL, T_DOMAINS, T_NETWORKS };

struct conf_key {
    const char *name;
    enum conf_type type;
    size_t offset;
    size_t size;     /* of the field, for strings */
    uint64_t min, max;
};

#define STR(field, type) #field, type, offsetof(struct yubin_conf, field), \
    sizeof(((struct yubin_conf *)0)->field)
#define NUM(field, type, lo, hi) #field, type, offsetof(struct yubin_conf, field), \
    sizeof(((struct yubin_conf *)0)->field), lo, hi

static const struct conf_key conf_keys[] = {
    {STR(hostname, T_HOST), 0, 0},
    {STR(local_domains, T_DOMAINS), 0, 0},
    {STR(state_dir, T_PATH), 0, 0},
    {STR(users_file, T_PATH), 0, 0},
    {STR(aliases_file, T_PATH), 0, 0},
    {STR(user, T_STRING), 0, 0},
    {STR(relay_networks, T_NETWORKS), 0, 0},
    {STR(submit_networks, T_NETWORKS), 0, 0},
    {STR(proxy_networks, T_NETWORKS), 0, 0},
    {STR(local_socket, T_PATH), 0, 0},
    {NUM(max_message_size, T_SIZE, 1024, UINT64_C(1) << 40)},
    {NUM(max_recipients, T_UINT, 1, 100000)},
    {NUM(max_hops, T_UINT, 1, 1000)},
    {NUM(command_timeout, T_UINT, 1, 86400)},
    {NUM(data_timeout, T_UINT, 1, 86400)},
    {NUM(max_errors, T_UINT, 1, 1000)},
    {NUM(max_junk_commands, T_UINT, 1, 100000)},
    {NUM(session_time_limit, T_UINT, 1, 604800)},
    {NUM(data_time_limit, T_UINT, 1, 604800)},
    {NUM(pop3_timeout, T_UINT, 1, 86400)},
    {NUM(imap_timeout, T_UINT, 1, 86400)},
    {NUM(max_connections_per_client, T_UINT, 0, 100000)},
    {STR(syslog_socket, T_PATH), 0, 0},
    {NUM(max_auth_failures, T_UINT, 1, 100)},
    {NUM(auth_delay_ms, T_UINT, 0, 60000)},
    {NUM(pwhash_opslimit, T_SIZE, 1, 1000)},
    {NUM(pwhash_memlimit, T_SIZE, 8192, UINT64_C(1) << 34)},
    {STR(auth_socket, T_PATH), 0, 0},
    {STR(auth_user, T_STRING), 0, 0},
    {NUM(auth_max_parallel, T_UINT, 1, 64)},
    {NUM(auth_max_queue, T_UINT, 0, 10000)},
    {NUM(auth_arena_idle, T_UINT, 0, 86400)},
    {STR(dns_resolver, T_STRING), 0, 0},
    {NUM(smtp_port, T_UINT, 1, 65535)},
    {STR(smarthost, T_STRING), 0, 0},
    {NUM(queue_lifetime, T_UINT, 60, 365 * 86400)},
    {NUM(delay_warning, T_UINT, 0, 365 * 86400)},
    {NUM(max_parallel, T_UINT, 1, 1000)},
    {NUM(connect_timeout, T_UINT, 1, 3600)},
    {NUM(relay_session_limit, T_UINT, 1, 86400)},
    {NUM(relay_destination_limit, T_UINT, 1, 86400)},
    {NUM(queue_run_limit, T_UINT, 1, 86400)},
    {NUM(relay_max_rcpts, T_UINT, 1, 1024)},
    {NUM(auth_without_tls, T_BOOL, 0, 1)},
    {NUM(sender_login_match, T_BOOL, 0, 1)},
    {STR(submission_address, T_STRING), 0, 0},
    {STR(transcript_dir, T_PATH), 0, 0},
    {NUM(transcript_max_size, T_SIZE, 1024, UINT64_C(1) << 40)},
    {STR(srs_domain, T_HOST), 0, 0},
    {STR(srs_secret_file, T_PATH), 0, 0},
    {NUM(srs_max_age, T_UINT, 1, 1000)},
    {STR(tls_policy_file, T_PATH), 0, 0},
    {STR(smarthost_auth_file, T_PATH), 0, 0},
    {STR(tls_cert_file, T_PATH), 0, 0},
    {STR(tls_key_file, T_PATH), 0, 0},
    {STR(tls_protocols, T_STRING), 0, 0},
    {STR(tls_ciphers, T_STRING), 0, 0},
    {NUM(require_tls_submission, T_BOOL, 0, 1)},
};

static void default_hostname(char *dst, size_t size)
{
    char name[CONF_DOMAIN_SIZE];
    if (gethostname(name, sizeof name) != 0 || name[0] == '\0')
        str_copy(name, sizeof name, "localhost");
    name[sizeof name - 1] = '\0';
    str_lower(name);
    str_copy(dst, size, name);
}

void conf_defaults(struct yubin_conf *c)
{
    memset(c, 0, sizeof *c);
    str_copy(c->path, sizeof c->path, YUBIN_CONF_PATH);
    default_hostname(c->hostname, sizeof c->hostname);
    str_copy(c->local_domains[0], sizeof c->local_domains[0], c->hostname);
    c->n_local_domains = 1;
    str_copy(c->state_dir, sizeof c->state_dir, "/var/lib/yubin");
    str_copy(c->users_file, sizeof c->users_file, YUBIN_SYSCONFDIR "/users");
    str_copy(c->aliases_file, sizeof c->aliases_file, YUBIN_SYSCONFDIR "/aliases");
    str_copy(c->user, sizeof c->user, "yubin");
    str_copy(c->local_socket, sizeof c->local_socket, "/run/yubin/smtp.sock");
    c->max_message_size = 26214400;
    c->max_recipients = 100;
    c->max_hops = 50;
    c->command_timeout = 300;
    c->data_timeout = 600;
    c->max_errors = 10;
    c->max_junk_commands = 100; /* Postfix's smtpd_junk_command_limit */
    c->session_time_limit = 3600;
    c->data_time_limit = 1800;
    c->pop3_timeout = 600; /* RFC 1939 §3: an autologout timer of at least 10 minutes */
    c->imap_timeout = 1800; /* RFC 3501 §5.4: an autologout timer of at least 30 minutes */
    c->max_connections_per_client = 20; /* as the systemd units' MaxConnectionsPerSource */
    str_copy(c->syslog_socket, sizeof c->syslog_socket, "/dev/log");
    c->max_auth_failures = 3;
    c->auth_delay_ms = 1000;
    c->pwhash_opslimit = 2;                  /* crypto_pwhash_OPSLIMIT_INTERACTIVE */
    c->pwhash_memlimit = UINT64_C(67108864); /* crypto_pwhash_MEMLIMIT_INTERACTIVE */
    str_copy(c->auth_socket, sizeof c->auth_socket, "/run/yubin-auth/socket");
    str_copy(c->auth_user, sizeof c->auth_user, "yubin-auth");
    c->auth_max_parallel = 2;
    c->auth_max_queue = 100;
    c->auth_arena_idle = 30;
    c->smtp_port = 25;
    c->queue_lifetime = 5 * 86400;
    c->delay_warning = 4 * 3600;
    c->max_parallel = 100; /* Postfix: default_process_limit 100 */
    c->connect_timeout = 30;
    c->relay_session_limit = 600;     /* one outbound SMTP connection */
    c->relay_destination_limit = 900; /* one destination in one pass */
    c->queue_run_limit = 300;         /* a pass starts no job and waits for none after it */
    c->relay_max_rcpts = 100;         /* RFC 5321 §4.5.3.1.8: what every server must take */
    c->auth_without_tls = 0;
    c->sender_login_match = 1;
    c->transcript_max_size = 1048576;
    str_copy(c->srs_secret_file, sizeof c->srs_secret_file, YUBIN_SYSCONFDIR "/srs-secret");
    c->srs_max_age = 21; /* libsrs2 and postsrsd */
    c->require_tls_submission = 1;
    str_copy(c->tls_protocols, sizeof c->tls_protocols, "TLSv1.2 TLSv1.3");
    /* forward secret (ECDHE) and AEAD only; TLS 1.3's suites all are */
    str_copy(c->tls_ciphers, sizeof c->tls_ciphers, "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL");
}

/* Parses "addr/prefix" (or a bare address) into n. 0 or -1. */
static int parse_network(const char *text, struct conf_network *n)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *slash = strchr(text, '/');
    size_t host_len = slash ? (size_t)(slash - text) : strlen(text);
    if (str_copy_n(host, sizeof host, text, host_len) != 0)
        return -1;
    memset(n, 0, sizeof *n);
    unsigned max_prefix;
    if (inet_pton(AF_INET, host, n->addr) == 1) {
        n->family = AF_INET;
        max_prefix = 32;
    } else if (inet_pton(AF_INET6, host, n->addr) == 1) {
        n->family = AF_INET6;
        max_prefix = 128;
    } else {
        return -1;
    }
    uint64_t prefix = max_prefix;
    if (slash != NULL && (parse_u64(slash + 1, &prefix) != 0 || prefix > max_prefix))
        return -1;
    n->prefix = (unsigned)prefix;
    for (unsigned bit = n->prefix; bit < max_prefix; bit++)
        n->addr[bit / 8] &= (unsigned char)~(0x80u >> (bit % 8));
    return 0;
}

typedef int (*list_item_fn)(void *list, const char *item);

/* Splits value on spaces and commas and calls fn for each item. */
static int for_each_item(void *list, const char *value, list_item_fn fn)
{
    char item[CONF_DOMAIN_SIZE];
    const char *p = value;
    while (*p != '\0') {
        size_t skip = strspn(p, " \t,");
        p += skip;
        size_t len = strcspn(p, " \t,");
        if (len == 0)
            break;
        if (str_copy_n(item, sizeof item, p, len) != 0 || fn(list, item) != 0)
            return -1;
        p += len;
    }
    return 0;
}

static int add_domain_item(void *list, const char *item)
{
    struct yubin_conf *c = list;
    if (c->n_local_domains >= CONF_MAX_DOMAINS ||
        domain_normalise(c->local_domains[c->n_local_domains], CONF_DOMAIN_SIZE, item,
                         DOMAIN_TRAILING_DOT) != 0)
        return -1;
    c->n_local_domains++;
    return 0;
}

static int add_network_item(void *list, const char *item)
{
    struct conf_networks *l = list;
    if (l->n >= CONF_MAX_NETWORKS || parse_network(item, &l->net[l->n]) != 0)
        return -1;
    l->n++;
    return 0;
}

/* Relative paths are relative to the config file's directory. */
static int set_path(char *dst, size_t size, const char *conf_path, const char *value)
{
    if (value[0] == '/')
        return str_copy(dst, size, value);
    const char *slash = strrchr(conf_path, '/');
    if (slash == NULL)
        return str_copy(dst, size, value);
    return str_format(dst, size, "%.*s/%s", (int)(slash - conf_path), conf_path, value) < 0
               ? -1 : 0;
}

static int set_number(const struct conf_key *k, void *field, const char *value)
{
    uint64_t v;
    char digits[32];
    size_t len = strlen(value);
    uint64_t scale = 1;
    if (k->type == T_SIZE && len > 1 && strchr("kKmMgG", value[len - 1]) != NULL) {
        char unit = value[len - 1];
        scale = (unit == 'k' || unit == 'K') ? 1024 : (unit == 'm' || unit == 'M') ? 1048576
                                                                                  : 1073741824;
        len--;
    }
    if (str_copy_n(digits, sizeof digits, value, len) != 0 || parse_u64(digits, &v) != 0 ||
        v > UINT64_MAX / scale)
        return -1;
    v *= scale;
    if (v < k->min || v > k->max)
        return -1;
    if (k->size == sizeof(uint64_t))
        *(uint64_t *)field = v;
    else if (k->size == sizeof(unsigned))
        *(unsigned *)field = (unsigned)v;
    else
        *(int *)field = (int)v;
    return 0;
}

static int set_bool(void *field, const char *value)
{
    if (str_ieq(value, "yes") || str_ieq(value, "true") || strcmp(value, "1") == 0)
        *(int *)field = 1;
    else if (str_ieq(value, "no") || str_ieq(value, "false") || strcmp(value, "0") == 0)
        *(int *)field = 0;
    else
        return -1;
    return 0;
}

static int set_value(struct yubin_conf *c, const struct conf_key *k, const char *value)
{
    void *field = (char *)c + k->offset;
    switch (k->type) {
    case T_STRING:
        return str_copy(field, k->size, value);
    case T_PATH:
        return set_path(field, k->size, c->path, value);
    case T_HOST:
        return domain_normalise(field, k->size, value, DOMAIN_TRAILING_DOT);
    case T_UINT:
    case T_SIZE:
        return set_number(k, field, value);
    case T_BOOL:
        return set_bool(field, value);
    case T_DOMAINS:
        c->n_local_domains = 0;
        return for_each_item(c, value, add_domain_item) == 0 && c->n_local_domains > 0 ? 0 : -1;
    case T_NETWORKS:
        ((struct conf_networks *)field)->n = 0;
        return for_each_item(field, value, add_network_item);
    }
    return -1;
}

static const struct conf_key *find_key(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(conf_keys); i++)
        if (strcmp(conf_keys[i].name, name) == 0)
            return &conf_keys[i];
    return NULL;
}

/* One line: 0 ok, -1 error (message in err). seen[] catches repeated keys. */
static int parse_line(struct yubin_conf *c, char *line, unsigned char *seen, char *err,
                      size_t errlen)
{
    char *hash = strchr(line, '#');
    if (hash != NULL)
        *hash = '\0';
    char *key = str_trim(line);
    if (*key == '\0')
        return 0;
    size_t key_len = strcspn(key, " \t");
    char *value = str_trim(key + key_len);
    key[key_len] = '\0';
    const struct conf_key *k = find_key(key);
    if (k == NULL)
        return str_format(err, errlen, "unknown key '%s'", key), -1;
    if (seen[k - conf_keys]++)
        return str_format(err, errlen, "key '%s' is set twice", key), -1;
    if (*value == '\0')
        return str_format(err, errlen, "key '%s' has no value", key), -1;
    if (set_value(c, k, value) != 0)
        return str_format(err, errlen, "bad value for '%s': %s", key, value), -1;
    return 0;
}

/* Skips the rest of a line longer than the buffer. */
static void skip_line(FILE *f)
{
    int ch;
    while ((ch = getc(f)) != EOF && ch != '\n')
        ;
}

int conf_check(struct yubin_conf *c, const char *path, conf_report_fn report, void *arg)
{
    char line[2048], why[512], msg[PATH_MAX + 600];
    unsigned char seen[ARRAY_LEN(conf_keys)] = {0};
    unsigned lineno = 0;
    int errors = 0;
    conf_defaults(c);
    if (path == NULL)
        path = YUBIN_CONF_PATH;
    if (str_copy(c->path, sizeof c->path, path) != 0) {
        str_format(msg, sizeof msg, "%.300s: path too long", path);
        return report(arg, msg), -1;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        str_format(msg, sizeof msg, "%s: %s", path, strerror(errno));
        return report(arg, msg), -1;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        int rc;
        lineno++;
        if (strchr(line, '\n') == NULL && !feof(f)) {
            skip_line(f);
            str_format(why, sizeof why, "line too long");
            rc = -1;
        } else {
            rc = parse_line(c, line, seen, why, sizeof why);
        }
        if (rc != 0) {
            str_format(msg, sizeof msg, "%s:%u: %s", path, lineno, why);
            report(arg, msg);
            errors++;
        }
    }
    if (ferror(f)) {
        str_format(msg, sizeof msg, "%s:%u: read error", path, lineno);
        report(arg, msg);
        errors++;
    }
    fclose(f);
    return errors;
}

struct first_error {
    char *err;
    size_t errlen;
    int seen;
};

static void keep_first(void *arg, const char *msg)
{
    struct first_error *fe = arg;
    if (fe->seen++ == 0)
        str_format(fe->err, fe->errlen, "%s", msg);
}

int conf_load(struct yubin_conf *c, const char *path, char *err, size_t errlen)
{
    struct first_error fe = {err, errlen, 0};
    return conf_check(c, path, keep_first, &fe) == 0 ? 0 : -1;
}

int conf_is_local_domain(const struct yubin_conf *c, const char *domain)
{
    for (size_t i = 0; i < c->n_local_domains; i++)
        if (str_ieq(c->local_domains[i], domain))
            return 1;
    return 0;
}

static int in_network(const struct conf_network *n, int family, const unsigned char *addr)
{
    if (n->family != family)
        return 0;
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, addr, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff00u >> rest);
    return (addr[full] & mask) == n->addr[full];
}

int conf_in_networks(const struct conf_networks *list, const void *sockaddr)
{
    const struct sockaddr *sa = sockaddr;
    unsigned char v4[4];
    const unsigned char *addr;
    int family = sa->sa_family;
    if (family == AF_INET) {
        addr = (const unsigned char *)&((const struct sockaddr_in *)sockaddr)->sin_addr;
    } else if (family == AF_INET6) {
        addr = (const unsigned char *)&((const struct sockaddr_in6 *)sockaddr)->sin6_addr;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)addr)) {
            memcpy(v4, addr + 12, 4);
            addr = v4;
            family = AF_INET;
        }
    } else {
        return 0;
    }
    for (size_t i = 0; i < list->n; i++)
        if (in_network(&list->net[i], family, addr))
            return 1;
    return 0;
}
