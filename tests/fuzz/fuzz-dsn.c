/*
 * tests/fuzz/fuzz-dsn.c: lib/dsn on any remote reply, host name, address and original header
 * section. The input is cut at NUL octets into: the sender (To:), the recipient, the
 * diagnostic (a remote reply), the remote MTA, the status, the reason, and the rest is the
 * stored original message (its header section goes into part 3). Checks the promises of
 * lib/dsn.h on the report: no CR, only 7-bit octets, no line of 998 octets or more, and an
 * error (EINVAL) only for an empty sender.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dsn.h"
#include "fuzz.h"

struct sink {
    size_t line_len, total;
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    return 0;
}

static int sink_write(void *arg, const void *data, size_t len)
{
    struct sink *k = arg;
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        if (p[i] == '\r' || p[i] >= 0x80 || (p[i] < 0x20 && p[i] != '\n' && p[i] != '\t'))
            fuzz_fail("CR, 8-bit or control octet in a DSN", p + i, len - i);
        k->line_len = p[i] == '\n' ? 0 : k->line_len + 1;
        if (k->line_len >= 998)
            fuzz_fail("DSN line of 998 octets or more", NULL, 0);
    }
    k->total += len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), *field[6];
    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *p = buf, *end = buf + size;
    for (int i = 0; i < 6; i++) {
        field[i] = p;
        char *nul = memchr(p, '\0', (size_t)(end - p) + 1);
        p = nul < end ? nul + 1 : end;
    }
    int fd = fuzz_memfd("dsn-original");
    size_t rest = (size_t)(end - p);
    if (rest > 0 && write(fd, p, rest) != (ssize_t)rest)
        fuzz_fail("write", NULL, 0);
    struct dsn_rcpt r[2] = {
        {.addr = field[1][0] ? field[1] : "x@example.test",
         .orig = field[1][0] ? "list@example.test" : NULL,
         .action = (size & 1) ? DSN_DELAYED : DSN_FAILED,
         .status = field[4],
         .remote_mta = field[3][0] ? field[3] : NULL,
         .diagnostic = field[2][0] ? field[2] : NULL,
         .reply_code = 550,
         .reason = field[5],
         .last_attempt = 1700000000,
         .retry_until = 1700400000},
        {.addr = "y@example.test", .action = DSN_FAILED, .reason = field[2]},
    };
    struct dsn d = {.hostname = "mx.example.test",
                    .to = field[0],
                    .queue_id = "0123456789abcdef",
                    .arrival = 1699990000,
                    .now = 1700000001,
                    .rcpts = r,
                    .n_rcpts = 2,
                    .msg_fd = rest > 0 ? fd : -1,
                    .msg_offset = 0};
    struct sink k = {0, 0};
    errno = 0;
    int rc = dsn_write(&d, sink_write, &k);
    if (rc != 0 && !(errno == EINVAL && field[0][0] == '\0'))
        fuzz_fail("dsn_write failed", buf, size);
    close(fd);
    free(buf);
    return 0;
}
