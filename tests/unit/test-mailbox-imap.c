/*
 * test-mailbox-imap: what lib/mailbox gives imap4-in, on scratch Maildirs: folders (LIST,
 * CREATE with parents, DELETE, RENAME with children and of INBOX, subscriptions), STATUS,
 * APPEND streamed in odd chunks (CRLF to LF, S=/W=, INTERNALDATE, APPENDUID), COPY and MOVE
 * (COPYUID, flags and keywords kept, expunged sources refused), refresh of two sessions on one
 * folder (EXISTS, EXPUNGE order, FETCH FLAGS, deferred expunges), EXPUNGE of \Deleted only,
 * the inotify watch, keywords, and every error case the header names.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "mailbox.h"
#include "maildir.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[] = "/tmp/test-mailbox-imap-XXXXXX";
static char root[300];

static void put(const char *folder_dir, const char *sub, const char *name, const char *data)
{
    char path[900];
    snprintf(path, sizeof path, "%s/%s/%s", folder_dir, sub, name);
    FILE *f = fopen(path, "w");
    fputs(data, f);
    fclose(f);
}

static void path_of(char *dst, size_t size, const char *folder)
{
    if (mailbox_folder_path(dst, size, root, folder) != 0)
        dst[0] = '\0';
}

static struct mailbox_folder *find(struct mailbox_folders *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return &l->items[i];
    return NULL;
}

static void test_folders(void)
{
    struct mailbox_folders l;
    char p[600];
    CHECK(mailbox_ensure_folders(root) == 0, "special folders");
    CHECK(mailbox_folder_create(root, "Lists.yubin.dev") == 0, "CREATE a.b.c");
    CHECK(mailbox_folder_create(root, "Lists.yubin") == -1 && errno == EEXIST,
          "its parents were made too (EEXIST)");
    CHECK(mailbox_folder_create(root, "Work.") == 0, "CREATE with a trailing delimiter");
    CHECK(mailbox_folder_create(root, "inbox") == -1 && errno == EEXIST, "CREATE INBOX: EEXIST");
    CHECK(mailbox_folder_create(root, "a..b") == -1 && errno == EINVAL &&
              mailbox_folder_create(root, "x/y") == -1 && errno == EINVAL,
          "CREATE bad names: EINVAL");
    path_of(p, sizeof p, "Work");
    strcat(p, "/maildirfolder");
    CHECK(access(p, F_OK) == 0, "a created folder has maildirfolder");
    CHECK(mailbox_folders_list(root, &l) == 0 && l.count == 10, "LIST: %zu folders", l.count);
    CHECK(strcmp(l.items[0].name, "INBOX") == 0 && !l.items[0].children, "INBOX first");
    CHECK(find(&l, "Lists") && find(&l, "Lists")->children && !find(&l, "Lists")->noselect,
          "Lists has children");
    CHECK(find(&l, "Lists.yubin.dev") && !find(&l, "Lists.yubin.dev")->children,
          "Lists.yubin.dev has none");
    CHECK(find(&l, "Sent") && strcmp(find(&l, "Sent")->special, "\\Sent") == 0, "\\Sent");
    CHECK(find(&l, "Work") && !find(&l, "Work")->subscribed, "not subscribed yet");
    mailbox_folders_free(&l);
    /* a parent implied by a folder another program made */
    snprintf(p, sizeof p, "%s/.Old.2020", root);
    maildir_ensure(p);
    CHECK(mailbox_folders_list(root, &l) == 0 && find(&l, "Old") && find(&l, "Old")->noselect &&
              find(&l, "Old")->children,
          "an implied parent is \\Noselect");
    mailbox_folders_free(&l);
    CHECK(mailbox_folder_delete(root, "Old") == -1 && errno == ENOENT, "DELETE it: ENOENT");
    CHECK(mailbox_folder_delete(root, "Lists") == -1 && errno == ENOTEMPTY,
          "DELETE with children: ENOTEMPTY");
    CHECK(mailbox_folder_delete(root, "INBOX") == -1 && errno == EPERM, "DELETE INBOX: EPERM");
    CHECK(mailbox_folder_delete(root, "Nope") == -1 && errno == ENOENT, "DELETE missing");
    path_of(p, sizeof p, "Old.2020");
    put(p, "cur", "1.x.h,S=2,W=3:2,", "x\n");
    CHECK(mailbox_folder_delete(root, "Old.2020") == 0 && access(p, F_OK) != 0,
          "DELETE a folder with a message");
    snprintf(p, sizeof p, "%s/tmp", root);
    CHECK(rmdir(p) == 0, "nothing left in the root's tmp/");
}

static void test_rename(void)
{
    char p[600];
    struct mailbox_status st;
    CHECK(mailbox_folder_rename(root, "Lists", "Groups.Mail") == 0, "RENAME with children");
    path_of(p, sizeof p, "Groups.Mail.yubin.dev");
    CHECK(access(p, F_OK) == 0, "the children moved along");
    path_of(p, sizeof p, "Lists.yubin");
    CHECK(access(p, F_OK) != 0, "nothing left under the old name");
    CHECK(mailbox_folder_rename(root, "Nope", "X") == -1 && errno == ENOENT, "RENAME missing");
    CHECK(mailbox_folder_rename(root, "Work", "Sent") == -1 && errno == EEXIST,
          "RENAME onto an existing folder");
    CHECK(mailbox_folder_rename(root, "Work", "Work.Sub") == -1 && errno == EINVAL,
          "RENAME into its own child");
    CHECK(mailbox_folder_rename(root, "Work", "INBOX") == -1 && errno == EINVAL,
          "RENAME onto INBOX");
    put(root, "new", "1700000001.a.h,S=4,W=5", "one\n");
    put(root, "cur", "1700000002.b.h,S=4,W=5:2,S", "two\n");
    CHECK(mailbox_folder_rename(root, "INBOX", "Old-Inbox") == 0, "RENAME INBOX");
    path_of(p, sizeof p, "Old-Inbox");
    CHECK(mailbox_status(p, &st) == 0 && st.messages == 2 && st.unseen == 1,
          "its messages are in the new folder");
    CHECK(mailbox_status(root, &st) == 0 && st.messages == 0, "INBOX is empty");
    CHECK(mailbox_status("/nonexistent/x", &st) == -1 && errno == ENOENT, "STATUS missing");
}

static void test_subscriptions(void)
{
    char **names;
    size_t n;
    struct mailbox_folders l;
    CHECK(mailbox_subscriptions(root, &names, &n) == 0 && n == 0, "none yet");
    CHECK(mailbox_subscribe(root, "Work", 1) == 0 && mailbox_subscribe(root, "inbox", 1) == 0 &&
              mailbox_subscribe(root, "Gone", 1) == 0 && mailbox_subscribe(root, "Work", 1) == 0,
          "SUBSCRIBE (twice is fine, a missing folder too)");
    CHECK(mailbox_subscribe(root, "a..b", 1) == -1 && errno == EINVAL, "a bad name: EINVAL");
    CHECK(mailbox_subscriptions(root, &names, &n) == 0 && n == 3 && strcmp(names[0], "Work") == 0 &&
              strcmp(names[1], "INBOX") == 0,
          "three names, in order");
    mailbox_names_free(names, n);
    CHECK(mailbox_folders_list(root, &l) == 0 && find(&l, "Work")->subscribed &&
              l.items[0].subscribed && !find(&l, "Sent")->subscribed,
          "LIST shows \\Subscribed");
    mailbox_folders_free(&l);
    CHECK(mailbox_subscribe(root, "Gone", 0) == 0 && mailbox_subscribe(root, "Never", 0) == 0,
          "UNSUBSCRIBE (a name not there is fine)");
    CHECK(mailbox_subscriptions(root, &names, &n) == 0 && n == 2, "two left");
    mailbox_names_free(names, n);
    char p[600];
    snprintf(p, sizeof p, "%s/subscriptions", root);
    FILE *f = fopen(p, "r");
    char text[200] = "";
    size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
    text[got] = '\0';
    if (f)
        fclose(f);
    CHECK_STR(text, "Work\nINBOX\n", "the file: one name per line");
}

/* APPEND of data in chunks of size step; its UID, or 0. */
static uint32_t append(const char *folder_dir, const char *data, size_t step, const char *flags,
                       time_t date, uint32_t *uv)
{
    struct mailbox_append a;
    uint32_t uid = 0;
    if (mailbox_append_begin(&a, folder_dir, flags, date) != 0)
        return 0;
    for (size_t i = 0, len = strlen(data); i < len; i += step)
        if (mailbox_append_write(&a, data + i, len - i < step ? len - i : step) != 0) {
            mailbox_append_abort(&a);
            return 0;
        }
    return mailbox_append_commit(&a, uv, &uid) == 0 ? uid : 0;
}

static void test_append(void)
{
    char p[600], buf[100], flags[100];
    uint32_t uv = 0;
    struct mailbox mb;
    struct mailbox_append a;
    path_of(p, sizeof p, "Work");
    const char *msg = "Subject: hi\r\n\r\nline\r\nbare\rcr\nlf\r\n";
    uint32_t uid = append(p, msg, 1, "SF", 1000000000, &uv);
    CHECK(uid == 1 && uv != 0, "APPEND byte by byte: UID 1");
    CHECK(append(p, msg, 7, "", 0, &uv) == 2, "APPEND in 7-byte chunks: UID 2");
    CHECK(mailbox_open(&mb, p) == 0 && mb.count == 2 && mb.uidvalidity == uv, "both there");
    const char *want = "Subject: hi\n\nline\nbare\rcr\nlf\n";
    char s_eq[32];
    snprintf(s_eq, sizeof s_eq, ",S=%zu,", strlen(want));
    CHECK(strstr(mailbox_name(&mb, &mb.msgs[0]), s_eq) != NULL &&
              mb.msgs[0].crlf_size == strlen(want) + 5,
          "S= and W=: %s %llu", mailbox_name(&mb, &mb.msgs[0]),
          (unsigned long long)mb.msgs[0].crlf_size);
    int fd = mailbox_open_msg(&mb, &mb.msgs[1]);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    buf[n > 0 ? n : 0] = '\0';
    if (fd >= 0)
        close(fd);
    CHECK_STR(buf, want, "CRLF stored as LF, bare CR and LF kept");
    time_t when = 0;
    CHECK(mailbox_internaldate(&mb, &mb.msgs[0], &when) == 0 && when == 1000000000,
          "INTERNALDATE is the date given");
    CHECK(mailbox_internaldate(&mb, &mb.msgs[1], &when) == 0 && when > time(NULL) - 100,
          "no date: now");
    mailbox_flags_imap(&mb, &mb.msgs[0], flags, sizeof flags);
    CHECK_STR(flags, "\\Flagged \\Seen", "flags given (not \\Recent: the APPEND numbered it)");
    mailbox_close(&mb);
    CHECK(mailbox_append_begin(&a, "/nonexistent/folder", "", 0) == -1 && errno == ENOENT,
          "APPEND to a missing folder: ENOENT (TRYCREATE)");
    CHECK(mailbox_append_begin(&a, p, "S!", 0) == -1 && errno == EINVAL, "bad flag letters");
    CHECK(mailbox_append_begin(&a, p, "", 0) == 0 && mailbox_append_write(&a, "x", 1) == 0,
          "an APPEND begun");
    mailbox_append_abort(&a);
    CHECK(access(a.tmp_path, F_OK) != 0 && mailbox_status(p, &(struct mailbox_status){0}) == 0,
          "aborted: nothing left");
}

static void test_keywords(void)
{
    char p[600], flags[200];
    struct mailbox mb, other;
    path_of(p, sizeof p, "Work");
    CHECK(mailbox_open(&mb, p) == 0 && mailbox_open(&other, p) == 0, "two opens");
    CHECK(mailbox_flag_letter(&mb, "\\seen", 0) == 'S' &&
              mailbox_flag_letter(&mb, "\\Deleted", 0) == 'T' &&
              mailbox_flag_letter(&mb, "$Forwarded", 0) == 'P',
          "system flags");
    CHECK(mailbox_flag_letter(&mb, "\\Recent", 1) == 0 && errno == EINVAL &&
              mailbox_flag_letter(&mb, "\\Other", 1) == 0 && errno == EINVAL &&
              mailbox_flag_letter(&mb, "bad(", 1) == 0 && errno == EINVAL,
          "not storable: EINVAL");
    CHECK(mailbox_flag_letter(&mb, "work", 0) == 0 && errno == ENOENT, "unknown: ENOENT");
    CHECK(mailbox_flag_letter(&mb, "work", 1) == 'a' && mailbox_flag_letter(&mb, "$Junk", 1) == 'b',
          "keywords get a and b");
    CHECK(mailbox_flag_letter(&other, "$junk", 1) == 'b', "the other session sees them");
    CHECK(mailbox_set_flags(&mb, &mb.msgs[0], "b", "") == 0, "a keyword set");
    mailbox_flags_imap(&mb, &mb.msgs[0], flags, sizeof flags);
    CHECK_STR(flags, "\\Flagged \\Seen $Junk", "and shown by name");
    char letter = 0;
    for (int i = 2; i < 30; i++) {
        char name[20];
        snprintf(name, sizeof name, "k%d", i);
        letter = mailbox_flag_letter(&mb, name, 1);
        if (letter == 0)
            break;
    }
    CHECK(letter == 0 && errno == ENOSPC, "26 keywords at most: ENOSPC");
    mailbox_close(&mb);
    mailbox_close(&other);
}

static void test_copy_move(void)
{
    char work[600], sent[600], flags[200];
    struct mailbox mb, dst;
    struct mailbox_copyuid cu;
    struct mailbox_changes ch;
    path_of(work, sizeof work, "Work");
    path_of(sent, sizeof sent, "Sent");
    CHECK(mailbox_open(&mb, work) == 0 && mb.count == 2, "Work open");
    uint32_t uids[2] = {2, 1};
    CHECK(mailbox_copy(&mb, uids, 2, sent, &cu) == 0 && cu.count == 2 && cu.src[0] == 2 &&
              cu.dst[0] == 1 && cu.dst[1] == 2 && cu.uidvalidity != 0,
          "COPY 2,1: COPYUID");
    mailbox_copyuid_free(&cu);
    CHECK(mailbox_open(&dst, sent) == 0 && dst.count == 2, "two copies in Sent");
    mailbox_flags_imap(&dst, &dst.msgs[1], flags, sizeof flags);
    CHECK_STR(flags, "\\Flagged \\Seen $Junk", "flags and keywords kept");
    mailbox_close(&dst);
    uint32_t bad[2] = {1, 99};
    CHECK(mailbox_copy(&mb, bad, 2, sent, &cu) == 1 && errno == ENOENT,
          "COPY with an expunged UID: 1, nothing copied");
    CHECK(mailbox_status(sent, &(struct mailbox_status){0}) == 0, "status");
    struct mailbox_status st;
    mailbox_status(sent, &st);
    CHECK(st.messages == 2 && st.uidnext == 3, "still two in Sent");
    CHECK(mailbox_copy(&mb, uids, 1, "/nonexistent/x", &cu) == -1 && errno == ENOENT,
          "COPY to a missing folder: ENOENT (TRYCREATE)");
    uint32_t one = 1;
    CHECK(mailbox_move(&mb, &one, 1, sent, &cu, &ch) == 0 && cu.dst[0] == 3 && ch.n_expunged == 1 &&
              ch.expunged[0] == 1 && mb.count == 1 && mb.msgs[0].uid == 2,
          "MOVE 1: COPYUID, EXPUNGE 1");
    mailbox_copyuid_free(&cu);
    mailbox_changes_free(&ch);
    mailbox_close(&mb);
    CHECK(mailbox_open(&mb, work) == 0 && mb.count == 1, "Work has one left");
    mailbox_close(&mb);
    mailbox_status(sent, &st);
    CHECK(st.messages == 3, "Sent has three");
    /* many at once: the copies are numbered in the order given */
    uint32_t uv, all[40];
    mailbox_folder_create(root, "Many");
    mailbox_folder_create(root, "Many2");
    path_of(work, sizeof work, "Many");
    path_of(sent, sizeof sent, "Many2");
    for (int i = 0; i < 40; i++)
        all[i] = append(work, "m\r\n", 10, "", 0, &uv);
    CHECK(mailbox_open(&mb, work) == 0 && mb.count == 40, "40 messages");
    int ordered = mailbox_copy(&mb, all, 40, sent, &cu) == 0 && cu.count == 40;
    for (size_t i = 1; ordered && i < cu.count; i++)
        ordered = cu.dst[i] == cu.dst[i - 1] + 1 && cu.src[i] == all[i];
    CHECK(ordered, "COPY of 40: destination UIDs in the order of the sources");
    mailbox_copyuid_free(&cu);
    mailbox_close(&mb);
}

static void test_refresh(void)
{
    char p[600];
    struct mailbox a, b;
    struct mailbox_changes ch;
    uint32_t uv;
    path_of(p, sizeof p, "Refresh");
    mailbox_folder_create(root, "Refresh");
    for (int i = 0; i < 5; i++)
        append(p, "m\r\n", 100, "", 0, &uv);
    CHECK(mailbox_open(&a, p) == 0 && mailbox_open(&b, p) == 0 && a.count == 5, "two sessions");
    CHECK(mailbox_watch_drain(&a) == -1 && errno == EBADF, "drain before watching: EBADF");
    CHECK(mailbox_watch(&a) >= 0 && mailbox_watch(&a) == a.watch_fd, "a watches (once)");
    mailbox_watch_drain(&a);
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.n_expunged == 0 && ch.n_flags == 0 &&
              ch.added == 0 && ch.exists == 5,
          "nothing changed");
    mailbox_changes_free(&ch);
    CHECK(mailbox_set_flags(&b, &b.msgs[1], "T", "") == 0 &&
              mailbox_set_flags(&b, &b.msgs[3], "T", "") == 0 &&
              mailbox_set_flags(&b, &b.msgs[4], "S", "") == 0,
          "b marks 2 and 4 \\Deleted, 5 \\Seen");
    struct pollfd pfd = {.fd = a.watch_fd, .events = POLLIN};
    CHECK(poll(&pfd, 1, 1000) == 1, "the watch woke");
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.n_flags == 3 && ch.flags[0] == 2 &&
              ch.flags[2] == 5 && ch.n_expunged == 0,
          "a sees three flag changes");
    mailbox_changes_free(&ch);
    CHECK(mailbox_set_flags(&a, &a.msgs[1], "", "T") == 0, "a clears 2's \\Deleted");
    CHECK(mailbox_expunge_deleted(&b, NULL, 0, &ch) == 0 && ch.n_expunged == 1 &&
              ch.expunged[0] == 4 && b.count == 4,
          "b's EXPUNGE removes only 4 (2 was undeleted by a)");
    mailbox_changes_free(&ch);
    append(p, "new\r\n", 100, "", 0, &uv);
    CHECK(mailbox_refresh(&a, MAILBOX_REFRESH_KEEP_GONE, &ch) == 0 && ch.n_expunged == 0 &&
              ch.added == 1 && a.count == 6 && a.msgs[3].gone && a.msgs[5].recent == 0,
          "during FETCH: 4 kept as gone, the new one added");
    mailbox_changes_free(&ch);
    CHECK(mailbox_open_msg(&a, &a.msgs[3]) == -1 && errno == ENOENT, "a gone one reads ENOENT");
    time_t t;
    CHECK(mailbox_internaldate(&a, &a.msgs[3], &t) == 1, "its INTERNALDATE: gone (1)");
    char tiny[4];
    CHECK(mailbox_flags_imap(&a, &a.msgs[4], tiny, sizeof tiny) == -1 && errno == ENAMETOOLONG,
          "flags into a buffer too small: ENAMETOOLONG");
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.n_expunged == 1 && ch.expunged[0] == 4 &&
              ch.expunged_uids[0] == 4 && a.count == 5 && ch.exists == 5,
          "later: EXPUNGE 4");
    mailbox_changes_free(&ch);
    CHECK(mailbox_set_flags(&b, &b.msgs[0], "T", "") == 0 &&
              mailbox_set_flags(&b, &b.msgs[2], "T", "") == 0,
          "b deletes 1 and 3");
    uint32_t only[1] = {3};
    CHECK(mailbox_expunge_deleted(&b, only, 1, &ch) == 0 && ch.n_expunged == 1 &&
              ch.expunged[0] == 3,
          "UID EXPUNGE 3 leaves 1");
    mailbox_changes_free(&ch);
    CHECK(mailbox_refresh(&b, 0, &ch) == 0, "b refreshes");
    mailbox_changes_free(&ch);
    CHECK(mailbox_expunge_deleted(&b, NULL, 0, &ch) == 0 && ch.n_expunged == 1 &&
              ch.expunged[0] == 1,
          "EXPUNGE removes 1");
    mailbox_changes_free(&ch);
    CHECK(mailbox_set_flags(&b, &b.msgs[0], "T", "") == 0 &&
              mailbox_set_flags(&b, &b.msgs[2], "T", "") == 0,
          "b deletes two more");
    CHECK(mailbox_expunge_deleted(&b, NULL, 0, &ch) == 0 && ch.n_expunged == 2 &&
              ch.expunged[0] > ch.expunged[1],
          "EXPUNGEs highest first");
    mailbox_changes_free(&ch);
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.n_expunged == 4 && a.count == 1 &&
              ch.expunged[0] == 5 && ch.expunged[3] == 1,
          "a sees four expunges, highest first");
    mailbox_changes_free(&ch);
    mailbox_watch_drain(&a);
    CHECK(poll(&pfd, 1, 0) == 0, "drained: the watch is quiet");
    put(p, "new", "1800000000.x.h,S=2,W=3", "d\n");
    CHECK(poll(&pfd, 1, 1000) == 1, "a delivery into new/ wakes the watch");
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.added == 1 && a.count == 2 && a.msgs[1].recent &&
              ch.exists == 2,
          "the delivery: EXISTS 2, \\Recent for the session that numbered it");
    mailbox_changes_free(&ch);
    CHECK(mailbox_refresh(&b, 0, &ch) == 0 && ch.added == 1 && !b.msgs[b.count - 1].recent &&
              b.msgs[b.count - 1].uid == a.msgs[1].uid,
          "the other session: the same UID, not \\Recent");
    mailbox_changes_free(&ch);
    mailbox_close(&a);
    mailbox_close(&b);
}

/* Nothing changed: a refresh needs neither the lock nor the index (IDLE and NOOP are cheap).
 * Another descriptor holds the lock; a refresh that took it would block (alarm ends that). */
static void test_refresh_unchanged(void)
{
    char p[600], lockpath[700];
    struct mailbox a;
    struct mailbox_changes ch;
    struct timespec old[2] = {{time(NULL) - 10, 5}, {time(NULL) - 10, 5}};
    path_of(p, sizeof p, "Refresh");
    for (int i = 0; i < 2; i++) { /* directories changed in this second are never trusted */
        snprintf(lockpath, sizeof lockpath, "%s/%s", p, i ? "new" : "cur");
        utimensat(AT_FDCWD, lockpath, old, 0);
    }
    CHECK(mailbox_open(&a, p) == 0, "open");
    snprintf(lockpath, sizeof lockpath, "%s/yubin-index.lock", p);
    int fd = open(lockpath, O_RDWR);
    CHECK(fd >= 0 && flock(fd, LOCK_EX) == 0, "someone holds the index lock");
    alarm(10);
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.exists == a.count && ch.n_expunged == 0,
          "unchanged: refreshed without the lock");
    alarm(0);
    mailbox_changes_free(&ch);
    close(fd);
    mailbox_close(&a);
}

/* A rebuilt index (deleted by hand): the session is told its UIDs are void. */
static void test_uidvalidity_change(void)
{
    char p[600], idx[700];
    struct mailbox a;
    struct mailbox_changes ch;
    path_of(p, sizeof p, "Refresh");
    CHECK(mailbox_open(&a, p) == 0, "open");
    snprintf(idx, sizeof idx, "%s/yubin-index", p);
    unlink(idx);
    sleep(1); /* UIDVALIDITY counts seconds */
    CHECK(mailbox_refresh(&a, 0, &ch) == 0 && ch.uidvalidity_changed && a.count == 2 &&
              a.msgs[0].uid == 1,
          "index rebuilt: uidvalidity_changed, the list reloaded");
    mailbox_changes_free(&ch);
    mailbox_close(&a);
}

/* Many folders, names that are prefixes of others ("f1", "f1-x", "f10", "f1.a"): each once,
 * \HasChildren exactly where a child is. */
static void test_many_folders(void)
{
    char other[400], name[64];
    struct mailbox_folders l;
    snprintf(other, sizeof other, "%s/other", dir);
    maildir_ensure(other);
    int ok = 1;
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "f%d.a.b", i);
        ok &= mailbox_folder_create(other, name) == 0;
        snprintf(name, sizeof name, "f%d-x", i);
        ok &= mailbox_folder_create(other, name) == 0;
    }
    CHECK(ok, "300 folders made with their parents");
    CHECK(mailbox_folders_list(other, &l) == 0 && l.count == 1 + 400, "LIST: %zu", l.count);
    int once = 1, kids = 1;
    for (size_t i = 1; i < l.count; i++) {
        once &= strcmp(l.items[i - 1].name, l.items[i].name) < 0;
        size_t len = strlen(l.items[i].name);
        int want = l.items[i].name[len - 1] != 'b' && l.items[i].name[len - 1] != 'x';
        kids &= l.items[i].children == want && !l.items[i].noselect;
    }
    CHECK(once, "each name once, in order");
    CHECK(kids, "children exactly where a child is");
    mailbox_folders_free(&l);
}

/* The index's inode and its last line. */
static unsigned long long index_inode(const char *folder_dir, char *last, size_t size)
{
    char path[900], line[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, folder_dir);
    FILE *f = fopen(path, "r");
    last[0] = '\0';
    while (f != NULL && fgets(line, sizeof line, f) != NULL)
        snprintf(last, size, "%s", line);
    if (f != NULL)
        fclose(f);
    return stat(path, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

/* path with ".v1" appended, into buf. */
static const char *text_path(const char *path, char *buf, size_t size)
{
    snprintf(buf, size, "%s.v1", path);
    return buf;
}

/* Line n of a version 3 index as version 1 writes it: its magic, no highestmodseq line, no
 * modseq field. */
static void v1_line(FILE *out, int n, const char *line)
{
    unsigned long uid, size, crlf, modseq;
    int off = 0;
    if (n == 0)
        fputs("yubin-index 1\n", out);
    else if (n < 5)
        fputs(line, out);
    else if (n > 5 && sscanf(line, "%lu %lu %lu %lu %n", &uid, &size, &crlf, &modseq, &off) == 4)
        fprintf(out, "%lu %lu %lu %s", uid, size, crlf, line + off);
}

/* APPEND and COPY add their lines to the destination's index in place, under its lock
 * (yubin-index 2): no reconcile, no rewrite (the inode stays); the next open keeps the UIDs. */
static void test_append_in_place(void)
{
    char p[600], q[600], last[1024], expect[64];
    struct mailbox mb;
    uint32_t uv, uv2;
    CHECK(mailbox_folder_create(root, "Tail") == 0 && mailbox_folder_create(root, "Tail2") == 0,
          "two folders");
    path_of(p, sizeof p, "Tail");
    path_of(q, sizeof q, "Tail2");
    CHECK(mailbox_open(&mb, p) == 0 && mb.count == 0, "the first has an index");
    mailbox_close(&mb);
    unsigned long long ino = index_inode(p, last, sizeof last);
    uint32_t one = append(p, "Subject: 1\r\n\r\none\r\n", 5, "S", 0, &uv);
    uint32_t two = append(p, "Subject: 2\r\n\r\ntwo\r\n", 5, "", 0, &uv2);
    snprintf(expect, sizeof expect, "%lu 16 19 ", (unsigned long)two);
    CHECK(one == 1 && two == 2 && uv == uv2 && index_inode(p, last, sizeof last) == ino &&
              strncmp(last, expect, strlen(expect)) == 0,
          "APPENDs appended to the index in place: %s", last);
    CHECK(mailbox_open(&mb, p) == 0 && mb.count == 2 && mb.uidvalidity == uv &&
              mb.msgs[0].uid == 1 && mb.msgs[1].uid == 2 && mb.uidnext == 3 &&
              (mb.msgs[0].flags & MAILBOX_FLAG_SEEN) && !mb.created,
          "the next open keeps their UIDs");
    mailbox_close(&mb);
    struct mailbox_copyuid cu;
    uint32_t uids[2] = {2, 1};
    CHECK(mailbox_open(&mb, q) == 0, "the second has an index");
    mailbox_close(&mb);
    ino = index_inode(q, last, sizeof last);
    CHECK(mailbox_open(&mb, p) == 0 && mailbox_copy(&mb, uids, 2, q, &cu) == 0 && cu.count == 2 &&
              cu.dst[0] == 1 && cu.dst[1] == 2 && index_inode(q, last, sizeof last) == ino &&
              strncmp(last, "2 ", 2) == 0,
          "COPY appended to the destination's index in place: %s", last);
    mailbox_copyuid_free(&cu);
    mailbox_close(&mb);
    CHECK(mailbox_open(&mb, q) == 0 && mb.count == 2 && mb.msgs[0].crlf_size == 19 &&
              mb.msgs[1].crlf_size == 19 && (mb.msgs[1].flags & MAILBOX_FLAG_SEEN) &&
              !(mb.msgs[0].flags & MAILBOX_FLAG_SEEN),
          "copied in the order given");
    mailbox_close(&mb);
    /* A line cut by a crash is ignored (not a damaged index): its file is numbered again. */
    char path[900];
    snprintf(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, p);
    put(p, "cur", "1800000000.cut.host,S=2,W=3:2,", "x\n");
    FILE *f = fopen(path, "a");
    fputs("3 2 3 1800000000.cut.ho", f);
    fclose(f);
    CHECK(mailbox_open(&mb, p) == 0 && !mb.created && mb.uidvalidity == uv && mb.count == 3 &&
              mb.msgs[2].uid == 3,
          "an unterminated last line: ignored, the file numbered (UID %lu)",
          (unsigned long)(mb.count == 3 ? mb.msgs[2].uid : 0));
    mailbox_close(&mb);
    /* Version 1 (before in-place lines and modseqs) is still read, and rewritten as 3 by the
     * next reconcile. */
    char text[4096], line[1024];
    f = fopen(path, "r");
    FILE *out = fopen(text_path(path, text, sizeof text), "w");
    for (int n = 0; f != NULL && out != NULL && fgets(line, sizeof line, f) != NULL; n++)
        v1_line(out, n, line);
    if (f != NULL)
        fclose(f);
    if (out != NULL)
        fclose(out);
    rename(text, path);
    CHECK(mailbox_open(&mb, p) == 0 && !mb.created && mb.uidvalidity == uv && mb.count == 3,
          "a version 1 index is read");
    mailbox_close(&mb);
    CHECK(append(p, "Subject: 4\r\n\r\nfour\r\n", 5, "", 0, &uv2) == 4 && uv2 == uv &&
              index_inode(p, text, sizeof text) != 0 && mailbox_open(&mb, p) == 0 && mb.count == 4,
          "an APPEND to it reconciles");
    mailbox_close(&mb);
    f = fopen(path, "r");
    CHECK(f != NULL && fgets(text, sizeof text, f) != NULL && strcmp(text, "yubin-index 3\n") == 0,
          "and it is version 3 again");
    if (f != NULL)
        fclose(f);
}

/* A journal left by a COPY killed in another session is finished before a COPY into the same
 * folder writes its own (it used to be replaced, its copies left in tmp/). */
static void test_copy_after_crash(void)
{
    char p[600], q[600], path[900];
    struct mailbox mb;
    struct mailbox_copyuid cu;
    uint32_t uv, uid;
    CHECK(mailbox_folder_create(root, "Crash") == 0, "a folder");
    path_of(p, sizeof p, "Tail");
    path_of(q, sizeof q, "Crash");
    put(q, "tmp", "1800000001.left.host,S=2,W=3:2,", "y\n");
    snprintf(path, sizeof path, "%s/yubin-journal", q);
    FILE *f = fopen(path, "w");
    fputs("yubin-journal 1\nL\t1800000001.left.host,S=2,W=3:2,\t1800000001.left.host,S=2,W=3:2,\n",
          f);
    fclose(f);
    uid = 1;
    CHECK(mailbox_open(&mb, p) == 0 && mailbox_copy(&mb, &uid, 1, q, &cu) == 0, "COPY into it");
    mailbox_copyuid_free(&cu);
    mailbox_close(&mb);
    CHECK(tmpdir_exists(q, "cur", "1800000001.left.host,S=2,W=3:2,") &&
              !tmpdir_exists(q, "tmp", "1800000001.left.host,S=2,W=3:2,") &&
              mailbox_open(&mb, q) == 0 && mb.count == 2,
          "the old journal's copy is in cur/ too");
    mailbox_close(&mb);
    (void)uv;
}

int main(void)
{
    if (mkdtemp(dir) == NULL || sodium_init() < 0)
        return 99;
    setvbuf(stdout, NULL, _IOLBF, 0);
    snprintf(root, sizeof root, "%s/demo", dir);
    if (maildir_ensure(root) != 0)
        return 99;
    test_folders();
    test_rename();
    test_subscriptions();
    test_append();
    test_keywords();
    test_copy_move();
    test_refresh();
    test_refresh_unchanged();
    test_uidvalidity_change();
    test_many_folders();
    test_append_in_place();
    test_copy_after_crash();
    if (tmpdir_remove(dir) != 0)
        return 99;
    return tap_done();
}
