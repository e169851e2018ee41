/*
 * smtpdata: smtp-in's DATA phase (see smtpdata.h). It must never answer 250 before every copy
 * is durable, nor take a bare CR or LF as a line end.
 */
#include "config.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "data.h"
#include "log.h"
#include "maildir.h"
#include "smtpdata.h"
#include "util.h"

/* A reply line (CR LF added). */
static void say(struct smtpdata *m, const char *text)
{
    netio_printf(m->io, "%s\r\n", text);
}

/* Return-Path (lib/deliver) and our Received line. */
static int write_headers(struct smtpdata *m, const char *id)
{
    char buf[2048];
    m->received.id = id;
    m->received.when = time(NULL);
    if (deliver_begin(m->dl, 1) != 0)
        return -1;
    int n = trace_received(buf, sizeof buf, &m->received);
    if (n < 0 || deliver_write(m->dl, buf, (size_t)n) != 0)
        return -1;
    return 0;
}

static void log_queued(const struct deliver *dl, const char *id)
{
    for (size_t i = 0; i < dl->n_queued; i++)
        log_msg(LOG_INFO, "id=%s queued=%s", id, dl->queued[i]);
}

/* The reply to the end of DATA; stores the message when nothing refused it. */
static enum smtpdata_end finish(struct smtpdata *m, const struct data_state *d,
                                const struct data_opts *o, struct smtpdata_result *r)
{
    const char *refusal = data_refusal(d, o);
    int stored = 0;
    maildir_hold_signals(1); /* a SIGTERM now waits for the message and its 250 */
    if (refusal != NULL)
        str_copy(r->text, sizeof r->text, refusal);
    else if (d->store_errno)
        str_copy(r->text, sizeof r->text, deliver_failure_reply(d->store_errno));
    else if (deliver_commit(m->dl) != 0)
        str_copy(r->text, sizeof r->text, deliver_failure_reply(errno));
    else
        stored = str_format(r->text, sizeof r->text, "250 2.0.0 Ok: queued as %s", r->id) > 0;
    deliver_end(m->dl, !stored);
    say(m, r->text);
    if (stored) {
        netio_flush(m->io);
        log_queued(m->dl, r->id);
        deliver_start_runs(m->dl, m->conf->path);
    }
    maildir_hold_signals(0);
    return stored ? SMTPDATA_STORED : SMTPDATA_REFUSED;
}

enum smtpdata_end smtpdata_receive(struct smtpdata *m, struct smtpdata_result *r)
{
    struct data_state d = {0};
    struct data_opts o = {.max_size = m->conf->max_message_size,
                          .max_hops = m->conf->max_hops,
                          .submission = m->submission,
                          .hostname = m->conf->hostname};
    memset(r, 0, sizeof *r);
    random_hex16(r->id);
    if (write_headers(m, r->id) != 0) {
        str_copy(r->text, sizeof r->text, deliver_failure_reply(errno));
        deliver_end(m->dl, 1);
        say(m, r->text);
        return SMTPDATA_NOT_BEGUN;
    }
    say(m, "354 end data with <CR><LF>.<CR><LF>");
    netio_set_timeout(m->io, m->conf->data_timeout);
    long long session_limit = netio_limit(m->io, m->conf->data_time_limit);
    enum data_end end = data_read(m->io, m->dl, &o, &d);
    int data_limit = end == DATA_TIMEOUT && netio_limit_passed(m->io);
    netio_limit_restore(m->io, session_limit);
    netio_set_timeout(m->io, m->conf->command_timeout);
    r->size = d.size;
    if (end == DATA_END)
        return finish(m, &d, &o, r);
    deliver_end(m->dl, 1);
    str_copy(r->text, sizeof r->text,
             end == DATA_BARE      ? "554 5.5.2 bare CR or LF"
             : end == DATA_TIMEOUT ? "421 4.4.2 timeout in DATA"
                                   : "connection lost in DATA");
    if (end == DATA_TIMEOUT && data_limit)
        r->limit = netio_limit_passed(m->io) ? "session" : "DATA";
    return end == DATA_BARE      ? SMTPDATA_BARE
           : end == DATA_TIMEOUT ? SMTPDATA_TIMEOUT
                                 : SMTPDATA_LOST;
}
