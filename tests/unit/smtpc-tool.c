/*
 * smtpc-tool: the test driver for lib/smtpc and lib/dsn that tests/e2e/test_smtpc.py runs
 * (built by `make`, never installed). It sends stored messages over one SMTP connection, or
 * writes a DSN for a stored message to stdout. A stored file that starts with "Return-Path:"
 * is relayed from the byte after that line, as queue-run does. It never reads a whole message
 * into memory (lib/smtpc streams it), so its peak RSS says what relaying costs.
 *
 *   smtpc-tool send [-v] [-H helo] [-t secs] ADDR PORT SENDER FILE RCPT... [-- SENDER FILE RCPT...]
 *       one line per recipient on stdout: "<msg#> <rcpt> <0|1|-1> <reply text>", then
 *       "connection <rc>"; with -v the dialogue goes to stderr ("C: ", "S: ", "*: ").
 *   smtpc-tool dsn [-d] HOSTNAME TO FILE (RCPT STATUS REMOTE-MTA DIAGNOSTIC)...
 *       a bounce (-d: a delay warning) to stdout; "-" for an empty REMOTE-MTA or DIAGNOSTIC.
 */
#include "config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dsn.h"
#include "smtpc.h"

static void show(void *arg, char dir, const char *line, size_t len)
{
    (void)arg;
    fprintf(stderr, "%c: %.*s\n", dir, (int)len, line);
}

/* Opens a stored message; its relay offset is after a leading Return-Path: line. */
static int open_stored(const char *path, off_t *offset)
{
    char head[1024];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror(path);
        exit(2);
    }
    ssize_t n = pread(fd, head, sizeof head - 1, 0);
    head[n > 0 ? n : 0] = '\0';
    *offset = 0;
    if (strncmp(head, "Return-Path:", 12) == 0 && strchr(head, '\n') != NULL)
        *offset = strchr(head, '\n') - head + 1;
    return fd;
}

static int parse_addr(const char *host, const char *port, struct sockaddr_storage *ss,
                      socklen_t *len)
{
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    memset(ss, 0, sizeof *ss);
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((unsigned short)atoi(port));
        *len = sizeof *in;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((unsigned short)atoi(port));
        *len = sizeof *in6;
        return 0;
    }
    return -1;
}

static struct smtpc conn;
static struct smtpc_reply results[SMTPC_MAX_RCPTS];

static int cmd_send(int argc, char **argv)
{
    struct smtpc_opts o = {
        .helo = "smtpc-tool.test", .command_timeout = 20, .data_timeout = 60, .connect_timeout = 5};
    struct sockaddr_storage ss;
    socklen_t len;
    struct smtpc_reply why;
    int i = 0;
    while (i + 1 < argc && argv[i][0] == '-') {
        if (strcmp(argv[i], "-v") == 0) {
            o.transcript = show;
            i++;
        } else if (strcmp(argv[i], "-H") == 0) {
            o.helo = argv[i + 1];
            i += 2;
        } else if (strcmp(argv[i], "-t") == 0) {
            o.command_timeout = o.data_timeout = (unsigned)atoi(argv[i + 1]);
            i += 2;
        } else {
            break;
        }
    }
    if (argc - i < 5 || parse_addr(argv[i], argv[i + 1], &ss, &len) < 0) {
        fprintf(stderr, "usage: smtpc-tool send [-v] [-H helo] [-t s] ADDR PORT SENDER FILE "
                        "RCPT... [-- SENDER FILE RCPT...]\n");
        return 2;
    }
    int rc = smtpc_connect(&conn, (struct sockaddr *)&ss, len, &o, &why);
    if (rc != 0) {
        printf("connect %d %s\n", rc, why.text);
        return 1;
    }
    i += 2;
    for (int msg = 1; i < argc; msg++) {
        int end = i;
        while (end < argc && strcmp(argv[end], "--") != 0)
            end++;
        struct smtpc_msg m = {.sender = argv[i],
                              .rcpts = (const char *const *)argv + i + 2,
                              .n_rcpts = (size_t)(end - i - 2)};
        m.fd = open_stored(argv[i + 1], &m.offset);
        rc = smtpc_send(&conn, &m, results);
        for (size_t r = 0; r < m.n_rcpts; r++)
            printf("%d %s %d %s\n", msg, m.rcpts[r], smtpc_reply_result(&results[r]),
                   results[r].text);
        close(m.fd);
        i = end + 1;
    }
    printf("connection %d\n", rc);
    smtpc_quit(&conn);
    return 0;
}

static int cmd_dsn(int argc, char **argv)
{
    static struct dsn_rcpt r[64];
    int delay = argc > 0 && strcmp(argv[0], "-d") == 0;
    argv += delay;
    argc -= delay;
    if (argc < 7 || (argc - 3) % 4 != 0 || (argc - 3) / 4 > 64) {
        fprintf(stderr, "usage: smtpc-tool dsn [-d] HOSTNAME TO FILE (RCPT STATUS REMOTE "
                        "DIAG)...\n");
        return 2;
    }
    time_t now = time(NULL);
    struct dsn d = {.hostname = argv[0],
                    .to = argv[1],
                    .queue_id = "TEST1",
                    .arrival = now - 60,
                    .now = now,
                    .rcpts = r,
                    .n_rcpts = (size_t)(argc - 3) / 4};
    d.msg_fd = open_stored(argv[2], &d.msg_offset);
    for (size_t k = 0; k < d.n_rcpts; k++) {
        char **a = argv + 3 + 4 * k;
        r[k] = (struct dsn_rcpt){.addr = a[0],
                                 .status = a[1],
                                 .action = delay ? DSN_DELAYED : DSN_FAILED,
                                 .remote_mta = strcmp(a[2], "-") ? a[2] : NULL,
                                 .diagnostic = strcmp(a[3], "-") ? a[3] : NULL,
                                 .reason = "no answer from any MX host",
                                 .last_attempt = now,
                                 .retry_until = delay ? now + 86400 : 0};
    }
    if (dsn_write_fd(&d, 1) < 0) {
        perror("dsn_write_fd");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc > 1 && strcmp(argv[1], "send") == 0)
        return cmd_send(argc - 2, argv + 2);
    if (argc > 1 && strcmp(argv[1], "dsn") == 0)
        return cmd_dsn(argc - 2, argv + 2);
    fprintf(stderr, "usage: smtpc-tool send|dsn ...\n");
    return 2;
}
