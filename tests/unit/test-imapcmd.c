/*
 * test-imapcmd: imap4-in's folder and message commands (lib/imapcmd-*.c) run on a session
 * whose connection is one end of a socketpair, over a temporary Maildir: LIST (patterns,
 * SPECIAL-USE, LIST-EXTENDED selection and return options, LIST-STATUS), LSUB, STATUS,
 * CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, APPEND (its literal streamed), FETCH,
 * STORE, COPY, MOVE, SEARCH and their UID forms, each with its errors.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../lib/imapcmd.h"
#include "../../lib/imapsess.h"
#include "../../lib/mailbox.h"
#include "../../lib/maildir.h"
#include "../../lib/util.h"
#include "tap.h"

static struct imapsess s;
static int peer = -1;
static char root[256];
static char out[65536];

typedef int (*cmd_fn)(struct imapsess *, struct imaptok *);

/* What the session sent since the last call. */
static const char *drain(void)
{
    size_t n = 0;
    struct pollfd p = {peer, POLLIN, 0};
    netio_flush(&s.io);
    while (n + 1 < sizeof out && poll(&p, 1, 0) == 1) {
        ssize_t r = read(peer, out + n, sizeof out - 1 - n);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    out[n] = '\0';
    return out;
}

/* Runs one command (its arguments as the dispatcher leaves them: after the command name and
 * its SP). */
static const char *run(cmd_fn fn, int uid, const char *args)
{
    struct imaptok t;
    str_copy(s.tag, sizeof s.tag, "A1");
    s.replied = 0;
    s.uid = uid;
    imaptok_init(&t, args, strlen(args));
    int rc = fn(&s, &t);
    const char *o = drain();
    if (rc != 0)
        printf("# run returned %d\n", rc);
    return o;
}

static int has(const char *hay, const char *needle)
{
    int ok = strstr(hay, needle) != NULL;
    if (!ok)
        printf("# wanted \"%s\" in:\n# %s\n", needle, hay);
    return ok;
}

/* Runs one command that must be answered BAD. */
static void bad(cmd_fn fn, int uid, const char *args, const char *what)
{
    CHECK(has(run(fn, uid, args), "A1 BAD"), "%s", what);
}

static int hasnt(const char *hay, const char *needle)
{
    int ok = strstr(hay, needle) == NULL;
    if (!ok)
        printf("# did not want \"%s\" in:\n# %s\n", needle, hay);
    return ok;
}

static void put_message(const char *folder, const char *name, const char *text)
{
    char path[PATH_MAX + 64], dir[PATH_MAX];
    mailbox_folder_path(dir, sizeof dir, root, folder);
    snprintf(path, sizeof path, "%s/cur/%s", dir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
}

static void unlink_message(const char *folder, const char *name)
{
    char path[PATH_MAX + 64], dir[PATH_MAX];
    mailbox_folder_path(dir, sizeof dir, root, folder);
    snprintf(path, sizeof path, "%s/cur/%s", dir, name);
    unlink(path);
}

static void select_folder(const char *folder, int readonly)
{
    char path[PATH_MAX];
    imapsess_unselect(&s);
    mailbox_folder_path(path, sizeof path, root, folder);
    if (mailbox_open(&s.mb, path) != 0)
        printf("# cannot open %s: %s\n", path, strerror(errno));
    str_copy(s.folder, sizeof s.folder, folder);
    s.readonly = readonly;
    s.exists_told = s.mb.count;
    s.state = IMAP_SELECTED;
}

/* The flags part of the file name of message n (1-based) in the selected folder. */
static const char *file_flags(size_t n)
{
    const char *colon = strchr(mailbox_name(&s.mb, &s.mb.msgs[n - 1]), ':');
    return colon != NULL ? colon + 3 : "";
}

static const char MSG1[] = "From: a@example.test\nTo: b@example.test\nSubject: one\n\nbody one\n";
static const char MSG2[] = "From: c@example.test\nSubject: two\n\nsecond body\n";

static void test_list(void)
{
    const char *o = run(imapcmd_list, 0, "\"\" \"\"");
    CHECK(has(o, "* LIST (\\Noselect) \".\" \"\"\r\n") && has(o, "A1 OK"),
          "LIST \"\" \"\": the delimiter");
    o = run(imapcmd_list, 0, "\"\" *");
    CHECK(has(o, "* LIST (\\HasNoChildren) \".\" \"INBOX\"\r\n"), "LIST *: INBOX");
    CHECK(has(o, "* LIST (\\HasNoChildren \\Sent) \".\" \"Sent\"\r\n") &&
              has(o, "\\Trash) \".\" \"Trash\"") && has(o, "\\Junk) \".\" \"Junk\"") &&
              has(o, "\\Drafts) \".\" \"Drafts\"") && has(o, "\\Archive) \".\" \"Archive\""),
          "LIST *: the special folders with their SPECIAL-USE attributes");
    CHECK(strstr(o, "\"INBOX\"") < strstr(o, "\"Archive\""), "INBOX first");

    o = run(imapcmd_create, 0, "Lists.yubin");
    CHECK(has(o, "A1 OK CREATE"), "CREATE Lists.yubin");
    o = run(imapcmd_list, 0, "\"\" %");
    CHECK(has(o, "(\\HasChildren) \".\" \"Lists\"") && hasnt(o, "Lists.yubin"),
          "LIST %%: Lists made as a parent, with children; its child not listed");
    o = run(imapcmd_list, 0, "Lists. %");
    CHECK(has(o, "(\\HasNoChildren) \".\" \"Lists.yubin\"") && hasnt(o, "\"Sent\""),
          "LIST Lists. %%: the reference is a prefix");
    o = run(imapcmd_list, 0, "\"\" inbox");
    CHECK(has(o, "\"INBOX\"") && hasnt(o, "Sent"), "LIST \"\" inbox: INBOX in any case");
    o = run(imapcmd_list, 0, "\"\" (INBOX Sent)");
    CHECK(has(o, "\"INBOX\"") && has(o, "\"Sent\"") && hasnt(o, "Trash"),
          "LIST with two patterns (RFC 5258)");
    o = run(imapcmd_list, 0, "(SPECIAL-USE) \"\" *");
    CHECK(has(o, "\"Sent\"") && hasnt(o, "INBOX") && hasnt(o, "Lists"),
          "LIST (SPECIAL-USE): only the special folders");
    o = run(imapcmd_list, 0, "\"\" % RETURN (SPECIAL-USE)");
    CHECK(has(o, "\\Sent) \".\" \"Sent\"") && has(o, "A1 OK"), "RETURN (SPECIAL-USE)");
    bad(imapcmd_list, 0, "(RECURSIVEMATCH) \"\" *", "RECURSIVEMATCH alone is BAD");
    bad(imapcmd_list, 0, "(FOO) \"\" *", "an unknown selection option is BAD");
    bad(imapcmd_list, 0, "\"\"", "LIST without a pattern is BAD");
    bad(imapcmd_list, 0, "\"\" * RETURN (STATUS (FOO))", "RETURN (STATUS (FOO)) is BAD");
}

static void test_subscriptions(void)
{
    const char *o = run(imapcmd_subscribe, 0, "Sent");
    CHECK(has(o, "A1 OK SUBSCRIBE"), "SUBSCRIBE Sent");
    o = run(imapcmd_subscribe, 0, "Lists.yubin");
    o = run(imapcmd_subscribe, 0, "Gone");
    CHECK(has(o, "A1 OK"), "SUBSCRIBE a name that is no folder");
    o = run(imapcmd_list, 0, "\"\" * RETURN (SUBSCRIBED)");
    CHECK(has(o, "(\\HasNoChildren \\Subscribed \\Sent) \".\" \"Sent\"") &&
              has(o, "(\\HasNoChildren) \".\" \"INBOX\"") && hasnt(o, "Gone"),
          "RETURN (SUBSCRIBED) marks the subscribed folders");
    o = run(imapcmd_list, 0, "(SUBSCRIBED) \"\" *");
    CHECK(has(o, "(\\NonExistent \\Subscribed) \".\" \"Gone\"") && hasnt(o, "INBOX") &&
              has(o, "\"Sent\""),
          "LIST (SUBSCRIBED): the subscribed names, one that is no folder \\NonExistent");
    o = run(imapcmd_list, 0, "(SUBSCRIBED RECURSIVEMATCH) \"\" %");
    CHECK(has(o, "\"Lists\" (\"CHILDINFO\" (\"SUBSCRIBED\"))"),
          "RECURSIVEMATCH: a parent of a subscribed child gets CHILDINFO");
    o = run(imapcmd_lsub, 0, "\"\" *");
    CHECK(has(o, "* LSUB () \".\" \"Sent\"") && has(o, "* LSUB () \".\" \"Lists.yubin\"") &&
              has(o, "* LSUB (\\Noselect) \".\" \"Gone\""),
          "LSUB *");
    o = run(imapcmd_lsub, 0, "\"\" %");
    CHECK(has(o, "* LSUB (\\Noselect) \".\" \"Lists\"") && hasnt(o, "Lists.yubin"),
          "LSUB %%: the unsubscribed parent of a subscribed name, \\Noselect");
    o = run(imapcmd_unsubscribe, 0, "Gone");
    o = run(imapcmd_lsub, 0, "\"\" *");
    CHECK(hasnt(o, "Gone"), "UNSUBSCRIBE");
    o = run(imapcmd_subscribe, 0, "\"bad&name\"");
    CHECK(has(o, "A1 NO [CANNOT]"), "SUBSCRIBE: a name that is not modified UTF-7");
}

static void test_create_delete_rename(void)
{
    const char *o = run(imapcmd_create, 0, "Sent");
    CHECK(has(o, "A1 NO [ALREADYEXISTS]"), "CREATE an existing folder");
    o = run(imapcmd_create, 0, "inbox");
    CHECK(has(o, "A1 NO [ALREADYEXISTS]"), "CREATE INBOX");
    o = run(imapcmd_create, 0, "\"Work.\"");
    CHECK(has(o, "A1 OK"), "CREATE with a trailing delimiter");
    o = run(imapcmd_list, 0, "\"\" Work");
    CHECK(has(o, "\"Work\""), "  made Work");
    o = run(imapcmd_create, 0, "\"a*b\"");
    CHECK(has(o, "A1 NO [CANNOT]"), "CREATE with a wildcard");
    o = run(imapcmd_create, 0, "\"&AGE-\"");
    CHECK(has(o, "A1 NO [CANNOT]"), "CREATE: not modified UTF-7");
    o = run(imapcmd_create, 0, "\"Entw&APw-rfe\"");
    CHECK(has(o, "A1 OK"), "CREATE a modified UTF-7 name");
    o = run(imapcmd_create, 0, "\"..x\"");
    CHECK(has(o, "A1 NO [CANNOT]"), "CREATE ..x");
    bad(imapcmd_create, 0, "", "CREATE without a name");
    o = run(imapcmd_create, 0, "a b");
    CHECK(has(o, "A1 BAD"), "CREATE with two names");

    o = run(imapcmd_delete, 0, "INBOX");
    CHECK(has(o, "A1 NO [CANNOT]"), "DELETE INBOX");
    o = run(imapcmd_delete, 0, "Nowhere");
    CHECK(has(o, "A1 NO [NONEXISTENT]"), "DELETE a folder that does not exist");
    o = run(imapcmd_delete, 0, "Lists");
    CHECK(has(o, "A1 NO"), "DELETE a parent with children is refused");

    o = run(imapcmd_rename, 0, "Work Play");
    CHECK(has(o, "A1 OK RENAME"), "RENAME Work Play");
    o = run(imapcmd_list, 0, "\"\" *");
    CHECK(has(o, "\"Play\"") && hasnt(o, "\"Work\""), "  Play listed, Work gone");
    o = run(imapcmd_rename, 0, "Nowhere Else");
    CHECK(has(o, "A1 NO [NONEXISTENT]"), "RENAME a folder that does not exist");
    o = run(imapcmd_rename, 0, "Play Sent");
    CHECK(has(o, "A1 NO [ALREADYEXISTS]"), "RENAME onto an existing folder");
    o = run(imapcmd_rename, 0, "Play INBOX");
    CHECK(has(o, "A1 NO [ALREADYEXISTS]"), "RENAME onto INBOX");

    select_folder("Play", 0);
    o = run(imapcmd_delete, 0, "Play");
    CHECK(has(o, "* OK [CLOSED]") && has(o, "A1 OK DELETE") && s.state == IMAP_AUTH,
          "DELETE the selected folder: CLOSED, back to the authenticated state");
}

static void test_status(void)
{
    put_message("INBOX", "1000.a.test,S=63,W=68:2,S", MSG1);
    put_message("INBOX", "1001.b.test,S=47,W=51:2,", MSG2);
    const char *o =
        run(imapcmd_status, 0, "INBOX (MESSAGES UIDNEXT UIDVALIDITY UNSEEN RECENT SIZE)");
    CHECK(has(o, "* STATUS \"INBOX\" (MESSAGES 2 UIDNEXT 3 UIDVALIDITY ") &&
              has(o, " UNSEEN 1 RECENT 0 SIZE ") && has(o, "A1 OK"),
          "STATUS INBOX");
    put_message("INBOX", "1002.c.test,S=47,W=51:2,ST", MSG2);
    o = run(imapcmd_status, 0, "INBOX (DELETED MESSAGES)");
    CHECK(has(o, "* STATUS \"INBOX\" (DELETED 1 MESSAGES 3)"), "STATUS DELETED (RFC 9051)");
    unlink_message("INBOX", "1002.c.test,S=47,W=51:2,ST");
    o = run(imapcmd_status, 0, "Nowhere (MESSAGES)");
    CHECK(has(o, "A1 NO [NONEXISTENT]"), "STATUS of a folder that does not exist");
    bad(imapcmd_status, 0, "INBOX (FOO)", "STATUS with an unknown item");
    bad(imapcmd_status, 0, "INBOX ()", "STATUS with no item");
    char implied[PATH_MAX];
    snprintf(implied, sizeof implied, "%s/.Implied.child", root);
    maildir_ensure(implied); /* Maildir++ without .Implied: a \Noselect parent */
    o = run(imapcmd_list, 0, "\"\" % RETURN (STATUS (MESSAGES UNSEEN))");
    CHECK(has(o, "\"INBOX\"\r\n* STATUS \"INBOX\" (MESSAGES 2 UNSEEN 1)\r\n") &&
              has(o, "* STATUS \"Sent\" (MESSAGES 0 UNSEEN 0)") &&
              has(o, "* LIST (\\Noselect \\HasChildren) \".\" \"Implied\"\r\n* LIST") &&
              hasnt(o, "* STATUS \"Implied\""),
          "LIST-STATUS: a STATUS after each selectable folder, none for \\Noselect");
}

static void test_fetch_store(void)
{
    select_folder("INBOX", 0);
    const char *o = run(imapcmd_fetch, 0, "1:* (UID FLAGS)");
    CHECK(has(o, "* 1 FETCH (UID 1 FLAGS (\\Seen))") && has(o, "* 2 FETCH (UID 2 FLAGS ())") &&
              has(o, "A1 OK"),
          "FETCH 1:* (UID FLAGS)");
    o = run(imapcmd_fetch, 1, "2 FLAGS");
    CHECK(has(o, "* 2 FETCH (UID 2 FLAGS ())"), "UID FETCH always includes UID");
    bad(imapcmd_fetch, 0, "3 FLAGS", "FETCH of a sequence number past the end");
    bad(imapcmd_fetch, 0, "0 FLAGS", "FETCH 0");
    bad(imapcmd_fetch, 0, "1:x FLAGS", "FETCH with a bad set");
    bad(imapcmd_fetch, 0, "1 (FLAGS FOO)", "FETCH with an unknown item");
    o = run(imapcmd_fetch, 1, "99 FLAGS");
    CHECK(!strncmp(o, "A1 OK", 5), "UID FETCH of a UID that does not exist: nothing, OK");

    o = run(imapcmd_fetch, 0, "2 BODY.PEEK[]");
    CHECK(has(o, "second body") && strchr(file_flags(2), 'S') == NULL,
          "BODY.PEEK[] does not set \\Seen");
    select_folder("INBOX", 1);
    o = run(imapcmd_fetch, 0, "2 BODY[]");
    CHECK(has(o, "second body") && strchr(file_flags(2), 'S') == NULL,
          "BODY[] on a read-only folder does not set \\Seen");
    o = run(imapcmd_store, 0, "2 +FLAGS (\\Flagged)");
    CHECK(has(o, "A1 NO"), "STORE on a read-only folder");
    select_folder("INBOX", 0);
    o = run(imapcmd_fetch, 0, "2 BODY[TEXT]");
    CHECK(has(o, "FLAGS (\\Seen)") && strchr(file_flags(2), 'S') != NULL,
          "BODY[TEXT] sets \\Seen on disk and says so");

    o = run(imapcmd_store, 0, "1:2 +FLAGS (\\Flagged)");
    CHECK(has(o, "* 1 FETCH (FLAGS (\\Flagged \\Seen))") && has(o, "A1 OK STORE"), "STORE +FLAGS");
    o = run(imapcmd_store, 1, "2 -FLAGS.SILENT (\\Seen)");
    CHECK(!strncmp(o, "A1 OK", 5) && strcmp(file_flags(2), "F") == 0,
          "UID STORE -FLAGS.SILENT: no FETCH, flags on disk");
    o = run(imapcmd_store, 1, "2 FLAGS (\\Answered $Forwarded work)");
    CHECK(has(o, "* 2 FETCH (UID 2 FLAGS (") && has(o, "\\Answered") && has(o, "work") &&
              hasnt(o, "\\Flagged"),
          "UID STORE FLAGS replaces, with a keyword, and says UID");
    o = run(imapcmd_fetch, 0, "2 FLAGS");
    CHECK(has(o, "work") && has(o, "$Forwarded"), "the keyword is kept");
    bad(imapcmd_store, 0, "1 +FLAGS (\\Recent)", "\\Recent cannot be stored");
    bad(imapcmd_store, 0, "1 +FLAGS", "STORE without flags");
    bad(imapcmd_store, 0, "1 BOGUS (\\Seen)", "STORE with a bad item");
    bad(imapcmd_store, 0, "5 +FLAGS (\\Seen)", "STORE past the end");
}

static void test_search(void)
{
    const char *o = run(imapcmd_search, 0, "ALL");
    CHECK(has(o, "* SEARCH 1 2\r\n"), "SEARCH ALL");
    o = run(imapcmd_search, 1, "SUBJECT two");
    CHECK(has(o, "* SEARCH 2\r\n"), "UID SEARCH SUBJECT");
    o = run(imapcmd_search, 0, "FLAGGED");
    CHECK(has(o, "* SEARCH 1\r\n"), "SEARCH FLAGGED");
    o = run(imapcmd_search, 0, "KEYWORD work");
    CHECK(has(o, "* SEARCH 2\r\n"), "SEARCH KEYWORD");
    s.mb.msgs[1].recent = 1;
    o = run(imapcmd_search, 0, "RECENT");
    CHECK(has(o, "* SEARCH 2\r\n"), "SEARCH RECENT: the session's \\Recent");
    s.mb.msgs[1].recent = 0;
    o = run(imapcmd_search, 0, "CHARSET KOI8-R ALL");
    CHECK(has(o, "A1 NO [BADCHARSET"), "SEARCH with an unknown charset");
    bad(imapcmd_search, 0, "FOO", "SEARCH with an unknown key");
    o = run(imapcmd_search, 0, "RETURN (COUNT) ALL");
    CHECK(has(o, "* ESEARCH (TAG \"A1\") COUNT 2"), "ESEARCH RETURN (COUNT)");
}

static void test_copy_move(void)
{
    const char *o = run(imapcmd_copy, 0, "1:2 Sent");
    CHECK(has(o, "A1 OK [COPYUID ") && has(o, " 1:2 1:2] COPY"), "COPY with COPYUID");
    o = run(imapcmd_status, 0, "Sent (MESSAGES)");
    CHECK(has(o, "(MESSAGES 2)"), "  the copies are there");
    o = run(imapcmd_copy, 0, "1 Nowhere");
    CHECK(has(o, "A1 NO [TRYCREATE]"), "COPY to a folder that does not exist");
    o = run(imapcmd_copy, 1, "99 Sent");
    CHECK(has(o, "A1 OK") && hasnt(o, "COPYUID"), "UID COPY of nothing");
    o = run(imapcmd_copy, 0, "3 Sent");
    CHECK(has(o, "A1 BAD"), "COPY past the end");

    o = run(imapcmd_move, 0, "1 Trash");
    CHECK(has(o, "* OK [COPYUID ") && has(o, " 1 1] ") && has(o, "* 1 EXPUNGE\r\n") &&
              has(o, "A1 OK MOVE") && strstr(o, "COPYUID") < strstr(o, "EXPUNGE"),
          "MOVE: COPYUID, then EXPUNGE, then OK");
    CHECK(s.mb.count == 1 && s.mb.msgs[0].uid == 2, "  one message left, UID 2");
    o = run(imapcmd_move, 1, "2 Nowhere");
    CHECK(has(o, "A1 NO [TRYCREATE]") && s.mb.count == 1, "MOVE to a folder that does not exist");
    select_folder("INBOX", 1);
    o = run(imapcmd_move, 0, "1 Trash");
    CHECK(has(o, "A1 NO") && s.mb.count == 1, "MOVE from a read-only folder");
}

static const char *append(const char *args, const char *literal, int nonsync)
{
    size_t n = strlen(literal);
    memset(&s.lit, 0, sizeof s.lit);
    s.lit.size = s.lit.left = n;
    s.lit.pending = 1;
    s.lit.nonsync = nonsync;
    if (write(peer, literal, n) != (ssize_t)n || write(peer, "\r\n", 2) != 2)
        printf("# write failed\n");
    return run(imapcmd_append, 0, args);
}

static void test_append(void)
{
    imapsess_unselect(&s);
    const char *o = append("Drafts (\\Draft \\Seen) \"17-Jul-1996 02:44:25 -0700\" ",
                           "From: me\r\nSubject: draft\r\n\r\nhello\r\n", 0);
    CHECK(has(o, "+ ") && has(o, "A1 OK [APPENDUID ") && has(o, " 1] APPEND"),
          "APPEND: the continuation, then APPENDUID");
    char path[PATH_MAX];
    struct mailbox mb;
    mailbox_folder_path(path, sizeof path, root, "Drafts");
    CHECK(mailbox_open(&mb, path) == 0 && mb.count == 1 &&
              strstr(mailbox_name(&mb, &mb.msgs[0]), ",S=31,W=35:2,DS") != NULL &&
              mb.msgs[0].crlf_size == 35,
          "  stored with its flags, LF line ends");
    time_t when = 0;
    CHECK(mailbox_internaldate(&mb, &mb.msgs[0], &when) == 0 && when == 837596665,
          "  INTERNALDATE as given");
    mailbox_close(&mb);
    o = append("Nowhere ", "x\r\n", 1);
    CHECK(has(o, "A1 NO [TRYCREATE]") && hasnt(o, "+ "), "APPEND to a folder that does not exist");
    o = append("INBOX (\\Bogus) ", "x\r\n", 1);
    CHECK(has(o, "A1 BAD"), "APPEND with a bad flag");
    o = append("INBOX \"31-Foo-2000 00:00:00 +0000\" ", "x\r\n", 1);
    CHECK(has(o, "A1 BAD"), "APPEND with a bad date");
    imapsess_literal_finish(&s);
    drain();
}

static int rm_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    return type == FTW_DP ? rmdir(path) : unlink(path);
}

int main(void)
{
    int sv[2];
    char tmpl[] = "/tmp/test-imapcmd-XXXXXX";
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0 || mkdtemp(tmpl) == NULL)
        return 1;
    snprintf(root, sizeof root, "%s/mail", tmpl);
    if (maildir_ensure(root) != 0 || mailbox_ensure_folders(root) != 0)
        return 1;
    peer = sv[1];
    imapsess_init(&s, sv[0], sv[0]);
    conf_defaults(&s.conf);
    s.conf.max_errors = 1000;
    s.state = IMAP_AUTH;
    str_copy(s.user, sizeof s.user, "demo@example.test");
    str_copy(s.root, sizeof s.root, root);

    test_list();
    test_subscriptions();
    test_create_delete_rename();
    test_status();
    test_fetch_store();
    test_search();
    test_copy_move();
    test_append();

    imapsess_free(&s);
    nftw(tmpl, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
