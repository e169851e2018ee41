/*
 * mailbox-reconcile: a folder's index written anew from its directories (yubin-index(5),
 * "Opening a folder"), at a first login or after files were added or removed behind the
 * index's back, in memory bounded by the 16 bytes per message a session keeps anyway.
 *
 * cur/ is read as a stream. Each name is matched to the old index's entries by a 32-bit hash
 * of its base name, held in the entry's record; a hash match is confirmed by comparing the
 * names through the old index file, so two messages are never merged. The names the index
 * did not know are sorted by base name in bounded chunks, spilled as sorted runs to an
 * unnamed temporary file when there are many, and merged back as a stream when they are
 * numbered. The new index is written as a stream: the old index read again in UID order (a
 * known message keeps its sizes, its current name, and its MODSEQ unless the name changed
 * behind the index's back), then the new names.
 *
 * It must never hold every name of a folder, never write the index but as write-new + fsync +
 * rename under the lock, never renumber a message the old index knew, and never give two
 * files one UID.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "maildir.h"
#include "util.h"

#define CHUNK_SIZE (128u << 10)  /* names sorted in memory at once */
#define CHUNK_RECORDS 4096       /* and at most this many of them */
#define MERGE_BUDGET (64u << 10) /* the read buffers of all runs together, when merging */
#define RUN_BUFFER_MIN 512       /* one record at least */
#define LINE_SIZE 512            /* an index line: three numbers (64 octets) and a name */
#define REC_HEAD 18              /* a sorted record: size (8), crlf size (8), name length (2) */

/* While cur/ is read, a known message's record holds: uid; crlf_size the hash of its base
 * name; name_at where its latest line (its entry, or an update line) starts in the old index;
 * gone 1 once a file matched it, with flags the file's flags, recent 1 if the file's name is
 * not the index's (it gets a new MODSEQ), and deleted how its new line is named: */
#define NAME_DERIVED 0 /* base + ":2," + its flags (the file's name was canonical) */
#define NAME_OLD 1     /* the old index's name as it is (the file's name, not canonical) */
#define NAME_TABLE 2   /* a name kept in the side table (not canonical and changed) */

/* ---- names the index did not know, sorted by base name ---- */

struct run {
    uint64_t at, end; /* a sorted run in the spill file */
};

struct cursor {
    uint64_t at, end; /* what is left of the run in the file */
    char *buf;
    size_t len, pos;
};

struct sorter {
    char *buf; /* the current chunk of records */
    size_t len;
    uint32_t offs[CHUNK_RECORDS]; /* its records, sorted before they are used */
    size_t n;
    int fd; /* the spill file, -1 until a chunk is full */
    uint64_t spilled;
    struct run *runs;
    size_t nruns, runs_cap;
    struct cursor *cur;                 /* merging: one per run, and a heap of them */
    size_t *heap, nheap, run_buf, next; /* next: the chunk's next record (no runs) */
    char copy[REC_HEAD + NAME_MAX];     /* the record given out by a merge */
    char last[NAME_MAX + 1];            /* the last base given out (the same base twice is one) */
    size_t last_len;
    int have_last;
};

/* One record: the name (not NUL-terminated) and its sizes. */
struct item {
    const char *name;
    size_t len;
    uint64_t size, crlf_size;
};

static void item_of(const char *rec, struct item *it)
{
    uint16_t len;
    memcpy(&it->size, rec, 8);
    memcpy(&it->crlf_size, rec + 8, 8);
    memcpy(&len, rec + 16, 2);
    it->len = len;
    it->name = rec + REC_HEAD;
}

static size_t base_len(const char *name, size_t len)
{
    const char *colon = memchr(name, ':', len);
    return colon != NULL ? (size_t)(colon - name) : len;
}

static int base_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t n = alen < blen ? alen : blen;
    int c = memcmp(a, b, n);
    return c != 0 ? c : (alen > blen) - (alen < blen);
}

static int rec_cmp(const char *x, const char *y)
{
    struct item a, b;
    item_of(x, &a);
    item_of(y, &b);
    return base_cmp(a.name, base_len(a.name, a.len), b.name, base_len(b.name, b.len));
}

static int by_record(const void *a, const void *b, void *buf)
{
    return rec_cmp((const char *)buf + *(const uint32_t *)a,
                   (const char *)buf + *(const uint32_t *)b);
}

static int sorter_init(struct sorter *s)
{
    memset(s, 0, sizeof *s);
    s->fd = -1;
    s->buf = malloc(CHUNK_SIZE);
    return s->buf != NULL ? 0 : (errno = ENOMEM, -1);
}

static void sorter_free(struct sorter *s)
{
    free(s->buf);
    free(s->runs);
    for (size_t i = 0; s->cur != NULL && i < s->nruns; i++)
        free(s->cur[i].buf);
    free(s->cur);
    free(s->heap);
    if (s->fd >= 0)
        close(s->fd);
    memset(s, 0, sizeof *s);
    s->fd = -1;
}

/* An unnamed file in the folder for the runs (a named one, unlinked at once, where the file
 * system has no O_TMPFILE): nothing is left behind by a crash. */
static int spill_open(const char *maildir)
{
    char path[PATH_MAX];
    int fd = open(maildir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd >= 0 || str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME ".sort", maildir) < 0)
        return fd;
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && unlink(path) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* The chunk, sorted, appended to the spill file as one run. */
static int spill_chunk(struct sorter *s, const char *maildir)
{
    char out[16384];
    size_t used = 0;
    if (s->fd < 0 && (s->fd = spill_open(maildir)) < 0)
        return -1;
    if (mem_grow(&s->runs, &s->runs_cap, s->nruns + 1, sizeof *s->runs) != 0)
        return errno = ENOMEM, -1;
    qsort_r(s->offs, s->n, sizeof *s->offs, by_record, s->buf);
    s->runs[s->nruns].at = s->spilled;
    for (size_t i = 0; i < s->n; i++) {
        struct item it;
        item_of(s->buf + s->offs[i], &it);
        size_t len = REC_HEAD + it.len;
        if (used + len > sizeof out) {
            if (write_all(s->fd, out, used) != 0)
                return -1;
            used = 0;
        }
        memcpy(out + used, s->buf + s->offs[i], len);
        used += len;
        s->spilled += len;
    }
    if (write_all(s->fd, out, used) != 0)
        return -1;
    s->runs[s->nruns++].end = s->spilled;
    s->len = s->n = 0;
    return 0;
}

static int sorter_add(struct sorter *s, const char *maildir, const char *name, uint64_t size,
                      uint64_t crlf)
{
    size_t len = strlen(name);
    uint16_t len16 = (uint16_t)len;
    if (len > NAME_MAX)
        return 0; /* not a file name */
    if ((s->len + REC_HEAD + len > CHUNK_SIZE || s->n == CHUNK_RECORDS) &&
        spill_chunk(s, maildir) != 0)
        return -1;
    char *rec = s->buf + s->len;
    memcpy(rec, &size, 8);
    memcpy(rec + 8, &crlf, 8);
    memcpy(rec + 16, &len16, 2);
    memcpy(rec + REC_HEAD, name, len);
    s->offs[s->n++] = (uint32_t)s->len;
    s->len += REC_HEAD + len;
    return 0;
}

/* The cursor's next record whole in its buffer (read from the run as needed): 1, 0 at the
 * run's end, -1. */
static int cursor_next(int fd, struct cursor *c, size_t run_buf)
{
    for (;;) {
        size_t have = c->len - c->pos;
        struct item it;
        if (have >= REC_HEAD) {
            item_of(c->buf + c->pos, &it);
            if (have >= REC_HEAD + it.len)
                return 1;
        }
        if (c->at == c->end)
            return have == 0 ? 0 : (errno = EIO, -1);
        memmove(c->buf, c->buf + c->pos, have);
        c->pos = 0;
        c->len = have;
        size_t want = run_buf - have;
        if (want > c->end - c->at)
            want = (size_t)(c->end - c->at);
        ssize_t n = pread(fd, c->buf + c->len, want, (off_t)c->at);
        if (n <= 0)
            return n < 0 ? -1 : (errno = EIO, -1);
        c->len += (size_t)n;
        c->at += (uint64_t)n;
    }
}

static int heap_less(const struct sorter *s, size_t a, size_t b)
{
    const struct cursor *x = &s->cur[a], *y = &s->cur[b];
    return rec_cmp(x->buf + x->pos, y->buf + y->pos) < 0;
}

static void heap_down(struct sorter *s, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && heap_less(s, s->heap[l], s->heap[m]))
            m = l;
        if (r < s->nheap && heap_less(s, s->heap[r], s->heap[m]))
            m = r;
        if (m == i)
            return;
        size_t t = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = t;
        i = m;
    }
}

/* From the start: the chunk sorted in memory (no runs), or a cursor on each run. 0 / -1. */
static int sorter_rewind(struct sorter *s)
{
    s->have_last = 0;
    s->next = 0;
    s->nheap = 0;
    for (size_t i = 0; i < s->nruns; i++) {
        struct cursor *c = &s->cur[i];
        c->at = s->runs[i].at;
        c->end = s->runs[i].end;
        c->len = c->pos = 0;
        int rc = cursor_next(s->fd, c, s->run_buf);
        if (rc < 0)
            return -1;
        if (rc == 1)
            s->heap[s->nheap++] = i;
    }
    for (size_t i = s->nheap; i-- > 0;)
        heap_down(s, i);
    return 0;
}

/* No more names: the last chunk sorted (or spilled as the last run), ready to be read. */
static int sorter_start(struct sorter *s, const char *maildir)
{
    if (s->nruns == 0) {
        qsort_r(s->offs, s->n, sizeof *s->offs, by_record, s->buf);
        return sorter_rewind(s);
    }
    if (s->n > 0 && spill_chunk(s, maildir) != 0)
        return -1;
    free(s->buf);
    s->buf = NULL;
    s->run_buf = MERGE_BUDGET / s->nruns;
    s->run_buf = s->run_buf < RUN_BUFFER_MIN ? RUN_BUFFER_MIN : s->run_buf;
    if ((s->cur = calloc(s->nruns, sizeof *s->cur)) == NULL ||
        (s->heap = calloc(s->nruns, sizeof *s->heap)) == NULL)
        return errno = ENOMEM, -1;
    for (size_t i = 0; i < s->nruns; i++)
        if ((s->cur[i].buf = malloc(s->run_buf)) == NULL)
            return errno = ENOMEM, -1;
    return sorter_rewind(s);
}

/* The next record in base-name order, into it (valid until the next call): 1, 0 at the
 * end, -1. */
static int sorter_pop(struct sorter *s, struct item *it)
{
    if (s->nruns == 0) {
        if (s->next == s->n)
            return 0;
        item_of(s->buf + s->offs[s->next++], it);
        return 1;
    }
    if (s->nheap == 0)
        return 0;
    struct cursor *c = &s->cur[s->heap[0]];
    item_of(c->buf + c->pos, it);
    memcpy(s->copy, c->buf + c->pos, REC_HEAD + it->len); /* the cursor's buffer moves on */
    item_of(s->copy, it);
    c->pos += REC_HEAD + it->len;
    int rc = cursor_next(s->fd, c, s->run_buf);
    if (rc < 0)
        return -1;
    if (rc == 0)
        s->heap[0] = s->heap[--s->nheap];
    heap_down(s, 0);
    return 1;
}

/* The next name in base-name order, a base already given skipped (a file renamed while cur/
 * was read: the first is kept). 1, 0 at the end, -1. */
static int sorter_next(struct sorter *s, struct item *it)
{
    for (;;) {
        int rc = sorter_pop(s, it);
        if (rc <= 0)
            return rc;
        size_t blen = base_len(it->name, it->len);
        if (s->have_last && base_cmp(s->last, s->last_len, it->name, blen) == 0)
            continue;
        memcpy(s->last, it->name, blen);
        s->last_len = blen;
        s->have_last = 1;
        return 1;
    }
}

/* ---- the old index's entries, matched by the hash of their base names ---- */

static uint32_t base_hash(const char *name, size_t len)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)name[i]) * 16777619u;
    return h;
}

static uint64_t key_by_hash(const struct mailbox_msg *m)
{
    return (uint64_t)m->crlf_size << 32 | m->uid;
}

static uint64_t key_by_uid(const struct mailbox_msg *m)
{
    return m->uid;
}

/* Heapsort in place (qsort would allocate a copy of the array). */
static void sift(struct mailbox_msg *a, size_t i, size_t n,
                 uint64_t (*key)(const struct mailbox_msg *))
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && key(&a[l]) > key(&a[m]))
            m = l;
        if (r < n && key(&a[r]) > key(&a[m]))
            m = r;
        if (m == i)
            return;
        struct mailbox_msg t = a[i];
        a[i] = a[m];
        a[m] = t;
        i = m;
    }
}

static void sort_records(struct mailbox_msg *a, size_t n,
                         uint64_t (*key)(const struct mailbox_msg *))
{
    for (size_t i = n / 2; i-- > 0;)
        sift(a, i, n, key);
    for (size_t end = n; end-- > 1;) {
        struct mailbox_msg t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift(a, 0, end, key);
    }
}

/* A name whose new line cannot be made from the old one (NAME_TABLE). */
struct side {
    uint32_t uid;
    char *name;
};

struct scan {
    struct mailbox *mb;
    struct mbx_index *ix; /* the old index (ix->f NULL: none) */
    size_t known;         /* mb->msgs[0 .. known): the old index's entries, sorted by hash */
    int old_fd;
    struct sorter sorter;
    struct side *side;
    size_t n_side, side_cap;
    uint64_t next_modseq; /* what new and renamed messages get: the folder's highest + 1 */
};

/* An old index's line while cur/ is read: an entry's record (name_at where its line starts,
 * crlf_size the hash of its base name), or an update line's, which becomes its latest. */
static int fill_known(void *ctx, struct mailbox_msg *m, const struct mbx_line *l, int update)
{
    (void)ctx;
    if (update) {
        m->name_at = (uint32_t)l->line_at; /* the same base: a flag change */
        return 0;
    }
    memset(m, 0, sizeof *m);
    m->uid = l->e->uid;
    m->crlf_size = base_hash(l->name, strcspn(l->name, ":"));
    m->name_at = (uint32_t)l->line_at;
    return 1;
}

/* The old index's line starting at offset at (an entry or an update line), into buf: the
 * name's offset (its modseq into *modseq), -2 if the line is too long for its name to be a
 * file's, or -1. */
static int old_line(struct scan *sc, uint32_t at, char *buf, uint64_t *modseq)
{
    struct mbx_entry e;
    int off, update;
    ssize_t n = pread(sc->old_fd, buf, LINE_SIZE - 1, at);
    char *nl = n > 0 ? memchr(buf, '\n', (size_t)n) : NULL;
    if (nl == NULL)
        return n == LINE_SIZE - 1 ? -2 : (errno = EIO, -1);
    *nl = '\0';
    if (mbx_parse_line(buf, sc->ix, sc->mb, &e, &off, &update) != 0)
        return errno = EIO, -1;
    *modseq = e.modseq;
    return off;
}

static int side_add(struct scan *sc, uint32_t uid, const char *name)
{
    char *copy = strdup(name);
    if (copy == NULL || mem_grow(&sc->side, &sc->side_cap, sc->n_side + 1, sizeof *sc->side) != 0) {
        free(copy);
        return errno = ENOMEM, -1;
    }
    sc->side[sc->n_side++] = (struct side){uid, copy};
    return 0;
}

/* The file name matched to the old entry m (same base): its flags and how it is named. */
static int take_match(struct scan *sc, struct mailbox_msg *m, const char *name, const char *old)
{
    int canonical;
    m->gone = 1;
    m->recent = strcmp(name, old) != 0;
    m->flags = mbx_name_flags(name, &canonical);
    m->deleted = canonical ? NAME_DERIVED : strcmp(name, old) == 0 ? NAME_OLD : NAME_TABLE;
    return m->deleted == NAME_TABLE ? side_add(sc, m->uid, name) : 0;
}

/* The known entry with the base name of name: 1 if there is one (matched now, or already
 * matched by another file of that base), 0 if none, -1. */
static int match(struct scan *sc, const char *name, size_t blen)
{
    struct mailbox_msg *k = sc->mb->msgs;
    uint32_t h = base_hash(name, blen);
    size_t lo = 0, hi = sc->known;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (k[mid].crlf_size < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < sc->known && k[i].crlf_size == h; i++) {
        char line[LINE_SIZE];
        uint64_t modseq;
        int off = old_line(sc, k[i].name_at, line, &modseq);
        if (off == -2)
            continue; /* no file has such a name */
        if (off < 0)
            return -1;
        const char *old = line + off;
        if (strcspn(old, ":") != blen || memcmp(old, name, blen) != 0)
            continue; /* another base with the same hash */
        return k[i].gone ? 1 : take_match(sc, &k[i], name, old) != 0 ? -1 : 1;
    }
    return 0;
}

/* One name of cur/: matched to the index, or kept for numbering. */
static int on_name(void *ctx, const char *name)
{
    struct scan *sc = ctx;
    uint64_t size, crlf;
    size_t ulen;
    if (strchr(name, '\n') != NULL)
        return 0; /* cannot be an index line: not served */
    int parsed = maildir_parse_name(name, &ulen, &size, &crlf);
    if (parsed < 0)
        return 0;
    int rc = match(sc, name, strcspn(name, ":"));
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (parsed == 1 && maildir_measure(sc->mb->cur_fd, name, &size, &crlf) != 0)
        return 0; /* gone meanwhile */
    return sorter_add(&sc->sorter, sc->mb->path, name, size, crlf);
}

/* ---- writing ---- */

/* The test hook: YUBIN_TEST_INDEX_KILL=<n> kills the writer with SIGKILL at step n
 * (0 the new file created, 1..count after each entry, count+1 after fsync, count+2 after the
 * rename), so a test can crash an index rewrite at every point. */
static void kill_point(long step)
{
    static long at = -2;
    if (at == -2) {
        const char *v = getenv("YUBIN_TEST_INDEX_KILL");
        at = v != NULL ? strtol(v, NULL, 10) : -1;
    }
    if (at >= 0 && step == at)
        raise(SIGKILL);
}

struct writer {
    FILE *f;
    uint64_t pos;
    size_t count; /* entries written */
    int hook, failed;
};

static void put(struct writer *w, const char *data, size_t len)
{
    if (!w->failed && fwrite(data, 1, len, w->f) != len)
        w->failed = 1;
    w->pos += len;
}

/* Ends an entry's line (the kill hook's step). */
static void entry_done(struct writer *w)
{
    put(w, "\n", 1);
    w->count++;
    if (w->hook && fflush(w->f) == 0)
        kill_point((long)w->count);
}

static int by_side_uid(const void *a, const void *b)
{
    uint32_t x = ((const struct side *)a)->uid, y = ((const struct side *)b)->uid;
    return (x > y) - (x < y);
}

/* The side table's name for uid (the table sorted by read_dirs), or NULL. */
static const char *side_name(const struct scan *sc, uint32_t uid)
{
    struct side key = {uid, NULL};
    const struct side *s =
        sc->n_side > 0 ? bsearch(&key, sc->side, sc->n_side, sizeof *sc->side, by_side_uid) : NULL;
    return s != NULL ? s->name : NULL;
}

/* An entry's numbers, as the index writes them. */
static void put_numbers(struct writer *w, uint32_t uid, uint64_t size, uint64_t crlf,
                        uint64_t modseq)
{
    char num[96];
    int n =
        snprintf(num, sizeof num, "%lu %llu %llu %llu ", (unsigned long)uid,
                 (unsigned long long)size, (unsigned long long)crlf, (unsigned long long)modseq);
    put(w, num, n > 0 ? (size_t)n : 0);
}

/* The line of a known message k whose entry is e (its latest name and modseq: latest): its
 * sizes, its MODSEQ (a new one if its name changed behind the index's back), its current
 * name. Its record replaces mb->msgs[*out] (at or before its own). */
static int write_known(struct writer *w, struct scan *sc, const struct mailbox_msg *k,
                       const struct mbx_entry *e, const char *latest, uint64_t modseq, size_t *out)
{
    char letters[40];
    const char *name = latest;
    if (k->deleted == NAME_TABLE && (name = side_name(sc, k->uid)) == NULL)
        return errno = EIO, -1;
    put_numbers(w, k->uid, e->size, e->crlf_size, k->recent ? sc->next_modseq : modseq);
    uint64_t at = w->pos;
    if (k->deleted == NAME_DERIVED) {
        mailbox_flags(k, letters, sizeof letters);
        put(w, latest, strcspn(latest, ":"));
        put(w, ":2,", 3);
        put(w, letters, strlen(letters));
    } else {
        put(w, name, strlen(name));
    }
    entry_done(w);
    struct mailbox_msg r;
    if (mbx_record(&r, k->uid, k->flags, e->crlf_size, at, 0) == 0)
        sc->mb->msgs[(*out)++] = r;
    return 0;
}

/* The known messages still there, in UID order, from the old index read again: each entry
 * line with its latest name and modseq (this line's, or those of the update line its record
 * points at). */
static int write_known_all(struct writer *w, struct scan *sc, uint64_t start, size_t matched,
                           size_t *out)
{
    char *line = NULL, latest[LINE_SIZE];
    size_t cap = 0, j = 0, len;
    uint64_t pos = start;
    struct mbx_entry e;
    int off, update, rc = 0;
    if (fseeko(sc->ix->f, (off_t)start, SEEK_SET) != 0)
        return -1;
    while (rc == 0 && j < matched && mbx_next_line(sc->ix->f, &line, &cap, &len) != NULL) {
        uint64_t at = pos, modseq;
        pos += len;
        if (mbx_parse_line(line, sc->ix, sc->mb, &e, &off, &update) != 0) {
            rc = -1;
            errno = EIO;
        } else if (!update && e.uid == sc->mb->msgs[j].uid) {
            struct mailbox_msg k = sc->mb->msgs[j++];
            const char *name = line + off;
            modseq = e.modseq;
            if (k.name_at != at) { /* renamed by an update line since */
                int loff = old_line(sc, k.name_at, latest, &modseq);
                name = latest + loff;
                rc = loff < 0 ? -1 : 0;
            }
            rc = rc == 0 ? write_known(w, sc, &k, &e, name, modseq, out) : rc;
        }
    }
    free(line);
    return rc != 0 ? -1 : j == matched ? 0 : (errno = EIO, -1);
}

/* The new names, in base-name order, each with the next UID. */
static int write_new_all(struct writer *w, struct scan *sc, size_t *out)
{
    struct mailbox *mb = sc->mb;
    struct item it;
    int rc;
    char name[NAME_MAX + 1];
    while ((rc = sorter_next(&sc->sorter, &it)) == 1) {
        uint32_t uid = mb->uidnext++;
        put_numbers(w, uid, it.size, it.crlf_size, sc->next_modseq);
        uint64_t at = w->pos;
        memcpy(name, it.name, it.len);
        name[it.len] = '\0';
        put(w, name, it.len);
        entry_done(w);
        if (mbx_record(&mb->msgs[*out], uid, mbx_name_flags(name, NULL), it.crlf_size, at, 1) == 0)
            (*out)++;
    }
    return rc;
}

/* How many distinct new bases there are (the header's uidnext comes first). */
static int count_new(struct sorter *s, size_t *n)
{
    struct item it;
    int rc;
    *n = 0;
    while ((rc = sorter_next(s, &it)) == 1)
        (*n)++;
    return rc < 0 || sorter_rewind(s) != 0 ? -1 : 0;
}

/* The header, then the lines: mb->msgs become the new index's records. */
static int write_all_entries(FILE *f, struct scan *sc, uint64_t start, size_t matched, size_t added,
                             const struct mbx_dirtimes *t)
{
    struct mailbox *mb = sc->mb;
    struct writer w = {f, 0, 0, getenv("YUBIN_TEST_INDEX_KILL") != NULL, 0};
    size_t out = 0;
    int n = fprintf(f,
                    MBX_INDEX_MAGIC "\nuidvalidity %lu\nuidnext %lu\ncur %lld.%09ld\nnew "
                                    "%lld.%09ld\nhighestmodseq %llu\n",
                    (unsigned long)mb->uidvalidity, (unsigned long)(mb->uidnext + added),
                    (long long)t->cur.tv_sec, t->cur.tv_nsec, (long long)t->new_.tv_sec,
                    t->new_.tv_nsec, (unsigned long long)mb->highestmodseq);
    if (n <= 0)
        return -1;
    w.pos = (uint64_t)n;
    if ((matched > 0 && write_known_all(&w, sc, start, matched, &out) != 0) ||
        write_new_all(&w, sc, &out) != 0)
        return -1;
    mb->count = out;
    return w.failed || fflush(f) != 0 || ferror(f) ? -1 : 0;
}

/* Writes the index (<folder>/yubin-index.new, fsync, rename, fsync the folder) and makes it
 * the session's: mb->msgs are its records, mb->index_fd the file. 0 / -1. */
static int index_write(struct scan *sc, uint64_t start, size_t matched, size_t added,
                       const struct mbx_dirtimes *t)
{
    struct mailbox *mb = sc->mb;
    char tmp[PATH_MAX], path[PATH_MAX];
    if (str_format(tmp, sizeof tmp, "%s/" MAILBOX_INDEX_NAME ".new", mb->path) < 0 ||
        str_format(path, sizeof path, "%s/" MAILBOX_INDEX_NAME, mb->path) < 0)
        return errno = ENAMETOOLONG, -1;
    int fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    int keep = fd >= 0 ? dup(fd) : -1;
    FILE *f = keep >= 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        if (keep >= 0)
            close(keep);
        return -1;
    }
    kill_point(0);
    int rc = write_all_entries(f, sc, start, matched, added, t) != 0 || fsync(fd) != 0;
    int saved = errno;
    if (fclose(f) != 0 && !rc)
        rc = 1, saved = errno;
    kill_point((long)(matched + added) + 1);
    if (rc || rename(tmp, path) != 0) {
        saved = rc ? saved : errno;
        unlink(tmp);
        close(keep);
        errno = saved;
        return -1;
    }
    mb->index_fd = keep;
    kill_point((long)(matched + added) + 2);
    return fsync_dir(mb->path);
}

/* cur/ read into sc: the known entries that are still there (gone = 1) kept in UID order at
 * the start of mb->msgs (*matched of them; *renamed 1 if one has a new name), the new names
 * in the sorter, ready. 0 / -1. */
static int read_dirs(struct scan *sc, size_t *matched, int *renamed)
{
    struct mailbox *mb = sc->mb;
    sort_records(mb->msgs, sc->known, key_by_hash);
    if (sorter_init(&sc->sorter) != 0 || maildir_scan(mb->cur_fd, mb->path, on_name, sc) != 0)
        return -1;
    mb->scanned = 1;
    sort_records(mb->msgs, sc->known, key_by_uid);
    *matched = 0;
    *renamed = 0;
    for (size_t i = 0; i < sc->known; i++)
        if (mb->msgs[i].gone) {
            *renamed |= mb->msgs[i].recent;
            mb->msgs[(*matched)++] = mb->msgs[i];
        }
    if (sc->n_side > 1)
        qsort(sc->side, sc->n_side, sizeof *sc->side, by_side_uid);
    return sorter_start(&sc->sorter, mb->path);
}

/* mb->msgs with room for n records (and one more, never empty). 0 / -1. */
static int room(struct mailbox *mb, size_t n)
{
    struct mailbox_msg *p = realloc(mb->msgs, (n + 1) * sizeof *p);
    if (p == NULL)
        return errno = ENOMEM, -1;
    mb->msgs = p;
    return 0;
}

int mbx_reconcile(struct mailbox *mb, struct mbx_index *ix, const struct mbx_dirtimes *seen)
{
    struct scan sc;
    size_t matched = 0, added = 0;
    int renamed = 0;
    uint64_t start = ix->pos;
    memset(&sc, 0, sizeof sc);
    sc.mb = mb;
    sc.ix = ix;
    sc.sorter.fd = -1;
    sc.old_fd = ix->f != NULL ? fileno(ix->f) : -1;
    if (ix->f != NULL && mbx_read_entries(ix, mb, fill_known, NULL) != 0)
        return 1; /* unusable: rebuilt */
    sc.known = mb->count;
    mb->count = 0; /* until the new index is written, they are not records */
    int rc = read_dirs(&sc, &matched, &renamed) != 0 || count_new(&sc.sorter, &added) != 0;
    if (rc == 0 && added > UINT32_MAX - mb->uidnext)
        rc = -1, errno = EOVERFLOW; /* no UID left */
    /* one new MODSEQ for what changed behind the index's back: new files, renamed ones, and
     * vanished ones (an expunge raises HIGHESTMODSEQ) */
    sc.next_modseq = mb->highestmodseq + 1;
    if (added > 0 || renamed || matched < sc.known)
        mb->highestmodseq = sc.next_modseq;
    rc = rc == 0 ? room(mb, matched + added) : -1;
    rc = rc == 0 ? index_write(&sc, start, matched, added, seen) : rc;
    int saved = errno;
    if (rc == 0)
        room(mb, mb->count); /* a smaller block cannot fail to be kept */
    sorter_free(&sc.sorter);
    for (size_t i = 0; i < sc.n_side; i++)
        free(sc.side[i].name);
    free(sc.side);
    errno = saved;
    return rc;
}
