/*
 * users-check: the users file read line by line for yubin-check (users_check in users.h):
 * every line that lib/users would skip or misread is reported with its line number, and the
 * check goes on to the end. It never verifies or prints a hash, and never writes the file.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "users.h"
#include "util.h"

struct seen {
    char *address; /* lower case */
    unsigned line;
};

static int by_address(const void *x, const void *y)
{
    const struct seen *a = x, *b = y;
    int c = strcmp(a->address, b->address);
    return c != 0 ? c : (a->line > b->line) - (a->line < b->line);
}

static void report_at(users_report_fn report, void *arg, const char *path, unsigned line,
                      const char *why, const char *what)
{
    char msg[4096 + 600];
    str_format(msg, sizeof msg, "%s:%u: %s%s%.300s", path, line, why, what ? ": " : "",
               what ? what : "");
    report(arg, msg);
}

/* One line: 0 good (address kept in *s), 1 reported. */
static int check_line(char *line, unsigned lineno, struct seen *s, const char *path,
                      users_report_fn report, void *arg)
{
    const char *why = NULL;
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return report_at(report, arg, path, lineno, "expected 'user@domain:$argon2id$...'", NULL),
               1;
    *colon = '\0';
    if (!users_address_ok(line, &why))
        return report_at(report, arg, path, lineno, why ? why : "not a mailbox name", line), 1;
    if (strncmp(colon + 1, "$argon2id$", 10) != 0 || strchr(colon + 1, ' ') != NULL ||
        strlen(colon + 1) >= USERS_HASH_SIZE)
        return report_at(report, arg, path, lineno,
                         "not an argon2id hash (set the password with yubin-user passwd)", line),
               1;
    s->address = strdup(line);
    if (s->address == NULL)
        return report_at(report, arg, path, lineno, "out of memory", NULL), 1;
    str_lower(s->address);
    s->line = lineno;
    return 0;
}

/* The same address on two lines: users_lookup would only ever see the first. */
static int duplicates(struct seen *s, size_t n, const char *path, users_report_fn report, void *arg)
{
    char what[USERS_ADDRESS_SIZE + 40];
    int errors = 0;
    if (n > 1)
        qsort(s, n, sizeof *s, by_address);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(s[i - 1].address, s[i].address) != 0)
            continue;
        str_format(what, sizeof what, "%.256s (first at line %u)", s[i].address, s[i - 1].line);
        report_at(report, arg, path, s[i].line, "a mailbox is listed twice", what);
        errors++;
    }
    return errors;
}

int users_check(const char *users_file, users_report_fn report, void *arg)
{
    char line[4096];
    FILE *f = fopen(users_file, "re");
    if (f == NULL) {
        if (errno == ENOENT)
            return 0;
        str_format(line, sizeof line, "%.3000s: %s", users_file, strerror(errno));
        return report(arg, line), -1;
    }
    struct seen *seen = NULL;
    size_t n = 0, cap = 0;
    unsigned lineno = 0;
    int errors = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        size_t len = strlen(line);
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(f)) {
            int ch;
            while ((ch = getc(f)) != EOF && ch != '\n')
                ;
            report_at(report, arg, users_file, lineno, "line too long", NULL);
            errors++;
            continue;
        }
        if (line[0] == '#' || line[0] == '\0')
            continue;
        if (n == cap) {
            struct seen *p = realloc(seen, (cap = cap ? cap * 2 : 64) * sizeof *p);
            if (p == NULL) {
                report_at(report, arg, users_file, lineno, "out of memory", NULL);
                errors++;
                break;
            }
            seen = p;
        }
        if (check_line(line, lineno, &seen[n], users_file, report, arg) == 0)
            n++;
        else
            errors++;
    }
    if (ferror(f)) {
        report_at(report, arg, users_file, lineno, "read error", NULL);
        errors++;
    }
    fclose(f);
    errors += duplicates(seen, n, users_file, report, arg);
    for (size_t i = 0; i < n; i++)
        free(seen[i].address);
    free(seen);
    return errors;
}
