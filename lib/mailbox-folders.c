/*
 * mailbox-folders: the Maildir++ folders of one user (see mailbox.h): names and paths, the
 * special folders, LIST, CREATE, DELETE, RENAME, the subscriptions file
 * (yubin-subscriptions(5)) and STATUS. A folder "a.b" is the sub-Maildir <root>/.a.b.
 * It must never touch a path outside the user's root Maildir, never leave a half-made folder
 * visible (folders are built in the root's tmp/ and renamed into place; a deleted one is
 * renamed away before it is removed), and never write the subscriptions file except as
 * write-new + fsync + rename under its lock.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "maildir.h"
#include "util.h"

#define SUBSCRIPTIONS_NAME "subscriptions"
#define SUBSCRIPTIONS_MAX (1u << 20) /* 1 MiB of names */
#define FOLDERS_MAX 10000

const struct mailbox_special mailbox_special_folders[] = {
    {"Sent", "\\Sent"}, {"Drafts", "\\Drafts"},   {"Trash", "\\Trash"},
    {"Junk", "\\Junk"}, {"Archive", "\\Archive"},
};
const size_t mailbox_special_count = ARRAY_LEN(mailbox_special_folders);

const char *mailbox_special_use(const char *folder)
{
    for (size_t i = 0; i < mailbox_special_count; i++)
        if (strcmp(folder, mailbox_special_folders[i].name) == 0)
            return mailbox_special_folders[i].attr;
    return NULL;
}

/* A folder name other than INBOX that maps to a safe sub-Maildir name. */
static int valid_name(const char *folder)
{
    size_t len = strlen(folder);
    int ok = len > 0 && len <= 200 && folder[0] != '.' && folder[len - 1] != '.' &&
             strstr(folder, "..") == NULL;
    for (size_t i = 0; ok && i < len; i++)
        ok = folder[i] != '/' && (unsigned char)folder[i] >= 0x20 && folder[i] != 0x7f;
    return ok;
}

int mailbox_folder_path(char *dst, size_t size, const char *root, const char *folder)
{
    if (str_ieq(folder, "INBOX"))
        return str_copy(dst, size, root) == 0 ? 0 : (errno = ENAMETOOLONG, -1);
    if (!valid_name(folder))
        return errno = EINVAL, -1;
    return str_format(dst, size, "%s/.%s", root, folder) < 0 ? (errno = ENAMETOOLONG, -1) : 0;
}

static int touch_marker(const char *path)
{
    char marker[PATH_MAX];
    if (str_format(marker, sizeof marker, "%s/maildirfolder", path) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(marker, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    return fd < 0 || close(fd) != 0 ? -1 : 0;
}

int mailbox_ensure_folders(const char *root)
{
    char path[PATH_MAX];
    for (size_t i = 0; i < mailbox_special_count; i++) {
        if (mailbox_folder_path(path, sizeof path, root, mailbox_special_folders[i].name) != 0)
            return -1;
        if (maildir_ensure(path) != 0 || touch_marker(path) != 0)
            return -1;
    }
    return 0;
}

/* Removes the entries of the directory dirfd (closed here), depth levels down. */
static int remove_entries(int fd, int depth)
{
    DIR *d = fdopendir(fd);
    if (d == NULL) {
        close(fd);
        return -1;
    }
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(d), e->d_name, 0) == 0 || errno == ENOENT)
            continue;
        int sub = depth > 0 && (errno == EISDIR || errno == EPERM)
                      ? openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                      : -1;
        if (sub < 0 || remove_entries(sub, depth - 1) != 0 ||
            unlinkat(dirfd(d), e->d_name, AT_REMOVEDIR) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int mbx_remove_tree(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    if (remove_entries(fd, 4) != 0)
        return -1;
    return rmdir(path);
}

/* ---- LIST ---- */

static int add_folder(struct mailbox_folders *f, size_t *cap, const char *name, size_t len,
                      int noselect)
{
    if (f->count >= FOLDERS_MAX)
        return errno = E2BIG, -1;
    if (mem_grow(&f->items, cap, f->count + 1, sizeof *f->items) != 0)
        return errno = ENOMEM, -1;
    struct mailbox_folder *it = &f->items[f->count];
    memset(it, 0, sizeof *it);
    if ((it->name = strndup(name, len)) == NULL)
        return errno = ENOMEM, -1;
    it->noselect = noselect;
    f->count++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    const struct mailbox_folder *x = a, *y = b;
    int ix = strcmp(x->name, "INBOX") == 0, iy = strcmp(y->name, "INBOX") == 0;
    if (ix != iy)
        return iy - ix;
    return strcmp(x->name, y->name);
}

/* The sub-Maildirs of root (".name" directories with a valid name), selectable if they have
 * a cur/. */
static int read_folders(const char *root, struct mailbox_folders *f, size_t *cap)
{
    DIR *d = opendir(root);
    if (d == NULL)
        return -1;
    struct dirent *e;
    int rc = 0;
    struct stat st;
    char sub[NAME_MAX + 8];
    while (rc == 0 && (errno = 0, e = readdir(d)) != NULL) {
        const char *name = e->d_name + 1;
        if (e->d_name[0] != '.' || !valid_name(name) || str_ieq(name, "INBOX"))
            continue;
        if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
            continue;
        str_format(sub, sizeof sub, "%s/cur", e->d_name);
        int sel = fstatat(dirfd(d), sub, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
        rc = add_folder(f, cap, name, strlen(name), !sel);
    }
    int saved = errno;
    closedir(d);
    return rc != 0 || saved != 0 ? (errno = saved ? saved : errno, -1) : 0;
}

/* Adds the parents the names imply ("a.b.c" implies a and a.b), as \Noselect; duplicates go
 * in dedupe. */
static int add_parents(struct mailbox_folders *f, size_t *cap)
{
    size_t n = f->count;
    for (size_t i = 0; i < n; i++) {
        const char *name = f->items[i].name;
        for (const char *dot = strchr(name, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
            size_t len = (size_t)(dot - name);
            if (!(len == 5 && strncasecmp(name, "INBOX", 5) == 0) &&
                add_folder(f, cap, name, len, 1) != 0)
                return -1;
            name = f->items[i].name; /* the array may have moved */
        }
    }
    return 0;
}

/* Sorted (INBOX first, a selectable folder before a \Noselect one of the same name), then
 * one entry per name. */
static int by_name_select(const void *a, const void *b)
{
    const struct mailbox_folder *x = a, *y = b;
    int c = by_name(a, b);
    return c != 0 ? c : x->noselect - y->noselect;
}

static void sort_dedupe(struct mailbox_folders *f)
{
    size_t kept = 0;
    qsort(f->items, f->count, sizeof *f->items, by_name_select);
    for (size_t i = 0; i < f->count; i++) {
        if (kept > 0 && strcmp(f->items[kept - 1].name, f->items[i].name) == 0) {
            free(f->items[i].name);
            continue;
        }
        f->items[kept++] = f->items[i];
    }
    f->count = kept;
}

static int by_string(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* children and subscribed for every folder (sorted, INBOX first): the names below X follow X
 * in byte order, among the others that start with X. */
static void mark_folders(struct mailbox_folders *f, char **subs, size_t nsubs)
{
    if (nsubs > 1)
        qsort(subs, nsubs, sizeof *subs, by_string);
    for (size_t i = 0; i < f->count; i++) {
        struct mailbox_folder *it = &f->items[i];
        size_t len = strlen(it->name);
        for (size_t j = i == 0 ? 1 : i + 1; j < f->count && !it->children; j++) {
            int prefix = strncmp(f->items[j].name, it->name, len) == 0;
            if (!prefix && i > 0)
                break;
            it->children = prefix && f->items[j].name[len] == '.';
        }
        it->subscribed = nsubs > 0 && bsearch(&it->name, subs, nsubs, sizeof *subs, by_string);
        it->special = mailbox_special_use(it->name);
    }
}

int mailbox_folders_list(const char *root, struct mailbox_folders *out)
{
    size_t cap = 0, nsubs = 0;
    char **subs = NULL;
    memset(out, 0, sizeof *out);
    if (add_folder(out, &cap, "INBOX", 5, 0) != 0 || read_folders(root, out, &cap) != 0 ||
        add_parents(out, &cap) != 0 || mailbox_subscriptions(root, &subs, &nsubs) != 0) {
        int saved = errno;
        mailbox_folders_free(out);
        errno = saved;
        return -1;
    }
    sort_dedupe(out);
    mark_folders(out, subs, nsubs);
    mailbox_names_free(subs, nsubs);
    return 0;
}

void mailbox_folders_free(struct mailbox_folders *f)
{
    for (size_t i = 0; i < f->count; i++)
        free(f->items[i].name);
    free(f->items);
    f->items = NULL;
    f->count = 0;
}

/* ---- CREATE, DELETE, RENAME ---- */

/* A fresh name in root's tmp/ for a folder being built or removed. */
static int tmp_name(char *dst, size_t size, const char *root, const char *what)
{
    char rnd[17];
    random_hex16(rnd);
    if (str_format(dst, size, "%s/tmp/%s.%s", root, what, rnd) < 0)
        return errno = ENAMETOOLONG, -1;
    return 0;
}

/* Makes one folder at path: built in root's tmp/, then renamed into place. 0, 1 if it exists
 * already, -1 on error. */
static int make_folder(const char *root, const char *path)
{
    char tmp[PATH_MAX], sub[PATH_MAX];
    struct stat st;
    if (str_format(sub, sizeof sub, "%s/cur", path) >= 0 && stat(sub, &st) == 0)
        return 1;
    if (str_format(sub, sizeof sub, "%s/tmp", root) < 0 ||
        tmp_name(tmp, sizeof tmp, root, "new") != 0)
        return errno = ENAMETOOLONG, -1;
    if ((mkdir(sub, 0700) != 0 && errno != EEXIST) || maildir_ensure(tmp) != 0 ||
        touch_marker(tmp) != 0)
        return -1;
    if (rename(tmp, path) != 0) {
        int saved = errno;
        (void)mbx_remove_tree(tmp);
        errno = saved;
        return saved == EEXIST || saved == ENOTEMPTY ? 1 : -1;
    }
    return fsync_dir(root);
}

int mailbox_folder_create(const char *root, const char *name)
{
    char buf[256], path[PATH_MAX];
    if (str_copy(buf, sizeof buf, name) != 0)
        return errno = EINVAL, -1;
    size_t len = strlen(buf);
    if (len > 1 && buf[len - 1] == '.')
        buf[len - 1] = '\0';
    if (str_ieq(buf, "INBOX"))
        return errno = EEXIST, -1;
    if (mailbox_folder_path(path, sizeof path, root, buf) != 0)
        return -1;
    for (char *dot = strchr(buf, '.'); dot != NULL; dot = strchr(dot + 1, '.')) {
        char parent[PATH_MAX];
        *dot = '\0';
        int rc =
            mailbox_folder_path(parent, sizeof parent, root, buf) == 0 && !str_ieq(buf, "INBOX")
                ? make_folder(root, parent)
                : 0;
        *dot = '.';
        if (rc < 0)
            return -1;
    }
    int rc = make_folder(root, path);
    return rc == 1 ? (errno = EEXIST, -1) : rc;
}

/* Is there a folder below name (an entry ".name.*" in root)? 1, 0, or -1. */
static int has_children(const char *root, const char *name)
{
    DIR *d = opendir(root);
    if (d == NULL)
        return -1;
    size_t len = strlen(name);
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d)) != NULL)
        found = e->d_name[0] == '.' && strncmp(e->d_name + 1, name, len) == 0 &&
                e->d_name[len + 1] == '.';
    closedir(d);
    return found;
}

int mailbox_folder_delete(const char *root, const char *name)
{
    char path[PATH_MAX], tmp[PATH_MAX], sub[PATH_MAX];
    struct stat st;
    if (str_ieq(name, "INBOX"))
        return errno = EPERM, -1;
    if (mailbox_folder_path(path, sizeof path, root, name) != 0)
        return -1;
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return errno = ENOENT, -1;
    int kids = has_children(root, name);
    if (kids != 0)
        return kids > 0 ? (errno = ENOTEMPTY, -1) : -1;
    if (str_format(sub, sizeof sub, "%s/tmp", root) < 0 ||
        tmp_name(tmp, sizeof tmp, root, "deleted") != 0)
        return errno = ENAMETOOLONG, -1;
    if ((mkdir(sub, 0700) != 0 && errno != EEXIST) || rename(path, tmp) != 0 ||
        fsync_dir(root) != 0)
        return -1;
    return mbx_remove_tree(tmp);
}

/* The names of the folders below from (".from.x" -> "x"), for a rename. */
static int children_of(const char *root, const char *from, char ***out, size_t *count)
{
    DIR *d = opendir(root);
    size_t cap = 0, len = strlen(from);
    *out = NULL;
    *count = 0;
    if (d == NULL)
        return -1;
    struct dirent *e;
    int rc = 0;
    while (rc == 0 && (e = readdir(d)) != NULL) {
        if (e->d_name[0] != '.' || strncmp(e->d_name + 1, from, len) != 0 ||
            e->d_name[len + 1] != '.' || !valid_name(e->d_name + 1))
            continue;
        if (mem_grow(out, &cap, *count + 1, sizeof **out) != 0 ||
            ((*out)[*count] = strdup(e->d_name + len + 2)) == NULL)
            rc = -1, errno = ENOMEM;
        else
            (*count)++;
    }
    closedir(d);
    return rc;
}

/* Moves every file of dir (cur/ or new/ of INBOX) into the same directory of dst. */
static int move_files(const char *root, const char *dst, const char *sub)
{
    char from[PATH_MAX], to[PATH_MAX];
    if (str_format(from, sizeof from, "%s/%s", root, sub) < 0 ||
        str_format(to, sizeof to, "%s/%s", dst, sub) < 0)
        return errno = ENAMETOOLONG, -1;
    DIR *d = opendir(from);
    int tofd = open(to, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = d != NULL && tofd >= 0 ? 0 : -1;
    struct dirent *e;
    while (rc == 0 && (e = readdir(d)) != NULL)
        if (e->d_name[0] != '.' && renameat(dirfd(d), e->d_name, tofd, e->d_name) != 0 &&
            errno != ENOENT)
            rc = -1;
    int saved = errno;
    if (rc == 0 && (fsync(tofd) != 0 || fsync(dirfd(d)) != 0))
        rc = -1, saved = errno;
    if (d != NULL)
        closedir(d);
    if (tofd >= 0)
        close(tofd);
    errno = saved;
    return rc;
}

/* RENAME INBOX: a new folder with INBOX's messages, under INBOX's index lock. */
static int rename_inbox(const char *root, const char *to)
{
    char path[PATH_MAX];
    if (mailbox_folder_path(path, sizeof path, root, to) != 0 ||
        mailbox_folder_create(root, to) != 0)
        return -1;
    int lock = mbx_lock_index(root);
    if (lock < 0)
        return -1;
    int rc = move_files(root, path, "new") != 0 || move_files(root, path, "cur") != 0 ? -1 : 0;
    int saved = errno;
    close(lock);
    errno = saved;
    return rc;
}

static int rename_one(const char *root, const char *from, const char *to, const char *child)
{
    char a[PATH_MAX], b[PATH_MAX], fa[300], fb[300];
    if (str_format(fa, sizeof fa, "%s%s%s", from, child ? "." : "", child ? child : "") < 0 ||
        str_format(fb, sizeof fb, "%s%s%s", to, child ? "." : "", child ? child : "") < 0 ||
        mailbox_folder_path(a, sizeof a, root, fa) != 0 ||
        mailbox_folder_path(b, sizeof b, root, fb) != 0)
        return errno = EINVAL, -1;
    return rename(a, b);
}

int mailbox_folder_rename(const char *root, const char *from, const char *to)
{
    char a[PATH_MAX], b[PATH_MAX];
    struct stat st;
    size_t flen = strlen(from);
    if (mailbox_folder_path(a, sizeof a, root, from) != 0 ||
        mailbox_folder_path(b, sizeof b, root, to) != 0 || str_ieq(to, "INBOX") ||
        (strncmp(to, from, flen) == 0 && to[flen] == '.'))
        return errno = EINVAL, -1;
    if (lstat(b, &st) == 0)
        return errno = EEXIST, -1;
    if (str_ieq(from, "INBOX"))
        return rename_inbox(root, to);
    if (lstat(a, &st) != 0 || !S_ISDIR(st.st_mode))
        return errno = ENOENT, -1;
    char *parent = strdup(to), *dot = parent != NULL ? strrchr(parent, '.') : NULL;
    if (parent == NULL)
        return errno = ENOMEM, -1;
    int rc = 0;
    if (dot != NULL) {
        *dot = '\0';
        rc = mailbox_folder_create(root, parent) != 0 && errno != EEXIST ? -1 : 0;
    }
    free(parent);
    char **kids;
    size_t nkids;
    if (rc != 0 || children_of(root, from, &kids, &nkids) != 0)
        return -1;
    rc = rename_one(root, from, to, NULL);
    for (size_t i = 0; i < nkids; i++) {
        if (rc == 0 && rename_one(root, from, to, kids[i]) != 0)
            rc = -1;
        free(kids[i]);
    }
    free(kids);
    return rc != 0 || fsync_dir(root) != 0 ? -1 : 0;
}

/* ---- subscriptions ---- */

void mailbox_names_free(char **names, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(names[i]);
    free(names);
}

/* The names of a subscriptions file's text (Dovecot's "V\t2" header line and empty lines
 * skipped). */
static int parse_subs(char *text, char ***names, size_t *count)
{
    size_t cap = 0;
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        if (line[0] == '\0' || strncmp(line, "V\t", 2) == 0)
            continue;
        if (mem_grow(names, &cap, *count + 1, sizeof **names) != 0 ||
            ((*names)[*count] = strdup(line)) == NULL)
            return errno = ENOMEM, -1;
        (*count)++;
    }
    return 0;
}

int mailbox_subscriptions(const char *root, char ***names, size_t *count)
{
    char path[PATH_MAX];
    *names = NULL;
    *count = 0;
    if (str_format(path, sizeof path, "%s/" SUBSCRIPTIONS_NAME, root) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    char *text = malloc(SUBSCRIPTIONS_MAX + 1);
    size_t got = 0;
    ssize_t n = 1;
    while (text != NULL && got < SUBSCRIPTIONS_MAX &&
           (n = read(fd, text + got, SUBSCRIPTIONS_MAX - got)) > 0)
        got += (size_t)n;
    close(fd);
    int rc = text == NULL || n < 0 ? -1 : 0;
    if (rc == 0) {
        text[got] = '\0';
        rc = parse_subs(text, names, count);
    }
    free(text);
    if (rc != 0) {
        int saved = errno;
        mailbox_names_free(*names, *count);
        *names = NULL;
        *count = 0;
        errno = saved;
    }
    return rc;
}

/* Writes the names (NULLs skipped) as the new subscriptions file. */
static int write_subs(const char *root, char **names, size_t count)
{
    size_t len = 0, off = 0;
    for (size_t i = 0; i < count; i++)
        len += names[i] != NULL ? strlen(names[i]) + 1 : 0;
    char *text = malloc(len + 1);
    if (text == NULL)
        return errno = ENOMEM, -1;
    for (size_t i = 0; i < count; i++)
        if (names[i] != NULL) {
            size_t n = strlen(names[i]);
            memcpy(text + off, names[i], n);
            text[off + n] = '\n';
            off += n + 1;
        }
    int rc = mbx_replace_file(root, SUBSCRIPTIONS_NAME, text, len);
    int saved = errno;
    free(text);
    errno = saved;
    return rc;
}

/* Under the lock: the list with name added or removed, written if it changed. */
static int change_subs(const char *root, const char *name, int on)
{
    char **names;
    size_t count, kept = 0;
    if (mailbox_subscriptions(root, &names, &count) != 0)
        return -1;
    int found = 0;
    for (size_t i = 0; i < count; i++) {
        if (strcmp(names[i], name) == 0) {
            found = 1;
            if (!on) {
                free(names[i]);
                continue;
            }
        }
        names[kept++] = names[i];
    }
    int rc = 0;
    if (on && !found) {
        char **more = realloc(names, (kept + 1) * sizeof *more);
        rc = more == NULL || (more[kept] = strdup(name)) == NULL ? (errno = ENOMEM, -1) : 0;
        names = more != NULL ? more : names;
        kept += rc == 0;
    }
    if (rc == 0 && found != on)
        rc = write_subs(root, names, kept);
    int saved = errno;
    mailbox_names_free(names, kept);
    errno = saved;
    return rc;
}

int mailbox_subscribe(const char *root, const char *name, int on)
{
    if (!str_ieq(name, "INBOX") && !valid_name(name))
        return errno = EINVAL, -1;
    int lock = mbx_lock_file(root, SUBSCRIPTIONS_NAME ".lock");
    if (lock < 0)
        return -1;
    int rc = change_subs(root, str_ieq(name, "INBOX") ? "INBOX" : name, on);
    int saved = errno;
    close(lock);
    errno = saved;
    return rc;
}

/* ---- STATUS ---- */

int mailbox_status(const char *maildir, struct mailbox_status *st)
{
    struct mailbox mb;
    char flags[64];
    memset(st, 0, sizeof *st);
    if (mailbox_open(&mb, maildir) != 0)
        return -1;
    st->messages = (uint32_t)mb.count;
    st->uidnext = mb.uidnext;
    st->uidvalidity = mb.uidvalidity;
    st->size = mb.total_crlf;
    st->highestmodseq = mb.highestmodseq;
    for (size_t i = 0; i < mb.count; i++) {
        mailbox_flags(&mb.msgs[i], flags, sizeof flags);
        st->unseen += strchr(flags, 'S') == NULL;
    }
    mailbox_close(&mb);
    return 0;
}
