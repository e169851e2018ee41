/*
 * test-aliases: lib/aliases against golden cases (tests/fixtures/aliases/basic.in expanded as
 * basic.ref says), plus files that must be refused with their line number, the result limit
 * and the owner lookup. It writes only to a temporary directory of its own.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aliases.h"
#include "tap.h"
#include "util.h"

static char fixtures[4096];
static char tmpdir[] = "/tmp/test-aliases-XXXXXX";

static const char *status_name(int rc)
{
    switch (rc) {
    case ALIASES_NOT_ALIAS:
        return "NOT_ALIAS";
    case ALIASES_TOO_DEEP:
        return "TOO_DEEP";
    case ALIASES_TOO_MANY:
        return "TOO_MANY";
    case ALIASES_NOMEM:
        return "NOMEM";
    default:
        return "?";
    }
}

/* The expansion of address as one line, in basic.ref's words. */
static void describe(const struct aliases *a, const char *address, char *out, size_t size)
{
    struct aliases_result r;
    int rc = aliases_expand(a, address, &r);
    out[0] = '\0';
    if (rc != ALIASES_EXPANDED) {
        str_copy(out, size, status_name(rc));
    } else {
        size_t used = 0;
        for (size_t i = 0; i < r.n_targets; i++)
            used += (size_t)snprintf(out + used, size - used, "%s%s", i ? ", " : "", r.targets[i]);
        if (r.loops)
            snprintf(out + used, size - used, " (loops %u)", r.loops);
    }
    aliases_result_free(&r);
}

static void check_golden(void)
{
    char path[4200], line[2048], got[4096], err[512];
    struct aliases a;
    snprintf(path, sizeof path, "%s/basic.in", fixtures);
    CHECK(aliases_load(&a, path, err, sizeof err) == 0, "basic.in loads (%s)", err);
    snprintf(path, sizeof path, "%s/basic.ref", fixtures);
    FILE *ref = fopen(path, "r");
    CHECK(ref != NULL, "basic.ref opens");
    while (ref != NULL && fgets(line, sizeof line, ref) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *arrow = strstr(line, " => ");
        if (line[0] == '#' || arrow == NULL)
            continue;
        *arrow = '\0';
        describe(&a, line, got, sizeof got);
        CHECK_STR(got, arrow + 4, "expansion of %s", line);
    }
    if (ref != NULL)
        fclose(ref);
    char owner[ADDR_SIZE];
    CHECK(aliases_owner(&a, "team@example.test", owner, sizeof owner) == 1, "team has an owner");
    CHECK_STR(owner, "owner-team@example.test", "the owner address");
    CHECK(aliases_owner(&a, "staff@example.test", owner, sizeof owner) == 0, "staff has none");
    CHECK(aliases_find(&a, "TEAM@EXAMPLE.TEST") != NULL, "find ignores case");
    aliases_free(&a);
}

/* Writes text to a file in tmpdir and loads it. */
static int load_text(const char *text, char *err, size_t errlen)
{
    char path[256];
    struct aliases a;
    snprintf(path, sizeof path, "%s/aliases", tmpdir);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return -2;
    fputs(text, f);
    fclose(f);
    err[0] = '\0';
    int rc = aliases_load(&a, path, err, errlen);
    aliases_free(&a);
    return rc;
}

struct bad_case {
    const char *text;
    const char *why; /* expected in the error, after "aliases:" */
};

static const struct bad_case bad[] = {
    {"a@example.test b@example.test\n", ":1: expected 'name@domain: target, ...'"},
    {"# ok\n\na@example.test: |/bin/sh\n", ":3: programs and files are not alias targets"},
    {"a@example.test: /var/mail/x\n", ":1: programs and files are not alias targets"},
    {"a@example.test: b@@x\n", ":1: bad address syntax"},
    {"a@example.test: b c@x.test\n", ":1: bad address syntax"},
    {"a: b@example.test\n", ":1: bad address syntax"},
    {"\"a b\"@example.test: c@example.test\n", ":1: an alias name must be a plain mailbox"},
    {"  b@example.test\n", ":1: a continuation line with no alias before it"},
    {"a@example.test:\nb@example.test: c\n", ":1: an alias without targets"},
    {"a@example.test: b\nA@Example.test: c\n",
     ":2: an alias is defined twice: a@example.test (first at line 1)"},
    {"a@example.test: "
     "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
     ":1: local part too long"},
};

static void check_bad_files(void)
{
    char err[512];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = load_text(bad[i].text, err, sizeof err);
        CHECK(rc == -1 && strstr(err, bad[i].why) != NULL, "bad file %zu refused with '%s' (%s)", i,
              bad[i].why, err);
    }
    CHECK(load_text("a@example.test: b, c, \n\t d\n# x\n", err, sizeof err) == 0,
          "trailing comma and tab continuation accepted");
    struct aliases a;
    CHECK(aliases_load(&a, "/nonexistent/aliases", err, sizeof err) == 0 && a.n_entries == 0,
          "a missing file is an empty table");
    aliases_free(&a);
    CHECK(aliases_load(&a, tmpdir, err, sizeof err) == -1, "a directory is refused (%s)", err);
}

struct collected {
    char text[4096];
    int n;
};

static void collect(void *arg, const char *msg)
{
    struct collected *c = arg;
    size_t used = strlen(c->text);
    snprintf(c->text + used, sizeof c->text - used, "%s\n", msg);
    c->n++;
}

/* aliases_check finds every error of a file in one read, each with its line, and keeps the
 * good lines. */
static void check_every_error(void)
{
    char path[256];
    struct aliases a;
    struct collected c = {"", 0};
    snprintf(path, sizeof path, "%s/aliases", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("good@example.test: alice\n"           /* 1 */
          "bad@example.test: |/bin/sh\n"         /* 2 */
          "no colon here\n"                      /* 3 */
          "  orphan@example.test\n"              /* 4: continues the refused line 3 */
          "empty@example.test:\n"                /* 5 */
          "good@example.test: bob\n"             /* 6 */
          "fine@example.test: carol,\n  dave\n", /* 7, 8 */
          f);
    fclose(f);
    int n = aliases_check(&a, path, collect, &c);
    CHECK(n == 4 && c.n == 4, "four errors: %d", n);
    CHECK(strstr(c.text, "aliases:2: programs and files are not alias targets") != NULL, "2");
    CHECK(strstr(c.text, "aliases:3: expected") != NULL, "3");
    CHECK(strstr(c.text, "aliases:5: an alias without targets") != NULL, "5");
    CHECK(strstr(c.text, "aliases:6: an alias is defined twice: good@example.test (first at "
                         "line 1)") != NULL,
          "6");
    const struct alias_entry *e = aliases_find(&a, "fine@example.test");
    CHECK(e != NULL && e->count == 2 && e->line == 7, "the good lines are kept, with their line");
    aliases_free(&a);
}

struct tree {
    char text[1024];
};

static void node(void *arg, size_t depth, const char *address, const struct alias_entry *e,
                 int loop)
{
    struct tree *t = arg;
    size_t used = strlen(t->text);
    snprintf(t->text + used, sizeof t->text - used, "%zu:%s%s%s ", depth, address,
             e ? "(alias)" : "", loop ? "(loop)" : "");
}

/* aliases_walk shows the expansion as a tree, in the order aliases_expand takes. */
static void check_walk(void)
{
    char err[512];
    struct aliases a;
    struct aliases_result r;
    struct tree t = {""};
    CHECK(load_text("list@example.test: a, sub\nsub@example.test: b, list\n", err, sizeof err) == 0,
          "loop file loads");
    char path[256];
    snprintf(path, sizeof path, "%s/aliases", tmpdir);
    aliases_load(&a, path, err, sizeof err);
    CHECK(aliases_walk(&a, "list@example.test", node, &t, &r) == ALIASES_EXPANDED, "walks");
    CHECK_STR(t.text,
              "0:list@example.test(alias) 1:a@example.test 1:sub@example.test(alias) "
              "2:b@example.test 2:list@example.test(loop) ",
              "the tree");
    CHECK(r.n_targets == 3 && r.loops == 1, "the same result as aliases_expand");
    aliases_result_free(&r);
    aliases_free(&a);
}

static void check_too_many(void)
{
    char path[256], err[512] = "", line[64];
    struct aliases a;
    struct aliases_result r;
    snprintf(path, sizeof path, "%s/many", tmpdir);
    FILE *f = fopen(path, "w");
    fputs("big@example.test: half1, half2\nhalf1@example.test: u0\n", f);
    for (int i = 1; i < 500; i++)
        fprintf(f, " u%d\n", i);
    fputs("half2@example.test: v0\n", f);
    for (int i = 1; i < 501; i++) {
        snprintf(line, sizeof line, " v%d,\n", i);
        fputs(line, f);
    }
    fclose(f);
    CHECK(aliases_load(&a, path, err, sizeof err) == 0, "1001-member file loads (%s)", err);
    CHECK(aliases_expand(&a, "half1@example.test", &r) == ALIASES_EXPANDED && r.n_targets == 500,
          "500 members expand");
    aliases_result_free(&r);
    CHECK(aliases_expand(&a, "big@example.test", &r) == ALIASES_TOO_MANY,
          "1001 members are too many");
    aliases_result_free(&r);
    aliases_free(&a);
    unlink(path);
}

int main(void)
{
    const char *src = getenv("YUBIN_SRC");
    if (src != NULL)
        snprintf(fixtures, sizeof fixtures, "%s/tests/fixtures/aliases", src);
    else
        snprintf(fixtures, sizeof fixtures, "../fixtures/aliases");
    if (mkdtemp(tmpdir) == NULL)
        return 1;
    check_golden();
    check_bad_files();
    check_too_many();
    check_every_error();
    check_walk();
    char path[256];
    snprintf(path, sizeof path, "%s/aliases", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return tap_done();
}
