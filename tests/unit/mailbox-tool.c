/*
 * mailbox-tool: a test driver that opens a folder with lib/mailbox as pop3-in does (index
 * lock, new/ -> cur/, reconcile, index rewrite) and prints what a session sees. Never
 * installed; it must never change a message. Usage: mailbox-tool MAILDIR
 * Output: "uidvalidity V uidnext N scanned S count C", then "UID UIDL CRLF-SIZE NAME" lines.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "mailbox.h"

int main(int argc, char **argv)
{
    struct mailbox mb;
    char uidl[MAILBOX_UIDL_MAX + 1];
    if (argc != 2 || sodium_init() < 0) {
        fprintf(stderr, "usage: mailbox-tool MAILDIR\n");
        return 2;
    }
    if (mailbox_open(&mb, argv[1]) != 0) {
        fprintf(stderr, "mailbox-tool: %s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    printf("uidvalidity %lu uidnext %lu scanned %d count %zu\n", (unsigned long)mb.uidvalidity,
           (unsigned long)mb.uidnext, mb.scanned, mb.count);
    for (size_t i = 0; i < mb.count; i++) {
        mailbox_uidl(&mb.msgs[i], uidl);
        printf("%lu %s %llu %s\n", (unsigned long)mb.msgs[i].uid, uidl,
               (unsigned long long)mb.msgs[i].crlf_size, mb.msgs[i].name);
    }
    mailbox_close(&mb);
    return fflush(stdout) == 0 ? 0 : 1;
}
