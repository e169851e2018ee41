/*
 * imapcmd-folder: imap4-in's folder commands (lib/imapcmd.h): LIST with RFC 5258's selection
 * and return options, SPECIAL-USE (RFC 6154) and LIST-STATUS (RFC 5819), LSUB, STATUS, CREATE,
 * DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE, over lib/mailbox's Maildir++ folders (delimiter '.').
 *
 * It must never act on a name that is not valid modified UTF-7, never name a folder outside
 * the user's Maildir (lib/mailbox refuses such names), never delete or rename INBOX's
 * Maildir itself, and never leave the session on a folder it deleted or renamed away.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "imapcmd.h"
#include "imapname.h"
#include "imapsess.h"
#include "log.h"
#include "mailbox.h"
#include "util.h"

#define LIST_MAX_PATTERNS 16

/* ---- shared with imapcmd-msg.c ---- */

int imapcmd_folder_arg(struct imapsess *s, struct imaptok *t, char *out, size_t size)
{
    size_t len;
    int rc = imaptok_astring(t, out, size, &len);
    if (rc == IMAPTOK_TOO_LONG)
        return imapsess_no(s, "[LIMIT] Folder name too long");
    if (rc != 0)
        return imapsess_bad(s, "Missing or invalid folder name");
    if (!imapname_mutf7_valid(out, len))
        return imapsess_no(s, "[CANNOT] Folder name is not valid modified UTF-7");
    imapname_canon(out);
    return 1;
}

int imapcmd_folder_path(struct imapsess *s, const char *name, char *path, size_t size)
{
    if (mailbox_folder_path(path, size, s->root, name) != 0)
        return imapcmd_folder_error(s, errno, name);
    return 1;
}

int imapcmd_folder_error(struct imapsess *s, int err, const char *name)
{
    switch (err) {
    case ENOENT:
        return imapsess_no(s, "[NONEXISTENT] No such folder");
    case EEXIST:
        return imapsess_no(s, "[ALREADYEXISTS] Folder already exists");
    case EINVAL:
    case ENAMETOOLONG:
        return imapsess_no(s, "[CANNOT] Invalid folder name");
    case ENOTEMPTY:
        return imapsess_no(s, "[HASCHILDREN] Folder has children: delete them first");
    case EPERM:
        return imapsess_no(s, "[CANNOT] Not allowed on INBOX");
    case ENOSPC:
    case EDQUOT:
        return imapsess_no(s, "[OVERQUOTA] Not enough disk space");
    default:
        log_msg(LOG_ERR, "user=%s folder %s: %s", s->user, name, strerror(err));
        return imapsess_no(s, "[UNAVAILABLE] Internal error, try again later");
    }
}

/* The end of the arguments. 1, or the reply's result after BAD. */
static int args_end(struct imapsess *s, struct imaptok *t)
{
    return imaptok_at_end(t) ? 1 : imapsess_bad(s, "Unexpected arguments");
}

/* SP then a folder name. */
static int sp_folder(struct imapsess *s, struct imaptok *t, char *name, size_t size)
{
    if (imaptok_space(t) != 0)
        return imapsess_bad(s, "Missing folder name");
    return imapcmd_folder_arg(s, t, name, size);
}

/* The first argument, a folder name (the dispatcher took the SP after the command name). */
static int first_folder(struct imapsess *s, struct imaptok *t, char *name, size_t size)
{
    if (imaptok_at_end(t))
        return imapsess_bad(s, "Missing folder name");
    return imapcmd_folder_arg(s, t, name, size);
}

/* ---- STATUS items (STATUS, LIST RETURN (STATUS ...)) ---- */

enum {
    ST_MESSAGES,
    ST_RECENT,
    ST_UIDNEXT,
    ST_UIDVALIDITY,
    ST_UNSEEN,
    ST_SIZE,
    ST_DELETED,
    ST_HIGHESTMODSEQ,
    ST_COUNT
};
static const char *const status_names[ST_COUNT] = {
    "MESSAGES", "RECENT", "UIDNEXT", "UIDVALIDITY", "UNSEEN", "SIZE", "DELETED", "HIGHESTMODSEQ"};

struct status_items {
    unsigned char item[ST_COUNT]; /* in the order asked, duplicates dropped */
    size_t n;
};

/* "(" status-att *(SP status-att) ")". 0, or -1. */
static int parse_status_items(struct imaptok *t, struct status_items *it)
{
    it->n = 0;
    if (imaptok_char(t, '(') != 0)
        return -1;
    do {
        const char *a;
        size_t len, k = 0;
        if (imaptok_atom(t, &a, &len) != 0)
            return -1;
        while (k < ST_COUNT &&
               !(strlen(status_names[k]) == len && strncasecmp(a, status_names[k], len) == 0))
            k++;
        if (k == ST_COUNT)
            return -1;
        if (memchr(it->item, (int)k, it->n) == NULL)
            it->item[it->n++] = (unsigned char)k;
    } while (imaptok_space(t) == 0);
    return imaptok_char(t, ')');
}

/* RFC 9051's DELETED: the messages with \Deleted, counted in the folder's index. 0, or -1. */
static int count_deleted(const char *path, uint64_t *n)
{
    struct mailbox mb;
    char letters[64];
    if (mailbox_open(&mb, path) != 0)
        return -1;
    *n = 0;
    for (size_t i = 0; i < mb.count; i++) {
        mailbox_flags(&mb.msgs[i], letters, sizeof letters);
        *n += strchr(letters, 'T') != NULL;
    }
    mailbox_close(&mb);
    return 0;
}

static uint64_t status_value(const struct mailbox_status *st, uint64_t deleted, int item)
{
    switch (item) {
    case ST_MESSAGES:
        return st->messages;
    case ST_RECENT:
        return st->recent;
    case ST_UIDNEXT:
        return st->uidnext;
    case ST_UIDVALIDITY:
        return st->uidvalidity;
    case ST_UNSEEN:
        return st->unseen;
    case ST_DELETED:
        return deleted;
    case ST_HIGHESTMODSEQ:
        return st->highestmodseq;
    default:
        return st->size;
    }
}

/* "* STATUS <name> (...)". 0, 1 when the folder cannot be read (errno), -1 write failure. */
static int send_status(struct imapsess *s, const char *name, const struct status_items *it)
{
    char path[PATH_MAX], buf[256];
    struct mailbox_status st;
    uint64_t deleted = 0;
    if (mailbox_folder_path(path, sizeof path, s->root, name) != 0 ||
        mailbox_status(path, &st) != 0 ||
        (memchr(it->item, ST_DELETED, it->n) != NULL && count_deleted(path, &deleted) != 0))
        return 1;
    size_t o = 0;
    for (size_t i = 0; i < it->n; i++)
        o += (size_t)snprintf(buf + o, sizeof buf - o, "%s%s %llu", i ? " " : "",
                              status_names[it->item[i]],
                              (unsigned long long)status_value(&st, deleted, it->item[i]));
    if (imapsess_printf(s, "* STATUS ") != 0 || imapsess_string(s, name, strlen(name)) != 0 ||
        imapsess_printf(s, " (%s)\r\n", buf) != 0)
        return -1;
    return 0;
}

int imapcmd_status(struct imapsess *s, struct imaptok *t)
{
    char name[IMAP_FOLDER_MAX];
    struct status_items it;
    int rc = first_folder(s, t, name, sizeof name);
    if (rc != 1)
        return rc;
    if (imaptok_space(t) != 0 || parse_status_items(t, &it) != 0)
        return imapsess_bad(s, "Invalid STATUS items");
    if ((rc = args_end(s, t)) != 1)
        return rc;
    if (memchr(it.item, ST_HIGHESTMODSEQ, it.n) != NULL)
        s->enabled |= IMAP_EN_CONDSTORE; /* a CONDSTORE-enabling command (RFC 7162 §3.1) */
    rc = send_status(s, name, &it);
    if (rc < 0)
        return -1;
    if (rc > 0)
        return imapcmd_folder_error(s, errno == ENOTDIR ? ENOENT : errno, name);
    return imapsess_ok(s, "STATUS completed");
}

/* ---- the folder list of LIST and LSUB ---- */

struct entry {
    const char *name;
    int exists;     /* a folder (selectable) */
    int implied;    /* a parent its children imply: \Noselect */
    int children;   /* has a folder below it */
    int subscribed; /* in the subscriptions file */
    const char *special;
};

struct names {
    struct mailbox_folders folders;
    char **subs;
    size_t n_subs;
    struct entry *e;
    size_t n;
};

static struct entry *find(struct names *nm, const char *name)
{
    for (size_t i = 0; i < nm->n; i++)
        if (strcmp(nm->e[i].name, name) == 0)
            return &nm->e[i];
    return NULL;
}

static void names_free(struct names *nm)
{
    mailbox_folders_free(&nm->folders);
    mailbox_names_free(nm->subs, nm->n_subs);
    free(nm->e);
}

/* The folders, and the subscribed names that are no folder. 0, or -1 (errno). */
static int names_load(struct imapsess *s, struct names *nm)
{
    memset(nm, 0, sizeof *nm);
    if (mailbox_folders_list(s->root, &nm->folders) != 0)
        return -1;
    if (mailbox_subscriptions(s->root, &nm->subs, &nm->n_subs) != 0) {
        mailbox_folders_free(&nm->folders);
        return -1;
    }
    nm->e = calloc(nm->folders.count + nm->n_subs + 1, sizeof *nm->e);
    if (nm->e == NULL) {
        names_free(nm);
        return errno = ENOMEM, -1;
    }
    for (size_t i = 0; i < nm->folders.count; i++) {
        const struct mailbox_folder *f = &nm->folders.items[i];
        nm->e[nm->n++] = (struct entry){f->name,     !f->noselect,  f->noselect,
                                        f->children, f->subscribed, f->special};
    }
    for (size_t i = 0; i < nm->n_subs; i++) {
        struct entry *e = find(nm, nm->subs[i]);
        if (e != NULL)
            e->subscribed = 1;
        else
            nm->e[nm->n++] = (struct entry){.name = nm->subs[i], .subscribed = 1};
    }
    return 0;
}

/* Is there a subscribed name below e's that match does not match (CHILDINFO, LSUB). */
static int subscribed_below(const struct names *nm, const char *name, const char *pattern)
{
    size_t len = strlen(name);
    for (size_t i = 0; i < nm->n_subs; i++)
        if (strncmp(nm->subs[i], name, len) == 0 && nm->subs[i][len] == IMAPNAME_DELIM &&
            (pattern == NULL || !imapname_match(pattern, nm->subs[i])))
            return 1;
    return 0;
}

/* ---- LIST ---- */

#define SEL_SUBSCRIBED 0x1
#define SEL_REMOTE 0x2
#define SEL_RECURSIVE 0x4
#define SEL_SPECIAL 0x8
#define RET_SUBSCRIBED 0x1
#define RET_CHILDREN 0x2
#define RET_SPECIAL 0x4
#define RET_STATUS 0x8

struct list {
    unsigned sel, ret;
    struct status_items status;
    char ref[IMAPNAME_MAX + 1];
    char pat[LIST_MAX_PATTERNS][IMAPNAME_MAX + 1]; /* reference and pattern joined */
    size_t npat;
    int delim_query; /* a pattern was "" */
};

/* One option word of a list at the cursor: index in words, or -1. */
static int option_word(struct imaptok *t, const char *const *words)
{
    for (int i = 0; words[i] != NULL; i++)
        if (imaptok_word(t, words[i]) == 0)
            return i;
    return -1;
}

/* "(" [opt *(SP opt)] ")": the bit of each option word (its index in words) set in *bits;
 * with st, RET_STATUS takes its "(" status items ")". 0, or -1. */
static int parse_options(struct imaptok *t, const char *const *words, unsigned *bits,
                         struct status_items *st)
{
    if (imaptok_char(t, '(') != 0)
        return -1;
    if (imaptok_char(t, ')') == 0)
        return 0;
    do {
        int w = option_word(t, words);
        if (w < 0)
            return -1;
        *bits |= 1u << w;
        if (st != NULL && (1u << w) == RET_STATUS &&
            (imaptok_space(t) != 0 || parse_status_items(t, st) != 0))
            return -1;
    } while (imaptok_space(t) == 0);
    return imaptok_char(t, ')');
}

/* The selection options. 0, or -1. */
static int parse_select(struct imaptok *t, struct list *l)
{
    static const char *const words[] = {"SUBSCRIBED", "REMOTE", "RECURSIVEMATCH", "SPECIAL-USE",
                                        NULL};
    if (parse_options(t, words, &l->sel, NULL) != 0)
        return -1;
    /* RFC 5258 §3: RECURSIVEMATCH only with a selection option it modifies */
    return (l->sel & SEL_RECURSIVE) && !(l->sel & (SEL_SUBSCRIBED | SEL_SPECIAL)) ? -1 : 0;
}

/* "RETURN" SP the return options. 0, or -1. */
static int parse_return(struct imaptok *t, struct list *l)
{
    static const char *const words[] = {"SUBSCRIBED", "CHILDREN", "SPECIAL-USE", "STATUS", NULL};
    if (imaptok_word(t, "RETURN") != 0 || imaptok_space(t) != 0)
        return -1;
    return parse_options(t, words, &l->ret, &l->status);
}

static int add_pattern(struct imaptok *t, struct list *l)
{
    char p[IMAPNAME_MAX + 1];
    size_t len;
    if (l->npat == LIST_MAX_PATTERNS || imaptok_list_mailbox(t, p, sizeof p, &len) != 0)
        return -1;
    if (len == 0) {
        l->delim_query = 1;
        return 0;
    }
    return imapname_join(l->ref, p, l->pat[l->npat++], sizeof l->pat[0]);
}

/* ["(" sel ")" SP] ref SP (pattern / "(" patterns ")") [SP RETURN (...)]. 0, or -1. */
static int parse_list(struct imaptok *t, struct list *l)
{
    size_t len;
    memset(l, 0, sizeof *l);
    if (imaptok_peek(t) == '(' && (parse_select(t, l) != 0 || imaptok_space(t) != 0))
        return -1;
    if (imaptok_astring(t, l->ref, sizeof l->ref, &len) != 0 || imaptok_space(t) != 0)
        return -1;
    if (imaptok_char(t, '(') == 0) {
        do
            if (add_pattern(t, l) != 0)
                return -1;
        while (imaptok_space(t) == 0);
        if (imaptok_char(t, ')') != 0)
            return -1;
    } else if (add_pattern(t, l) != 0) {
        return -1;
    }
    if (imaptok_space(t) == 0 && parse_return(t, l) != 0)
        return -1;
    return imaptok_at_end(t) ? 0 : -1;
}

static int list_matches(const struct list *l, const char *name)
{
    for (size_t i = 0; i < l->npat; i++)
        if (imapname_match(l->pat[i], name))
            return 1;
    return 0;
}

/* Does e belong in the answer; *childinfo for RECURSIVEMATCH's parents. */
static int list_selects(const struct list *l, const struct names *nm, const struct entry *e,
                        int *childinfo)
{
    *childinfo = 0;
    if (!list_matches(l, e->name))
        return 0;
    if (l->sel & SEL_SUBSCRIBED) {
        for (size_t i = 0; (l->sel & SEL_RECURSIVE) && i < l->npat && !*childinfo; i++)
            *childinfo = subscribed_below(nm, e->name, l->pat[i]);
        return e->subscribed || *childinfo;
    }
    if (l->sel & SEL_SPECIAL)
        return e->special != NULL;
    return e->exists || e->implied;
}

static void attrs(const struct list *l, const struct entry *e, char *out, size_t size)
{
    str_copy(out, size, "");
    if (!e->exists && !e->implied)
        str_format(out + strlen(out), size - strlen(out), " \\NonExistent");
    else if (e->implied)
        str_format(out + strlen(out), size - strlen(out), " \\Noselect");
    if (e->exists || e->implied)
        str_format(out + strlen(out), size - strlen(out), " %s",
                   e->children ? "\\HasChildren" : "\\HasNoChildren");
    if (e->subscribed && ((l->ret & RET_SUBSCRIBED) || (l->sel & SEL_SUBSCRIBED)))
        str_format(out + strlen(out), size - strlen(out), " \\Subscribed");
    if (e->special != NULL && e->exists)
        str_format(out + strlen(out), size - strlen(out), " %s", e->special);
}

static int list_one(struct imapsess *s, const char *cmd, const struct list *l,
                    const struct entry *e, int childinfo)
{
    char a[160];
    attrs(l, e, a, sizeof a);
    if (imapsess_printf(s, "* %s (%s) \".\" ", cmd, a[0] ? a + 1 : "") != 0 ||
        imapsess_string(s, e->name, strlen(e->name)) != 0 ||
        (childinfo && imapsess_printf(s, " (\"CHILDINFO\" (\"SUBSCRIBED\"))") != 0) ||
        imapsess_printf(s, "\r\n") != 0)
        return -1;
    if ((l->ret & RET_STATUS) && e->exists && send_status(s, e->name, &l->status) < 0)
        return -1;
    return 0;
}

int imapcmd_list(struct imapsess *s, struct imaptok *t)
{
    struct list *l = malloc(sizeof *l);
    struct names nm;
    int rc;
    if (l == NULL)
        return imapcmd_folder_error(s, ENOMEM, "");
    if (parse_list(t, l) != 0) {
        free(l);
        return imapsess_bad(s, "Invalid LIST arguments");
    }
    if (l->delim_query && imapsess_untagged(s, "LIST (\\Noselect) \".\" \"\"") != 0) {
        free(l);
        return -1;
    }
    if (l->npat == 0) {
        free(l);
        return imapsess_ok(s, "LIST completed");
    }
    if (names_load(s, &nm) != 0) {
        free(l);
        return imapcmd_folder_error(s, errno, "(list)");
    }
    rc = 0;
    for (size_t i = 0; rc == 0 && i < nm.n; i++) {
        int childinfo;
        if (list_selects(l, &nm, &nm.e[i], &childinfo))
            rc = list_one(s, "LIST", l, &nm.e[i], childinfo);
    }
    names_free(&nm);
    free(l);
    return rc != 0 ? -1 : imapsess_ok(s, "LIST completed");
}

/* ---- LSUB ---- */

static int lsub_line(struct imapsess *s, const char *attr, const char *name)
{
    if (imapsess_printf(s, "* LSUB (%s) \".\" ", attr) != 0 ||
        imapsess_string(s, name, strlen(name)) != 0 || imapsess_printf(s, "\r\n") != 0)
        return -1;
    return 0;
}

/* The nearest parent of a subscribed name that the pattern reaches when the name itself is
 * not reached (RFC 3501 §6.3.9: "foo" for a subscribed "foo.bar" with "%", flagged
 * \Noselect), each once, unless it is subscribed itself. */
static int lsub_parents(struct imapsess *s, struct names *nm, const char *pattern)
{
    char **told = calloc(nm->n_subs + 1, sizeof *told);
    size_t n_told = 0;
    int rc = told != NULL ? 0 : -1;
    for (size_t i = 0; rc == 0 && i < nm->n_subs; i++) {
        char *p = imapname_match(pattern, nm->subs[i]) ? NULL : strdup(nm->subs[i]);
        char *dot;
        while (p != NULL && (dot = strrchr(p, IMAPNAME_DELIM)) != NULL) {
            *dot = '\0';
            if (imapname_match(pattern, p))
                break;
        }
        int skip =
            p == NULL || strchr(nm->subs[i], IMAPNAME_DELIM) == NULL || !imapname_match(pattern, p);
        for (size_t k = 0; !skip && k < nm->n_subs; k++)
            skip = strcmp(nm->subs[k], p) == 0;
        for (size_t k = 0; !skip && k < n_told; k++)
            skip = strcmp(told[k], p) == 0;
        if (skip) {
            free(p);
            continue;
        }
        told[n_told++] = p;
        rc = lsub_line(s, "\\Noselect", p);
    }
    mailbox_names_free(told, n_told);
    return rc;
}

int imapcmd_lsub(struct imapsess *s, struct imaptok *t)
{
    char ref[IMAPNAME_MAX + 1], p[IMAPNAME_MAX + 1], pattern[2 * IMAPNAME_MAX + 2];
    size_t len;
    struct names nm;
    if (imaptok_astring(t, ref, sizeof ref, &len) != 0 || imaptok_space(t) != 0 ||
        imaptok_list_mailbox(t, p, sizeof p, &len) != 0 || !imaptok_at_end(t))
        return imapsess_bad(s, "Invalid LSUB arguments");
    if (len == 0) /* the delimiter, as LIST "" "" tells it */
        return lsub_line(s, "\\Noselect", "") != 0 ? -1 : imapsess_ok(s, "LSUB completed");
    if (imapname_join(ref, p, pattern, sizeof pattern) != 0)
        return imapsess_bad(s, "Pattern too long");
    if (names_load(s, &nm) != 0)
        return imapcmd_folder_error(s, errno, "(lsub)");
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < nm.n_subs; i++) {
        const struct entry *e = find(&nm, nm.subs[i]);
        int again = 0;
        for (size_t k = 0; k < i && !again; k++)
            again = strcmp(nm.subs[k], nm.subs[i]) == 0;
        if (!again && imapname_match(pattern, nm.subs[i]))
            rc = lsub_line(s, e != NULL && e->exists ? "" : "\\Noselect", nm.subs[i]);
    }
    if (rc == 0)
        rc = lsub_parents(s, &nm, pattern);
    names_free(&nm);
    return rc != 0 ? -1 : imapsess_ok(s, "LSUB completed");
}

/* ---- CREATE, DELETE, RENAME, SUBSCRIBE, UNSUBSCRIBE ---- */

/* A name a folder may be made with: no wildcards (LIST could not name it alone). */
static int creatable(const char *name)
{
    return strpbrk(name, "%*") == NULL;
}

int imapcmd_create(struct imapsess *s, struct imaptok *t)
{
    char name[IMAP_FOLDER_MAX];
    int rc = first_folder(s, t, name, sizeof name);
    if (rc != 1 || (rc = args_end(s, t)) != 1)
        return rc;
    if (!creatable(name))
        return imapsess_no(s, "[CANNOT] '%%' and '*' are not allowed in folder names");
    if (mailbox_folder_create(s->root, name) != 0)
        return imapcmd_folder_error(s, errno, name);
    return imapsess_ok(s, "CREATE completed");
}

/* Is folder the selected one or below it (renamed or deleted away)? */
static int affects_selected(const struct imapsess *s, const char *folder)
{
    size_t len = strlen(folder);
    return s->state == IMAP_SELECTED && strncmp(s->folder, folder, len) == 0 &&
           (s->folder[len] == '\0' || s->folder[len] == IMAPNAME_DELIM);
}

/* The selected folder went away: back to the AUTH state, and say so (RFC 7162's CLOSED). */
static int closed(struct imapsess *s)
{
    imapsess_unselect(s);
    return imapsess_untagged(s, "OK [CLOSED] The selected folder is gone");
}

int imapcmd_delete(struct imapsess *s, struct imaptok *t)
{
    char name[IMAP_FOLDER_MAX];
    int rc = first_folder(s, t, name, sizeof name);
    if (rc != 1 || (rc = args_end(s, t)) != 1)
        return rc;
    if (strcmp(name, "INBOX") == 0)
        return imapsess_no(s, "[CANNOT] INBOX cannot be deleted");
    if (mailbox_folder_delete(s->root, name) != 0)
        return imapcmd_folder_error(s, errno, name);
    if (affects_selected(s, name) && closed(s) != 0)
        return -1;
    return imapsess_ok(s, "DELETE completed");
}

int imapcmd_rename(struct imapsess *s, struct imaptok *t)
{
    char from[IMAP_FOLDER_MAX], to[IMAP_FOLDER_MAX];
    int rc = first_folder(s, t, from, sizeof from);
    if (rc != 1 || (rc = sp_folder(s, t, to, sizeof to)) != 1 || (rc = args_end(s, t)) != 1)
        return rc;
    if (strcmp(to, "INBOX") == 0)
        return imapsess_no(s, "[ALREADYEXISTS] INBOX already exists");
    if (!creatable(to))
        return imapsess_no(s, "[CANNOT] '%%' and '*' are not allowed in folder names");
    if (mailbox_folder_rename(s->root, from, to) != 0)
        return imapcmd_folder_error(s, errno, from);
    /* INBOX stays (emptied: the selected INBOX sees EXPUNGEs); anything else moved away */
    if (strcmp(from, "INBOX") != 0 && affects_selected(s, from) && closed(s) != 0)
        return -1;
    return imapsess_ok(s, "RENAME completed");
}

static int subscribe(struct imapsess *s, struct imaptok *t, int on)
{
    char name[IMAP_FOLDER_MAX];
    int rc = first_folder(s, t, name, sizeof name);
    if (rc != 1 || (rc = args_end(s, t)) != 1)
        return rc;
    if (mailbox_subscribe(s->root, name, on) != 0)
        return imapcmd_folder_error(s, errno, name);
    return imapsess_ok(s, "%s completed", on ? "SUBSCRIBE" : "UNSUBSCRIBE");
}

int imapcmd_subscribe(struct imapsess *s, struct imaptok *t)
{
    return subscribe(s, t, 1);
}

int imapcmd_unsubscribe(struct imapsess *s, struct imaptok *t)
{
    return subscribe(s, t, 0);
}
