/*
 * conf: yubin.conf, read once at start-up into one struct. Plain `key value` lines and `#`
 * comments; an unknown key, a repeated key or a bad value is an error naming the file and
 * line. Relative paths are taken relative to the directory of the config file. It never
 * touches the network (no DNS at start-up).
 */
#ifndef YUBIN_CONF_H
#define YUBIN_CONF_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_DOMAINS 64
#define CONF_DOMAIN_SIZE 256
#define CONF_MAX_NETWORKS 64

struct conf_network {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char addr[16];   /* network address, host bits cleared */
    unsigned prefix;          /* prefix length */
};

/* A list of networks (relay_networks, submit_networks, proxy_networks). */
struct conf_networks {
    size_t n;
    struct conf_network net[CONF_MAX_NETWORKS];
};

struct yubin_conf {
    char path[PATH_MAX];                 /* the file this came from */
    char hostname[CONF_DOMAIN_SIZE];     /* our name in greetings, Received, Message-ID */
    char local_domains[CONF_MAX_DOMAINS][CONF_DOMAIN_SIZE]; /* lower case */
    size_t n_local_domains;
    char state_dir[PATH_MAX];            /* mail/, queue/, tmp/ live here, one filesystem */
    char users_file[PATH_MAX];
    char aliases_file[PATH_MAX];
    char user[64];                       /* the unprivileged account handlers run as */
    struct conf_networks relay_networks; /* may relay without AUTH (port 25 too); none */
    struct conf_networks submit_networks; /* may submit without AUTH on -s (587); none */
    struct conf_networks proxy_networks;  /* PROXY protocol v2 senders we trust; none */
    char local_socket[PATH_MAX];         /* the Unix socket sendmail(8) submits over */
    uint64_t max_message_size;           /* octets, as advertised by SIZE */
    unsigned max_recipients;             /* per message; more get 452 4.5.3 */
    unsigned max_hops;                   /* Received headers; more get 554 5.4.6 */
    unsigned command_timeout;            /* seconds to wait for a command line */
    unsigned data_timeout;               /* seconds to wait for each DATA line */
    unsigned max_errors;                 /* protocol errors before the session is closed */
    unsigned max_junk_commands;          /* NOOP, RSET, VRFY, HELP... before 421 / -ERR */
    unsigned session_time_limit;         /* seconds a whole SMTP or POP3 session may last */
    unsigned data_time_limit;            /* seconds a whole DATA transfer may last */
    unsigned pop3_timeout;               /* seconds pop3-in waits for a command */
    unsigned imap_timeout;               /* seconds imap4-in waits for a command, or in IDLE */
    unsigned max_connections_per_client; /* at once from one address (lib/connlimit); 0 = any */
    char syslog_socket[PATH_MAX];        /* the syslog datagram socket, /dev/log */

    /* Users and logins (pop3-in, submission). */
    unsigned max_auth_failures;          /* failed logins before the connection is closed */
    unsigned auth_delay_ms;              /* delay after the first failed login; doubles */
    uint64_t pwhash_opslimit;            /* argon2id cost for new hashes */
    uint64_t pwhash_memlimit;
    char auth_socket[108];               /* yubin-auth's Unix-domain socket (sun_path) */
    char auth_user[64];                  /* the account yubin-auth runs as */
    unsigned auth_max_parallel;          /* passwords verified at once by yubin-auth */
    unsigned auth_max_queue;             /* more waiting checks get a temporary failure */
    unsigned auth_arena_idle;            /* seconds a worker's argon2 memory stays mapped */

    /* Outbound. */
    char dns_resolver[300];              /* "addr" or "addr:port" or "[v6]:port"; "" = resolv.conf */
    unsigned smtp_port;                  /* port of remote MX hosts */
    char smarthost[300];                 /* "host:port" that takes all remote mail; "" = MX */
    unsigned queue_lifetime;             /* seconds before a queued recipient bounces */
    unsigned delay_warning;              /* seconds before a delay warning; 0 = never */
    unsigned max_parallel;               /* destinations served at once by queue-run */
    unsigned connect_timeout;            /* seconds, outbound */
    unsigned relay_session_limit;        /* seconds for one outbound SMTP connection, in all */
    unsigned relay_destination_limit;    /* seconds for one destination in one queue-run pass */
    unsigned queue_run_limit;            /* seconds after which a pass stops waiting and exits */
    unsigned relay_max_rcpts;            /* recipients per outbound transaction (<= 1024) */
    int auth_without_tls;                /* offer AUTH on a connection without TLS */
    int require_tls_submission;          /* -s: no MAIL before STARTTLS (a certificate set) */
    int sender_login_match;              /* submission: MAIL FROM must be the login or its alias */
    char submission_address[300];        /* "host:port" sendmail(8) submits to instead of
                                            local_socket; "" = local_socket */

    /* Transcripts (lib/transcript): one file per dialogue in this directory; "" = none. */
    char transcript_dir[PATH_MAX];
    uint64_t transcript_max_size;        /* octets per file; then a note and no more */
    /* SRS for mail forwarded to remote alias members (lib/srs). */
    char srs_domain[CONF_DOMAIN_SIZE];   /* domain of the SRS addresses; "" = local_domains[0] */
    char srs_secret_file[PATH_MAX];      /* secrets, one a line, the first signs; missing = off */
    unsigned srs_max_age;                /* days an SRS address stays valid */
    char tls_policy_file[PATH_MAX];      /* outbound TLS per destination (lib/tlsc); "" = may */
    char smarthost_auth_file[PATH_MAX];  /* "user:password" for AUTH at the smarthost; "" = none */
    /* TLS (lib/tls). No certificate: no STARTTLS, no STLS, -T refuses to serve. */
    char tls_cert_file[PATH_MAX];        /* PEM: the certificate, then its chain; "" = none */
    char tls_key_file[PATH_MAX];         /* PEM private key, read as root; "" = cert file */
    char tls_protocols[64];              /* "TLSv1.2 TLSv1.3": the versions allowed */
    char tls_ciphers[512];               /* OpenSSL cipher list for TLS 1.2 (1.3: all FS) */
};

/* Fills c with the defaults, then reads path (NULL: the compiled-in default). Returns 0, or
 * -1 with "file:line: what is wrong" in err. A missing file is an error. */
int conf_load(struct yubin_conf *c, const char *path, char *err, size_t errlen);
/* Like conf_load, but reads on past a bad line: report(arg, "file:line: what is wrong") is
 * called for every error, and the count is returned (0: all good), or -1 (reported too) when
 * the file cannot be opened. yubin-check uses it to show every error at once. */
typedef void (*conf_report_fn)(void *arg, const char *msg);
int conf_check(struct yubin_conf *c, const char *path, conf_report_fn report, void *arg);
/* The defaults alone (used by conf_load, and by tests). */
void conf_defaults(struct yubin_conf *c);

/* Is domain (any case) one of ours? */
int conf_is_local_domain(const struct yubin_conf *c, const char *domain);
/* Is this socket address (a struct sockaddr *, AF_INET or AF_INET6; IPv4-mapped IPv6 counts
 * as IPv4) inside one of the networks? */
int conf_in_networks(const struct conf_networks *list, const void *sockaddr);

#endif
