/*
 * bench/mime-cost.d/yubin.c: one message parsed with lib/mime (BODYSTRUCTURE and ENVELOPE
 * rendered into a buffer), then the process's peak RSS printed: what a per-connection
 * imap4-in would pay for its MIME parser. Built by bench/mime-cost; never installed.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "hwm.h"

#include "mime.h"

int main(int argc, char **argv)
{
    static char out[1 << 20];
    struct mime_tree t;
    struct mime_buf b = {out, 0, sizeof out, 0};
    int fd = argc > 1 ? open(argv[1], O_RDONLY) : -1;
    if (fd < 0 || mime_parse_fd(&t, fd) != 0 ||
        mime_bodystructure(&t, 0, 1, mime_buf_write, &b) != 0 ||
        mime_envelope(&t, 0, mime_buf_write, &b) != 0)
        return 1;
    printf("parts %zu output %zu\n", t.n, b.len);
    mime_free(&t);
    hwm();
    return 0;
}
