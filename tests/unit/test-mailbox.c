/*
 * test-mailbox: lib/mailbox on a scratch Maildir: the index round trip, reconciling after
 * files added and removed behind its back, a deleted or damaged index rebuilt with a new
 * UIDVALIDITY, the mtime shortcut, flags by rename, two sessions interleaved (a rename or an
 * expunge by one is found by the other), and the Maildir++ folders with SPECIAL-USE.
 */
#include "config.h"

#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "mailbox.h"
#include "maildir.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[] = "/tmp/test-mailbox-XXXXXX";
static char md[300];

static void index_path(char *path, size_t size)
{
    snprintf(path, size, "%s/" MAILBOX_INDEX_NAME, md);
}

static void set_dirs(const struct timespec t[2])
{
    char path[600];
    snprintf(path, sizeof path, "%s/cur", md);
    utimensat(AT_FDCWD, path, t, 0);
    snprintf(path, sizeof path, "%s/new", md);
    utimensat(AT_FDCWD, path, t, 0);
}

/* Makes the directories' mtimes old enough to be trusted by the next write of the index. */
static void age_dirs(void)
{
    struct timespec old[2] = {{time(NULL) - 10, 123456789}, {time(NULL) - 10, 123456789}};
    set_dirs(old);
}

static void test_round_trip(void)
{
    struct mailbox mb;
    char uidl[MAILBOX_UIDL_MAX + 1];
    tmpdir_put(md, "new", "1700000002.b.host,S=5,W=6", "two\n\n");
    tmpdir_put(md, "new", "1700000001.a.host,S=4,W=5", "one\n");
    CHECK(mailbox_open(&mb, md) == 0 && mb.count == 2 && mb.created && mb.scanned,
          "first open: two messages, index created");
    uint32_t v = mb.uidvalidity;
    CHECK(mb.msgs[0].uid == 1 && mb.msgs[1].uid == 2 && mb.uidnext == 3, "UIDs 1, 2");
    mailbox_uidl(&mb, &mb.msgs[0], uidl);
    CHECK_STR(uidl, "1700000001.a.host", "UIDL is the unique part (as before the index)");
    CHECK(mb.msgs[1].crlf_size == 6 && mb.total_crlf == 11, "sizes from the names");
    CHECK(tmpdir_exists(md, "cur", "1700000001.a.host,S=4,W=5:2,"), "moved to cur/ with :2,");
    mailbox_close(&mb);
    CHECK(mailbox_open(&mb, md) == 0 && mb.count == 2 && !mb.created && mb.uidvalidity == v &&
              mb.msgs[1].uid == 2,
          "reopened: same UIDVALIDITY and UIDs");
    mailbox_close(&mb);
    age_dirs();
    CHECK(mailbox_open(&mb, md) == 0 && mb.scanned, "old directories: scanned once more");
    mailbox_close(&mb);
    CHECK(mailbox_open(&mb, md) == 0 && !mb.scanned && mb.count == 2 && mb.msgs[1].uid == 2 &&
              mb.msgs[1].crlf_size == 6,
          "unchanged since: listed from the index alone");
    mailbox_close(&mb);
}

static void test_behind_back(void)
{
    struct mailbox mb;
    char path[600];
    tmpdir_put(md, "new", "1700000003.c.host,S=4,W=5", "new\n");
    tmpdir_put(md, "cur", "1700000000.z.host,S=4,W=5:2,S",
               "old\n"); /* sorts first, but arrives late */
    snprintf(path, sizeof path, "%s/cur/1700000001.a.host,S=4,W=5:2,", md);
    unlink(path);
    CHECK(mailbox_open(&mb, md) == 0 && mb.count == 3, "one removed, two added behind its back");
    CHECK(mb.msgs[0].uid == 2 && mb.msgs[1].uid == 3 && mb.msgs[2].uid == 4,
          "vanished one dropped, UIDs kept");
    CHECK(strncmp(mailbox_name(&mb, &mb.msgs[1]), "1700000000.z", 12) == 0 &&
              strncmp(mailbox_name(&mb, &mb.msgs[2]), "1700000003.c", 12) == 0,
          "new files numbered in base-name order");
    CHECK(mailbox_by_uid(&mb, 3) == &mb.msgs[1] && mailbox_by_uid(&mb, 1) == NULL, "by UID");
    mailbox_close(&mb);
    /* The same-second rule: a change in the second the index recorded may leave the mtime
     * as it was (coarse clocks, 1 s file systems). Simulated by setting the times back. */
    struct timespec now[2];
    clock_gettime(CLOCK_REALTIME, &now[0]);
    now[1] = now[0];
    set_dirs(now);
    CHECK(mailbox_open(&mb, md) == 0 && mb.scanned, "changed this second: scanned");
    mailbox_close(&mb);
    tmpdir_put(md, "cur", "1700000004.d.host,S=4,W=5:2,", "new\n");
    set_dirs(now); /* a change that kept the mtime */
    CHECK(mailbox_open(&mb, md) == 0 && mb.scanned && mb.count == 4,
          "a same-second time was not trusted: the file is seen");
    mailbox_close(&mb);
    tmpdir_put(md, "new", "1700000005.e.host,S=4,W=5", "new\n");
    CHECK(mailbox_open(&mb, md) == 0 && mailbox_by_uid(&mb, mb.uidnext - 1) != NULL &&
              strncmp(mailbox_name(&mb, mailbox_by_uid(&mb, mb.uidnext - 1)), "1700000005.e", 12) ==
                  0,
          "a delivery changes new/'s mtime: seen");
    mailbox_close(&mb);
}

static void test_rebuilt(void)
{
    struct mailbox mb;
    char path[600];
    CHECK(mailbox_open(&mb, md) == 0, "open");
    uint32_t v = mb.uidvalidity;
    size_t n = mb.count;
    mailbox_close(&mb);
    index_path(path, sizeof path);
    unlink(path);
    sleep(1); /* UIDVALIDITY counts seconds */
    CHECK(mailbox_open(&mb, md) == 0 && mb.created && mb.uidvalidity > v && mb.count == n &&
              mb.msgs[0].uid == 1,
          "deleted index: rebuilt with a new UIDVALIDITY");
    mailbox_close(&mb);
    FILE *f = fopen(path, "w");
    fputs("yubin-index 1\nuidvalidity x\n", f);
    fclose(f);
    CHECK(mailbox_open(&mb, md) == 0 && mb.created && mb.count == n, "damaged index: rebuilt");
    mailbox_close(&mb);
    /* A number too large for 64 bits (sscanf took it as the largest one) is damage too. */
    age_dirs();
    CHECK(mailbox_open(&mb, md) == 0 && mb.count == n, "the index written with trusted times");
    mailbox_close(&mb);
    char text[4096], *p;
    f = fopen(path, "r");
    size_t len = f != NULL ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f != NULL)
        fclose(f);
    text[len] = '\0';
    p = strstr(text, "\n1 ");
    CHECK(p != NULL, "an entry for UID 1");
    if (p != NULL) {
        char *size = strchr(p + 3, ' ');
        f = fopen(path, "w");
        fprintf(f, "%.*s 99999999999999999999999%s", (int)(size - text), text,
                strchr(size + 1, ' '));
        fclose(f);
    }
    CHECK(mailbox_open(&mb, md) == 0 && mb.created && mb.count == n && !mb.msgs[0].gone,
          "an overflowing size: rebuilt, every message listed");
    mailbox_close(&mb);
}

static void test_flags_and_sessions(void)
{
    struct mailbox a, b;
    char flags[32];
    CHECK(mailbox_open(&a, md) == 0 && mailbox_open(&b, md) == 0 && a.count == b.count &&
              a.count >= 3,
          "two sessions open at once see the same messages");
    struct mailbox_msg *ma = &a.msgs[0], *mb0 = mailbox_by_uid(&b, a.msgs[0].uid);
    CHECK(mailbox_set_flags(&a, ma, "SF", "") == 0 && strstr(mailbox_name(&a, ma), ":2,FS") != NULL,
          "flags set by rename, sorted");
    CHECK(mailbox_set_flags(&b, mb0, "R", "F") == 0, "the other session renames the old name");
    mailbox_flags(mb0, flags, sizeof flags);
    CHECK_STR(flags, "RS", "it found the file by base name and merged the flags");
    CHECK(mailbox_open_msg(&a, ma) >= 0, "the first finds it again to read it");
    mailbox_flags(ma, flags, sizeof flags);
    CHECK_STR(flags, "RS", "and sees the other's flags");
    struct mailbox_msg *gone = &a.msgs[1];
    uint32_t gone_uid = gone->uid;
    CHECK(mailbox_expunge(&b, mailbox_by_uid(&b, gone->uid)) == 0, "expunged by one");
    CHECK(mailbox_open_msg(&a, gone) < 0 && mailbox_set_flags(&a, gone, "S", "") == 1,
          "the other is told it is gone");
    CHECK(mailbox_expunge(&a, gone) == 0 && mailbox_sync(&a) == 0, "expunging it again is fine");
    mailbox_close(&a);
    mailbox_close(&b);
    CHECK(mailbox_open(&a, md) == 0 && mailbox_by_uid(&a, gone_uid) == NULL, "gone next time");
    mailbox_close(&a);
}

static void test_folders(void)
{
    char path[600];
    CHECK(mailbox_ensure_folders(md) == 0, "special folders made");
    snprintf(path, sizeof path, "%s/.Sent/cur", md);
    CHECK(access(path, F_OK) == 0, ".Sent is a Maildir");
    snprintf(path, sizeof path, "%s/.Trash/maildirfolder", md);
    CHECK(access(path, F_OK) == 0, "with a maildirfolder file");
    CHECK(mailbox_ensure_folders(md) == 0, "again: nothing to do");
    CHECK_STR(mailbox_special_use("Junk"), "\\Junk", "Junk is \\Junk");
    CHECK(mailbox_special_use("Lists") == NULL, "Lists has no attribute");
    CHECK(mailbox_folder_path(path, sizeof path, md, "Lists.yubin") == 0 &&
              strstr(path, "/.Lists.yubin") != NULL,
          "nested with '.'");
    CHECK(mailbox_folder_path(path, sizeof path, md, "inbox") == 0 && strcmp(path, md) == 0,
          "INBOX is the root");
    CHECK(mailbox_folder_path(path, sizeof path, md, "a/../b") == -1 &&
              mailbox_folder_path(path, sizeof path, md, ".x") == -1 &&
              mailbox_folder_path(path, sizeof path, md, "a..b") == -1 &&
              mailbox_folder_path(path, sizeof path, md, "") == -1,
          "unsafe names refused");
}

/* A session holds 16 bytes per message and no name: its heap grows by less than 24 bytes a
 * message when it opens a folder of 3,000 (the names alone would be 60 bytes each). */
static void test_memory(void)
{
    char big[400], name[200];
    struct mailbox mb;
    snprintf(big, sizeof big, "%s/big", dir);
    CHECK(maildir_ensure(big) == 0, "a folder of 3,000 messages");
    for (int i = 0; i < 3000; i++) {
        snprintf(name, sizeof name, "%d.M%06dR0123456789abcdef.some-host.example,S=4,W=5:2,%s",
                 1700000000 + i, i, i % 3 ? "S" : "FS");
        tmpdir_put(big, "cur", name, "msg\n");
    }
    CHECK(mailbox_open(&mb, big) == 0 && mb.count == 3000, "indexed");
    mailbox_close(&mb);
    CHECK(sizeof(struct mailbox_msg) == 16, "a message is 16 bytes (%zu)",
          sizeof(struct mailbox_msg));
    struct mallinfo2 before = mallinfo2();
    CHECK(mailbox_open(&mb, big) == 0 && mb.count == 3000, "opened again");
    struct mallinfo2 after = mallinfo2();
    size_t grown = after.uordblks - before.uordblks;
    CHECK(grown < 3000 * 24, "the open folder holds %zu bytes of heap (%zu a message)", grown,
          grown / 3000);
    CHECK(strcmp(mailbox_name(&mb, &mb.msgs[2999]),
                 "1700002999.M002999R0123456789abcdef.some-host.example,S=4,W=5:2,S") == 0 &&
              strcmp(mailbox_name(&mb, &mb.msgs[0]),
                     "1700000000.M000000R0123456789abcdef.some-host.example,S=4,W=5:2,FS") == 0,
          "names read from the index: %s", mailbox_name(&mb, &mb.msgs[0]));
    mailbox_close(&mb);
}

/* Names that are not "<base>:2,<sorted letters>" are used as they are, and their other
 * letters survive a flag change. */
static void test_odd_names(void)
{
    char odd[400], flags[32], buf[8];
    struct mailbox mb;
    snprintf(odd, sizeof odd, "%s/odd", dir);
    CHECK(maildir_ensure(odd) == 0, "a folder with odd names");
    tmpdir_put(odd, "cur", "1700000001.a.host,S=2,W=3:2,SF", "a\n");
    tmpdir_put(odd, "cur", "1700000002.b.host,S=2,W=3:2,SX", "b\n");
    tmpdir_put(odd, "cur", "1700000003.c.host,S=2,W=3", "c\n");
    CHECK(mailbox_open(&mb, odd) == 0 && mb.count == 3, "three messages");
    mailbox_flags(&mb.msgs[0], flags, sizeof flags);
    CHECK_STR(flags, "FS", "unsorted letters read");
    CHECK_STR(mailbox_name(&mb, &mb.msgs[0]), "1700000001.a.host,S=2,W=3:2,SF",
              "the name as it is");
    mailbox_flags(&mb.msgs[1], flags, sizeof flags);
    CHECK_STR(flags, "S", "an unknown letter not shown");
    int fd = mailbox_open_msg(&mb, &mb.msgs[1]);
    CHECK(fd >= 0 && read(fd, buf, sizeof buf) == 2, "read");
    if (fd >= 0)
        close(fd);
    CHECK(mailbox_set_flags(&mb, &mb.msgs[1], "R", "") == 0 &&
              strcmp(mailbox_name(&mb, &mb.msgs[1]), "1700000002.b.host,S=2,W=3:2,RSX") == 0,
          "renamed with the unknown letter kept: %s", mailbox_name(&mb, &mb.msgs[1]));
    CHECK(mailbox_set_flags(&mb, &mb.msgs[1], "", "S") == 0 &&
              strcmp(mailbox_name(&mb, &mb.msgs[1]), "1700000002.b.host,S=2,W=3:2,RX") == 0,
          "and again: %s", mailbox_name(&mb, &mb.msgs[1]));
    CHECK(mailbox_set_flags(&mb, &mb.msgs[2], "S", "") == 0 &&
              strcmp(mailbox_name(&mb, &mb.msgs[2]), "1700000003.c.host,S=2,W=3:2,S") == 0,
          "a name without :2, gets it");
    CHECK(tmpdir_exists(odd, "cur", "1700000002.b.host,S=2,W=3:2,RX") &&
              tmpdir_exists(odd, "cur", "1700000003.c.host,S=2,W=3:2,S"),
          "the files have those names");
    mailbox_close(&mb);
}

int main(void)
{
    if (mkdtemp(dir) == NULL || sodium_init() < 0)
        return 99;
    snprintf(md, sizeof md, "%s/demo", dir);
    if (maildir_ensure(md) != 0)
        return 99;
    test_round_trip();
    test_behind_back();
    test_rebuilt();
    test_flags_and_sessions();
    test_folders();
    test_memory();
    test_odd_names();
    if (tmpdir_remove(dir) != 0)
        return 99;
    return tap_done();
}
