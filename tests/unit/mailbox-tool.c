/*
 * mailbox-tool: a test driver for lib/mailbox, never installed. It must never change a
 * message except as the command asked.
 *   mailbox-tool MAILDIR               opens a folder as pop3-in does and prints what a session
 *                                      sees: "uidvalidity V uidnext N scanned S count C", then
 *                                      "UID UIDL CRLF-SIZE NAME" lines
 *   mailbox-tool append MAILDIR FLAGS DATE   APPENDs stdin (read in 1000-octet chunks) with
 *                                      maildir flag letters ("-" none) and INTERNALDATE (0: now):
 *                                      prints "UIDVALIDITY UID"
 *   mailbox-tool copy|move SRC DST UID...    prints "UIDVALIDITY SRC:DST..." (and for move
 *                                      "expunge SEQ..." lines)
 *   mailbox-tool flag MAILDIR LETTERS UID...  adds the flag letters to those messages (one
 *                                      batch: one MODSEQ)
 *   mailbox-tool modseq MAILDIR        prints "highestmodseq H", then "UID MODSEQ FLAGS" lines
 *   mailbox-tool expunge MAILDIR       EXPUNGE: prints "expunge SEQ" lines
 *   mailbox-tool session MAILDIR       an IMAP-like session on stdin lines: "refresh", "store
 *                                      UID +L|-L", "expunge", "list", "modseq"; each answered by
 * lines and
 *                                      "." (stdout flushed), so a test can interleave POP3.
 * YUBIN_TEST_STORE_KILL and YUBIN_TEST_INDEX_KILL (lib/mailbox) kill it at a chosen step.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "mailbox.h"

static int fail(const char *what)
{
    fprintf(stderr, "mailbox-tool: %s: %s\n", what, strerror(errno));
    return 1;
}

static void print_list(struct mailbox *mb)
{
    char uidl[MAILBOX_UIDL_MAX + 1];
    printf("uidvalidity %lu uidnext %lu scanned %d count %zu\n", (unsigned long)mb->uidvalidity,
           (unsigned long)mb->uidnext, mb->scanned, mb->count);
    for (size_t i = 0; i < mb->count; i++) {
        if (mailbox_uidl(mb, &mb->msgs[i], uidl) != 0)
            strcpy(uidl, "?");
        printf("%lu %s %llu %s\n", (unsigned long)mb->msgs[i].uid, uidl,
               (unsigned long long)mb->msgs[i].crlf_size, mailbox_name(mb, &mb->msgs[i]));
    }
}

static void print_modseqs(struct mailbox *mb)
{
    char flags[64];
    printf("highestmodseq %llu\n", (unsigned long long)mb->highestmodseq);
    for (size_t i = 0; i < mb->count; i++) {
        mailbox_flags(&mb->msgs[i], flags, sizeof flags);
        printf("%lu %llu %s\n", (unsigned long)mb->msgs[i].uid,
               (unsigned long long)mailbox_modseq(mb, &mb->msgs[i]), flags);
    }
}

static void print_changes(const struct mailbox_changes *ch)
{
    for (size_t i = 0; i < ch->n_expunged; i++)
        printf("expunge %lu uid %lu\n", (unsigned long)ch->expunged[i],
               (unsigned long)ch->expunged_uids[i]);
    for (size_t i = 0; i < ch->n_flags; i++)
        printf("flags %lu\n", (unsigned long)ch->flags[i]);
    printf("exists %zu added %zu\n", ch->exists, ch->added);
}

static int append(const char *maildir, const char *flags, const char *date)
{
    struct mailbox_append a;
    char buf[1000];
    uint32_t uv, uid;
    size_t n;
    if (mailbox_append_begin(&a, maildir, strcmp(flags, "-") == 0 ? "" : flags,
                             (time_t)strtoll(date, NULL, 10)) != 0)
        return fail("append");
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0)
        if (mailbox_append_write(&a, buf, n) != 0) {
            mailbox_append_abort(&a);
            return fail("append");
        }
    if (mailbox_append_commit(&a, &uv, &uid) != 0)
        return fail("append");
    printf("%lu %lu\n", (unsigned long)uv, (unsigned long)uid);
    return 0;
}

static uint32_t *uid_args(int argc, char **argv, size_t *n)
{
    uint32_t *uids = calloc((size_t)argc + 1, sizeof *uids);
    for (int i = 0; uids != NULL && i < argc; i++)
        uids[i] = (uint32_t)strtoul(argv[i], NULL, 10);
    *n = (size_t)argc;
    return uids;
}

static int copy(int move, const char *src, const char *dst, int argc, char **argv)
{
    struct mailbox mb;
    struct mailbox_copyuid cu;
    struct mailbox_changes ch;
    size_t n;
    uint32_t *uids = uid_args(argc, argv, &n);
    if (uids == NULL || mailbox_open(&mb, src) != 0)
        return fail(src);
    int rc =
        move ? mailbox_move(&mb, uids, n, dst, &cu, &ch) : mailbox_copy(&mb, uids, n, dst, &cu);
    free(uids);
    if (rc != 0) {
        mailbox_close(&mb);
        return rc > 0 ? (fprintf(stderr, "mailbox-tool: expunged meanwhile\n"), 3) : fail(dst);
    }
    printf("%lu", (unsigned long)cu.uidvalidity);
    for (size_t i = 0; i < cu.count; i++)
        printf(" %lu:%lu", (unsigned long)cu.src[i], (unsigned long)cu.dst[i]);
    printf("\n");
    if (move) {
        print_changes(&ch);
        mailbox_changes_free(&ch);
    }
    mailbox_copyuid_free(&cu);
    mailbox_close(&mb);
    return 0;
}

static int flag(const char *maildir, const char *letters, int argc, char **argv)
{
    struct mailbox mb;
    if (mailbox_open(&mb, maildir) != 0 || mailbox_change_begin(&mb) != 0)
        return fail(maildir);
    for (int i = 0; i < argc; i++) {
        struct mailbox_msg *m = mailbox_by_uid(&mb, (uint32_t)strtoul(argv[i], NULL, 10));
        if (m == NULL || mailbox_set_flags(&mb, m, letters, "") != 0)
            return fail(argv[i]);
    }
    int rc = mailbox_change_end(&mb) != 0 || mailbox_sync(&mb) != 0;
    mailbox_close(&mb);
    return rc != 0 ? fail("sync") : 0;
}

static int expunge(struct mailbox *mb)
{
    struct mailbox_changes ch;
    if (mailbox_expunge_deleted(mb, NULL, 0, &ch) != 0)
        return fail("expunge");
    print_changes(&ch);
    mailbox_changes_free(&ch);
    return 0;
}

/* One command of a session. */
static int session_line(struct mailbox *mb, char *line)
{
    struct mailbox_changes ch;
    char sign, letter;
    unsigned long uid;
    line[strcspn(line, "\n")] = '\0';
    if (strcmp(line, "refresh") == 0) {
        if (mailbox_refresh(mb, 0, &ch) != 0)
            return fail("refresh");
        print_changes(&ch);
        mailbox_changes_free(&ch);
    } else if (sscanf(line, "store %lu %c%c", &uid, &sign, &letter) == 3) {
        struct mailbox_msg *m = mailbox_by_uid(mb, (uint32_t)uid);
        char l[2] = {letter, '\0'};
        int rc =
            m == NULL ? 1 : mailbox_set_flags(mb, m, sign == '+' ? l : "", sign == '-' ? l : "");
        printf("store %d\n", rc);
    } else if (strcmp(line, "expunge") == 0) {
        return expunge(mb);
    } else if (strcmp(line, "list") == 0) {
        print_list(mb);
    } else if (strcmp(line, "modseq") == 0) {
        print_modseqs(mb);
    } else {
        printf("unknown\n");
    }
    return 0;
}

static int session(const char *maildir)
{
    struct mailbox mb;
    char line[256];
    if (mailbox_open(&mb, maildir) != 0)
        return fail(maildir);
    int rc = 0;
    while (rc == 0 && fgets(line, sizeof line, stdin) != NULL) {
        rc = session_line(&mb, line);
        printf(".\n");
        fflush(stdout);
    }
    mailbox_close(&mb);
    return rc;
}

int main(int argc, char **argv)
{
    struct mailbox mb;
    if (sodium_init() < 0 || argc < 2)
        return fprintf(stderr, "usage: mailbox-tool [COMMAND] MAILDIR ...\n"), 2;
    if (argc == 5 && strcmp(argv[1], "append") == 0)
        return append(argv[2], argv[3], argv[4]);
    if (argc >= 4 && (strcmp(argv[1], "copy") == 0 || strcmp(argv[1], "move") == 0))
        return copy(argv[1][0] == 'm', argv[2], argv[3], argc - 4, argv + 4);
    if (argc >= 4 && strcmp(argv[1], "flag") == 0)
        return flag(argv[2], argv[3], argc - 4, argv + 4);
    if (argc == 3 && strcmp(argv[1], "session") == 0)
        return session(argv[2]);
    if (argc == 3 && (strcmp(argv[1], "expunge") == 0 || strcmp(argv[1], "modseq") == 0)) {
        if (mailbox_open(&mb, argv[2]) != 0)
            return fail(argv[2]);
        int rc = argv[1][0] == 'e' ? expunge(&mb) : (print_modseqs(&mb), 0);
        mailbox_close(&mb);
        return rc;
    }
    if (argc != 2)
        return fprintf(stderr, "usage: mailbox-tool [COMMAND] MAILDIR ...\n"), 2;
    if (mailbox_open(&mb, argv[1]) != 0)
        return fail(argv[1]);
    print_list(&mb);
    mailbox_close(&mb);
    return fflush(stdout) == 0 ? 0 : 1;
}
