/*
 * imapcmd-msg: imap4-in's message commands (lib/imapcmd.h): APPEND with its literal (or
 * literal8, RFC 3516: NUL octets stored as they are) streamed into lib/mailbox's append writer
 * (APPENDUID, RFC 4315), COPY and MOVE (COPYUID; RFC 6851's untagged EXPUNGEs), STORE, and
 * FETCH and SEARCH as glue between the selected folder and lib/imapfetch / lib/imapsearch; the
 * UID forms of each (s->uid); "$" for their sets and SEARCH RETURN (SAVE) (RFC 5182: the UIDs
 * in s->saved).
 *
 * It must never hold a message in memory (APPEND and FETCH stream), never change a folder
 * selected read-only (EXAMINE: no STORE, MOVE, nor \Seen set by FETCH), never take a sequence
 * number the client was not told about, and never send EXPUNGE for FETCH, STORE or SEARCH.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imapcmd.h"
#include "imapfetch.h"
#include "imapqresync.h"
#include "imapsearch.h"
#include "imapsess.h"
#include "log.h"
#include "mailbox.h"
#include "util.h"

#define FLAGS_MAX 2048   /* an IMAP flag list: system flags and 26 keywords of 64 octets */
#define COPYUID_MAX 3000 /* octets of COPYUID's sets in a tagged line; longer: left out */

static int writer(void *arg, const void *data, size_t len)
{
    return imapsess_write(arg, data, len);
}

/* ---- message sets ---- */

/* The messages a sequence set names: indexes into s->mb.msgs, ascending (32 bits, as IMAP's
 * sequence numbers are: 4 bytes per message of the folder for a FETCH 1:*, which is a quarter
 * of what the open folder itself takes, lib/mailbox's 16-byte records). */
struct msgset {
    uint32_t *idx;
    size_t n;
};

static uint32_t highest_uid(const struct mailbox *mb)
{
    return mb->count > 0 ? mb->msgs[mb->count - 1].uid : 0;
}

/* Resolves set against the selected folder: UIDs (s->uid, or "$": uids) name what exists of
 * them; sequence numbers must all exist (RFC 3501 §9: BAD for one past the end, '*' in an
 * empty folder). 0, -1 (a number that does not exist), -3 out of memory. */
static int resolve(struct imapsess *s, struct imap_seqset *set, int uids, struct msgset *out)
{
    const struct mailbox *mb = &s->mb;
    if (!uids)
        imap_seqset_resolve(set, s->uid ? highest_uid(mb) : (uint32_t)mb->count);
    out->n = 0;
    out->idx = mb->count < UINT32_MAX ? malloc((mb->count + 1) * sizeof *out->idx) : NULL;
    if (out->idx == NULL)
        return -3;
    if (s->uid || uids) {
        for (size_t i = 0; i < mb->count; i++)
            if (imap_seqset_contains(set, mb->msgs[i].uid))
                out->idx[out->n++] = (uint32_t)i;
        return 0;
    }
    if (set->n == 0 || set->r[0].lo == 0 || set->r[set->n - 1].hi > mb->count)
        return -1;
    for (size_t k = 0; k < set->n; k++)
        for (uint32_t q = set->r[k].lo; q <= set->r[k].hi; q++)
            out->idx[out->n++] = q - 1;
    return 0;
}

int imapcmd_seqset(struct imapsess *s, struct imaptok *t, struct imap_seqset *set, int *saved)
{
    struct imaptok after = *t;
    *saved =
        imaptok_char(&after, '$') == 0 && (imaptok_at_end(&after) || imaptok_peek(&after) == ' ');
    if (!*saved)
        return imaptok_seqset(t, set);
    *t = after;
    memset(set, 0, sizeof *set);
    set->resolved = 1;
    if (s->saved.n == 0)
        return 0;
    if ((set->r = malloc(s->saved.n * sizeof *set->r)) == NULL)
        return -3;
    memcpy(set->r, s->saved.r, s->saved.n * sizeof *set->r);
    set->n = s->saved.n;
    return 0;
}

/* The sequence-set (the first argument), resolved. 1 with out filled (free out->idx), else the
 * reply's result. */
static int take_set(struct imapsess *s, struct imaptok *t, struct msgset *out)
{
    struct imap_seqset set;
    int saved;
    out->idx = NULL;
    int rc = imapcmd_seqset(s, t, &set, &saved);
    if (rc == -3)
        return imapsess_no(s, "[UNAVAILABLE] Out of memory");
    if (rc != 0)
        return imapsess_bad(s, "Invalid sequence set");
    rc = resolve(s, &set, saved, out);
    imap_seqset_free(&set);
    if (rc == -3)
        return imapsess_no(s, "[UNAVAILABLE] Out of memory");
    if (rc != 0) {
        free(out->idx);
        out->idx = NULL;
        return imapsess_bad(s, "Invalid sequence set: no such message (%zu in the folder)",
                            s->mb.count);
    }
    return 1;
}

/* A uid-set (RFC 4315) of n UIDs in order, ranges where they run on, into out. 0, or -1 when
 * it does not fit. */
static int uid_set(const uint32_t *u, size_t n, char *out, size_t size)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && u[j + 1] == u[j] + 1)
            j++;
        int w = j > i ? snprintf(out + o, size - o, "%s%lu:%lu", o ? "," : "", (unsigned long)u[i],
                                 (unsigned long)u[j])
                      : snprintf(out + o, size - o, "%s%lu", o ? "," : "", (unsigned long)u[i]);
        if (w < 0 || (size_t)w >= size - o)
            return -1;
        o += (size_t)w;
        i = j + 1;
    }
    return 0;
}

/* "COPYUID <v> <src> <dst>" for a response code, or "" when it would not fit. */
static void copyuid_code(const struct mailbox_copyuid *cu, char *out, size_t size)
{
    char src[COPYUID_MAX / 2], dst[COPYUID_MAX / 2];
    out[0] = '\0';
    if (cu->count == 0 || uid_set(cu->src, cu->count, src, sizeof src) != 0 ||
        uid_set(cu->dst, cu->count, dst, sizeof dst) != 0 ||
        str_format(out, size, "[COPYUID %lu %s %s] ", (unsigned long)cu->uidvalidity, src, dst) < 0)
        out[0] = '\0';
}

static int args_end(struct imapsess *s, struct imaptok *t)
{
    return imaptok_at_end(t) ? 1 : imapsess_bad(s, "Unexpected arguments");
}

static int read_only(struct imapsess *s)
{
    return imapsess_no(s, "[READ-ONLY] The folder is selected read-only (EXAMINE)");
}

/* ---- FETCH ---- */

static int fetch_wants(const struct imapfetch *f, enum imapfetch_kind kind)
{
    for (size_t i = 0; i < f->n; i++)
        if (f->item[i].kind == kind)
            return 1;
    return 0;
}

/* Sets \Seen for a FETCH of a body (RFC 3501 §6.4.5), logging a failure. */
static void set_seen(struct imapsess *s, struct mailbox_msg *m)
{
    if (mailbox_set_flags(&s->mb, m, "S", "") < 0)
        log_msg(LOG_ERR, "user=%s cannot set \\Seen on UID %lu: %s", s->user, (unsigned long)m->uid,
                strerror(errno));
}

/* One message. 0, 1 it is gone (expunged elsewhere), 2 a NO was owed ([UNKNOWN-CTE] or a
 * read error: *why says which), -1 the session ends. With CONDSTORE (RFC 7162 §3.1) a FETCH
 * that sets \Seen sets it first, so that the response carries UID and the new MODSEQ. */
static int fetch_one(struct imapsess *s, const struct imapfetch *f, struct mailbox_msg *m,
                     uint32_t seq, const char **why)
{
    char flags[FLAGS_MAX], letters[64];
    struct imapfetch_msg msg = {.seq = seq,
                                .uid = m->uid,
                                .flags = flags,
                                .fd = -1,
                                .crlf_size = m->crlf_size,
                                .uid_command = s->uid,
                                .read_only = s->readonly};
    if (mailbox_flags_imap(&s->mb, m, flags, sizeof flags) != 0)
        flags[0] = '\0';
    mailbox_flags(m, letters, sizeof letters);
    int seen_now = imapfetch_sets_seen(f) && !s->readonly && strchr(letters, 'S') == NULL;
    int condstore = (s->enabled & IMAP_EN_CONDSTORE) != 0;
    if (seen_now && condstore) {
        set_seen(s, m);
        msg.uid_command = msg.send_modseq = 1;
    }
    msg.send_modseq |= f->changedsince_given;
    if (msg.send_modseq || fetch_wants(f, IMAPFETCH_MODSEQ))
        msg.modseq = mailbox_modseq(&s->mb, m);
    if (fetch_wants(f, IMAPFETCH_INTERNALDATE) &&
        mailbox_internaldate(&s->mb, m, &msg.internaldate) != 0)
        return 1;
    if ((f->needs & IMAPFETCH_NEED_FILE) && (msg.fd = mailbox_open_msg(&s->mb, m)) < 0)
        return errno == ENOENT ? 1 : (*why = "[UNAVAILABLE] A message could not be read", 2);
    int rc = imapfetch_message(f, &msg, writer, s);
    if (msg.fd >= 0)
        close(msg.fd);
    if (rc == IMAPFETCH_BROKEN)
        return -1;
    if (rc == IMAPFETCH_UNKNOWN_CTE)
        return *why = "[UNKNOWN-CTE] A part's Content-Transfer-Encoding is unknown", 2;
    if (rc == IMAPFETCH_READ_ERROR)
        return *why = "[UNAVAILABLE] A message could not be read", 2;
    if (seen_now && !condstore)
        set_seen(s, m);
    return 0;
}

/* UID FETCH set ... (CHANGEDSINCE n VANISHED) (RFC 7162 §3.2.6): "* VANISHED (EARLIER) ..." for
 * the UIDs of set the folder no longer holds, before the FETCHes; set read again from before.
 * 1, or the reply (BAD without QRESYNC, CHANGEDSINCE or UID). */
static int fetch_vanished(struct imapsess *s, const struct imaptok *before,
                          const struct imapfetch *f)
{
    struct imaptok t = *before;
    struct imap_seqset set;
    int saved;
    if (!s->uid || !(s->enabled & IMAP_EN_QRESYNC) || !f->changedsince_given)
        return imapsess_bad(s, "VANISHED needs UID FETCH, CHANGEDSINCE and ENABLE QRESYNC");
    if (imapcmd_seqset(s, &t, &set, &saved) != 0)
        return imapsess_no(s, "[UNAVAILABLE] Out of memory");
    if (!saved)
        imap_seqset_resolve(&set, s->mb.uidnext > 0 ? s->mb.uidnext - 1 : 0);
    int rc = imapqresync_vanished_earlier(s, &set);
    imap_seqset_free(&set);
    return rc != 0 ? -1 : 1;
}

int imapcmd_fetch(struct imapsess *s, struct imaptok *t)
{
    struct msgset set;
    struct imapfetch *f;
    char err[128];
    struct imaptok before = *t;
    int rc = take_set(s, t, &set);
    if (rc != 1)
        return rc;
    if ((f = malloc(sizeof *f)) == NULL) {
        free(set.idx);
        return imapsess_no(s, "[UNAVAILABLE] Out of memory");
    }
    if (imaptok_space(t) != 0 || imapfetch_parse(t, f, err, sizeof err) != 0) {
        free(set.idx);
        free(f);
        return imapsess_bad(s, "%s", imaptok_at_end(t) ? "Missing FETCH items" : err);
    }
    size_t gone = 0;
    const char *why = NULL;
    if (f->vanished && (rc = fetch_vanished(s, &before, f)) != 1) {
        free(set.idx);
        free(f);
        return rc;
    }
    if (f->changedsince_given || fetch_wants(f, IMAPFETCH_MODSEQ))
        s->enabled |= IMAP_EN_CONDSTORE; /* CONDSTORE-enabling (RFC 7162 §3.1) */
    for (size_t i = 0; rc >= 0 && why == NULL && i < set.n; i++) {
        struct mailbox_msg *m = &s->mb.msgs[set.idx[i]];
        if (f->changedsince_given && !m->gone && mailbox_modseq(&s->mb, m) <= f->changedsince)
            continue; /* (CHANGEDSINCE n): only what changed after n */
        rc = fetch_one(s, f, m, set.idx[i] + 1, &why);
        gone += rc == 1;
    }
    free(set.idx);
    free(f);
    if (rc < 0)
        return -1;
    if (why != NULL)
        return imapsess_no(s, "%s", why);
    if (gone > 0)
        return imapsess_no(s, "[EXPUNGEISSUED] Some messages were expunged meanwhile");
    return imapsess_ok(s, "FETCH completed");
}

/* ---- STORE ---- */

struct store {
    char mode; /* '=', '+', '-' */
    int silent;
    char add[64], clear[64]; /* maildir letters for mailbox_set_flags */
    int conditional;         /* (UNCHANGEDSINCE n) given (RFC 7162 §3.1.3) */
    uint64_t unchangedsince;
    uint32_t *modified; /* what failed the test: sequence numbers, or UIDs for UID STORE */
    size_t n_modified;
};

/* The modifier list " (UNCHANGEDSINCE n)" before STORE's item, when there. 1, or the reply. */
static int store_modifiers(struct imapsess *s, struct imaptok *t, struct store *st)
{
    if (imaptok_char(t, '(') != 0)
        return 1;
    if (imaptok_word(t, "UNCHANGEDSINCE") != 0)
        return imapsess_bad(s, "Unknown STORE modifier (UNCHANGEDSINCE n is taken)");
    if (imaptok_space(t) != 0 || imaptok_number64(t, &st->unchangedsince) != 0 ||
        st->unchangedsince > INT64_MAX || imaptok_char(t, ')') != 0 || imaptok_space(t) != 0)
        return imapsess_bad(s, "UNCHANGEDSINCE needs a mod-sequence (0 to 2^63-1)");
    st->conditional = 1;
    s->enabled |= IMAP_EN_CONDSTORE; /* CONDSTORE-enabling (RFC 7162 §3.1) */
    return 1;
}

/* The letters of the flags parsed: system flags, then keywords (allocated in the folder's
 * dovecot-keywords for FLAGS and +FLAGS; unknown ones skipped for -FLAGS). 1, or the reply. */
static int store_letters(struct imapsess *s, struct mailbox *mb, const struct imapfetch_flags *fl,
                         char *out, size_t size, int create)
{
    char kw[MAILBOX_KEYWORD_MAX + 1];
    size_t n = strlen(fl->letters);
    if (n >= size)
        return imapsess_bad(s, "Too many flags");
    memcpy(out, fl->letters, n + 1);
    for (size_t i = 0; i < fl->n_kw; i++) {
        if (str_copy_n(kw, sizeof kw, fl->kw[i], fl->kw_len[i]) != 0)
            return imapsess_bad(s, "Keyword too long");
        char c = mailbox_flag_letter(mb, kw, create);
        if (c == 0 && errno == ENOENT)
            continue;
        if (c == 0 && errno == ENOSPC)
            return imapsess_no(s, "[LIMIT] No room for another keyword in this folder");
        if (c == 0)
            return imapsess_bad(s, "Invalid keyword %s", kw);
        if (strchr(out, c) == NULL && n + 1 < size) {
            out[n++] = c;
            out[n] = '\0';
        }
    }
    return 1;
}

/* ["+"/"-"] "FLAGS" [".SILENT"] SP flags (lib/imapfetch). 1 with st filled, or the reply. */
static int parse_store(struct imapsess *s, struct imaptok *t, struct store *st)
{
    struct imapfetch_store item;
    char err[128], letters[64];
    memset(st, 0, sizeof *st);
    if (imaptok_space(t) != 0)
        return imapsess_bad(s, "Missing STORE item");
    int rc = store_modifiers(s, t, st);
    if (rc != 1)
        return rc;
    if (imapfetch_parse_store(t, &item, err, sizeof err) != 0)
        return imapsess_bad(s, "%s", err);
    st->mode = item.op == IMAPFETCH_STORE_ADD ? '+' : item.op == IMAPFETCH_STORE_REMOVE ? '-' : '=';
    st->silent = item.silent;
    rc = store_letters(s, &s->mb, &item.flags, letters, sizeof letters, st->mode != '-');
    if (rc != 1)
        return rc;
    if (st->mode == '-') {
        str_copy(st->clear, sizeof st->clear, letters);
    } else {
        str_copy(st->add, sizeof st->add, letters);
        size_t n = 0; /* FLAGS replaces every flag IMAP can name */
        for (const char *p = "DFPRSTabcdefghijklmnopqrstuvwxyz"; st->mode == '=' && *p; p++)
            if (strchr(letters, *p) == NULL)
                st->clear[n++] = *p;
        st->clear[n] = '\0';
    }
    return 1;
}

/* "* n FETCH ([UID u ]FLAGS (...))" for a message whose flags were stored; with CONDSTORE
 * "* n FETCH (UID u MODSEQ (m) FLAGS (...))", and "* n FETCH (UID u MODSEQ (m))" after
 * .SILENT for a message this STORE changed (RFC 7162 §3.1.3: the client's cache needs it). */
static int store_fetch(struct imapsess *s, const struct store *st, struct mailbox_msg *m,
                       uint32_t seq, uint64_t batch)
{
    char flags[FLAGS_MAX], uid[64] = "";
    int condstore = (s->enabled & IMAP_EN_CONDSTORE) != 0;
    uint64_t modseq = condstore ? mailbox_modseq(&s->mb, m) : 0;
    if (st->silent && (!condstore || modseq != batch))
        return 0;
    if (mailbox_flags_imap(&s->mb, m, flags, sizeof flags) != 0)
        flags[0] = '\0';
    if (condstore)
        snprintf(uid, sizeof uid, "UID %lu MODSEQ (%llu)%s", (unsigned long)m->uid,
                 (unsigned long long)modseq, st->silent ? "" : " ");
    else if (s->uid)
        snprintf(uid, sizeof uid, "UID %lu ", (unsigned long)m->uid);
    if (st->silent)
        return imapsess_untagged(s, "%lu FETCH (%s)", (unsigned long)seq, uid);
    return imapsess_untagged(s, "%lu FETCH (%sFLAGS (%s))", (unsigned long)seq, uid, flags);
}

/* STORE (UNCHANGEDSINCE n), under the index lock and after store_refresh: 1 if m may be
 * changed, 0 if it failed the test (recorded in st->modified). */
static int store_test(struct imapsess *s, struct store *st, struct mailbox_msg *m, uint32_t seq)
{
    if (mailbox_modseq(&s->mb, m) <= st->unchangedsince)
        return 1;
    st->modified[st->n_modified++] = s->uid ? m->uid : seq;
    return 0;
}

/* The refresh of a conditional STORE, under the lock mailbox_change_begin took, so that a change
 * by another session or program is seen before the test: the test and the write are one step.
 * 0, or -1 (the STORE fails: NO; a rebuilt index ends the session at the next reply). */
static int store_refresh(struct imapsess *s, struct mailbox_changes *ch)
{
    if (mailbox_change_refresh(&s->mb, ch) != 0)
        return memset(ch, 0, sizeof *ch), -1;
    return ch->uidvalidity_changed ? -1 : 0;
}

/* The flags stored under one index lock (one MODSEQ, one fsync; nothing sent meanwhile, so
 * that a slow client never holds the lock); a message gone meanwhile has its index set to
 * UINT32_MAX and is counted in *gone. 1 if a change failed (logged), else 0. */
static int store_changes(struct imapsess *s, struct store *st, struct msgset *set, size_t *gone,
                         struct mailbox_changes *ch)
{
    int failed = mailbox_change_begin(&s->mb) != 0;
    if (!failed && st->conditional &&
        ((st->modified = malloc((set->n + 1) * sizeof *st->modified)) == NULL ||
         store_refresh(s, ch) != 0))
        failed = 1;
    if (failed)
        log_msg(LOG_ERR, "user=%s STORE: %s", s->user, strerror(errno));
    for (size_t i = 0; i < set->n; i++) {
        struct mailbox_msg *m = &s->mb.msgs[set->idx[i]];
        int r = failed || m->gone ? 1 : 0;
        if (r == 0 && st->conditional && store_test(s, st, m, set->idx[i] + 1) == 0)
            r = 2; /* not stored: [MODIFIED] */
        if (r == 0)
            r = mailbox_set_flags(&s->mb, m, st->add, st->clear);
        if (r != 0) /* gone, modified, failed, or not tried after a failure: no FETCH */
            set->idx[i] = UINT32_MAX;
        *gone += r == 1 && !failed;
        if (r < 0)
            log_msg(LOG_ERR, "user=%s STORE on UID %lu: %s", s->user, (unsigned long)m->uid,
                    strerror(errno));
        failed = failed || r < 0;
    }
    if (mailbox_change_end(&s->mb) != 0 && !failed) {
        log_msg(LOG_ERR, "user=%s STORE: %s", s->user, strerror(errno));
        failed = 1;
    }
    return failed;
}

/* The tagged reply of a STORE with messages that failed UNCHANGEDSINCE: OK [MODIFIED set],
 * streamed, as the set has no length limit (RFC 7162 §3.1.3 names every such message). */
static int store_modified(struct imapsess *s, const struct store *st)
{
    int rc = imapsess_tagged_begin(s, "OK");
    if (rc != 0)
        return rc < 0 ? -1 : 0;
    if (imapsess_write(s, "[MODIFIED ", 10) != 0 ||
        imapsearch_set(st->modified, st->n_modified, writer, s) != 0)
        return -1;
    return imapsess_printf(s, "] Conditional STORE failed\r\n");
}

int imapcmd_store(struct imapsess *s, struct imaptok *t)
{
    struct msgset set;
    struct store st;
    struct mailbox_changes ch = {0};
    int rc = take_set(s, t, &set);
    if (rc != 1)
        return rc;
    if ((rc = parse_store(s, t, &st)) != 1 || (s->readonly && (rc = read_only(s)) != 1)) {
        free(set.idx);
        return rc;
    }
    size_t gone = 0;
    int failed = store_changes(s, &st, &set, &gone, &ch);
    uint64_t batch = s->mb.chg_count > 0 ? s->mb.chg_modseq : 0;
    rc = imapsess_report(s, &ch); /* what the conditional STORE's refresh found */
    mailbox_changes_free(&ch);
    for (size_t i = 0; rc == 0 && i < set.n; i++)
        if (set.idx[i] != UINT32_MAX)
            rc = store_fetch(s, &st, &s->mb.msgs[set.idx[i]], set.idx[i] + 1, batch);
    free(set.idx);
    if (rc == 0 && failed)
        rc = imapsess_no(s, "[UNAVAILABLE] Flags could not be stored, try again later");
    else if (rc == 0 && gone > 0)
        rc = imapsess_no(s, "[EXPUNGEISSUED] Some messages were expunged meanwhile");
    else if (rc == 0 && st.n_modified > 0)
        rc = store_modified(s, &st);
    else if (rc == 0)
        rc = imapsess_ok(s, "STORE completed");
    free(st.modified);
    return rc;
}

/* ---- COPY and MOVE ---- */

/* sequence-set SP folder: the UIDs (ascending) and the target's Maildir. 1, or the reply. */
static int copy_args(struct imapsess *s, struct imaptok *t, uint32_t **uids, size_t *n, char *path,
                     size_t size)
{
    char name[IMAP_FOLDER_MAX];
    struct msgset set;
    int rc = take_set(s, t, &set);
    if (rc != 1)
        return rc;
    if (imaptok_space(t) != 0)
        rc = imapsess_bad(s, "Missing folder name");
    else if ((rc = imapcmd_folder_arg(s, t, name, sizeof name)) == 1 && (rc = args_end(s, t)) == 1)
        rc = imapcmd_folder_path(s, name, path, size);
    *uids = rc == 1 ? malloc((set.n + 1) * sizeof **uids) : NULL;
    if (rc == 1 && *uids == NULL)
        rc = imapsess_no(s, "[UNAVAILABLE] Out of memory");
    for (size_t i = 0; rc == 1 && i < set.n; i++)
        (*uids)[i] = s->mb.msgs[set.idx[i]].uid;
    *n = set.n;
    free(set.idx);
    return rc;
}

/* The NO for mailbox_copy/mailbox_move's failure (rc 1: a message was expunged). */
static int copy_failed(struct imapsess *s, int rc, int err)
{
    if (rc == 1)
        return imapsess_no(s, "[EXPUNGEISSUED] Some messages were expunged meanwhile");
    if (err == ENOENT)
        return imapsess_no(s, "[TRYCREATE] No such folder");
    return imapcmd_folder_error(s, err, "(copy)");
}

/* MOVE's "* n EXPUNGE" lines, in the order lib/mailbox gives them (each right when sent). */
static int send_expunged(struct imapsess *s, const struct mailbox_changes *ch)
{
    return imapsess_report(s, ch); /* (VANISHED after ENABLE QRESYNC) */
}

/* COPY, or MOVE (RFC 6851: COPYUID in an untagged OK, then the EXPUNGEs, then the OK). */
static int copy_or_move(struct imapsess *s, struct imaptok *t, int move)
{
    char path[PATH_MAX], code[COPYUID_MAX + 64];
    struct mailbox_copyuid cu = {0};
    struct mailbox_changes ch = {0};
    uint32_t *uids;
    size_t n;
    int rc = copy_args(s, t, &uids, &n, path, sizeof path);
    if (rc != 1)
        return rc;
    if (move && s->readonly) {
        free(uids);
        return read_only(s);
    }
    rc = n == 0 ? 0
         : move ? mailbox_move(&s->mb, uids, n, path, &cu, &ch)
                : mailbox_copy(&s->mb, uids, n, path, &cu);
    int err = errno;
    free(uids);
    if (rc != 0)
        return copy_failed(s, rc, err);
    copyuid_code(&cu, code, sizeof code);
    mailbox_copyuid_free(&cu);
    if (move) {
        rc = (code[0] != '\0' && imapsess_untagged(s, "OK %sMoved", code) != 0) ||
             send_expunged(s, &ch) != 0;
        mailbox_changes_free(&ch);
        return rc != 0 ? -1 : imapsess_ok(s, "MOVE completed");
    }
    return imapsess_ok(s, "%sCOPY completed", code);
}

int imapcmd_copy(struct imapsess *s, struct imaptok *t)
{
    return copy_or_move(s, t, 0);
}

int imapcmd_move(struct imapsess *s, struct imaptok *t)
{
    return copy_or_move(s, t, 1);
}

/* ---- SEARCH ---- */

struct search_msg {
    struct imapsess *s;
    struct mailbox_msg *m;
    char letters[64];
};

static int search_open(void *arg)
{
    struct search_msg *sm = arg;
    return mailbox_open_msg(&sm->s->mb, sm->m);
}

static int search_keyword(void *arg, const char *kw, size_t len)
{
    struct search_msg *sm = arg;
    char name[MAILBOX_KEYWORD_MAX + 1];
    if (str_copy_n(name, sizeof name, kw, len) != 0)
        return 0;
    char c = mailbox_flag_letter(&sm->s->mb, name, 0);
    return c != 0 && strchr(sm->letters, c) != NULL;
}

/* Evaluates q over the folder into hits. 0, or -1 (a read error: errno). */
static int search_run(struct imapsess *s, struct imapsearch *q, struct imapsearch_hits *h)
{
    struct mailbox *mb = &s->mb;
    for (size_t i = 0; i < mb->count; i++) {
        struct search_msg sm = {s, &mb->msgs[i], ""};
        struct imapsearch_msg m = {.seq = (uint32_t)i + 1,
                                   .uid = sm.m->uid,
                                   .max_seq = (uint32_t)mb->count,
                                   .max_uid = highest_uid(mb),
                                   .flags = sm.letters,
                                   .recent = sm.m->recent,
                                   .size = sm.m->crlf_size,
                                   .fd = -1,
                                   .open = search_open,
                                   .open_arg = &sm,
                                   .has_keyword = search_keyword,
                                   .kw_arg = &sm,
                                   .saved = &s->saved};
        mailbox_flags(sm.m, sm.letters, sizeof sm.letters);
        if (q->reads_date && mailbox_internaldate(mb, sm.m, &m.internaldate) != 0)
            m.internaldate = 0; /* gone: its text keys match nothing either */
        if (q->uses_modseq)
            m.modseq = sm.m->gone ? 0 : mailbox_modseq(mb, sm.m);
        int rc = imapsearch_match(q, &m);
        if (rc < 0 || (rc == 1 && imapsearch_hits_add(h, m.seq, m.uid) != 0))
            return -1;
        if (rc == 1 && q->uses_modseq)
            imapsearch_hits_modseq(h, m.modseq);
    }
    return 0;
}

/* RETURN (SAVE) (RFC 5182 §2.1): "$" becomes what the search found (hits), or empty when it
 * answers NO (hits NULL). 0, or -1 out of memory ("$" is then empty). */
static int save_result(struct imapsess *s, const struct imapsearch *q,
                       const struct imapsearch_hits *hits)
{
    struct imap_seqset set = {0};
    imap_seqset_free(&s->saved);
    if (hits == NULL || !(q->ret & IMAPSEARCH_RET_SAVE))
        return 0;
    if (imapsearch_save(q, hits, &set) != 0)
        return -1;
    s->saved = set;
    return 0;
}

int imapcmd_search(struct imapsess *s, struct imaptok *t)
{
    struct imapsearch q;
    struct imapsearch_hits hits = {0};
    char err[128];
    int rc = imapsearch_parse(t, &q, err, sizeof err);
    if (rc == IMAPSEARCH_BADCHARSET) {
        if (q.ret & IMAPSEARCH_RET_SAVE)
            save_result(s, &q, NULL);
        return imapsess_no(s, "[BADCHARSET (US-ASCII UTF-8)] Unsupported charset");
    }
    if (rc == IMAPSEARCH_NOMEM)
        return imapsess_no(s, "[UNAVAILABLE] Out of memory");
    if (rc != 0) /* BAD: "$" stays as it was */
        return imapsess_bad(s, "%s", err[0] != '\0' ? err : "Missing search criteria");
    if (q.uses_modseq)
        s->enabled |= IMAP_EN_CONDSTORE; /* CONDSTORE-enabling (RFC 7162 §3.1) */
    rc = search_run(s, &q, &hits);
    if (rc == 0 && (q.ret & IMAPSEARCH_RET_SAVE) && save_result(s, &q, &hits) != 0)
        rc = -1, errno = ENOMEM;
    else if (rc != 0 && (q.ret & IMAPSEARCH_RET_SAVE))
        save_result(s, &q, NULL);
    if (rc == 0 && imapsearch_result(&q, &hits, s->uid, (s->enabled & IMAP_EN_REV2) != 0, s->tag,
                                     writer, s) != 0)
        rc = -2;
    if (rc == -1)
        log_msg(LOG_ERR, "user=%s SEARCH: %s", s->user, strerror(errno));
    imapsearch_hits_free(&hits);
    imapsearch_free(&q);
    if (rc == -2)
        return -1;
    if (rc == -1)
        return imapsess_no(s, "[UNAVAILABLE] The folder could not be searched");
    return imapsess_ok(s, "SEARCH completed");
}

/* ---- APPEND ---- */

struct append_args {
    char name[IMAP_FOLDER_MAX];
    char path[PATH_MAX];
    struct imapfetch_flags fl;
    time_t date;
};

/* folder SP [flag-list SP] [date-time SP], up to the literal. 1, or the reply. */
static int parse_append(struct imapsess *s, struct imaptok *t, struct append_args *a)
{
    char err[128];
    memset(a, 0, sizeof *a);
    if (!s->lit.pending)
        return imapsess_bad(s, "APPEND needs the message as a literal");
    int rc = imapcmd_folder_arg(s, t, a->name, sizeof a->name);
    if (rc != 1)
        return rc;
    if (imaptok_space(t) != 0)
        return imapsess_bad(s, "Missing message literal");
    if (imaptok_peek(t) == '(' &&
        (imapfetch_parse_flags(t, &a->fl, err, sizeof err) != 0 || imaptok_space(t) != 0))
        return imapsess_bad(s, "%s", err[0] ? err : "Invalid APPEND arguments");
    if (imaptok_peek(t) == '"' && (imaptok_date_time(t, &a->date) != 0 || imaptok_space(t) != 0))
        return imapsess_bad(s, "Invalid date-time");
    if (!imaptok_at_end(t))
        return imapsess_bad(s, "Invalid APPEND arguments");
    if (s->lit.size == 0)
        return imapsess_no(s, "[CANNOT] An empty message cannot be stored");
    return imapcmd_folder_path(s, a->name, a->path, sizeof a->path);
}

/* The maildir letters of APPEND's flags; keywords through the target folder's keyword file
 * (the selected folder's own map when it is the target). 1, or the reply. */
static int append_letters(struct imapsess *s, struct append_args *a, char *out, size_t size)
{
    struct mailbox target, *mb = &target;
    if (a->fl.n_kw == 0)
        return str_copy(out, size, a->fl.letters) == 0 ? 1 : imapsess_bad(s, "Too many flags");
    if (s->state == IMAP_SELECTED && strcmp(s->folder, a->name) == 0)
        mb = &s->mb;
    else if (mailbox_open(&target, a->path) != 0)
        return errno == ENOENT ? imapsess_no(s, "[TRYCREATE] No such folder")
                               : imapcmd_folder_error(s, errno, a->name);
    int rc = store_letters(s, mb, &a->fl, out, size, 1);
    if (mb == &target)
        mailbox_close(&target);
    return rc;
}

/* Streams the literal into a. 0; ENOSPC etc. in *werr when storing failed, EILSEQ for a NUL
 * in a literal that is no literal8 (the literal was still read through); 1 when more followed
 * the literal (BAD); -1 the session ends. */
static int append_stream(struct imapsess *s, struct mailbox_append *a, int *werr)
{
    char buf[16384];
    long n;
    *werr = 0;
    if (imapsess_literal_begin(s) != 0)
        return -1;
    while ((n = imapsess_literal_read(s, buf, sizeof buf)) > 0) {
        if (*werr == 0 && !s->lit.binary && memchr(buf, '\0', (size_t)n) != NULL)
            *werr = EILSEQ; /* CHAR8 has no NUL: only literal8 may carry one (RFC 3516) */
        if (*werr == 0 && mailbox_append_write(a, buf, (size_t)n) != 0)
            *werr = errno;
    }
    if (n < 0)
        return -1;
    return imapsess_literal_end(s);
}

int imapcmd_append(struct imapsess *s, struct imaptok *t)
{
    struct append_args *a = malloc(sizeof *a);
    struct mailbox_append *ap = malloc(sizeof *ap);
    char letters[64];
    uint32_t uidvalidity, uid;
    int rc = a != NULL && ap != NULL ? parse_append(s, t, a)
                                     : imapsess_no(s, "[UNAVAILABLE] Out of memory");
    if (rc == 1)
        rc = append_letters(s, a, letters, sizeof letters);
    if (rc == 1 && mailbox_append_begin(ap, a->path, letters, a->date) != 0)
        rc = errno == ENOENT ? imapsess_no(s, "[TRYCREATE] No such folder")
                             : imapcmd_folder_error(s, errno, a->name);
    if (rc == 1) {
        int werr, end = append_stream(s, ap, &werr);
        if (end != 0 || werr != 0 || mailbox_append_commit(ap, &uidvalidity, &uid) != 0) {
            int err = werr != 0 ? werr : errno;
            if (end != 0 || werr != 0)
                mailbox_append_abort(ap);
            rc = end < 0         ? -1
                 : end == 1      ? imapsess_bad(s, "Unexpected arguments after the message")
                 : err == EILSEQ ? imapsess_bad(s, "NUL octet in a literal: send the message "
                                                   "as a literal8 (~{n}, RFC 3516)")
                                 : imapcmd_folder_error(s, err, a->name);
        } else {
            rc = imapsess_ok(s, "[APPENDUID %lu %lu] APPEND completed", (unsigned long)uidvalidity,
                             (unsigned long)uid);
        }
    }
    free(a);
    free(ap);
    return rc;
}
