/*
 * imapqresync: QRESYNC (RFC 7162 §3.2) for imap4-in (see imapqresync.h): the SELECT parameter,
 * VANISHED and VANISHED (EARLIER). It must never report a UID the folder holds, never walk a
 * range one UID at a time, and never hold more than the folder's list.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "imapqresync.h"
#include "imapsearch.h"
#include "mailbox.h"

int imapqresync_parse(struct imaptok *t, struct imapqresync *q)
{
    struct imap_seqset seqs = {0}, uids = {0};
    memset(q, 0, sizeof *q);
    if (imaptok_char(t, '(') != 0 || imaptok_number(t, &q->uidvalidity) != 0 ||
        q->uidvalidity == 0 || imaptok_space(t) != 0 || imaptok_number64(t, &q->modseq) != 0 ||
        q->modseq == 0)
        return -1;
    if (imaptok_space(t) == 0) {
        if (imaptok_peek(t) != '(' && imaptok_seqset(t, &q->known) != 0)
            return -1;
        if (q->known.n > 0 && imaptok_space(t) == 0 && imaptok_peek(t) != '(')
            return imapqresync_free(q), -1;
        if (imaptok_peek(t) == '(') { /* seq-match: checked, not needed */
            int bad = imaptok_char(t, '(') != 0 || imaptok_seqset(t, &seqs) != 0 ||
                      imaptok_space(t) != 0 || imaptok_seqset(t, &uids) != 0 ||
                      imaptok_char(t, ')') != 0;
            imap_seqset_free(&seqs);
            imap_seqset_free(&uids);
            if (bad)
                return imapqresync_free(q), -1;
        }
    }
    if (imaptok_char(t, ')') != 0)
        return imapqresync_free(q), -1;
    return 0;
}

void imapqresync_free(struct imapqresync *q)
{
    imap_seqset_free(&q->known);
}

/* One range of a set being written ("* VANISHED ..." already begun). */
static void put_range(struct imapsess *s, int *first, uint32_t lo, uint32_t hi)
{
    if (lo == hi)
        imapsess_printf(s, "%s%lu", *first ? "" : ",", (unsigned long)lo);
    else
        imapsess_printf(s, "%s%lu:%lu", *first ? "" : ",", (unsigned long)lo, (unsigned long)hi);
    *first = 0;
}

/* The gaps of [lo, hi] between the folder's UIDs, written (begun with the prefix when the
 * first is found). */
static void put_gaps(struct imapsess *s, uint32_t lo, uint32_t hi, int *first)
{
    const struct mailbox *mb = &s->mb;
    uint64_t cur = lo;
    for (size_t i = mailbox_first_uid_at(mb, lo); cur <= hi; i++) {
        uint64_t present =
            i < mb->count && mb->msgs[i].uid <= hi ? mb->msgs[i].uid : (uint64_t)hi + 1;
        if (present > cur) {
            if (*first)
                imapsess_printf(s, "* VANISHED (EARLIER) ");
            put_range(s, first, (uint32_t)cur, (uint32_t)(present - 1));
        }
        cur = present + 1;
    }
}

int imapqresync_vanished_earlier(struct imapsess *s, const struct imap_seqset *set)
{
    uint32_t top = s->mb.uidnext > 0 ? s->mb.uidnext - 1 : 0;
    int first = 1;
    for (size_t k = 0; k < set->n && top > 0; k++)
        if (set->r[k].lo <= top)
            put_gaps(s, set->r[k].lo, set->r[k].hi < top ? set->r[k].hi : top, &first);
    if (!first)
        imapsess_write(s, "\r\n", 2);
    return s->io.write_failed ? -1 : 0;
}

static int by_value(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int writer(void *arg, const void *data, size_t len)
{
    return imapsess_write(arg, data, len);
}

int imapqresync_vanished(struct imapsess *s, uint32_t *uids, size_t n)
{
    if (n == 0)
        return 0;
    qsort(uids, n, sizeof *uids, by_value);
    imapsess_printf(s, "* VANISHED ");
    imapsearch_set(uids, n, writer, s); /* a failure is in s->io.write_failed */
    imapsess_write(s, "\r\n", 2);
    return s->io.write_failed ? -1 : 0;
}

/* "* n FETCH (UID u FLAGS (...) MODSEQ (m))" for each message of the set changed since. */
static int changed_since(struct imapsess *s, const struct imap_seqset *set, uint64_t modseq)
{
    char flags[2048];
    for (size_t i = 0; i < s->mb.count && !s->io.write_failed; i++) {
        struct mailbox_msg *m = &s->mb.msgs[i];
        uint64_t ms = mailbox_modseq(&s->mb, m);
        if (ms <= modseq || (set->n > 0 && !imap_seqset_contains(set, m->uid)) ||
            mailbox_flags_imap(&s->mb, m, flags, sizeof flags) != 0)
            continue;
        imapsess_untagged(s, "%zu FETCH (UID %lu FLAGS (%s) MODSEQ (%llu))", i + 1,
                          (unsigned long)m->uid, flags, (unsigned long long)ms);
    }
    return s->io.write_failed ? -1 : 0;
}

int imapqresync_select(struct imapsess *s, struct imapqresync *q)
{
    struct imap_seqrange all = {1, UINT32_MAX};
    struct imap_seqset every = {&all, 1, 1};
    if (q->uidvalidity != s->mb.uidvalidity)
        return 0; /* another folder for the client: it resyncs in full */
    if (q->known.n > 0)
        imap_seqset_resolve(&q->known, s->mb.uidnext > 0 ? s->mb.uidnext - 1 : 0);
    if (imapqresync_vanished_earlier(s, q->known.n > 0 ? &q->known : &every) != 0)
        return -1;
    return changed_since(s, &q->known, q->modseq);
}
