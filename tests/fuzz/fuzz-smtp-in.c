/*
 * tests/fuzz/fuzz-smtp-in.c: a whole smtp-in session per input. The input's first octet
 * picks how smtp-in is run: bit 0 set, yubin.conf has the client (127.0.0.1) inside
 * relay_networks, so remote recipients are queued; bit 1 set, it runs with -s (submission).
 * The rest is the client's byte stream, sent on a real loopback TCP connection and then
 * closed (the peer address is what relay_networks look at).
 *
 * bin/smtp-in.c is #included here with its main() renamed to smtp_in_main, and that real
 * main() is called for every input, with the connection on fd 0 and an anonymous file taking
 * the replies on fd 1, as inetd would run it. Nothing in bin/smtp-in.c is changed or copied;
 * the harness only zeroes its static session and getopt's state between runs, and drops root
 * once at start-up (smtp-in's own privs_drop is then a no-op). The state directory is emptied
 * before every input.
 *
 * Checks beyond the sanitizers: every reply line is "DDD " or "DDD-" + text + CRLF, at most
 * 512 octets, and the first one is 220 (or 421 when -s is not known); no descriptor is left
 * open. A stream that opens with a PROXY header (v1 text or the v2 signature) from this peer,
 * which is not in proxy_networks, may instead get no reply at all: smtp-in closes at once. It must
 * never reach the network: the queue is only written, never run.
 */
#define main smtp_in_main
int smtp_in_main(int argc, char **argv);
#include "../../bin/smtp-in.c"
#undef main

#include <fcntl.h>
#include <sys/stat.h>

#include "fuzz.h"

static struct fuzz_site site;
static char relay_conf[400], plain_conf[400], state_dir[400];
static int listener = -1, saved_in = -1, saved_out = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct yubin_conf c;
    char err[600];
    signal(SIGPIPE, SIG_IGN);
    fuzz_site_make(&site, "max_errors 20\n");
    if (conf_load(&c, site.conf, err, sizeof err) != 0)
        fuzz_fail(err, NULL, 0);
    str_copy(state_dir, sizeof state_dir, c.state_dir);
    str_copy(plain_conf, sizeof plain_conf, site.conf);
    str_format(relay_conf, sizeof relay_conf, "%s/relay.conf", site.dir);
    fuzz_copy_conf(relay_conf, site.conf, "relay_networks 127.0.0.0/8 ::1/128\n");
    listener = fuzz_listen_loopback();
    fuzz_save_stdio(&saved_in, &saved_out);
    log_open("fuzz", NULL); /* the log socket stays open from run to run, as in the program */
    fuzz_drop_privs();
    return 0;
}

/* The replies: "DDD[ -]text\r\n" lines, the first a 220. */
static void check_replies(int fd, int submission, int proxy_header)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        fuzz_fail("fstat", NULL, 0);
    size_t len = (size_t)st.st_size;
    char *out = malloc(len + 1);
    if (out == NULL || pread(fd, out, len, 0) != (ssize_t)len)
        fuzz_fail("cannot read the replies", NULL, 0);
    if (len == 0 && proxy_header) {
        free(out);
        return;
    }
    if (len < 5 || (memcmp(out, "220 ", 4) != 0 && !(submission && !memcmp(out, "421 ", 4))))
        fuzz_fail("no 220 greeting", out, len);
    for (size_t pos = 0; pos < len;) {
        const char *lf = memchr(out + pos, '\n', len - pos);
        size_t n = lf ? (size_t)(lf - (out + pos)) + 1 : len - pos;
        const char *l = out + pos;
        if (lf == NULL || n < 6 || n > 512 || l[n - 2] != '\r' || memchr(l, '\r', n - 2) != NULL ||
            memchr(l, '\0', n) != NULL || !(l[0] >= '2' && l[0] <= '5') ||
            !(l[1] >= '0' && l[1] <= '9') || !(l[2] >= '0' && l[2] <= '9') ||
            (l[3] != ' ' && l[3] != '-'))
            fuzz_fail("bad reply line", l, n);
        pos += n;
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned mode = size > 0 ? data[0] : 0;
    int client, server, out = fuzz_memfd("smtp-replies");
    uint64_t fds = fuzz_open_fds();
    char *argv[] = {"smtp-in", "-C", mode & 1 ? relay_conf : plain_conf, "-s", NULL};
    int argc = mode & 2 ? 4 : 3;
    fuzz_clear_dir(state_dir);
    memset(&session, 0, sizeof session);
    optind = 0; /* glibc: start getopt afresh */
    fuzz_tcp_stream(listener, size > 0 ? data + 1 : data, size > 0 ? size - 1 : 0, &client,
                    &server);
    if (dup2(server, 0) != 0 || dup2(out, 1) != 1)
        fuzz_fail("dup2", NULL, 0);
    close(server);
    smtp_in_main(argc, argv);
    if (dup2(saved_in, 0) != 0 || dup2(saved_out, 1) != 1)
        fuzz_fail("dup2", NULL, 0);
    fuzz_close_abort(client);
    fuzz_check_fds(fds, "smtp-in session");
    fuzz_show_output(out);
    check_replies(out, mode & 2, size > 1 && proxy_looks_like((const char *)data + 1, size - 1));
    close(out);
    return 0;
}
