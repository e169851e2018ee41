/*
 * mailbox: one folder's UID index and reconciliation, flags by rename, and the Maildir++
 * folders (see mailbox.h and yubin-index(5)). It must never write the index except under its
 * lock and through write-new + fsync + rename (a kill -9 at any instant leaves the old index or
 * the new one) or by appending whole lines for files already durable in cur/, never trust a
 * directory mtime from the same second as the scan that recorded it, and never change a message's
 * contents.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "maildir.h"
#include "util.h"

#define INDEX_MAGIC_2 "yubin-index 2" /* still read: no modseq field, lines appended */
#define INDEX_MAGIC_1 "yubin-index 1" /* still read: no entry at or above uidnext */

#define WINDOW_SIZE 16384

/* ---- flags and names ---- */

/* The system flag letters, in the order of their bits from MAILBOX_FLAG_DRAFT on. */
static const char system_letters[] = "DFPRST";

/* The bit of a flag letter, or 0 for a letter that has none. */
static uint32_t letter_bit(char c)
{
    const char *p = c != '\0' ? strchr(system_letters, c) : NULL;
    if (c >= 'a' && c <= 'z')
        return MAILBOX_FLAG_KEYWORD(c - 'a');
    return p != NULL ? MAILBOX_FLAG_DRAFT << (p - system_letters) : 0;
}

static int is_flag(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

void mbx_sort_letters(const char *in, char *out, size_t size)
{
    size_t n = 0;
    if (size == 0)
        return;
    for (const char *p = in; *p != '\0' && n + 1 < size; p++)
        if (is_flag(*p) && memchr(out, *p, n) == NULL)
            out[n++] = *p;
    out[n] = '\0';
    for (size_t i = 1; i < n; i++) /* insertion sort: maildir(5) wants ASCII order */
        for (size_t k = i; k > 0 && out[k - 1] > out[k]; k--) {
            char c = out[k];
            out[k] = out[k - 1];
            out[k - 1] = c;
        }
}

uint32_t mbx_name_flags(const char *name, int *canonical)
{
    const char *info = strchr(name, ':');
    uint32_t bits = 0;
    int ok = info != NULL && strncmp(info, ":2,", 3) == 0;
    char last = 0;
    for (const char *p = ok ? info + 3 : ""; *p != '\0'; p++) {
        uint32_t b = letter_bit(*p);
        ok = ok && b != 0 && *p > last;
        last = *p;
        bits |= b;
    }
    if (canonical != NULL)
        *canonical = ok;
    return bits;
}

/* The letters in ASCII order, DFPRST then a-z, straight from the bits (a FETCH FLAGS of a
 * big folder calls this once per message: no lookup per letter). */
void mailbox_flags(const struct mailbox_msg *m, char *out, size_t size)
{
    size_t n = 0;
    if (size == 0)
        return;
    for (unsigned i = 0; system_letters[i] != '\0' && n + 1 < size; i++)
        if (m->flags & (MAILBOX_FLAG_DRAFT << i))
            out[n++] = system_letters[i];
    for (unsigned i = 0; i < 26 && n + 1 < size; i++)
        if (m->flags & MAILBOX_FLAG_KEYWORD(i))
            out[n++] = (char)('a' + i);
    out[n] = '\0';
}

int mbx_by_uid(const void *a, const void *b)
{
    uint32_t x = ((const struct mailbox_msg *)a)->uid, y = ((const struct mailbox_msg *)b)->uid;
    return (x > y) - (x < y);
}

/* ---- a message's name, read from the session's index ---- */

static int by_renamed_uid(const void *a, const void *b)
{
    uint32_t x = ((const struct mailbox_renamed *)a)->uid;
    uint32_t y = ((const struct mailbox_renamed *)b)->uid;
    return (x > y) - (x < y);
}

static struct mailbox_renamed *find_renamed(struct mailbox *mb, uint32_t uid)
{
    struct mailbox_renamed key = {.uid = uid};
    if (mb->n_renamed == 0)
        return NULL;
    return bsearch(&key, mb->renamed, mb->n_renamed, sizeof key, by_renamed_uid);
}

void mbx_forget_renamed(struct mailbox *mb)
{
    for (size_t i = 0; i < mb->n_renamed; i++)
        free(mb->renamed[i].name);
    free(mb->renamed);
    mb->renamed = NULL;
    mb->n_renamed = 0;
}

/* The entry of uid in the renamed table, added (no name, no modseq) if missing, or NULL. */
static struct mailbox_renamed *renamed_slot(struct mailbox *mb, uint32_t uid)
{
    struct mailbox_renamed *r = find_renamed(mb, uid);
    if (r != NULL)
        return r;
    r = realloc(mb->renamed, (mb->n_renamed + 1) * sizeof *r);
    if (r == NULL)
        return errno = ENOMEM, NULL;
    mb->renamed = r;
    size_t at = mb->n_renamed++;
    while (at > 0 && r[at - 1].uid > uid) {
        r[at] = r[at - 1];
        at--;
    }
    r[at] = (struct mailbox_renamed){uid, NULL, 0};
    return &r[at];
}

int mbx_renamed(struct mailbox *mb, struct mailbox_msg *m, const char *name, int derived)
{
    struct mailbox_renamed *r = find_renamed(mb, m->uid);
    m->flags = mbx_name_flags(name, NULL);
    if (derived && (r == NULL || r->name == NULL))
        return 0; /* made from the flags again when asked for */
    char *copy = strdup(name);
    if (copy == NULL || (r = renamed_slot(mb, m->uid)) == NULL) {
        free(copy);
        return errno = ENOMEM, -1;
    }
    free(r->name);
    r->name = copy;
    return 0;
}

/* The session's index file from offset from on, through the window: need bytes (fewer at the
 * file's end, *avail says how many), or NULL (errno). */
static const char *window(struct mailbox *mb, uint64_t from, size_t need, size_t *avail)
{
    if (mb->index_fd < 0)
        return errno = EIO, NULL;
    if (mb->win == NULL && (mb->win = malloc(WINDOW_SIZE)) == NULL)
        return errno = ENOMEM, NULL;
    if (from < mb->win_off || from + need > mb->win_off + mb->win_len) {
        ssize_t n = pread(mb->index_fd, mb->win, WINDOW_SIZE, (off_t)from);
        if (n < 0)
            return NULL;
        mb->win_off = from;
        mb->win_len = (size_t)n;
    }
    *avail = mb->win_len - (size_t)(from - mb->win_off);
    return mb->win + (from - mb->win_off);
}

/* The index's line from offset at up to its '\n', into mb->name. */
static int index_name(struct mailbox *mb, uint32_t at)
{
    size_t avail;
    const char *w = window(mb, at, sizeof mb->name, &avail);
    const char *p = w != NULL && avail > 0 ? memchr(w, '\n', avail) : NULL;
    size_t len = p != NULL ? (size_t)(p - w) : sizeof mb->name;
    if (w == NULL)
        return -1;
    if (len == 0 || len >= sizeof mb->name)
        return errno = EIO, -1;
    memcpy(mb->name, w, len);
    mb->name[len] = '\0';
    return 0;
}

#define MODSEQ_DIGITS 19 /* a 63-bit number */

/* The modseq of a version 3 line whose name starts at offset at: the number before it. 0 if
 * there is none (errno). */
static uint64_t index_modseq(struct mailbox *mb, uint32_t at)
{
    size_t back = at > MODSEQ_DIGITS + 1 ? MODSEQ_DIGITS + 1 : at, avail, digits = 0;
    const char *w = back > 1 ? window(mb, at - back, back, &avail) : NULL;
    if (w == NULL || avail < back || w[back - 1] != ' ')
        return errno = EIO, 0;
    while (digits + 1 < back && w[back - 2 - digits] >= '0' && w[back - 2 - digits] <= '9')
        digits++;
    uint64_t v = 0;
    for (size_t i = back - 1 - digits; i < back - 1; i++)
        v = v * 10 + (uint64_t)(w[i] - '0');
    return digits > 0 && digits <= MODSEQ_DIGITS && v > 0 ? v : (errno = EIO, 0);
}

uint64_t mailbox_modseq(struct mailbox *mb, const struct mailbox_msg *m)
{
    struct mailbox_renamed *r = find_renamed(mb, m->uid);
    return r != NULL && r->modseq != 0 ? r->modseq : index_modseq(mb, m->name_at);
}

const char *mbx_name(struct mailbox *mb, const struct mailbox_msg *m, int *derived)
{
    char letters[40];
    int canonical;
    struct mailbox_renamed *r = find_renamed(mb, m->uid);
    if (derived != NULL)
        *derived = 0;
    if (m->gone)
        return errno = ENOENT, NULL;
    if (r != NULL && r->name != NULL)
        return str_copy(mb->name, sizeof mb->name, r->name) == 0 ? mb->name : NULL;
    if (index_name(mb, m->name_at) != 0)
        return NULL;
    mbx_name_flags(mb->name, &canonical);
    if (!canonical)
        return mb->name;
    mailbox_flags(m, letters, sizeof letters);
    size_t base = strcspn(mb->name, ":");
    if (str_format(mb->name + base, sizeof mb->name - base, ":2,%s", letters) < 0)
        return errno = ENAMETOOLONG, NULL;
    if (derived != NULL)
        *derived = 1;
    return mb->name;
}

const char *mailbox_name(struct mailbox *mb, const struct mailbox_msg *m)
{
    return mbx_name(mb, m, NULL);
}

void mbx_unload(struct mailbox *mb)
{
    free(mb->msgs);
    mb->msgs = NULL;
    mb->count = 0;
    if (mb->index_fd >= 0)
        close(mb->index_fd);
    mb->index_fd = -1;
    free(mb->win);
    mb->win = NULL;
    mb->win_off = 0;
    mb->win_len = 0;
    mbx_forget_renamed(mb);
}

/* ---- the index file ---- */

static int parse_time(const char *text, struct timespec *t)
{
    unsigned long long sec, nsec;
    char end;
    if (sscanf(text, "%llu.%9llu%c", &sec, &nsec, &end) != 2 || nsec > 999999999ull)
        return -1;
    t->tv_sec = (time_t)sec;
    t->tv_nsec = (long)nsec;
    return 0;
}

/* A decimal number of line at *off followed by one space (sscanf was a third of a SELECT's
 * CPU). 0, or -1. */
static int parse_number(const char *line, int *off, unsigned long long *v)
{
    const char *p = line + *off;
    unsigned long long n = 0;
    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (n > (ULLONG_MAX - 9) / 10)
            return -1;
        n = n * 10 + (unsigned long long)(*p - '0');
    }
    if (*p != ' ' || p - line > 64)
        return -1;
    *v = n;
    *off = (int)(p + 1 - line);
    return 0;
}

/* The name of an index line at off: not empty, not a dot file, no '/'. */
static int good_name(const char *line, int off)
{
    return line[off] != '\0' && line[off] != '.' && strchr(line + off, '/') == NULL;
}

/* One "<uid> <size> <crlf-size> [<modseq> ]<name>" line (the modseq from version 3 on; 1
 * before): its fields, and where the name starts. */
static int parse_entry(const char *line, int version, uint32_t uidnext, struct mbx_entry *m,
                       int *name_off)
{
    unsigned long long uid, size, crlf, modseq = 1;
    int off = 0;
    if (parse_number(line, &off, &uid) != 0 || parse_number(line, &off, &size) != 0 ||
        parse_number(line, &off, &crlf) != 0 ||
        (version >= 3 && parse_number(line, &off, &modseq) != 0) || uid == 0 || uid >= uidnext ||
        modseq == 0 || modseq > INT64_MAX || !good_name(line, off))
        return -1;
    m->uid = (uint32_t)uid;
    m->size = size;
    m->crlf_size = crlf;
    m->modseq = modseq;
    *name_off = off;
    return 0;
}

/* Version 3's update line "= <uidnext> <uid> <modseq> <name>" (a flag change appended in place:
 * the message with that UID now has that name and modseq; uidnext is the UID the next new
 * message gets, so that the last line alone tells it). 0, or -1. */
static int parse_update(const char *line, struct mbx_entry *m, uint32_t *next, int *name_off)
{
    unsigned long long n, uid, modseq;
    int off = 2;
    if (strncmp(line, "= ", 2) != 0 || parse_number(line, &off, &n) != 0 ||
        parse_number(line, &off, &uid) != 0 || parse_number(line, &off, &modseq) != 0 || n == 0 ||
        n > UINT32_MAX || uid == 0 || uid >= n || modseq == 0 || modseq > INT64_MAX ||
        !good_name(line, off))
        return -1;
    memset(m, 0, sizeof *m);
    m->uid = (uint32_t)uid;
    m->modseq = modseq;
    *next = (uint32_t)n;
    *name_off = off;
    return 0;
}

/* The version of an index's first line, or 0. */
static int index_version(const char *magic)
{
    return strcmp(magic, MBX_INDEX_MAGIC) == 0 ? 3
           : strcmp(magic, INDEX_MAGIC_2) == 0 ? 2
           : strcmp(magic, INDEX_MAGIC_1) == 0 ? 1
                                               : 0;
}

/* Version 3's sixth header line, "highestmodseq N", into mb. 0, or -1. */
static int parse_highest(const char *line, struct mailbox *mb)
{
    unsigned long long h;
    char end;
    if (sscanf(line, "highestmodseq %llu%c", &h, &end) != 1 || h == 0 || h > INT64_MAX)
        return -1;
    mb->highestmodseq = h;
    return 0;
}

/* The header lines: uidvalidity, uidnext, cur and new times (the magic is read before). */
static int parse_header(char **lines, struct mailbox *mb, struct mbx_dirtimes *t)
{
    unsigned long v, n;
    char end;
    if (sscanf(lines[1], "uidvalidity %lu%c", &v, &end) != 1 || v == 0 || v > UINT32_MAX ||
        sscanf(lines[2], "uidnext %lu%c", &n, &end) != 1 || n == 0 || n > UINT32_MAX ||
        strncmp(lines[3], "cur ", 4) != 0 || parse_time(lines[3] + 4, &t->cur) != 0 ||
        strncmp(lines[4], "new ", 4) != 0 || parse_time(lines[4] + 4, &t->new_) != 0)
        return -1;
    mb->uidvalidity = (uint32_t)v;
    mb->uidnext = (uint32_t)n;
    return 0;
}

char *mbx_next_line(FILE *f, char **line, size_t *cap, size_t *len)
{
    ssize_t n = getline(line, cap, f);
    if (n <= 0 || (*line)[n - 1] != '\n')
        return NULL;
    (*line)[n - 1] = '\0';
    if (len != NULL)
        *len = (size_t)n;
    return *line;
}

/* The UID bound of an entry: version 2's appended entries raise uidnext. */
static uint32_t uid_bound(const struct mbx_index *ix, const struct mailbox *mb)
{
    return ix->version >= 2 ? UINT32_MAX : mb->uidnext;
}

static void raise_uidnext(struct mailbox *mb, uint32_t uid)
{
    if (uid >= mb->uidnext)
        mb->uidnext = uid + 1;
}

/* Was the whole file read? Version 2 ignores an unterminated last line: an append cut by a
 * crash, whose file the next reconcile numbers (its cur/ time is not the recorded one). */
static int read_whole(const struct mbx_index *ix)
{
    return ix->pos == ix->size || ix->version >= 2;
}

/* Opens <folder>/yubin-index and reads its header into mb and t. 0, 1 if missing or unusable. */
static int index_open(struct mailbox *mb, struct mbx_index *ix, struct mbx_dirtimes *t)
{
    char path[PATH_MAX], *head[6] = {NULL}, *line = NULL;
    size_t cap = 0, len;
    struct stat st;
    ix->f = NULL;
    ix->pos = 0;
    ix->version = 0;
    mb->highestmodseq = 1;
    if (str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) < 0)
        return 1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ix->f = fd >= 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size <= MBX_INDEX_MAX_SIZE
                ? fdopen(fd, "r")
                : NULL;
    if (ix->f == NULL) {
        if (fd >= 0)
            close(fd);
        return 1;
    }
    ix->size = (uint64_t)st.st_size;
    int rc = 0, lines = 5;
    for (int i = 0; rc == 0 && i < lines; i++) {
        rc = mbx_next_line(ix->f, &line, &cap, &len) == NULL || (head[i] = strdup(line)) == NULL;
        ix->pos += rc == 0 ? len : 0;
        if (rc == 0 && i == 0)
            lines = (ix->version = index_version(head[0])) >= 3 ? 6 : 5;
    }
    rc = rc || ix->version == 0 || parse_header(head, mb, t) != 0 ||
         (ix->version >= 3 && parse_highest(head[5], mb) != 0);
    for (int i = 0; i < 6; i++)
        free(head[i]);
    free(line);
    if (rc) {
        fclose(ix->f);
        ix->f = NULL;
    }
    return rc;
}

int mbx_parse_line(const char *line, const struct mbx_index *ix, struct mailbox *mb,
                   struct mbx_entry *m, int *off, int *update)
{
    uint32_t next = 0;
    *update = ix->version >= 3 && line[0] == '=';
    if (*update ? parse_update(line, m, &next, off) != 0
                : parse_entry(line, ix->version, uid_bound(ix, mb), m, off) != 0)
        return -1;
    raise_uidnext(mb, *update ? next - 1 : m->uid);
    if (m->modseq > mb->highestmodseq)
        mb->highestmodseq = m->modseq;
    return 0;
}

int mbx_record(struct mailbox_msg *r, uint32_t uid, uint32_t flags, uint64_t crlf_size, uint64_t at,
               int recent)
{
    if (crlf_size > UINT32_MAX || at >= MBX_INDEX_MAX_SIZE)
        return 1;
    memset(r, 0, sizeof *r);
    r->uid = uid;
    r->flags = flags;
    r->crlf_size = (uint32_t)crlf_size;
    r->name_at = (uint32_t)at;
    r->recent = recent != 0;
    return 0;
}

int mbx_read_entries(struct mbx_index *ix, struct mailbox *mb, mbx_fill_fn *fill, void *ctx)
{
    char *line = NULL;
    size_t cap = 0, alloc = 0, len;
    int rc = 0, off, update;
    uint32_t last = 0;
    struct mbx_entry e;
    if (mem_grow(&mb->msgs, &alloc, ix->size / 48 + 1, sizeof *mb->msgs) != 0)
        return 1;
    while (rc == 0 && mbx_next_line(ix->f, &line, &cap, &len) != NULL) {
        rc = mbx_parse_line(line, ix, mb, &e, &off, &update) != 0 || (!update && e.uid <= last) ||
             mem_grow(&mb->msgs, &alloc, mb->count + 1, sizeof *mb->msgs) != 0;
        struct mbx_line l = {&e, line + off, ix->pos, ix->pos + (uint64_t)off};
        struct mailbox_msg *r = rc == 0 && update ? mailbox_by_uid(mb, e.uid) : NULL;
        if (r != NULL)
            fill(ctx, r, &l, 1);
        if (rc == 0 && !update) {
            last = e.uid;
            mb->count += (size_t)fill(ctx, &mb->msgs[mb->count], &l, 0);
        }
        ix->pos += len;
    }
    free(line);
    return rc || !read_whole(ix);
}

/* A session's record of an index line: an entry's (0 if it cannot be held), or an update's
 * new name. */
static int fill_record(void *ctx, struct mailbox_msg *r, const struct mbx_line *l, int update)
{
    (void)ctx;
    if (!update)
        return mbx_record(r, l->e->uid, mbx_name_flags(l->name, NULL), l->e->crlf_size, l->name_at,
                          0) == 0;
    if (l->name_at < MBX_INDEX_MAX_SIZE) {
        r->flags = mbx_name_flags(l->name, NULL);
        r->name_at = (uint32_t)l->name_at;
    }
    return 0;
}

/* The entries of the index into mb->msgs, streamed: no name is kept. 0, 1 if unusable. */
static int read_records(struct mbx_index *ix, struct mailbox *mb)
{
    int rc = mbx_read_entries(ix, mb, fill_record, NULL);
    struct mailbox_msg *fit = realloc(mb->msgs, (mb->count + 1) * sizeof *fit);
    if (fit != NULL)
        mb->msgs = fit;
    return rc;
}

/* ---- reconciling with the directories ---- */

/* Times of cur/ and new/ worth recording: a zero time (never trusted) for a directory changed
 * in the current second (CLOCK_REALTIME_COARSE, which file times never precede): a later
 * change in that second might leave its mtime as it is. */
static int dir_times(const struct mailbox *mb, struct mbx_dirtimes *t, int for_record)
{
    struct stat sc, sn;
    struct timespec now;
    if (fstat(mb->cur_fd, &sc) != 0 || fstatat(mb->cur_fd, "../new", &sn, 0) != 0)
        return -1;
    t->cur = sc.st_mtim;
    t->new_ = sn.st_mtim;
    if (for_record && clock_gettime(CLOCK_REALTIME_COARSE, &now) == 0 &&
        (t->cur.tv_sec >= now.tv_sec || t->new_.tv_sec >= now.tv_sec))
        t->cur.tv_sec = t->cur.tv_nsec = t->new_.tv_sec = t->new_.tv_nsec = 0;
    return 0;
}

static int same_time(struct timespec a, struct timespec b)
{
    return a.tv_sec != 0 && a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static uint32_t new_uidvalidity(void)
{
    time_t now = time(NULL);
    return now > 0 && (uint64_t)now < UINT32_MAX ? (uint32_t)now : 1;
}

/* Under the lock: the index, and the directories unless their times say nothing changed. */
/* What the session's next refresh compares: the directory times taken before the scan, and
 * the index file as it now is. */
static void remember(struct mailbox *mb, const struct mbx_dirtimes *seen)
{
    char path[PATH_MAX];
    struct stat st;
    mb->seen_cur = seen->cur;
    mb->seen_new = seen->new_;
    mb->seen_index = 0;
    if (str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) >= 0 &&
        stat(path, &st) == 0)
        mb->seen_index = (unsigned long long)st.st_ino;
}

/* The index's header read (ix), the rest of the folder: its records alone when the
 * directories have not changed since it was written, else reconciled. 0, 1 if the index is
 * unusable (rebuild it), -1. */
static int load_dirs(struct mailbox *mb, struct mbx_index *ix, const struct mbx_dirtimes *recorded)
{
    struct mbx_dirtimes seen;
    if (dir_times(mb, &seen, 1) != 0)
        return -1;
    int rc;
    if (ix->f != NULL && ix->version >= MBX_INDEX_VERSION && same_time(seen.cur, recorded->cur) &&
        same_time(seen.new_, recorded->new_)) { /* an older version is rewritten */
        rc = read_records(ix, mb);
        mb->index_fd = rc == 0 ? dup(fileno(ix->f)) : -1;
        if (rc == 0 && mb->index_fd < 0)
            rc = -1;
    } else {
        rc = mbx_reconcile(mb, ix, &seen);
    }
    if (rc == 0)
        remember(mb, &seen);
    return rc;
}

int mbx_load_locked(struct mailbox *mb)
{
    struct mbx_dirtimes recorded = {{0, 0}, {0, 0}};
    struct mbx_index ix;
    mb->index_fd = -1;
    if (mbx_journal_finish(mb->path) != 0)
        return -1;
    int rc = index_open(mb, &ix, &recorded) != 0 ? 1 : load_dirs(mb, &ix, &recorded);
    if (ix.f != NULL)
        fclose(ix.f);
    if (rc == 1) { /* missing or unusable: a new UIDVALIDITY */
        mbx_unload(mb);
        ix.f = NULL;
        mb->created = 1;
        mb->uidvalidity = new_uidvalidity();
        mb->uidnext = 1;
        mb->highestmodseq = 1;
        rc = load_dirs(mb, &ix, &recorded);
    }
    return rc;
}

/* ---- adding to the index in place (APPEND, COPY) ---- */

/* The UID after the last entry of ix (whose file ends with a whole line), into t->next, and
 * the highest modseq into t->highest (the last line's: appended lines raise it one by one).
 * 0, or 1 if it cannot be told from the file's end. */
static int tail_next(struct mbx_index *ix, struct mailbox *mb, struct mbx_tail *t)
{
    char buf[4096];
    size_t n = ix->size - ix->pos < sizeof buf - 1 ? (size_t)(ix->size - ix->pos) : sizeof buf - 1;
    t->next = mb->uidnext;
    t->highest = mb->highestmodseq;
    t->size = ix->size;
    if (n == 0)
        return 0; /* no entry */
    if (pread(fileno(ix->f), buf, n, (off_t)(ix->size - n)) != (ssize_t)n || buf[n - 1] != '\n')
        return 1; /* an unterminated last line: the next reconcile rewrites the file */
    buf[n - 1] = '\0';
    char *start = strrchr(buf, '\n');
    if (start == NULL && n < ix->size - ix->pos)
        return 1;
    int off, update;
    struct mbx_entry m;
    if (mbx_parse_line(start != NULL ? start + 1 : buf, ix, mb, &m, &off, &update) != 0)
        return 1;
    t->next = mb->uidnext > t->next ? mb->uidnext : t->next;
    t->highest = mb->highestmodseq;
    return t->next == 0; /* UIDs ran out */
}

int mbx_tail_open(const char *maildir, struct mbx_tail *t)
{
    struct mailbox mb;
    struct mbx_dirtimes recorded;
    struct mbx_index ix = {NULL, 0, 0, 0};
    char path[PATH_MAX];
    memset(&mb, 0, sizeof mb);
    t->fd = -1;
    if (str_copy(mb.path, sizeof mb.path, maildir) != 0)
        return errno = ENAMETOOLONG, -1;
    if (mbx_journal_finish(maildir) != 0)
        return -1;
    int rc = index_open(&mb, &ix, &recorded) != 0 || ix.version < MBX_INDEX_VERSION ||
             ix.size > MBX_INDEX_MAX_SIZE - (1u << 20) || tail_next(&ix, &mb, t) != 0;
    t->uidvalidity = mb.uidvalidity;
    if (rc == 0 && str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, maildir) >= 0)
        t->fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    int saved = errno;
    if (ix.f != NULL)
        fclose(ix.f);
    errno = saved;
    return rc != 0 ? 1 : t->fd < 0 ? -1 : 0;
}

int mbx_tail_add(struct mbx_tail *t, char *const *names, size_t n, uint32_t *uids)
{
    size_t cap = n * (NAME_MAX + 64) + 1, len = 0;
    char *text = malloc(cap);
    if (text == NULL)
        return errno = ENOMEM, -1;
    for (size_t i = 0; i < n; i++) {
        size_t ulen;
        uint64_t size, crlf;
        if (t->next == 0 || strchr(names[i], '\n') != NULL ||
            maildir_parse_name(names[i], &ulen, &size, &crlf) != 0) {
            free(text);
            return errno = EINVAL, -1;
        }
        uids[i] = t->next++;
        int w = snprintf(text + len, cap - len, "%lu %llu %llu %llu %s\n", (unsigned long)uids[i],
                         (unsigned long long)size, (unsigned long long)crlf,
                         (unsigned long long)t->highest + 1, names[i]);
        len += w > 0 ? (size_t)w : 0;
    }
    int rc = write_all(t->fd, text, len) != 0 || fsync(t->fd) != 0 ? -1 : 0;
    t->highest += rc == 0 && n > 0;
    t->size += rc == 0 ? len : 0;
    free(text);
    return rc;
}

int mbx_tail_update(struct mbx_tail *t, uint32_t uid, uint64_t modseq, const char *name,
                    uint64_t *name_at)
{
    char line[NAME_MAX + 96];
    int w = snprintf(line, sizeof line, "= %lu %lu %llu ", (unsigned long)t->next,
                     (unsigned long)uid, (unsigned long long)modseq);
    size_t len = w > 0 ? (size_t)w : 0;
    if (t->next == 0 || uid >= t->next || strchr(name, '\n') != NULL ||
        str_format(line + len, sizeof line - len, "%s\n", name) < 0)
        return errno = EINVAL, -1;
    *name_at = t->size + len;
    mbx_kill_point();
    if (write_all(t->fd, line, len + strlen(line + len)) != 0)
        return -1;
    t->size += len + strlen(line + len);
    return 0;
}

void mbx_tail_close(struct mbx_tail *t)
{
    if (t->fd >= 0)
        close(t->fd);
    t->fd = -1;
}

int mbx_unchanged(struct mailbox *mb)
{
    struct mbx_dirtimes now;
    char path[PATH_MAX];
    struct stat st;
    if (dir_times(mb, &now, 0) != 0 || !same_time(now.cur, mb->seen_cur) ||
        !same_time(now.new_, mb->seen_new) ||
        str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) < 0 ||
        stat(path, &st) != 0)
        return 0;
    return (unsigned long long)st.st_ino == mb->seen_index;
}

int mbx_lock_file(const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (str_format(path, sizeof path, "%s/%s", dir, name) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && flock(fd, LOCK_EX) != 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

int mbx_lock_index(const char *maildir)
{
    return mbx_lock_file(maildir, MAILBOX_INDEX_NAME ".lock");
}

int mbx_replace_file(const char *dir, const char *name, const char *data, size_t len)
{
    char tmp[PATH_MAX], path[PATH_MAX];
    if (str_format(tmp, sizeof tmp, "%s/%s.new", dir, name) < 0 ||
        str_format(path, sizeof path, "%s/%s", dir, name) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return -1;
    int rc = write_all(fd, data, len) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (close(fd) != 0 && !rc)
        rc = 1, saved = errno;
    if (rc || rename(tmp, path) != 0) {
        saved = rc ? saved : errno;
        unlink(tmp);
        errno = saved;
        return -1;
    }
    return fsync_dir(dir);
}

int mbx_load_path(struct mailbox *fresh, const char *maildir)
{
    char path[PATH_MAX];
    memset(fresh, 0, sizeof *fresh);
    fresh->watch_fd = fresh->index_fd = -1;
    if (str_copy(fresh->path, sizeof fresh->path, maildir) != 0 ||
        str_format(path, sizeof path, "%s/cur", maildir) < 0)
        return fresh->cur_fd = -1, errno = ENAMETOOLONG, -1;
    if ((fresh->cur_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return -1;
    return mbx_load_locked(fresh);
}

int mailbox_open(struct mailbox *mb, const char *maildir)
{
    char path[PATH_MAX];
    memset(mb, 0, sizeof *mb);
    mb->cur_fd = -1;
    mb->watch_fd = -1;
    mb->index_fd = -1;
    if (str_copy(mb->path, sizeof mb->path, maildir) != 0 ||
        str_format(path, sizeof path, "%s/cur", maildir) < 0)
        return errno = ENAMETOOLONG, -1;
    mb->cur_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int lock = mb->cur_fd >= 0 ? mbx_lock_index(maildir) : -1;
    int rc = lock >= 0 ? mbx_load_locked(mb) : -1;
    int saved = errno;
    if (lock >= 0)
        close(lock);
    for (size_t i = 0; rc == 0 && i < mb->count; i++)
        mb->total_crlf += mb->msgs[i].crlf_size;
    if (rc == 0)
        mbx_keywords_load(mb->path, &mb->kw);
    if (rc != 0) {
        mailbox_close(mb);
        errno = saved;
    }
    return rc;
}

void mailbox_close(struct mailbox *mb)
{
    mailbox_change_end(mb);
    mbx_unload(mb);
    if (mb->cur_fd >= 0)
        close(mb->cur_fd);
    if (mb->watch_fd >= 0)
        close(mb->watch_fd);
    mbx_keywords_free(&mb->kw);
    mb->watch_fd = -1;
    mb->total_crlf = 0;
    mb->cur_fd = -1;
}

struct mailbox_msg *mailbox_by_uid(struct mailbox *mb, uint32_t uid)
{
    struct mailbox_msg key = {.uid = uid};
    if (mb->count == 0)
        return NULL;
    return bsearch(&key, mb->msgs, mb->count, sizeof *mb->msgs, mbx_by_uid);
}

size_t mailbox_first_uid_at(const struct mailbox *mb, uint32_t uid)
{
    size_t lo = 0, hi = mb->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (mb->msgs[mid].uid < uid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

int mailbox_uidl(struct mailbox *mb, const struct mailbox_msg *m, char out[MAILBOX_UIDL_MAX + 1])
{
    const char *name = mbx_name(mb, m, NULL);
    if (name == NULL)
        return -1;
    size_t len = strcspn(name, ",:");
    int ok = len <= MAILBOX_UIDL_MAX;
    for (size_t i = 0; ok && i < len; i++)
        ok = name[i] > 0x20 && name[i] < 0x7f;
    if (ok) {
        memcpy(out, name, len);
        out[len] = '\0';
        return 0;
    }
    unsigned char digest[16];
    crypto_generichash(digest, sizeof digest, (const unsigned char *)name, len, NULL, 0);
    sodium_bin2hex(out, MAILBOX_UIDL_MAX + 1, digest, sizeof digest);
    return 0;
}

/* ---- a file renamed by another session ---- */

/* Finds the message's file again by its base name (another session changed its flags). 0 with
 * its name in found, 1 if no file has that base, -1 on error. */
int mbx_find_base(int dirfd, const char *name, char *found, size_t size)
{
    size_t blen = strcspn(name, ":");
    int fd = dup(dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    rewinddir(d);
    struct dirent *e;
    int rc = 1;
    while (rc == 1 && (e = readdir(d)) != NULL)
        if (strncmp(e->d_name, name, blen) == 0 &&
            (e->d_name[blen] == ':' || e->d_name[blen] == '\0'))
            rc = str_copy(found, size, e->d_name) != 0 ? -1 : 0;
    closedir(d);
    return rc;
}

int mbx_refind(struct mailbox *mb, struct mailbox_msg *m)
{
    char found[NAME_MAX + 1];
    const char *name = mbx_name(mb, m, NULL);
    if (name == NULL)
        return errno == ENOENT ? 1 : -1;
    int rc = mbx_find_base(mb->cur_fd, name, found, sizeof found);
    return rc == 0 && mbx_renamed(mb, m, found, 0) != 0 ? -1 : rc;
}

int mbx_refind_failed(struct mailbox *mb, struct mailbox_msg *m)
{
    return errno != ENOENT ? -1 : mbx_refind(mb, m);
}

/* m's current name, copied into buf. 0, 1 if it is gone, -1. */
static int name_of(struct mailbox *mb, const struct mailbox_msg *m, char *buf, size_t size,
                   int *derived)
{
    const char *name = mbx_name(mb, m, derived);
    if (name == NULL)
        return errno == ENOENT ? 1 : -1;
    return str_copy(buf, size, name) != 0 ? (errno = ENAMETOOLONG, -1) : 0;
}

int mailbox_open_msg(struct mailbox *mb, struct mailbox_msg *m)
{
    char name[NAME_MAX + 1];
    for (int tries = 0; tries < 5; tries++) {
        int rc = name_of(mb, m, name, sizeof name, NULL);
        if (rc != 0)
            return errno = rc > 0 ? ENOENT : errno, -1;
        int fd = openat(mb->cur_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd >= 0 || errno != ENOENT)
            return fd;
        rc = mbx_refind(mb, m);
        if (rc != 0)
            return errno = rc > 0 ? ENOENT : errno, -1;
    }
    return errno = ENOENT, -1;
}

/* ---- flags ---- */

/* name with the flags in add added and those in clear cleared (other letters kept). */
static int flagged_name(const char *name, const char *add, const char *clear, char *dst,
                        size_t size)
{
    char keep[NAME_MAX + 1], sorted[NAME_MAX + 1];
    size_t n = 0, base = strcspn(name, ":");
    const char *info = name + base;
    if (strncmp(info, ":2,", 3) == 0)
        for (const char *p = info + 3; *p != '\0' && n + 1 < sizeof keep; p++)
            if (strchr(clear, *p) == NULL)
                keep[n++] = *p;
    for (const char *p = add; *p != '\0' && n + 1 < sizeof keep; p++)
        if (strchr(clear, *p) == NULL)
            keep[n++] = *p;
    keep[n] = '\0';
    mbx_sort_letters(keep, sorted, sizeof sorted);
    return str_format(dst, size, "%.*s:2,%s", (int)base, name, sorted) < 0 ? -1 : 0;
}

/* The change of m's name to name recorded in the index with the batch's modseq (m->name_at
 * moved to the new line when the session reads that file, else the modseq kept aside). */
static int record_change(struct mailbox *mb, struct mailbox_msg *m, const char *name)
{
    struct mbx_tail t = {mb->chg_fd, mb->uidvalidity, mb->chg_next, 0, mb->chg_size};
    struct mailbox_renamed *r = find_renamed(mb, m->uid);
    uint64_t at;
    if (mb->chg_fd < 0)
        return 0; /* the index was rebuilt meanwhile: the next reconcile gives it a modseq */
    if (mbx_tail_update(&t, m->uid, mb->chg_modseq, name, &at) != 0)
        return -1;
    mb->chg_size = t.size;
    mb->chg_count++;
    if (mb->chg_same && at < MBX_INDEX_MAX_SIZE) {
        m->name_at = (uint32_t)at;
        if (r != NULL)
            r->modseq = 0;
        return 0;
    }
    if ((r = renamed_slot(mb, m->uid)) == NULL)
        return -1;
    r->modseq = mb->chg_modseq;
    return 0;
}

/* mailbox_set_flags inside a batch. */
static int set_flags(struct mailbox *mb, struct mailbox_msg *m, const char *add, const char *clear)
{
    char name[NAME_MAX + 1], target[NAME_MAX + 1];
    int derived;
    for (int tries = 0; tries < 5; tries++) {
        int rc = name_of(mb, m, name, sizeof name, &derived);
        if (rc != 0)
            return rc;
        if (flagged_name(name, add, clear, target, sizeof target) != 0)
            return errno = ENAMETOOLONG, -1;
        if (strcmp(target, name) == 0)
            return 0;
        if (renameat(mb->cur_fd, name, mb->cur_fd, target) == 0)
            return mbx_renamed(mb, m, target, derived) != 0 ? -1 : record_change(mb, m, target);
        rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc;
    }
    return errno = EAGAIN, -1;
}

int mailbox_set_flags(struct mailbox *mb, struct mailbox_msg *m, const char *add, const char *clear)
{
    if (mb->changing)
        return set_flags(mb, m, add, clear);
    if (mailbox_change_begin(mb) != 0)
        return -1;
    int rc = set_flags(mb, m, add, clear), saved = errno;
    if (mailbox_change_end(mb) != 0 && rc == 0)
        return -1;
    errno = saved;
    return rc;
}

/* Under the lock: the index open for appending, reconciled first when it cannot be appended to
 * (an older version, or a line cut by a crash). 0, or -1. */
static int open_tail(struct mailbox *mb, struct mbx_tail *t)
{
    int rc = mbx_tail_open(mb->path, t);
    if (rc == 1) {
        struct mailbox fresh;
        rc = mbx_load_path(&fresh, mb->path);
        mbx_unload(&fresh);
        if (fresh.cur_fd >= 0)
            close(fresh.cur_fd);
        rc = rc != 0 ? -1 : mbx_tail_open(mb->path, t);
    }
    return rc > 0 ? (errno = EIO, -1) : rc;
}

/* Under the lock: the batch's index, open for appending. 0, or -1. */
static int change_tail(struct mailbox *mb)
{
    struct mbx_tail t = {-1, 0, 0, 0, 0};
    struct stat a, b;
    if (open_tail(mb, &t) != 0)
        return -1;
    if (t.uidvalidity != mb->uidvalidity) /* rebuilt: our UIDs are not its UIDs */
        mbx_tail_close(&t);
    mb->chg_fd = t.fd;
    mb->chg_next = t.next;
    mb->chg_size = t.size;
    mb->chg_modseq = t.highest + 1;
    mb->chg_count = 0;
    mb->chg_same = t.fd >= 0 && mb->index_fd >= 0 && fstat(t.fd, &a) == 0 &&
                   fstat(mb->index_fd, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
    return 0;
}

int mailbox_change_begin(struct mailbox *mb)
{
    if (mb->changing)
        return errno = EBUSY, -1;
    int lock = mbx_lock_index(mb->path);
    if (lock < 0 || change_tail(mb) != 0) {
        int saved = errno;
        if (lock >= 0)
            close(lock);
        return errno = saved, -1;
    }
    mb->changing = 1;
    mb->chg_lock = lock;
    return 0;
}

int mailbox_change_refresh(struct mailbox *mb, struct mailbox_changes *ch)
{
    if (!mb->changing || mb->chg_count > 0)
        return memset(ch, 0, sizeof *ch), errno = EINVAL, -1;
    if (mb->chg_fd >= 0)
        close(mb->chg_fd);
    mb->chg_fd = -1;
    int rc = mailbox_refresh(mb, MAILBOX_REFRESH_LOCKED | MAILBOX_REFRESH_KEEP_GONE, ch);
    int saved = errno;
    if (change_tail(mb) != 0 && rc == 0) {
        mailbox_changes_free(ch);
        return -1;
    }
    errno = saved;
    return rc;
}

int mailbox_change_end(struct mailbox *mb)
{
    if (!mb->changing)
        return 0;
    if (mb->chg_count > 0)
        mbx_kill_point();
    int rc = mb->chg_fd >= 0 && mb->chg_count > 0 && fsync(mb->chg_fd) != 0 ? -1 : 0;
    int saved = errno;
    if (rc == 0 && mb->chg_fd >= 0 && mb->chg_count > 0)
        mb->highestmodseq = mb->chg_modseq;
    if (mb->chg_fd >= 0)
        close(mb->chg_fd);
    close(mb->chg_lock);
    mb->changing = 0;
    mb->chg_fd = mb->chg_lock = -1;
    errno = saved;
    return rc;
}

int mailbox_expunge(struct mailbox *mb, struct mailbox_msg *m)
{
    char name[NAME_MAX + 1];
    for (int tries = 0; tries < 5; tries++) {
        int rc = name_of(mb, m, name, sizeof name, NULL);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
        if (unlinkat(mb->cur_fd, name, 0) == 0)
            return 0;
        rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc > 0 ? 0 : -1;
    }
    return errno = EAGAIN, -1;
}

int mailbox_sync(struct mailbox *mb)
{
    return fsync(mb->cur_fd);
}

/* ---- IMAP message attributes ---- */

int mailbox_internaldate(struct mailbox *mb, struct mailbox_msg *m, time_t *when)
{
    char name[NAME_MAX + 1];
    struct stat st;
    for (int tries = 0; tries < 5; tries++) {
        int rc = name_of(mb, m, name, sizeof name, NULL);
        if (rc != 0)
            return rc;
        if (fstatat(mb->cur_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
            *when = st.st_mtime;
            return 0;
        }
        rc = mbx_refind_failed(mb, m);
        if (rc != 0)
            return rc;
    }
    return errno = EAGAIN, -1;
}
