/*
 * aliases: the aliases file (yubin-aliases(5)) and its expansion. One alias or list a line:
 *
 *     # comment
 *     postmaster@example.test: demo@example.test
 *     team@example.test: alice, bob@example.test, carol@elsewhere.test
 *         dave@example.test                 (a line starting with a blank continues the list)
 *     owner-team@example.test: alice        (the owner of team@: its bounces go there)
 *
 * A target without '@' is in the alias's own domain. Names and targets are RFC 5321 mailboxes
 * and compare case-insensitively. Aliases nest; expansion stops at ALIASES_MAX_DEPTH levels
 * and ALIASES_MAX_TARGETS results, and an alias met again inside its own expansion is taken as
 * a mailbox (so "a: a, b" keeps a copy for a). Programs ("|cmd") and files ("/path") are not
 * targets: such a line is an error. It never runs anything and never writes the file.
 */
#ifndef YUBIN_ALIASES_H
#define YUBIN_ALIASES_H

#include <stddef.h>

#include "addr.h"

#define ALIASES_MAX_DEPTH 8
#define ALIASES_MAX_TARGETS 1000
#define ALIASES_MAX_FILE (4u << 20) /* a larger file is refused */

struct alias_entry {
    char *name;          /* "local@domain", lower case */
    size_t first, count; /* its targets in aliases.targets */
    unsigned line;       /* where it is defined in the file */
};

struct aliases {
    struct alias_entry *entries; /* sorted by name */
    size_t n_entries;
    char **targets; /* "local@domain": domain lower case, local part as written */
    size_t n_targets;
};

/* Reads path. 0 ok (a missing file is an empty table), -1 with "path:line: why" in err (a
 * syntax error or a file that cannot be read; errno tells which). */
int aliases_load(struct aliases *a, const char *path, char *err, size_t errlen);
void aliases_free(struct aliases *a);

/* Like aliases_load, but reads on past a bad line (yubin-check): report(arg, "path:line: why")
 * is called for every error, and a holds the lines that were good. Returns the number of
 * errors (0: all good), or -1 (reported too) if the file cannot be read. Free a in any case. */
typedef void (*aliases_report_fn)(void *arg, const char *msg);
int aliases_check(struct aliases *a, const char *path, aliases_report_fn report, void *arg);

/* The entry for address (any case), or NULL. */
const struct alias_entry *aliases_find(const struct aliases *a, const char *address);

enum aliases_status {
    ALIASES_EXPANDED = 0, /* targets filled */
    ALIASES_NOT_ALIAS,    /* address is no alias: targets empty */
    ALIASES_TOO_DEEP,     /* nesting over ALIASES_MAX_DEPTH */
    ALIASES_TOO_MANY,     /* over ALIASES_MAX_TARGETS results */
    ALIASES_NOMEM,
};

struct aliases_result {
    char (*targets)[ADDR_SIZE]; /* final mailboxes (domain lower case), each once (compared
                                   case-insensitively), depth first in file order */
    size_t n_targets;
    unsigned loops; /* aliases met again inside their own expansion */
};

/* Expands address fully. r is filled on ALIASES_EXPANDED; free it with aliases_result_free
 * whatever the status. */
int aliases_expand(const struct aliases *a, const char *address, struct aliases_result *r);
void aliases_result_free(struct aliases_result *r);

/* The expansion as a tree (yubin-check): aliases_expand with visit(arg, depth, address, e,
 * loop) called for each node in the same depth-first order, depth 0 being address itself: e
 * is the alias entry when the node is an alias being expanded, NULL for a mailbox (a leaf);
 * loop is 1 for an alias met again inside its own expansion (kept as a mailbox). A member
 * reached a second time is visited again, though it is delivered once. Same result codes. */
typedef void (*aliases_visit_fn)(void *arg, size_t depth, const char *address,
                                 const struct alias_entry *e, int loop);
int aliases_walk(const struct aliases *a, const char *address, aliases_visit_fn visit, void *arg,
                 struct aliases_result *r);

/* A list's owner: "owner-<local>@<domain>" when that alias exists. 1 found (written to
 * owner), 0 none. */
int aliases_owner(const struct aliases *a, const char *address, char *owner, size_t size);

#endif
