/*
 * test-mailbox-modseq: lib/mailbox's MODSEQ store (CONDSTORE, RFC 7162; yubin-index(5)
 * version 3) on scratch Maildirs: a flag change, a batch, a no-op, APPEND, an expunge and a
 * rename behind the index's back each raise HIGHESTMODSEQ; two sessions see each other's
 * modseqs; a session whose index file was replaced meanwhile still knows its own; the refresh
 * under a held lock; STATUS; and a version 2 index read and upgraded.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "mailbox.h"
#include "maildir.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[] = "/tmp/test-mailbox-modseq-XXXXXX";

static void put(const char *md, const char *name, const char *data)
{
    char path[900];
    snprintf(path, sizeof path, "%s/cur/%s", md, name);
    FILE *f = fopen(path, "w");
    fputs(data, f);
    fclose(f);
}

/* A folder of three messages (UIDs 1..3), opened once so that it has its index. */
static void folder(char *md, size_t size, const char *name)
{
    struct mailbox mb;
    snprintf(md, size, "%s/%s", dir, name);
    maildir_ensure(md);
    put(md, "1700000001.a.h,S=2,W=3:2,", "x\n");
    put(md, "1700000002.b.h,S=2,W=3:2,S", "x\n");
    put(md, "1700000003.c.h,S=2,W=3:2,", "x\n");
    if (mailbox_open(&mb, md) == 0)
        mailbox_close(&mb);
}

static uint64_t modseq_of(struct mailbox *mb, uint32_t uid)
{
    struct mailbox_msg *m = mailbox_by_uid(mb, uid);
    return m != NULL ? mailbox_modseq(mb, m) : 0;
}

static void test_changes(void)
{
    char md[600], path[900], to[900];
    struct mailbox mb;
    struct mailbox_status st;
    folder(md, sizeof md, "Changes");
    CHECK(mailbox_open(&mb, md) == 0 && mb.count == 3, "three messages");
    uint64_t h = mb.highestmodseq, one = modseq_of(&mb, 1);
    CHECK(h >= 1 && one >= 1 && one <= h && modseq_of(&mb, 3) <= h,
          "every message has a modseq, none above HIGHESTMODSEQ %llu", (unsigned long long)h);
    CHECK(mailbox_set_flags(&mb, &mb.msgs[0], "F", "") == 0 && mb.highestmodseq == h + 1 &&
              modseq_of(&mb, 1) == h + 1 && modseq_of(&mb, 2) <= h,
          "a flag change: the message and the folder at %llu",
          (unsigned long long)mb.highestmodseq);
    CHECK(mailbox_set_flags(&mb, &mb.msgs[0], "F", "") == 0 && mb.highestmodseq == h + 1,
          "a change that changes nothing: no new modseq");
    CHECK(mailbox_change_begin(&mb) == 0 && mailbox_change_begin(&mb) == -1 && errno == EBUSY,
          "a batch begun (not twice)");
    CHECK(mailbox_set_flags(&mb, &mb.msgs[1], "R", "") == 0 &&
              mailbox_set_flags(&mb, &mb.msgs[2], "S", "") == 0 && mailbox_change_end(&mb) == 0,
          "two changes in one batch");
    CHECK(mb.highestmodseq == h + 2 && modseq_of(&mb, 2) == h + 2 && modseq_of(&mb, 3) == h + 2,
          "one modseq for the batch: %llu", (unsigned long long)modseq_of(&mb, 3));
    mailbox_close(&mb);
    CHECK(mailbox_open(&mb, md) == 0 && mb.highestmodseq == h + 2 && modseq_of(&mb, 1) == h + 1 &&
              modseq_of(&mb, 3) == h + 2 && (mb.msgs[0].flags & MAILBOX_FLAG_FLAGGED),
          "kept in the index: the next open reads them");
    mailbox_close(&mb);
    /* mutt renames a file behind the index's back */
    snprintf(path, sizeof path, "%s/cur/1700000001.a.h,S=2,W=3:2,F", md);
    snprintf(to, sizeof to, "%s/cur/1700000001.a.h,S=2,W=3:2,FS", md);
    CHECK(rename(path, to) == 0, "another program sets \\Seen on UID 1");
    CHECK(mailbox_open(&mb, md) == 0 && mb.highestmodseq == h + 3 && modseq_of(&mb, 1) == h + 3 &&
              modseq_of(&mb, 2) == h + 2 && (mb.msgs[0].flags & MAILBOX_FLAG_SEEN),
          "seen at the next open with a new modseq (%llu), the others kept",
          (unsigned long long)modseq_of(&mb, 1));
    mailbox_close(&mb);
    uint32_t uv, uid;
    struct mailbox_append a;
    CHECK(mailbox_append_begin(&a, md, "", 0) == 0 && mailbox_append_write(&a, "y\r\n", 3) == 0 &&
              mailbox_append_commit(&a, &uv, &uid) == 0 && uid == 4,
          "APPEND");
    CHECK(mailbox_open(&mb, md) == 0 && mb.highestmodseq == h + 4 && modseq_of(&mb, 4) == h + 4,
          "the new message has a new modseq");
    CHECK(mailbox_set_flags(&mb, &mb.msgs[1], "T", "") == 0, "\\Deleted on UID 2");
    struct mailbox_changes ch;
    CHECK(mailbox_expunge_deleted(&mb, NULL, 0, &ch) == 0 && ch.n_expunged == 1, "EXPUNGE");
    mailbox_changes_free(&ch);
    CHECK(mailbox_refresh(&mb, 0, &ch) == 0 && mb.count == 3 && mb.highestmodseq == h + 6,
          "an expunge raises HIGHESTMODSEQ (%llu)", (unsigned long long)mb.highestmodseq);
    mailbox_changes_free(&ch);
    mailbox_close(&mb);
    CHECK(mailbox_status(md, &st) == 0 && st.highestmodseq == h + 6, "STATUS HIGHESTMODSEQ");
}

/* Two sessions: one's change is seen by the other's refresh, with its modseq. */
static void test_two_sessions(void)
{
    char md[600];
    struct mailbox a, b;
    struct mailbox_changes ch;
    folder(md, sizeof md, "Two");
    CHECK(mailbox_open(&a, md) == 0 && mailbox_open(&b, md) == 0, "two sessions");
    uint64_t h = a.highestmodseq;
    CHECK(mailbox_set_flags(&b, &b.msgs[2], "F", "") == 0 && b.highestmodseq == h + 1,
          "b flags UID 3");
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.n_flags == 1 && ch.flags[0] == 3 &&
              a.highestmodseq == h + 1 && modseq_of(&a, 3) == h + 1,
          "a sees it with b's modseq");
    mailbox_changes_free(&ch);
    CHECK(mailbox_set_flags(&a, &a.msgs[0], "S", "") == 0 && a.highestmodseq == h + 2,
          "a's own change after that gets the next one");
    CHECK(mailbox_refresh(&b, 0, &ch) == 0 && modseq_of(&b, 1) == h + 2 &&
              modseq_of(&b, 3) == h + 1,
          "and b sees it");
    mailbox_changes_free(&ch);
    /* b's index file is replaced (a rewrite after a's change and a delivery), so b's change
     * goes into a file b does not read: b keeps the modseq aside */
    put(md, "1700000004.d.h,S=2,W=3:2,", "x\n");
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && a.count == 4, "a reconciles a delivery");
    mailbox_changes_free(&ch);
    CHECK(mailbox_set_flags(&b, &b.msgs[1], "F", "") == 0 && b.chg_same == 0 &&
              modseq_of(&b, 2) == b.highestmodseq && b.highestmodseq > a.highestmodseq,
          "b's change to an index it does not read: modseq %llu",
          (unsigned long long)modseq_of(&b, 2));
    uint64_t bs = modseq_of(&b, 2);
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && modseq_of(&a, 2) == bs && a.highestmodseq == bs,
          "a reads it from the index");
    mailbox_changes_free(&ch);
    /* the refresh of STORE UNCHANGEDSINCE, under the lock it holds: the index it appends to is
     * the one the refresh left (a rewrite after a delivery here) */
    CHECK(mailbox_set_flags(&a, &a.msgs[2], "D", "") == 0, "a changes UID 3");
    put(md, "1700000005.e.h,S=2,W=3:2,", "x\n");
    CHECK(mailbox_change_begin(&b) == 0 && mailbox_change_refresh(&b, &ch) == 0 && b.count == 5 &&
              modseq_of(&b, 3) == a.highestmodseq,
          "b refreshes under its lock and sees a's change and the delivery");
    mailbox_changes_free(&ch);
    uint64_t hb = b.highestmodseq;
    CHECK(mailbox_set_flags(&b, &b.msgs[0], "T", "") == 0 &&
              mailbox_change_refresh(&b, &ch) == -1 && errno == EINVAL &&
              mailbox_change_end(&b) == 0 && modseq_of(&b, 1) == hb + 1 && b.chg_same,
          "then changes UID 1 in the new index (no refresh after a change)");
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && modseq_of(&a, 1) == hb + 1, "which a reads");
    mailbox_changes_free(&ch);
    CHECK(mailbox_change_refresh(&a, &ch) == -1 && errno == EINVAL, "no refresh outside a batch");
    mailbox_close(&a);
    mailbox_close(&b);
}

/* A version 2 index (no modseqs) is read with its UIDs and rewritten as version 3. */
static void test_upgrade(void)
{
    char md[600], path[900], line[512];
    struct mailbox mb;
    snprintf(md, sizeof md, "%s/Old", dir);
    maildir_ensure(md);
    put(md, "1700000001.a.h,S=2,W=3:2,S", "x\n");
    put(md, "1700000002.b.h,S=2,W=3:2,", "x\n");
    snprintf(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, md);
    FILE *f = fopen(path, "w");
    fputs("yubin-index 2\nuidvalidity 1234\nuidnext 7\ncur 0.000000000\nnew 0.000000000\n"
          "5 2 3 1700000001.a.h,S=2,W=3:2,S\n6 2 3 1700000002.b.h,S=2,W=3:2,\n",
          f);
    fclose(f);
    CHECK(mailbox_open(&mb, md) == 0 && !mb.created && mb.uidvalidity == 1234 && mb.count == 2 &&
              mb.msgs[0].uid == 5 && mb.msgs[1].uid == 6 && mb.highestmodseq == 1 &&
              modseq_of(&mb, 5) == 1 && modseq_of(&mb, 6) == 1,
          "version 2 read: its UIDs, every modseq 1");
    mailbox_close(&mb);
    f = fopen(path, "r");
    CHECK(f != NULL && fgets(line, sizeof line, f) != NULL && strcmp(line, "yubin-index 3\n") == 0,
          "and rewritten as version 3");
    if (f != NULL)
        fclose(f);
    /* damaged modseqs make the index unusable: rebuilt with a new UIDVALIDITY */
    f = fopen(path, "w");
    fputs("yubin-index 3\nuidvalidity 1234\nuidnext 7\ncur 0.000000000\nnew 0.000000000\n"
          "highestmodseq 0\n5 2 3 1 1700000001.a.h,S=2,W=3:2,S\n",
          f);
    fclose(f);
    CHECK(mailbox_open(&mb, md) == 0 && mb.created && mb.uidvalidity != 1234,
          "HIGHESTMODSEQ 0: rebuilt");
    mailbox_close(&mb);
}

int main(void)
{
    if (mkdtemp(dir) == NULL || sodium_init() < 0)
        return 99;
    setvbuf(stdout, NULL, _IOLBF, 0);
    test_changes();
    test_two_sessions();
    test_upgrade();
    if (tmpdir_remove(dir) != 0)
        return 99;
    return tap_done();
}
