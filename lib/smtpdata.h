/*
 * smtpdata: smtp-in's DATA phase for one transaction (RFC 5321 §4.1.1.4): the message begun in
 * lib/deliver with our Received line, the 354, the stream read by lib/data under data_timeout
 * and data_time_limit, and the verdict: the 250 once every copy is durable (then queue-run
 * started for the entries made), or the reply that refuses the message. smtp-in keeps the
 * session: the counts, the log line, closing the connection.
 *
 * It must never answer 250 before deliver_commit has succeeded, let a SIGTERM land between the
 * commit and the flushed 250, take a bare CR or LF as a line end (SMTPDATA_BARE: the caller
 * closes), or hold a message in memory.
 */
#ifndef YUBIN_SMTPDATA_H
#define YUBIN_SMTPDATA_H

#include <stdint.h>

#include "conf.h"
#include "deliver.h"
#include "netio.h"
#include "trace.h"

struct smtpdata {
    struct netio *io;
    struct deliver *dl; /* the transaction's sender and recipients */
    const struct yubin_conf *conf;
    int submission;                 /* add Date: and Message-ID: where missing */
    struct trace_received received; /* all but id and when, which are set here */
};

enum smtpdata_end {
    SMTPDATA_STORED,    /* 250 sent and flushed */
    SMTPDATA_REFUSED,   /* a 4xx/5xx reply after the message (counts towards max_errors) */
    SMTPDATA_NOT_BEGUN, /* no 354: the message could not be begun, 4xx sent; envelope kept */
    SMTPDATA_BARE,      /* a bare CR or LF: refuse it and close */
    SMTPDATA_TIMEOUT,   /* say 421 and close (limit: which time limit, or NULL) */
    SMTPDATA_LOST,      /* the connection ended */
};

struct smtpdata_result {
    char id[17];       /* the message id in the log */
    char text[200];    /* the reply, or what ended DATA: for the log */
    uint64_t size;     /* octets received */
    const char *limit; /* SMTPDATA_TIMEOUT: "session", "DATA", or NULL (one line's timeout) */
};

/* After DATA was accepted as a command: the whole phase, as above. */
enum smtpdata_end smtpdata_receive(struct smtpdata *m, struct smtpdata_result *r);

#endif
