/*
 * aliases: loading the aliases file into a sorted table and expanding an address through it
 * (see aliases.h). The file is read once, bounded by ALIASES_MAX_FILE; every name and target
 * is checked by lib/addr before it is kept. Expansion is a depth-first walk bounded in depth
 * and in results. It must never execute a target, never loop, and never accept a line it
 * does not understand.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aliases.h"
#include "util.h"

/* Reads the whole file into a NUL-terminated buffer. 0 ok (missing: *text NULL), -1. */
static int read_file(const char *path, char **text, char *err, size_t errlen)
{
    struct stat st;
    *text = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return str_format(err, errlen, "%s: %s", path, strerror(errno)), -1;
    }
    if (fstat(fd, &st) != 0 || st.st_size < 0 || (size_t)st.st_size > ALIASES_MAX_FILE) {
        int e = errno;
        close(fd);
        errno = e == 0 ? EFBIG : e;
        return str_format(err, errlen, "%s: unreadable or larger than %u octets", path,
                          ALIASES_MAX_FILE),
               -1;
    }
    size_t size = (size_t)st.st_size, got = 0;
    char *buf = malloc(size + 1);
    while (buf != NULL && got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int e = errno;
    close(fd);
    if (buf == NULL || got < size) {
        free(buf);
        errno = buf == NULL ? ENOMEM : (e != 0 ? e : EIO);
        return str_format(err, errlen, "%s: cannot read: %s", path, strerror(errno)), -1;
    }
    buf[got] = '\0';
    *text = buf;
    return 0;
}

struct loader {
    struct aliases *a;
    size_t cap_entries, cap_targets;
    unsigned char *flawed; /* per entry: a line of it had an error (check mode) */
    size_t cap_flawed;
    const char *path;
    unsigned lineno;
    char *err;
    size_t errlen;
    aliases_report_fn report; /* check mode: every error goes here and loading goes on */
    void *report_arg;
    int errors;
    int skip_continuation; /* check mode: the entry line before was refused */
};

static int fail(struct loader *l, const char *why, const char *what)
{
    str_format(l->err, l->errlen, "%s:%u: %s%s%s", l->path, l->lineno, why, what ? ": " : "",
               what ? what : "");
    errno = EINVAL;
    return -1;
}

static int add_target(struct loader *l, char *item, const char *domain)
{
    char full[ADDR_SIZE];
    struct addr parsed;
    if (item[0] == '|' || item[0] == '/')
        return fail(l, "programs and files are not alias targets", item);
    if (strchr(item, '@') == NULL) {
        if (str_format(full, sizeof full, "%s@%s", item, domain) < 0)
            return fail(l, "target too long", item);
    } else if (str_copy(full, sizeof full, item) != 0) {
        return fail(l, "target too long", item);
    }
    int rc = addr_parse_mailbox(full, &parsed);
    if (rc != ADDR_OK)
        return fail(l, addr_error_text(rc), item);
    struct aliases *a = l->a;
    char *copy = strdup(parsed.text);
    if (copy == NULL ||
        mem_grow(&a->targets, &l->cap_targets, a->n_targets + 1, sizeof *a->targets) != 0) {
        free(copy);
        return fail(l, "out of memory", NULL);
    }
    a->targets[a->n_targets++] = copy;
    a->entries[a->n_entries - 1].count++;
    return 0;
}

/* "a, b ,c" -> add_target for each non-empty item. */
static int add_targets(struct loader *l, char *list)
{
    const char *name = l->a->entries[l->a->n_entries - 1].name;
    const char *domain = strrchr(name, '@') + 1;
    char *save = NULL;
    for (char *item = strtok_r(list, ",", &save); item != NULL; item = strtok_r(NULL, ",", &save)) {
        item = str_trim(item);
        if (*item != '\0' && add_target(l, item, domain) != 0)
            return -1;
    }
    return 0;
}

static int add_entry(struct loader *l, char *name)
{
    struct addr parsed;
    int rc = addr_parse_mailbox(name, &parsed);
    if (rc != ADDR_OK)
        return fail(l, addr_error_text(rc), name);
    if (parsed.quoted || parsed.literal)
        return fail(l, "an alias name must be a plain mailbox", name);
    str_lower(parsed.text);
    struct aliases *a = l->a;
    char *copy = strdup(parsed.text);
    if (copy == NULL ||
        mem_grow(&a->entries, &l->cap_entries, a->n_entries + 1, sizeof *a->entries) != 0 ||
        mem_grow(&l->flawed, &l->cap_flawed, a->n_entries + 1, sizeof *l->flawed) != 0) {
        free(copy);
        return fail(l, "out of memory", NULL);
    }
    a->entries[a->n_entries] = (struct alias_entry){copy, a->n_targets, 0, l->lineno};
    l->flawed[a->n_entries++] = 0;
    return 0;
}

static int parse_line(struct loader *l, char *line)
{
    int continued = line[0] == ' ' || line[0] == '\t';
    line = str_trim(line);
    if (*line == '\0' || *line == '#')
        return 0;
    if (continued) {
        if (l->skip_continuation)
            return 0;
        if (l->a->n_entries == 0)
            return fail(l, "a continuation line with no alias before it", NULL);
        return add_targets(l, line);
    }
    l->skip_continuation = 0;
    char *colon = strchr(line, ':');
    if (colon == NULL)
        return l->skip_continuation = 1, fail(l, "expected 'name@domain: target, ...'", NULL);
    *colon = '\0';
    if (add_entry(l, str_trim(line)) != 0)
        return l->skip_continuation = 1, -1;
    return add_targets(l, colon + 1);
}

/* A refused line: the end of loading, or (check mode) one more report. 0 goes on. */
static int refused(struct loader *l)
{
    if (l->report == NULL || errno == ENOMEM)
        return -1;
    l->report(l->report_arg, l->err);
    l->errors++;
    if (l->a->n_entries > 0 && !l->skip_continuation)
        l->flawed[l->a->n_entries - 1] = 1;
    return 0;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(((const struct alias_entry *)x)->name, ((const struct alias_entry *)y)->name);
}

/* Same names next to each other, the earlier line first. */
static int by_name_line(const void *x, const void *y)
{
    const struct alias_entry *a = x, *b = y;
    int c = strcmp(a->name, b->name);
    return c != 0 ? c : (a->line > b->line) - (a->line < b->line);
}

/* Every entry has targets; no name twice. */
static int check_entries(struct loader *l)
{
    struct aliases *a = l->a;
    char what[ADDR_SIZE + 40];
    for (size_t i = 0; i < a->n_entries; i++) {
        if (a->entries[i].count == 0 && !l->flawed[i]) {
            l->lineno = a->entries[i].line;
            if (fail(l, "an alias without targets", a->entries[i].name) != 0 && refused(l) != 0)
                return -1;
        }
    }
    if (a->n_entries > 1) /* entries is NULL for an empty file; qsort(NULL) is UB */
        qsort(a->entries, a->n_entries, sizeof *a->entries, by_name_line);
    for (size_t i = 1; i < a->n_entries; i++) {
        if (strcmp(a->entries[i - 1].name, a->entries[i].name) == 0) {
            l->lineno = a->entries[i].line;
            str_format(what, sizeof what, "%s (first at line %u)", a->entries[i].name,
                       a->entries[i - 1].line);
            if (fail(l, "an alias is defined twice", what) != 0 && refused(l) != 0)
                return -1;
        }
    }
    return 0;
}

static int load(struct loader *l, char *text)
{
    int rc = 0;
    for (char *line = text; rc == 0 && line != NULL;) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        l->lineno++;
        if (parse_line(l, line) != 0)
            rc = refused(l);
        line = nl ? nl + 1 : NULL;
    }
    if (rc == 0)
        rc = check_entries(l);
    return rc;
}

static int load_file(struct loader *l, struct aliases *a, const char *path)
{
    char *text;
    memset(a, 0, sizeof *a);
    if (l->errlen > 0)
        l->err[0] = '\0';
    if (read_file(path, &text, l->err, l->errlen) != 0)
        return -1;
    if (text == NULL)
        return 0;
    int rc = load(l, text);
    free(l->flawed);
    free(text);
    if (rc != 0) {
        int e = errno;
        aliases_free(a);
        errno = e;
    }
    return rc;
}

int aliases_load(struct aliases *a, const char *path, char *err, size_t errlen)
{
    struct loader l = {.a = a, .path = path, .err = err, .errlen = errlen};
    return load_file(&l, a, path);
}

int aliases_check(struct aliases *a, const char *path, aliases_report_fn report, void *arg)
{
    char err[1024];
    struct loader l = {.a = a,
                       .path = path,
                       .err = err,
                       .errlen = sizeof err,
                       .report = report,
                       .report_arg = arg};
    if (load_file(&l, a, path) != 0) {
        report(arg, err);
        return -1;
    }
    return l.errors;
}

void aliases_free(struct aliases *a)
{
    for (size_t i = 0; i < a->n_entries; i++)
        free(a->entries[i].name);
    for (size_t i = 0; i < a->n_targets; i++)
        free(a->targets[i]);
    free(a->entries);
    free(a->targets);
    memset(a, 0, sizeof *a);
}

const struct alias_entry *aliases_find(const struct aliases *a, const char *address)
{
    char key[ADDR_SIZE];
    if (a->n_entries == 0 || str_copy(key, sizeof key, address) != 0)
        return NULL;
    str_lower(key);
    struct alias_entry probe = {key, 0, 0, 0};
    return bsearch(&probe, a->entries, a->n_entries, sizeof *a->entries, by_name);
}

struct expansion {
    const struct aliases *a;
    struct aliases_result *r;
    size_t cap;
    const char *stack[ALIASES_MAX_DEPTH];
    size_t depth;
    aliases_visit_fn visit; /* aliases_walk */
    void *visit_arg;
};

static void visit(struct expansion *x, const char *address, const struct alias_entry *e, int loop)
{
    if (x->visit != NULL)
        x->visit(x->visit_arg, x->depth, address, e, loop);
}

static int add_result(struct expansion *x, const char *address)
{
    struct aliases_result *r = x->r;
    for (size_t i = 0; i < r->n_targets; i++)
        if (str_ieq(r->targets[i], address))
            return ALIASES_EXPANDED;
    if (r->n_targets == ALIASES_MAX_TARGETS)
        return ALIASES_TOO_MANY;
    if (mem_grow(&r->targets, &x->cap, r->n_targets + 1, sizeof *r->targets) != 0)
        return ALIASES_NOMEM;
    if (str_copy(r->targets[r->n_targets], sizeof r->targets[0], address) != 0)
        return ALIASES_NOMEM; /* cannot happen: targets were checked at load */
    r->n_targets++;
    return ALIASES_EXPANDED;
}

static int expand(struct expansion *x, const char *address)
{
    const struct alias_entry *e = aliases_find(x->a, address);
    if (e == NULL)
        return visit(x, address, NULL, 0), add_result(x, address);
    for (size_t i = 0; i < x->depth; i++) {
        if (x->stack[i] == e->name) {
            x->r->loops++;
            visit(x, address, NULL, 1);
            return add_result(x, address);
        }
    }
    if (x->depth == ALIASES_MAX_DEPTH)
        return ALIASES_TOO_DEEP;
    visit(x, address, e, 0);
    x->stack[x->depth++] = e->name;
    for (size_t i = 0; i < e->count; i++) {
        int rc = expand(x, x->a->targets[e->first + i]);
        if (rc != ALIASES_EXPANDED)
            return rc;
    }
    x->depth--;
    return ALIASES_EXPANDED;
}

int aliases_walk(const struct aliases *a, const char *address, aliases_visit_fn fn, void *arg,
                 struct aliases_result *r)
{
    memset(r, 0, sizeof *r);
    if (aliases_find(a, address) == NULL)
        return ALIASES_NOT_ALIAS;
    struct expansion x = {.a = a, .r = r, .visit = fn, .visit_arg = arg};
    return expand(&x, address);
}

int aliases_expand(const struct aliases *a, const char *address, struct aliases_result *r)
{
    return aliases_walk(a, address, NULL, NULL, r);
}

void aliases_result_free(struct aliases_result *r)
{
    free(r->targets);
    memset(r, 0, sizeof *r);
}

int aliases_owner(const struct aliases *a, const char *address, char *owner, size_t size)
{
    char name[ADDR_SIZE];
    if (str_format(name, sizeof name, "owner-%s", address) < 0)
        return 0;
    const struct alias_entry *e = aliases_find(a, name);
    if (e == NULL)
        return 0;
    return str_copy(owner, size, e->name) == 0 ? 1 : 0;
}
