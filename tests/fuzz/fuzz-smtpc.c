/*
 * tests/fuzz/fuzz-smtpc.c: lib/smtpc's reply parsing on any server byte stream. The reply
 * parser is static in lib/smtpc.c, so it is reached the way queue-run reaches it: the input
 * (after its first octet) is what "the server" sends on a socketpair, then EOF; smtpc_start
 * reads the greeting and says EHLO, smtpc_send sends one message to three recipients (one of
 * them bad), smtpc_quit ends. The first octet picks a 7-bit or 8-bit message, whether a
 * second transaction is tried, and whether smtpc_send_all sends it, one or two recipients a
 * transaction (those refused as too many again in the next). Checks: every result has code
 * 0 or 200..599, a NUL-terminated enhanced code and text without control octets; the
 * transcript lines are readable; no descriptor is left open. Timeouts are 1 s; the stream
 * always ends in EOF.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "smtpc.h"

static struct smtpc conn;
static unsigned long transcript_sum;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static void transcript(void *arg, char dir, const char *line, size_t len)
{
    for (size_t i = 0; i < len; i++)
        transcript_sum += (unsigned char)line[i];
}

static void check_reply(const struct smtpc_reply *r, const char *what)
{
    if (!(r->code == 0 || (r->code >= 200 && r->code <= 599)) ||
        strnlen(r->enhanced, sizeof r->enhanced) == sizeof r->enhanced ||
        strnlen(r->text, sizeof r->text) == sizeof r->text)
        fuzz_fail(what, r->text, strnlen(r->text, sizeof r->text));
    for (const char *p = r->text; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            fuzz_fail("control or 8-bit octet in a reply text", r->text, strlen(r->text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int server, client, msgfd = fuzz_memfd("smtpc-msg");
    uint64_t fds = fuzz_open_fds();
    unsigned mode = size > 0 ? data[0] : 0;
    const char *text = mode & 1 ? "Return-Path: <a@b.test>\nSubject: caf\xc3\xa9\n\n.body\n"
                                : "Return-Path: <a@b.test>\nSubject: x\n\n.body\r\nend";
    size_t skip = strlen("Return-Path: <a@b.test>\n");
    if (write(msgfd, text, strlen(text)) != (ssize_t)strlen(text))
        fuzz_fail("write", NULL, 0);
    /* Here "client" is the far end (the fuzzed server's bytes); smtpc gets the other end. */
    fuzz_client_stream(size > 0 ? data + 1 : data, size > 0 ? size - 1 : 0, &server, &client);
    struct smtpc_opts o = {.helo = "mx.example.test",
                           .connect_timeout = 1,
                           .command_timeout = 1,
                           .data_timeout = 1,
                           .transcript = transcript};
    struct smtpc_reply why, results[3];
    memset(&why, 0, sizeof why);
    if (smtpc_start(&conn, client, "fuzz:25", &o, &why) == 0) {
        const char *rcpts[] = {"one@example.test", "bad<@example.test", "Two@Example.Test"};
        struct smtpc_msg m = {.sender = mode & 2 ? "" : "a@b.test",
                              .rcpts = rcpts,
                              .n_rcpts = 3,
                              .fd = msgfd,
                              .offset = (off_t)skip};
        for (int round = 0; round < (mode & 4 ? 2 : 1); round++) {
            memset(results, 0, sizeof results);
            int rc = mode & 8 ? smtpc_send_all(&conn, &m, results, 1 + (mode >> 4 & 1))
                              : smtpc_send(&conn, &m, results);
            for (int i = 0; i < 3; i++)
                check_reply(&results[i], "bad result");
            if (rc != 0)
                break;
        }
        if (conn.fd >= 0)
            smtpc_quit(&conn);
    } else {
        check_reply(&why, "bad reason");
    }
    smtpc_close(&conn);
    close(server);
    fuzz_check_fds(fds, "smtpc");
    close(msgfd);
    return 0;
}
