/*
 * imapqresync: QRESYNC (RFC 7162 §3.2) for imap4-in: SELECT/EXAMINE's (QRESYNC (uidvalidity
 * modseq [known-uids [seq-match]])) parameter and what it answers, the VANISHED responses that
 * replace EXPUNGE once QRESYNC is enabled, and VANISHED (EARLIER) for SELECT and UID FETCH
 * (CHANGEDSINCE n VANISHED).
 *
 * lib/mailbox does not remember the UIDs it expunged: VANISHED (EARLIER) reports every UID of
 * the client's set (below UIDNEXT) that the folder does not hold, whatever the client's
 * mod-sequence (even one equal to HIGHESTMODSEQ: a VANISHED this session could not send yet,
 * during a FETCH, may be older than a MODSEQ the client saw). RFC 7162 counts such a server as
 * compliant (and discourages it: the answer can be long); a client ignores the UIDs it does
 * not have. It never reports a UID the folder holds, never walks a
 * range UID by UID (1:4294967295 costs what the folder's size costs) and never sends VANISHED
 * before QRESYNC is enabled.
 */
#ifndef YUBIN_IMAPQRESYNC_H
#define YUBIN_IMAPQRESYNC_H

#include <stddef.h>
#include <stdint.h>

#include "imapsess.h"
#include "imaptok.h"

/* The QRESYNC parameter of SELECT or EXAMINE. */
struct imapqresync {
    uint32_t uidvalidity;
    uint64_t modseq;
    struct imap_seqset known; /* known-uids (n 0: not given, all of 1:*) */
};

/* "(" uidvalidity SP mod-sequence [SP known-uids [SP "(" seq-set SP uid-set ")"]] ")" at the
 * cursor (after "QRESYNC" SP); seq-match is checked and not used. 0, or -1 (BAD). After 0,
 * imapqresync_free. */
int imapqresync_parse(struct imaptok *t, struct imapqresync *q);
void imapqresync_free(struct imapqresync *q);

/* After SELECT's untagged responses: when the UIDVALIDITY is the folder's, "* VANISHED
 * (EARLIER) ..." and "* n FETCH (UID u FLAGS (...) MODSEQ (m))" for each message of
 * known-uids changed since the mod-sequence. 0, or -1 (write failure). */
int imapqresync_select(struct imapsess *s, struct imapqresync *q);

/* "* VANISHED (EARLIER) <set>": the UIDs of set (resolved, "*" the folder's UIDNEXT - 1) that
 * the folder does not hold; nothing when there are none. 0, or -1. */
int imapqresync_vanished_earlier(struct imapsess *s, const struct imap_seqset *set);

/* "* VANISHED <set>" for UIDs just expunged (in any order; sorted in place). 0, or -1. */
int imapqresync_vanished(struct imapsess *s, uint32_t *uids, size_t n);

#endif
