/*
 * tests/fuzz/fuzz-pop3-in.c: a whole pop3-in session per input: the input is the client's
 * byte stream, sent on a socketpair and then closed, into the real session code of
 * bin/pop3-in.c. Before every input the mailbox of demo@example.test (password "demo") is
 * made afresh with three messages (one already in cur/), so that LIST, RETR, TOP, DELE and
 * QUIT have something to work on.
 *
 * bin/pop3-in.c is #included here with its main() renamed; its session lives in a static
 * inside main(), which cannot be reset between runs, so this file repeats main()'s few lines:
 * the same calls (start() with "-C yubin.conf", client_address(), serve()) on a zeroed session
 * of its own, with the connection on fd 0 and fd 1 (an anonymous file takes the replies).
 * Nothing in bin/pop3-in.c is changed. Root is dropped once at start-up (start()'s
 * privs_drop is then a no-op).
 *
 * Checks beyond the sanitizers: the first line is "+OK ", the output ends in CRLF, no
 * descriptor is left open after the session.
 */
#define main pop3_in_main
int pop3_in_main(int argc, char **argv);
#include "../../bin/pop3-in.c"
#undef main

#include "fuzz.h"

static struct fuzz_site site;
static struct yubin_conf base_conf;
static struct session pop;
static int saved_in = -1, saved_out = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_handler_site(&site, &base_conf, "max_errors 20\nmax_auth_failures 5\n", &saved_in,
                      &saved_out);
    return 0;
}

static void make_dir(const char *dir, const char *sub)
{
    char path[PATH_MAX];
    str_format(path, sizeof path, "%s%s", dir, sub);
    if (mkdir(path, 0700) != 0)
        fuzz_fail("mkdir", path, strlen(path));
}

static void make_mailbox(const char *state)
{
    char md[PATH_MAX];
    fuzz_clear_dir(state);
    make_dir(state, "/mail");
    make_dir(state, "/mail/example.test");
    str_format(md, sizeof md, "%s/mail/example.test/demo", state);
    make_dir(md, "");
    make_dir(md, "/tmp");
    make_dir(md, "/new");
    make_dir(md, "/cur");
    fuzz_put_message(md, "new", 1, "From: a@b.test\nSubject: one\n\nbody\n.dot line\n", "");
    fuzz_put_message(md, "new", 2, "Subject: two\n\n", "");
    fuzz_put_message(md, "cur", 3,
                     "From: c@d.test\nSubject: three\n\nline 1\nline 2\n..\n.\nlast line no LF",
                     ":2,S");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct session *s = &pop;
    int client, server, out = fuzz_memfd("pop3-replies");
    uint64_t fds = fuzz_open_fds();
    make_mailbox(base_conf.state_dir);
    memset(s, 0, sizeof *s);
    s->state = AUTHORIZATION;
    s->lock_fd = -1;
    s->mb.cur_fd = -1;
    fuzz_client_stream(data, size, &client, &server);
    if (dup2(server, 0) != 0 || dup2(out, 1) != 1)
        fuzz_fail("dup2", NULL, 0);
    close(server);
    netio_init(&s->io, 0, 1, 300);
    char *argv[] = {"pop3-in", "-C", site.conf, NULL};
    optind = 0; /* glibc: start getopt afresh */
    if (start(s, 3, argv) != 0)
        fuzz_fail("pop3-in does not start", NULL, 0);
    netio_set_timeout(&s->io, s->conf.command_timeout);
    client_address(s);
    serve(s);
    mailbox_close(&s->mb);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (dup2(saved_in, 0) != 0 || dup2(saved_out, 1) != 1)
        fuzz_fail("dup2", NULL, 0);
    close(client);
    fuzz_check_fds(fds, "pop3-in session");
    fuzz_show_output(out);
    fuzz_check_framing(out, "+OK ", "pop3 output does not start with +OK or end in CRLF");
    close(out);
    return 0;
}
