/*
 * imapsess: the session side of imap4-in (lib/imapsess.h): replies, strings, the reading of
 * one command with its literals into a bounded buffer, and APPEND's streamed literal.
 *
 * It must never assemble more than the caller's buffer, send "+" for a literal it will not
 * take, lose track of where a command ends (a literal it refuses is still read through when
 * the client sends it unasked, {n+}), or write a quoted string that holds CR, LF, NUL, '"'
 * or '\' unescaped.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "imapqresync.h"
#include "imapsess.h"
#include "log.h"
#include "util.h"

void imapsess_init(struct imapsess *s, int in_fd, int out_fd)
{
    memset(s, 0, sizeof *s);
    netio_init(&s->io, in_fd, out_fd, 1800);
    s->state = IMAP_NOT_AUTH;
    s->slot.fd = -1;
    s->mb.cur_fd = s->mb.watch_fd = -1;
    str_copy(s->tag, sizeof s->tag, "*");
}

void imapsess_free(struct imapsess *s)
{
    imapsess_unselect(s);
}

void imapsess_unselect(struct imapsess *s)
{
    if (s->mb.cur_fd >= 0 || s->mb.msgs != NULL)
        mailbox_close(&s->mb);
    memset(&s->mb, 0, sizeof s->mb);
    s->mb.cur_fd = s->mb.watch_fd = -1;
    s->folder[0] = '\0';
    s->readonly = 0;
    s->exists_told = 0;
    imap_seqset_free(&s->saved);
    if (s->state == IMAP_SELECTED)
        s->state = IMAP_AUTH;
}

/* ---- replies ---- */

int imapsess_write(struct imapsess *s, const void *data, size_t len)
{
    return netio_write(&s->io, data, len);
}

int imapsess_printf(struct imapsess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = netio_vprintf(&s->io, fmt, ap);
    va_end(ap);
    return rc;
}

/* fmt into line after prefix, then CRLF: the whole line, or -1 if it does not fit. */
static long format_line(char *line, size_t size, const char *prefix, const char *fmt, va_list ap)
{
    size_t p = strlen(prefix);
    if (p + 2 >= size)
        return -1;
    memcpy(line, prefix, p);
    int n = vsnprintf(line + p, size - p - 2, fmt, ap);
    if (n < 0 || (size_t)n >= size - p - 2)
        return -1;
    memcpy(line + p + (size_t)n, "\r\n", 2);
    return (long)(p + (size_t)n + 2);
}

int imapsess_untagged(struct imapsess *s, const char *fmt, ...)
{
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    long n = format_line(line, sizeof line, "* ", fmt, ap);
    va_end(ap);
    if (n < 0) {
        log_msg(LOG_ERR, "client=%s an untagged response did not fit", s->client);
        return -1;
    }
    return netio_write(&s->io, line, (size_t)n);
}

/* What comes before an OK or NO: the selected folder's untagged updates. 0, or -1 when the
 * session ends (the folder rebuilt behind our back). */
static int before_tagged(struct imapsess *s, int bad)
{
    if (!bad && s->state == IMAP_SELECTED && !s->done &&
        imapsess_updates(s, (s->cmd_flags & IMAPCMD_NO_EXPUNGE) && !s->uid) != 0 && s->done)
        return -1;
    return 0;
}

int imapsess_tagged_begin(struct imapsess *s, const char *status)
{
    if (s->replied)
        return 1;
    if (before_tagged(s, strcmp(status, "BAD") == 0) != 0)
        return -1;
    s->replied = 1;
    return imapsess_printf(s, "%s %s ", s->tag, status);
}

int imapsess_vtagged(struct imapsess *s, const char *status, const char *fmt, va_list ap)
{
    if (s->replied)
        return 0;
    int bad = strcmp(status, "BAD") == 0;
    if (before_tagged(s, bad) != 0)
        return -1;
    char prefix[IMAP_TAG_MAX + 8], line[4096];
    snprintf(prefix, sizeof prefix, "%s %s ", s->tag, status);
    long n = format_line(line, sizeof line, prefix, fmt, ap);
    if (n < 0)
        n = snprintf(line, sizeof line, "%s%s\r\n", prefix, "internal error: reply too long");
    s->replied = 1;
    int rc = netio_write(&s->io, line, (size_t)n);
    if (bad && ++s->errors >= s->conf.max_errors && !s->done) {
        imapsess_untagged(s, "BYE too many protocol errors, closing the connection");
        log_msg(LOG_NOTICE, "client=%s too many errors (%u)", s->client, s->errors);
        s->done = 1;
    }
    return rc;
}

int imapsess_ok(struct imapsess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = imapsess_vtagged(s, "OK", fmt, ap);
    va_end(ap);
    return rc;
}

int imapsess_no(struct imapsess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = imapsess_vtagged(s, "NO", fmt, ap);
    va_end(ap);
    return rc;
}

int imapsess_bad(struct imapsess *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = imapsess_vtagged(s, "BAD", fmt, ap);
    va_end(ap);
    return rc;
}

/* ---- strings ---- */

#define QUOTED_MAX 1024 /* longer strings go out as literals */

static int quotable(const char *str, size_t len)
{
    if (len > QUOTED_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)str[i];
        if (c == '\0' || c == '\r' || c == '\n' || c >= 0x80)
            return 0;
    }
    return 1;
}

int imapsess_string(struct imapsess *s, const char *str, size_t len)
{
    if (!quotable(str, len)) {
        if (imapsess_printf(s, "{%zu}\r\n", len) != 0)
            return -1;
        return netio_write(&s->io, str, len);
    }
    char out[2 * QUOTED_MAX + 2];
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        if (str[i] == '"' || str[i] == '\\')
            out[o++] = '\\';
        out[o++] = str[i];
    }
    out[o++] = '"';
    return netio_write(&s->io, out, o);
}

int imapsess_nstring(struct imapsess *s, const char *str, size_t len)
{
    if (str == NULL)
        return netio_write(&s->io, "NIL", 3);
    return imapsess_string(s, str, len);
}

int imapsess_astring(struct imapsess *s, const char *str, size_t len)
{
    int atom = len > 0 && !(len == 3 && strncasecmp(str, "NIL", 3) == 0);
    for (size_t i = 0; atom && i < len; i++) {
        unsigned char c = (unsigned char)str[i];
        atom = c > 0x20 && c < 0x7f && strchr("(){%*\"\\", c) == NULL;
    }
    if (atom)
        return netio_write(&s->io, str, len);
    return imapsess_string(s, str, len);
}

/* ---- the selected folder ---- */

int imapsess_report(struct imapsess *s, const struct mailbox_changes *ch)
{
    char flags[2048];
    if ((s->enabled & IMAP_EN_QRESYNC) && ch->n_expunged > 0) { /* RFC 7162 §3.2.10 */
        uint32_t *uids = malloc(ch->n_expunged * sizeof *uids);
        if (uids == NULL)
            return -1;
        memcpy(uids, ch->expunged_uids, ch->n_expunged * sizeof *uids);
        imapqresync_vanished(s, uids, ch->n_expunged);
        free(uids);
    }
    for (size_t i = 0; i < ch->n_expunged; i++) {
        if (!(s->enabled & IMAP_EN_QRESYNC))
            imapsess_untagged(s, "%u EXPUNGE", ch->expunged[i]);
        if (s->exists_told > 0)
            s->exists_told--;
    }
    for (size_t i = 0; i < ch->n_flags; i++) {
        uint32_t seq = ch->flags[i];
        if (seq == 0 || seq > s->mb.count)
            continue;
        const struct mailbox_msg *m = &s->mb.msgs[seq - 1];
        if (mailbox_flags_imap(&s->mb, m, flags, sizeof flags) != 0)
            continue;
        if (s->enabled & IMAP_EN_CONDSTORE)
            imapsess_untagged(s, "%u FETCH (UID %u MODSEQ (%llu) FLAGS (%s))", seq, m->uid,
                              (unsigned long long)mailbox_modseq(&s->mb, m), flags);
        else
            imapsess_untagged(s, "%u FETCH (UID %u FLAGS (%s))", seq, m->uid, flags);
    }
    if (s->mb.count != s->exists_told) {
        size_t recent = 0;
        for (size_t i = 0; i < s->mb.count; i++)
            recent += s->mb.msgs[i].recent != 0;
        imapsess_untagged(s, "%zu EXISTS", s->mb.count);
        if (!(s->enabled & IMAP_EN_REV2))
            imapsess_untagged(s, "%zu RECENT", recent);
        s->exists_told = s->mb.count;
    }
    return s->io.write_failed ? -1 : 0;
}

int imapsess_updates(struct imapsess *s, int no_expunge)
{
    struct mailbox_changes ch;
    if (s->state != IMAP_SELECTED)
        return 0;
    if (mailbox_refresh(&s->mb, no_expunge ? MAILBOX_REFRESH_KEEP_GONE : 0, &ch) != 0) {
        log_msg(LOG_ERR, "cannot refresh %s of %s: %s", s->folder, s->user, strerror(errno));
        return 0; /* the client sees the changes at the next command */
    }
    int rc;
    if (ch.uidvalidity_changed) {
        log_msg(LOG_WARNING, "client=%s the index of %s was rebuilt: UIDVALIDITY changed",
                s->client, s->folder);
        imapsess_untagged(s, "BYE the folder was rebuilt (new UIDVALIDITY), please reconnect");
        s->done = 1;
        rc = -1;
    } else {
        rc = imapsess_report(s, &ch);
    }
    mailbox_changes_free(&ch);
    return rc;
}
