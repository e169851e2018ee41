/*
 * tests/fuzz/fuzz-imap4-in.c: a whole imap4-in session per input: the input is the client's
 * byte stream, sent on a socketpair and then closed, into the real session code of
 * bin/imap4-in.c (lib/imapsess, lib/imapauth, lib/imapsel and the commands in its table).
 * Before every input the Maildir of demo@example.test is made afresh with three messages
 * (one \Seen, one \Deleted) and its special folders.
 *
 * The fuzz site has no password service, so LOGIN gets NO [UNAVAILABLE]; an input whose first
 * octet is 'A' starts logged in as demo@example.test instead (what a successful login leaves:
 * state AUTH, the user and his Maildir), so that SELECT, EXPUNGE, IDLE and the commands of
 * lib/imapcmd-*.c are reached; the rest of it is the stream.
 *
 * bin/imap4-in.c is #included here with its main() renamed; this file repeats main()'s few
 * lines (start() with "-C yubin.conf", client_address(), serve()) on a session of its own,
 * with the connection on fd 0 and fd 1 (an anonymous file takes the replies). Nothing in
 * bin/imap4-in.c is changed. Root is dropped once at start-up.
 *
 * Checks beyond the sanitizers: the first line is "* OK ", the output ends in CRLF, no
 * descriptor is left open after the session.
 */
#define main imap4_in_main
int imap4_in_main(int argc, char **argv);
#include "../../bin/imap4-in.c"
#undef main

#include <sys/stat.h>

#include "fuzz.h"
#include "maildir.h"

static struct fuzz_site site;
static struct yubin_conf base_conf;
static struct imapsess sess;
static int saved_in = -1, saved_out = -1;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_handler_site(&site, &base_conf, "max_errors 20\nmax_auth_failures 5\nimap_timeout 5\n",
                      &saved_in, &saved_out);
    return 0;
}

/* The Maildir of demo@example.test, afresh, into md. */
static void make_mailbox(const char *state, char *md, size_t size)
{
    fuzz_clear_dir(state);
    if (maildir_path(md, size, state, "demo", "example.test") != 0 || maildir_ensure(md) != 0 ||
        mailbox_ensure_folders(md) != 0)
        fuzz_fail("cannot make the Maildir", md, strlen(md));
    fuzz_put_message(md, "new", 1, "From: a@b.test\nSubject: one\n\nbody\n", "");
    fuzz_put_message(md, "cur", 2, "Subject: two\n\n", ":2,S");
    fuzz_put_message(md, "cur", 3, "From: c@d.test\nSubject: three\n\nline 1\nlast line no LF",
                     ":2,T");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct imapsess *s = &sess;
    char md[PATH_MAX];
    int client, server, out = fuzz_memfd("imap-replies");
    int logged_in = size > 0 && data[0] == 'A';
    uint64_t fds = fuzz_open_fds();
    make_mailbox(base_conf.state_dir, md, sizeof md);
    fuzz_client_stream(data + logged_in, size - (size_t)logged_in, &client, &server);
    if (dup2(server, 0) != 0 || dup2(out, 1) != 1)
        fuzz_fail("dup2", NULL, 0);
    close(server);
    imapsess_init(s, 0, 1);
    char *argv[] = {"imap4-in", "-C", site.conf, NULL};
    optind = 0; /* glibc: start getopt afresh */
    if (start(s, 3, argv) != 0)
        fuzz_fail("imap4-in does not start", NULL, 0);
    netio_set_timeout(&s->io, s->conf.imap_timeout);
    client_address(s);
    if (logged_in) {
        s->state = IMAP_AUTH;
        str_copy(s->user, sizeof s->user, "demo@example.test");
        str_copy(s->root, sizeof s->root, md);
    }
    serve(s);
    imapsess_free(s);
    if (dup2(saved_in, 0) != 0 || dup2(saved_out, 1) != 1)
        fuzz_fail("dup2", NULL, 0);
    close(client);
    fuzz_check_fds(fds, "imap4-in session");
    fuzz_show_output(out);
    fuzz_check_framing(out, "* OK", "imap output does not start with * OK or end in CRLF");
    close(out);
    return 0;
}
