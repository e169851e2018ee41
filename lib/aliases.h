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

/* A list's owner: "owner-<local>@<domain>" when that alias exists. 1 found (written to
 * owner), 0 none. */
int aliases_owner(const struct aliases *a, const char *address, char *owner, size_t size);

#endif
