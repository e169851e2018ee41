/*
 * tests/fuzz/fuzz.h: what every yubin fuzz harness shares. A harness defines the libFuzzer
 * entry points; it is built twice: with clang -fsanitize=fuzzer by tests/fuzz/run-fuzzers,
 * and with the normal compiler and replay.c (a main() that feeds saved inputs) by `make
 * check`. site.c makes a throw-away yubin site (conf, users, aliases, state) for the session
 * harnesses. Nothing here may touch a real installation or the network.
 */
#ifndef YUBIN_FUZZ_H
#define YUBIN_FUZZ_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_site {
    char dir[256];     /* the site: yubin.conf, users, aliases, state/ */
    char conf[300];    /* dir/yubin.conf */
    char state[300];   /* dir/state */
    char scratch[300]; /* dir/scratch: free for the harness (temp files) */
};

/* Makes a site in /dev/shm (or $TMPDIR): hostname mx.example.test, local domains
 * example.test and other.test, users demo@ and info@example.test (password "demo", cheap
 * argon2id), a few aliases, short timeouts, no auth delay, and extra_conf lines appended.
 * Owned by the `yubin` account when run as root. Removed at exit. Aborts on failure. */
void fuzz_site_make(struct fuzz_site *fs, const char *extra_conf);
/* Drops root for the `yubin` account (no-op when not root). Aborts on failure. */
void fuzz_drop_privs(void);
/* Removes everything under dir (not dir itself). Aborts on failure. */
void fuzz_clear_dir(const char *dir);
/* The input after its first octet (the harness's selector), as a C string (cut at a NUL), in
 * malloc'd memory; NULL when size is 0 or there is no memory. */
char *fuzz_string_after_first(const uint8_t *data, size_t size);
/* Writes len bytes to path (creating it, mode 0600). Aborts on failure. */
void fuzz_write_file(const char *path, const void *data, size_t len);
/* Writes text as message n of Maildir md in sub ("new" or "cur"), its name carrying S= and
 * W= (the size with CRLF) and flags (":2,S" or ""). Aborts on failure. */
void fuzz_put_message(const char *md, const char *sub, int n, const char *text, const char *flags);
/* A bit mask of the open descriptors 0..63 (to catch descriptor leaks). */
uint64_t fuzz_open_fds(void);
/* Aborts with a message when the open descriptors differ from before. */
void fuzz_check_fds(uint64_t before, const char *where);
/* A socketpair: *client gets data (as much as the socket buffer holds) then its write side is
 * shut down; *server is the other end, the session's input. */
void fuzz_client_stream(const uint8_t *data, size_t size, int *client, int *server);
/* A listening TCP socket on 127.0.0.1 (an ephemeral port). Aborts on failure. */
int fuzz_listen_loopback(void);
/* One TCP connection through listener: *client gets data (as much as the socket buffers
 * hold), then its write side is shut down; *server is the accepted end. */
void fuzz_tcp_stream(int listener, const uint8_t *data, size_t size, int *client, int *server);
/* Closes a TCP socket with a reset (no TIME_WAIT left behind by thousands of runs). */
void fuzz_close_abort(int fd);
/* Writes a copy of the yubin.conf at from to to, with extra lines appended. */
void fuzz_copy_conf(const char *to, const char *from, const char *extra);
/* Keeps copies of fd 0 and 1 (opening /dev/null for a closed one) for the session harnesses,
 * which put the connection there and put these back after each run. */
void fuzz_save_stdio(int *in, int *out);
/* The start-up of a session harness (pop3-in, imap4-in): a site with extra_conf, its yubin.conf
 * loaded into conf, SIGPIPE ignored, umask 077, stdio kept (fuzz_save_stdio), the log opened
 * once for every run, root dropped. Aborts on failure. */
struct yubin_conf;
void fuzz_handler_site(struct fuzz_site *fs, struct yubin_conf *conf, const char *extra_conf,
                       int *saved_in, int *saved_out);
/* Aborts unless what fd holds starts with the 4 octets of greeting and ends in CRLF (a
 * session's replies; what names the protocol in the message). */
void fuzz_check_framing(int fd, const char *greeting, const char *what);
/* An anonymous file for output (memfd). */
int fuzz_memfd(const char *name);
/* With FUZZ_SHOW set in the environment, copies what fd holds (a session's replies) to
 * stderr, to see what an input does. */
void fuzz_show_output(int fd);
/* Aborts with a message and the offending bytes. */
void fuzz_fail(const char *what, const void *data, size_t len) __attribute__((noreturn));
#endif
