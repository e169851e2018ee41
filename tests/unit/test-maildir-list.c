/*
 * test-maildir-list: the POP3 listing of lib/maildir on a scratch Maildir: name parsing, the
 * move from new/ to cur/ at login, sizes from W= (and measured when W= is missing), order,
 * the session lock, and that a message arriving after the listing is not in it.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "maildir.h"
#include "tap.h"
#include "tmpdir.h"

static char dir[] = "/tmp/test-maildir-list-XXXXXX";
static char md[300];

static void test_parse(void)
{
    size_t ulen;
    uint64_t s, w;
    CHECK(maildir_parse_name("1700000000.M1R2.host,S=20,W=23:2,S", &ulen, &s, &w) == 0 &&
              ulen == 20 && s == 20 && w == 23,
          "unique, S= and W= with flags");
    CHECK(maildir_parse_name("1.a.host,W=9,S=7", &ulen, &s, &w) == 0 && s == 7 && w == 9,
          "fields in any order");
    CHECK(maildir_parse_name("1.a.host:2,", &ulen, &s, &w) == 1 && ulen == 8, "no sizes: measure");
    CHECK(maildir_parse_name("1.a.host,S=5", &ulen, &s, &w) == 1, "no W=: measure");
    CHECK(maildir_parse_name("1.a.host,W=99999999999999999999", &ulen, &s, &w) == 1,
          "an overflowing W= is no W=");
    CHECK(maildir_parse_name("1.a.host,W=12x,S=1", &ulen, &s, &w) == 1, "junk in W= ignored");
    CHECK(maildir_parse_name(".hidden", &ulen, &s, &w) == -1, "dot file refused");
    CHECK(maildir_parse_name(",S=1,W=1", &ulen, &s, &w) == -1, "empty unique refused");
}

static void test_list(void)
{
    struct maildir_list l;
    CHECK(maildir_ensure(md) == 0, "Maildir created");
    tmpdir_put(md, "new", "1700000002.M2R2.host,S=6,W=8", "a\nbcd\n");
    tmpdir_put(md, "new", "1700000001.M1R1.host,S=3,W=4", "xy\n");
    tmpdir_put(md, "cur", "1700000000.M0R0.host,S=1,W=2:2,S", "\n");
    tmpdir_put(md, "cur", "1700000003.M3R3.foreign:2,", "one\r\ntwo\nthree"); /* no sizes */
    tmpdir_put(md, "new", ".dotfile", "not a message");
    CHECK(maildir_list_load(&l, md) == 0, "list loads");
    CHECK(l.count == 4, "four messages (%zu)", l.count);
    CHECK(!tmpdir_exists(md, "new", "1700000001.M1R1.host,S=3,W=4") &&
              tmpdir_exists(md, "cur", "1700000001.M1R1.host,S=3,W=4:2,"),
          "new/ moved to cur/ with :2,");
    CHECK(tmpdir_exists(md, "new", ".dotfile"), "dot files stay");
    if (l.count == 4) {
        CHECK_STR(l.entries[0].name, "1700000000.M0R0.host,S=1,W=2:2,S", "oldest first");
        CHECK_STR(l.entries[1].name, "1700000001.M1R1.host,S=3,W=4:2,", "then the next");
        CHECK(l.entries[2].crlf_size == 8 && l.entries[2].size == 6, "sizes from the name");
        CHECK(l.entries[3].crlf_size == 15 && l.entries[3].size == 14,
              "measured without W= (CRLF kept, LF counted, no final LF): %llu",
              (unsigned long long)l.entries[3].crlf_size);
        CHECK(l.entries[1].unique_len == strlen("1700000001.M1R1.host"), "unique length");
        CHECK(l.total_crlf == 2 + 4 + 8 + 15, "total %llu", (unsigned long long)l.total_crlf);
    }
    tmpdir_put(md, "new", "1700000009.M9R9.host,S=1,W=2", "\n");
    CHECK(l.count == 4 && tmpdir_exists(md, "new", "1700000009.M9R9.host,S=1,W=2"),
          "a message arriving after the listing is not in it");
    maildir_list_free(&l);
    CHECK(l.entries == NULL && l.count == 0 && l.cur_fd == -1, "free resets");
    CHECK(maildir_list_load(&l, md) == 0 && l.count == 5, "the next session sees it");
    maildir_list_free(&l);
    CHECK(maildir_list_load(&l, "/nonexistent/maildir") == -1, "a missing Maildir fails");
}

static void test_lock(void)
{
    int a = -1, b = -1;
    CHECK(maildir_lock(md, &a) == 0, "first lock taken");
    CHECK(maildir_lock(md, &b) == 1, "second lock refused as in use");
    close(a);
    CHECK(maildir_lock(md, &b) == 0, "free again after close");
    close(b);
    CHECK(maildir_lock("/nonexistent/maildir", &a) == -1, "no Maildir: error");
}

/* maildir_ensure on a Maildir that is there (every login), and on a parent that is a file. */
static void test_ensure(void)
{
    char bad[400];
    CHECK(maildir_ensure(md) == 0 && tmpdir_exists(md, "tmp", ""), "an existing Maildir is kept");
    tmpdir_put(md, "", "afile", "x");
    snprintf(bad, sizeof bad, "%s/afile/sub/Maildir", md);
    CHECK(maildir_ensure(bad) == -1 && errno == ENOTDIR, "a file as a parent: ENOTDIR");
}

int main(void)
{
    if (mkdtemp(dir) == NULL)
        return 99;
    snprintf(md, sizeof md, "%s/mail/example.test/demo", dir);
    test_parse();
    test_list();
    test_lock();
    test_ensure();
    if (tmpdir_remove(dir) != 0)
        return 99;
    return tap_done();
}
