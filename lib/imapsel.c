/*
 * imapsel: SELECT, EXAMINE, CLOSE, UNSELECT, EXPUNGE, UID EXPUNGE and IDLE for imap4-in
 * (lib/imapsel.h). It must never expunge in a folder opened read-only, nor leave the client
 * without a tagged reply.
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ssl.h>

#include "imapcmd.h"
#include "imapqresync.h"
#include "imapsel.h"
#include "log.h"
#include "util.h"

#define SYSTEM_FLAGS "\\Answered \\Flagged \\Deleted \\Seen \\Draft $Forwarded"

/* Every flag of the folder: the system ones and its keywords, into out. */
static void folder_flags(const struct mailbox *mb, char *out, size_t size)
{
    size_t n = (size_t)snprintf(out, size, "%s", SYSTEM_FLAGS);
    for (int i = 0; i < MAILBOX_KEYWORDS && n < size; i++)
        if (mb->kw.names[i] != NULL)
            n += (size_t)snprintf(out + n, size - n, " %s", mb->kw.names[i]);
    if (n >= size)
        out[0] = '\0'; /* cannot happen: 26 keywords of 64 octets fit */
}

/* The untagged responses of SELECT and EXAMINE (RFC 3501 §6.3.1, RFC 9051 §6.3.2). */
static void select_responses(struct imapsess *s)
{
    char flags[2048], letters[64];
    size_t recent = 0, unseen = 0;
    for (size_t i = 0; i < s->mb.count; i++) {
        recent += s->mb.msgs[i].recent != 0;
        mailbox_flags(&s->mb.msgs[i], letters, sizeof letters);
        if (unseen == 0 && strchr(letters, 'S') == NULL)
            unseen = i + 1;
    }
    folder_flags(&s->mb, flags, sizeof flags);
    int rev2 = (s->enabled & IMAP_EN_REV2) != 0;
    imapsess_untagged(s, "%zu EXISTS", s->mb.count);
    if (!rev2)
        imapsess_untagged(s, "%zu RECENT", recent);
    imapsess_untagged(s, "FLAGS (%s)", flags);
    imapsess_untagged(s, "OK [PERMANENTFLAGS (%s%s)] flags that can be stored",
                      s->readonly ? "" : flags, s->readonly ? "" : " \\*");
    if (!rev2 && unseen > 0)
        imapsess_untagged(s, "OK [UNSEEN %zu] first unseen message", unseen);
    imapsess_untagged(s, "OK [UIDVALIDITY %u] UIDs valid", s->mb.uidvalidity);
    imapsess_untagged(s, "OK [UIDNEXT %u] predicted next UID", s->mb.uidnext);
    imapsess_untagged(s, "OK [HIGHESTMODSEQ %llu] highest modification sequence",
                      (unsigned long long)s->mb.highestmodseq); /* RFC 7162 §3.1.2.1 */
    if (rev2) {
        imapsess_printf(s, "* LIST () \".\" ");
        imapsess_astring(s, s->folder, strlen(s->folder));
        imapsess_write(s, "\r\n", 2);
    }
}

/* One SELECT parameter: CONDSTORE, or QRESYNC (...) after ENABLE QRESYNC (into q, *qr set).
 * 0, or -1. */
static int select_param(struct imapsess *s, struct imaptok *args, int *condstore,
                        struct imapqresync *q, int *qr)
{
    if (imaptok_word(args, "CONDSTORE") == 0)
        return *condstore = 1, 0;
    if (*qr || !(s->enabled & IMAP_EN_QRESYNC) || imaptok_word(args, "QRESYNC") != 0 ||
        imaptok_space(args) != 0 || imapqresync_parse(args, q) != 0)
        return -1;
    *qr = 1;
    return 0;
}

/* SELECT's parameters after the name (RFC 4466 select-params): " (CONDSTORE)" and
 * " (QRESYNC (...))" (RFC 7162), or none. 1 (*condstore, *qr set; free q when *qr), or the
 * BAD reply. */
static int select_params(struct imapsess *s, struct imaptok *args, int *condstore,
                         struct imapqresync *q, int *qr)
{
    *condstore = *qr = 0;
    if (imaptok_at_end(args))
        return 1;
    int bad = imaptok_space(args) != 0 || imaptok_char(args, '(') != 0;
    for (int first = 1; !bad && (first || imaptok_char(args, ')') != 0); first = 0)
        bad = (!first && imaptok_space(args) != 0) || select_param(s, args, condstore, q, qr) != 0;
    if (!bad && imaptok_at_end(args))
        return 1;
    if (*qr)
        imapqresync_free(q);
    return imapsess_bad(s,
                        "%s takes (CONDSTORE) and, after ENABLE QRESYNC, (QRESYNC (uidvalidity "
                        "modseq [known-uids [seq-match]]))",
                        s->cmd);
}

static int select_open(struct imapsess *s, const char *name);

int imapsel_select(struct imapsess *s, struct imaptok *args)
{
    char name[IMAP_FOLDER_MAX];
    struct imapqresync q;
    int condstore, qr;
    int rc = imapcmd_folder_arg(s, args, name, sizeof name); /* INBOX in any case: "INBOX" */
    if (rc != 1 || (rc = select_params(s, args, &condstore, &q, &qr)) != 1)
        return rc;
    if (condstore)
        s->enabled |= IMAP_EN_CONDSTORE;
    rc = select_open(s, name);
    if (rc == 1 && qr && imapqresync_select(s, &q) != 0)
        rc = -1;
    if (qr)
        imapqresync_free(&q);
    if (rc != 1)
        return rc;
    return imapsess_ok(s, "[%s] %s completed", s->readonly ? "READ-ONLY" : "READ-WRITE", s->cmd);
}

/* SELECT's folder opened and its untagged responses sent. 1, or the reply (NO). */
static int select_open(struct imapsess *s, const char *name)
{
    char path[PATH_MAX];
    if (s->state == IMAP_SELECTED) {
        imapsess_unselect(s);
        if (s->enabled & (IMAP_EN_REV2 | IMAP_EN_QRESYNC)) /* RFC 7162 §3.2.11 */
            imapsess_untagged(s, "OK [CLOSED] the folder before is closed");
    }
    if (mailbox_folder_path(path, sizeof path, s->root, name) != 0)
        return imapsess_no(s, "[CANNOT] not a folder name this server takes");
    if (mailbox_open(&s->mb, path) != 0) {
        int err = errno;
        s->mb.cur_fd = s->mb.watch_fd = -1;
        if (err == ENOENT || err == ENOTDIR)
            return imapsess_no(s, "[NONEXISTENT] no such folder");
        log_msg(LOG_ERR, "cannot open %s of %s: %s", path, s->user, strerror(err));
        return imapsess_no(s, "[UNAVAILABLE] cannot open the folder now, try again later");
    }
    str_copy(s->folder, sizeof s->folder, name);
    s->readonly = strcmp(s->cmd, "EXAMINE") == 0;
    s->state = IMAP_SELECTED;
    s->exists_told = s->mb.count;
    select_responses(s);
    return 1;
}

int imapsel_unselect(struct imapsess *s, struct imaptok *args)
{
    if (!imaptok_at_end(args))
        return imapsess_bad(s, "%s takes no argument", s->cmd);
    if (strcmp(s->cmd, "CLOSE") == 0 && !s->readonly) {
        struct mailbox_changes ch;
        if (mailbox_expunge_deleted(&s->mb, NULL, 0, &ch) != 0)
            log_msg(LOG_ERR, "CLOSE: cannot expunge in %s of %s: %s", s->folder, s->user,
                    strerror(errno));
        else
            mailbox_changes_free(&ch); /* CLOSE expunges silently (RFC 3501 §6.4.2) */
    }
    imapsess_unselect(s);
    return imapsess_ok(s, "%s completed", s->cmd);
}

int imapsel_close(struct imapsess *s, struct imaptok *args)
{
    return imapsel_unselect(s, args);
}

/* The UIDs of the messages in a UID set or "$" (UID EXPUNGE). *uids is malloc'd. 0, -1 after
 * BAD. */
static int uid_set(struct imapsess *s, struct imaptok *args, uint32_t **uids, size_t *n)
{
    struct imap_seqset set;
    int saved;
    if (imapcmd_seqset(s, args, &set, &saved) != 0) {
        imapsess_bad(s, "UID EXPUNGE needs a UID set");
        return -1;
    }
    if (!imaptok_at_end(args)) {
        imap_seqset_free(&set);
        imapsess_bad(s, "UID EXPUNGE takes a UID set only");
        return -1;
    }
    uint32_t largest = s->mb.count > 0 ? s->mb.msgs[s->mb.count - 1].uid : 0;
    if (!saved)
        imap_seqset_resolve(&set, largest);
    *uids = malloc((s->mb.count + 1) * sizeof **uids);
    *n = 0;
    for (size_t i = 0; *uids != NULL && i < s->mb.count; i++)
        if (imap_seqset_contains(&set, s->mb.msgs[i].uid))
            (*uids)[(*n)++] = s->mb.msgs[i].uid;
    imap_seqset_free(&set);
    if (*uids == NULL) {
        imapsess_no(s, "[SERVERBUG] out of memory");
        return -1;
    }
    return 0;
}

int imapsel_expunge(struct imapsess *s, struct imaptok *args)
{
    uint32_t *uids = NULL;
    size_t n = 0;
    if (!s->uid && !imaptok_at_end(args))
        return imapsess_bad(s, "EXPUNGE takes no argument");
    if (s->uid && uid_set(s, args, &uids, &n) != 0)
        return 0;
    if (s->readonly) {
        free(uids);
        return imapsess_no(s, "[READ-ONLY] the folder was opened with EXAMINE");
    }
    struct mailbox_changes ch;
    int rc = mailbox_expunge_deleted(&s->mb, s->uid ? uids : NULL, n, &ch);
    free(uids);
    if (rc != 0) {
        log_msg(LOG_ERR, "EXPUNGE in %s of %s: %s", s->folder, s->user, strerror(errno));
        return imapsess_no(s, "[UNAVAILABLE] cannot expunge now, try again later");
    }
    imapsess_report(s, &ch);
    mailbox_changes_free(&ch);
    return imapsess_ok(s, "%sEXPUNGE completed", s->uid ? "UID " : "");
}

/* ---- IDLE ---- */

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Input from the client is ready without waiting: buffered by netio or by OpenSSL. */
static int input_buffered(struct imapsess *s)
{
    SSL *ssl = netio_tls(&s->io);
    return netio_pending(&s->io) || (ssl != NULL && SSL_has_pending(ssl));
}

/* Waits for the client (1) or a change of the folder (0), at most until deadline (-1). */
static int idle_wait(struct imapsess *s, int watch, long long deadline)
{
    while (!input_buffered(s)) {
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            return -1;
        struct pollfd p[2] = {{.fd = s->io.in_fd, .events = POLLIN},
                              {.fd = watch, .events = POLLIN}};
        /* without a watch the folder is looked at every second */
        int ms = watch < 0 && s->state == IMAP_SELECTED ? 1000 : (int)(left > 60000 ? 60000 : left);
        int r = poll(p, watch >= 0 ? 2 : 1, ms);
        if (r < 0 && errno != EINTR)
            return 1; /* let the read find the error */
        if (r > 0 && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            return 1;
        if ((r > 0 && (p[1].revents & POLLIN)) || (watch < 0 && s->state == IMAP_SELECTED))
            return 0;
    }
    return 1;
}

/* The client's line in IDLE: DONE ends it (OK), anything else is BAD. */
static int idle_done(struct imapsess *s)
{
    char line[64];
    long n = netio_getline(&s->io, line, sizeof line);
    if (n == NETIO_TOOLONG)
        return imapsess_bad(s, "IDLE ends with DONE");
    if (n <= 0)
        return -1;
    if (n == 6 && strncasecmp(line, "DONE\r\n", 6) == 0)
        return imapsess_ok(s, "IDLE terminated");
    return imapsess_bad(s, "IDLE ends with DONE");
}

int imapsel_idle(struct imapsess *s, struct imaptok *args)
{
    if (!imaptok_at_end(args))
        return imapsess_bad(s, "IDLE takes no argument");
    int watch = -1;
    if (s->state == IMAP_SELECTED && (watch = mailbox_watch(&s->mb)) < 0)
        log_msg(LOG_WARNING, "IDLE: no inotify watch for %s (%s): polling", s->folder,
                strerror(errno));
    if (imapsess_updates(s, 0) != 0 && s->done)
        return -1;
    if (netio_puts(&s->io, "+ idling\r\n") != 0 || netio_flush(&s->io) != 0)
        return -1;
    long long deadline = monotonic_ms() + (long long)s->conf.imap_timeout * 1000;
    for (;;) {
        int r = idle_wait(s, watch, deadline);
        if (r > 0)
            return idle_done(s);
        if (r < 0) {
            imapsess_untagged(s, "BYE autologout: IDLE for too long");
            log_msg(LOG_INFO, "timeout in IDLE: client=%s", s->client);
            s->done = 1;
            return -1;
        }
        if (watch >= 0)
            mailbox_watch_drain(&s->mb);
        if (imapsess_updates(s, 0) != 0 && s->done)
            return -1;
        if (netio_flush(&s->io) != 0)
            return -1;
    }
}
