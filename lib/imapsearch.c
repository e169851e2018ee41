/*
 * lib/imapsearch.c: SEARCH criteria parsed into a small tree of nodes (one array, bounded by
 * IMAPSEARCH_MAX_KEYS), evaluated per message with the keys that need no file first, and the
 * SEARCH / ESEARCH answer (lib/imapsearch.h). The text keys' reading of the message is in
 * imapsearch-text.c. It must never recurse past IMAPSEARCH_MAX_DEPTH, allocate past the
 * bounds, or open a message that no key reached needs.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "imapsearch-int.h"

enum key {
    K_AND,     /* a list: children a, then their next */
    K_OR,      /* a OR b */
    K_NOT,     /* NOT a */
    K_ALL,     /* ALL */
    K_RECENT,  /* RECENT (neg: OLD) */
    K_NEW,     /* RECENT UNSEEN */
    K_FLAG,    /* has (neg: has not) the maildir flag letter */
    K_KEYWORD, /* has (neg: has not) the keyword */
    K_LARGER,
    K_SMALLER,
    K_BEFORE, /* INTERNALDATE's day < day */
    K_ON,
    K_SINCE,
    K_SENTBEFORE,
    K_SENTON,
    K_SENTSINCE,
    K_SEQ,    /* sequence number in set */
    K_UID,    /* UID in set */
    K_SAVED,  /* "$" (with or without UID) */
    K_MODSEQ, /* MODSEQ >= num (RFC 7162) */
    K_TEXT    /* needle found */
};

struct imapsearch_node {
    unsigned char key, neg;
    char flag;
    int a, b, next;
    uint64_t num;
    long day;
    int needle;
    char *kw;
    size_t kw_len;
    struct imap_seqset set;    /* resolved copy of raw */
    struct imap_seqrange *raw; /* as parsed ("*" unresolved) */
    size_t raw_n;
};

/* The argument a key takes. */
enum arg { A_NONE, A_STRING, A_HEADER, A_DATE, A_NUMBER, A_KEYWORD, A_SET, A_NOT, A_OR, A_MODSEQ };

static const struct keydef {
    const char *name;
    unsigned char key, arg, neg;
    char flag;
    const char *field; /* K_TEXT: the header field, or NULL for BODY/TEXT */
    unsigned char where;
} keydefs[] = {
    {"ALL", K_ALL, A_NONE, 0, 0, NULL, 0},
    {"ANSWERED", K_FLAG, A_NONE, 0, 'R', NULL, 0},
    {"BCC", K_TEXT, A_STRING, 0, 0, "bcc", NEEDLE_FIELD},
    {"BEFORE", K_BEFORE, A_DATE, 0, 0, NULL, 0},
    {"BODY", K_TEXT, A_STRING, 0, 0, NULL, NEEDLE_BODY},
    {"CC", K_TEXT, A_STRING, 0, 0, "cc", NEEDLE_FIELD},
    {"DELETED", K_FLAG, A_NONE, 0, 'T', NULL, 0},
    {"DRAFT", K_FLAG, A_NONE, 0, 'D', NULL, 0},
    {"FLAGGED", K_FLAG, A_NONE, 0, 'F', NULL, 0},
    {"FROM", K_TEXT, A_STRING, 0, 0, "from", NEEDLE_FIELD},
    {"HEADER", K_TEXT, A_HEADER, 0, 0, NULL, NEEDLE_FIELD},
    {"KEYWORD", K_KEYWORD, A_KEYWORD, 0, 0, NULL, 0},
    {"LARGER", K_LARGER, A_NUMBER, 0, 0, NULL, 0},
    {"MODSEQ", K_MODSEQ, A_MODSEQ, 0, 0, NULL, 0},
    {"NEW", K_NEW, A_NONE, 0, 0, NULL, 0},
    {"NOT", K_NOT, A_NOT, 0, 0, NULL, 0},
    {"OLD", K_RECENT, A_NONE, 1, 0, NULL, 0},
    {"ON", K_ON, A_DATE, 0, 0, NULL, 0},
    {"OR", K_OR, A_OR, 0, 0, NULL, 0},
    {"RECENT", K_RECENT, A_NONE, 0, 0, NULL, 0},
    {"SEEN", K_FLAG, A_NONE, 0, 'S', NULL, 0},
    {"SENTBEFORE", K_SENTBEFORE, A_DATE, 0, 0, NULL, 0},
    {"SENTON", K_SENTON, A_DATE, 0, 0, NULL, 0},
    {"SENTSINCE", K_SENTSINCE, A_DATE, 0, 0, NULL, 0},
    {"SINCE", K_SINCE, A_DATE, 0, 0, NULL, 0},
    {"SMALLER", K_SMALLER, A_NUMBER, 0, 0, NULL, 0},
    {"SUBJECT", K_TEXT, A_STRING, 0, 0, "subject", NEEDLE_FIELD},
    {"TEXT", K_TEXT, A_STRING, 0, 0, NULL, NEEDLE_TEXT},
    {"TO", K_TEXT, A_STRING, 0, 0, "to", NEEDLE_FIELD},
    {"UID", K_UID, A_SET, 0, 0, NULL, 0},
    {"UNANSWERED", K_FLAG, A_NONE, 1, 'R', NULL, 0},
    {"UNDELETED", K_FLAG, A_NONE, 1, 'T', NULL, 0},
    {"UNDRAFT", K_FLAG, A_NONE, 1, 'D', NULL, 0},
    {"UNFLAGGED", K_FLAG, A_NONE, 1, 'F', NULL, 0},
    {"UNKEYWORD", K_KEYWORD, A_KEYWORD, 1, 0, NULL, 0},
    {"UNSEEN", K_FLAG, A_NONE, 1, 'S', NULL, 0},
};

struct parser {
    struct imaptok *t;
    struct imapsearch *q;
    char *err;
    size_t errlen;
    char buf[IMAPSEARCH_MAX_STRING + 1];
};

/* The BAD text: what, then arg (a key's name) when there is one. -1. */
static int bad(struct parser *p, const char *what, const char *arg)
{
    if (p->errlen > 0)
        snprintf(p->err, p->errlen, "%s%s", what, arg ? arg : "");
    return -1;
}

/* A new node; -1 (BAD) past IMAPSEARCH_MAX_KEYS. */
static int new_node(struct parser *p, unsigned char key)
{
    struct imapsearch *q = p->q;
    if (q->n_nodes >= IMAPSEARCH_MAX_KEYS + 1)
        return bad(p, "too many search keys", NULL);
    int i = (int)q->n_nodes++;
    struct imapsearch_node *n = &q->nodes[i];
    memset(n, 0, sizeof *n);
    n->key = key;
    n->a = n->b = n->next = n->needle = -1;
    return i;
}

static int parse_key(struct parser *p, int depth);

/* key *(SP key) up to ')' (in_paren) or the end, as children of a new K_AND node. */
static int parse_list(struct parser *p, int depth, int in_paren)
{
    int list = new_node(p, K_AND), last = -1;
    if (list < 0)
        return -1;
    for (;;) {
        int k = parse_key(p, depth);
        if (k < 0)
            return k;
        if (last < 0)
            p->q->nodes[list].a = k;
        else
            p->q->nodes[last].next = k;
        last = k;
        if (in_paren && imaptok_char(p->t, ')') == 0)
            return list;
        if (!in_paren && imaptok_at_end(p->t))
            return list;
        if (imaptok_space(p->t) != 0)
            return bad(p, in_paren ? "missing ) in search keys" : "junk after search keys", NULL);
    }
}

static int parse_string(struct parser *p, const char *what, size_t *len)
{
    int rc;
    if (imaptok_space(p->t) != 0 || (rc = imaptok_astring(p->t, p->buf, sizeof p->buf, len)) == -1)
        return bad(p, "missing or bad string after ", what);
    if (rc != 0)
        return bad(p, "search string too long after ", what);
    return 0;
}

static int add_needle(struct parser *p, int node, unsigned char where, const char *field,
                      size_t flen, size_t len)
{
    struct imapsearch *q = p->q;
    struct imapsearch_needle *nd = &q->needles[q->n_needles];
    memset(nd, 0, sizeof *nd);
    nd->where = where;
    if (field != NULL) {
        if ((nd->field = malloc(flen + 1)) == NULL)
            return IMAPSEARCH_NOMEM;
        for (size_t i = 0; i < flen; i++)
            nd->field[i] = (char)imapsearch_fold(0, (unsigned char)field[i]);
        nd->field[flen] = '\0';
    }
    q->n_needles++; /* counted now so that imapsearch_free frees it */
    if (imapsearch_needle_init(nd, p->buf, len) != 0)
        return IMAPSEARCH_NOMEM;
    q->nodes[node].needle = (int)(q->n_needles - 1);
    if (where != NEEDLE_BODY)
        q->reads_header = 1;
    if (where != NEEDLE_FIELD)
        q->reads_body = 1;
    return 0;
}

static int parse_text(struct parser *p, const struct keydef *d, int node)
{
    size_t len, flen = 0;
    char field[256];
    const char *f = d->field;
    if (f != NULL)
        flen = strlen(f);
    if (d->arg == A_HEADER) {
        if (parse_string(p, "HEADER", &flen) != 0)
            return -1;
        if (flen >= sizeof field || memchr(p->buf, ':', flen) != NULL)
            return bad(p, "bad header field name", NULL);
        memcpy(field, p->buf, flen + 1);
        f = field;
    }
    if (parse_string(p, d->name, &len) != 0)
        return -1;
    return add_needle(p, node, d->where, f, flen, len);
}

static int parse_set(struct parser *p, int node)
{
    struct imapsearch_node *n = &p->q->nodes[node];
    if (imaptok_char(p->t, '$') == 0) {
        n->key = K_SAVED;
        p->q->uses_saved = 1;
        return 0;
    }
    int rc = imaptok_seqset(p->t, &n->set);
    if (rc == -3)
        return IMAPSEARCH_NOMEM;
    if (rc != 0)
        return bad(p, "bad sequence set", NULL);
    n->raw_n = n->set.n;
    if ((n->raw = malloc(n->raw_n * sizeof *n->raw)) == NULL)
        return IMAPSEARCH_NOMEM;
    memcpy(n->raw, n->set.r, n->raw_n * sizeof *n->raw);
    return 0;
}

static long floor_days(time_t t)
{
    return (long)(t >= 0 ? t / 86400 : -((-t + 86399) / 86400));
}

/* MODSEQ's argument (RFC 7162): [entry-name SP entry-type-req SP] mod-sequence-valzer, the
 * entry a quoted "/flags/<flag>" and its type priv, shared or all. */
static int parse_modseq(struct parser *p, struct imapsearch_node *n)
{
    size_t len;
    p->q->uses_modseq = 1;
    if (imaptok_space(p->t) != 0)
        return bad(p, "missing mod-sequence after MODSEQ", NULL);
    if (imaptok_peek(p->t) == '"') {
        if (imaptok_string(p->t, p->buf, sizeof p->buf, &len) != 0 ||
            strncasecmp(p->buf, "/flags/", 7) != 0 || len == 7 || imaptok_space(p->t) != 0 ||
            (imaptok_word(p->t, "priv") != 0 && imaptok_word(p->t, "shared") != 0 &&
             imaptok_word(p->t, "all") != 0) ||
            imaptok_space(p->t) != 0)
            return bad(p, "bad entry name or type after MODSEQ", NULL);
    }
    if (imaptok_number64(p->t, &n->num) != 0)
        return bad(p, "bad mod-sequence after MODSEQ (0 to 2^63-1)", NULL);
    return 0;
}

/* The argument of key d for node. */
static int parse_arg(struct parser *p, const struct keydef *d, int node, int depth)
{
    struct imapsearch_node *n = &p->q->nodes[node];
    time_t day;
    switch (d->arg) {
    case A_NONE:
        return 0;
    case A_STRING:
    case A_HEADER:
        return parse_text(p, d, node);
    case A_DATE:
        if (imaptok_space(p->t) != 0 || imaptok_date(p->t, &day) != 0)
            return bad(p, "missing or bad date after ", d->name);
        n->day = floor_days(day);
        if (d->key >= K_SENTBEFORE)
            p->q->reads_header = 1;
        else
            p->q->reads_date = 1;
        return 0;
    case A_NUMBER:
        if (imaptok_space(p->t) != 0 || imaptok_number64(p->t, &n->num) != 0)
            return bad(p, "missing or bad number after ", d->name);
        return 0;
    case A_KEYWORD: {
        const char *s;
        size_t len;
        if (imaptok_space(p->t) != 0 || imaptok_atom(p->t, &s, &len) != 0)
            return bad(p, "missing or bad keyword after ", d->name);
        if ((n->kw = malloc(len + 1)) == NULL)
            return IMAPSEARCH_NOMEM;
        memcpy(n->kw, s, len);
        n->kw[len] = '\0';
        n->kw_len = len;
        return 0;
    }
    case A_SET:
        if (imaptok_space(p->t) != 0)
            return bad(p, "missing sequence set after UID", NULL);
        return parse_set(p, node);
    case A_MODSEQ:
        return parse_modseq(p, n);
    case A_NOT:
    case A_OR: {
        int a, b;
        if (imaptok_space(p->t) != 0)
            return bad(p, "missing search key after ", d->name);
        if ((a = parse_key(p, depth + 1)) < 0)
            return a;
        p->q->nodes[node].a = a;
        if (d->arg == A_NOT)
            return 0;
        if (imaptok_space(p->t) != 0)
            return bad(p, "missing second search key after OR", NULL);
        if ((b = parse_key(p, depth + 1)) < 0)
            return b;
        p->q->nodes[node].b = b;
        return 0;
    }
    }
    return -1;
}

static int parse_key(struct parser *p, int depth)
{
    const char *s;
    size_t len;
    if (depth >= IMAPSEARCH_MAX_DEPTH)
        return bad(p, "search keys nested too deep", NULL);
    int c = imaptok_peek(p->t);
    if (c == '(') {
        p->t->p++;
        return parse_list(p, depth + 1, 1);
    }
    if ((c >= '0' && c <= '9') || c == '*' || c == '$') {
        int node = new_node(p, K_SEQ), rc;
        if (node < 0)
            return node;
        return (rc = parse_set(p, node)) != 0 ? rc : node;
    }
    if (imaptok_atom(p->t, &s, &len) != 0)
        return bad(p, c < 0 ? "missing search key" : "bad search key", NULL);
    for (size_t i = 0; i < sizeof keydefs / sizeof keydefs[0]; i++) {
        const struct keydef *d = &keydefs[i];
        if (strlen(d->name) != len || strncasecmp(d->name, s, len) != 0)
            continue;
        int node = new_node(p, d->key), rc;
        if (node < 0)
            return node;
        p->q->nodes[node].neg = d->neg;
        p->q->nodes[node].flag = d->flag;
        return (rc = parse_arg(p, d, node, depth)) != 0 ? rc : node;
    }
    char name[40];
    snprintf(name, sizeof name, "%.*s", (int)(len < 32 ? len : 32), s);
    return bad(p, "unknown search key ", name);
}

static const struct {
    const char *name;
    unsigned bit;
} retopts[] = {{"MIN", IMAPSEARCH_RET_MIN},
               {"MAX", IMAPSEARCH_RET_MAX},
               {"ALL", IMAPSEARCH_RET_ALL},
               {"COUNT", IMAPSEARCH_RET_COUNT},
               {"SAVE", IMAPSEARCH_RET_SAVE}};

/* "RETURN (" [option *(SP option)] ")" SP, when there. */
static int parse_return(struct parser *p)
{
    if (imaptok_word(p->t, "RETURN") != 0)
        return 0;
    if (imaptok_space(p->t) != 0 || imaptok_char(p->t, '(') != 0)
        return bad(p, "missing ( after RETURN", NULL);
    p->q->has_return = 1;
    while (imaptok_char(p->t, ')') != 0) {
        size_t k, n = sizeof retopts / sizeof retopts[0];
        if (p->q->ret != 0 && imaptok_space(p->t) != 0)
            return bad(p, "bad RETURN options", NULL);
        for (k = 0; k < n && imaptok_word(p->t, retopts[k].name) != 0; k++)
            ;
        if (k == n)
            return bad(p, "unknown RETURN option", NULL);
        p->q->ret |= retopts[k].bit;
    }
    if (p->q->ret == 0)
        p->q->ret = IMAPSEARCH_RET_ALL; /* RFC 4731 §3.1: "RETURN ()" */
    if (imaptok_space(p->t) != 0)
        return bad(p, "missing search keys after RETURN", NULL);
    return 0;
}

/* "CHARSET" SP astring SP, when there. */
static int parse_charset(struct parser *p)
{
    char cs[64];
    size_t len;
    if (imaptok_word(p->t, "CHARSET") != 0)
        return 0;
    if (imaptok_space(p->t) != 0 || imaptok_astring(p->t, cs, sizeof cs, &len) == -1)
        return bad(p, "missing charset after CHARSET", NULL);
    if (strcasecmp(cs, "US-ASCII") != 0 && strcasecmp(cs, "UTF-8") != 0)
        return IMAPSEARCH_BADCHARSET; /* a charset too long for cs is none of these either */
    if (imaptok_space(p->t) != 0)
        return bad(p, "missing search keys after CHARSET", NULL);
    return 0;
}

int imapsearch_parse(struct imaptok *t, struct imapsearch *q, char *err, size_t errlen)
{
    struct parser *p = malloc(sizeof *p);
    int rc;
    memset(q, 0, sizeof *q);
    if (errlen > 0)
        err[0] = '\0';
    q->nodes = calloc(IMAPSEARCH_MAX_KEYS + 1, sizeof *q->nodes);
    q->needles = calloc(IMAPSEARCH_MAX_KEYS, sizeof *q->needles);
    if (p == NULL || q->nodes == NULL || q->needles == NULL) {
        free(p);
        imapsearch_free(q);
        return IMAPSEARCH_NOMEM;
    }
    *p = (struct parser){.t = t, .q = q, .err = err, .errlen = errlen};
    if ((rc = parse_return(p)) == 0 && (rc = parse_charset(p)) == 0) {
        if (imaptok_at_end(t))
            rc = bad(p, "missing search key", NULL);
        else if ((rc = parse_list(p, 0, 0)) >= 0)
            q->root = rc, rc = 0;
    }
    free(p);
    if (rc != 0) {
        unsigned ret = q->ret;
        imapsearch_free(q);
        if (rc == IMAPSEARCH_BADCHARSET)
            q->ret = ret; /* a NO: SAVE empties "$" (RFC 5182 §2.1) */
    }
    return rc;
}

void imapsearch_free(struct imapsearch *q)
{
    for (size_t i = 0; q->nodes != NULL && i < q->n_nodes; i++) {
        free(q->nodes[i].kw);
        free(q->nodes[i].raw);
        imap_seqset_free(&q->nodes[i].set);
    }
    for (size_t i = 0; q->needles != NULL && i < q->n_needles; i++) {
        free(q->needles[i].field);
        free(q->needles[i].pat);
        free(q->needles[i].fail);
    }
    free(q->nodes);
    free(q->needles);
    imapsearch_scan_free(q);
    memset(q, 0, sizeof *q);
}

/* ---- evaluation ---- */

/* The sets' "*" resolved against this folder's largest numbers (again when they changed). */
static void resolve_sets(struct imapsearch *q, const struct imapsearch_msg *m)
{
    if (q->resolved && q->resolved_seq == m->max_seq && q->resolved_uid == m->max_uid)
        return;
    for (size_t i = 0; i < q->n_nodes; i++) {
        struct imapsearch_node *n = &q->nodes[i];
        if (n->raw == NULL)
            continue;
        memcpy(n->set.r, n->raw, n->raw_n * sizeof *n->raw);
        n->set.n = n->raw_n;
        imap_seqset_resolve(&n->set, n->key == K_UID ? m->max_uid : m->max_seq);
    }
    q->resolved_seq = m->max_seq;
    q->resolved_uid = m->max_uid;
    q->resolved = 1;
}

/* The day of INTERNALDATE in the local zone. */
static long internal_day(time_t t)
{
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL)
        return floor_days(t);
    return imapsearch_days(tm.tm_year + 1900L, tm.tm_mon + 1, tm.tm_mday);
}

static int has_flag(const char *flags, char c)
{
    return flags != NULL && strchr(flags, c) != NULL;
}

/* One message's evaluation: the message, its lazily opened file, what the scan found. */
struct eval {
    struct imapsearch *q;
    const struct imapsearch_msg *m;
    int fd, opened, gone;
    struct imapsearch_found *f;
    long iday;
    int have_iday;
};

#define UNKNOWN 2 /* a key that needs the file, asked without io */

/* Makes the scan that needs be done (header, or body too). 0, or -1. */
static int need_scan(struct eval *e, int body)
{
    if (e->f == NULL && (e->f = imapsearch_found_reset(e->q)) == NULL)
        return -1;
    if (e->f->header_done && (!body || e->f->body_done))
        return 0;
    if (e->gone)
        return 0;
    if (e->fd < 0) {
        if (e->opened || e->m->open == NULL) {
            e->gone = 1;
            return 0;
        }
        e->opened = 1;
        e->fd = e->m->open(e->m->open_arg);
        if (e->fd < 0) {
            if (errno != ENOENT)
                return -1;
            e->gone = 1;
            return 0;
        }
    }
    return imapsearch_scan(e->q, e->fd, body, e->f);
}

static int eval_text(struct eval *e, const struct imapsearch_node *n, int io)
{
    const struct imapsearch_needle *nd = &e->q->needles[n->needle];
    int body = nd->where != NEEDLE_FIELD;
    if (e->f != NULL && e->f->header_done && e->f->found[n->needle])
        return 1;
    if (e->gone || (e->f != NULL && e->f->header_done && (!body || e->f->body_done)))
        return e->gone ? 0 : e->f->found[n->needle];
    if (!io)
        return UNKNOWN;
    if (need_scan(e, 0) != 0)
        return -1;
    if (!e->gone && !e->f->found[n->needle] && body && need_scan(e, 1) != 0)
        return -1;
    return e->gone ? 0 : e->f->found[n->needle];
}

static int eval_sent(struct eval *e, const struct imapsearch_node *n, int io)
{
    if (e->f == NULL || !e->f->header_done) {
        if (!io && !e->gone)
            return UNKNOWN;
        if (need_scan(e, 0) != 0)
            return -1;
    }
    if (e->gone || !e->f->has_date)
        return 0;
    long d = e->f->sent_day;
    return n->key == K_SENTBEFORE ? d < n->day : n->key == K_SENTON ? d == n->day : d >= n->day;
}

static int eval_node(struct eval *e, int i, int io);

static int eval_and(struct eval *e, const struct imapsearch_node *n, int io)
{
    int r = 1;
    for (int c = n->a; c >= 0; c = e->q->nodes[c].next) {
        int v = eval_node(e, c, 0);
        if (v == 0 || v < 0)
            return v;
        if (v == UNKNOWN)
            r = UNKNOWN;
    }
    if (r != UNKNOWN || !io)
        return r;
    for (int c = n->a; c >= 0; c = e->q->nodes[c].next) {
        int v = eval_node(e, c, 1);
        if (v != 1)
            return v;
    }
    return 1;
}

static int eval_or(struct eval *e, const struct imapsearch_node *n, int io)
{
    int a = eval_node(e, n->a, 0), b;
    if (a == 1 || a < 0)
        return a;
    b = eval_node(e, n->b, 0);
    if (b == 1 || b < 0)
        return b;
    if (a == 0 && b == 0)
        return 0;
    if (!io)
        return UNKNOWN;
    if (a == UNKNOWN && (a = eval_node(e, n->a, 1)) != 0)
        return a;
    return b == UNKNOWN ? eval_node(e, n->b, 1) : b;
}

static int eval_date(struct eval *e, const struct imapsearch_node *n)
{
    if (!e->have_iday) {
        e->iday = internal_day(e->m->internaldate);
        e->have_iday = 1;
    }
    return n->key == K_BEFORE ? e->iday < n->day
           : n->key == K_ON   ? e->iday == n->day
                              : e->iday >= n->day;
}

/* 1, 0, -1 (error), or UNKNOWN when the answer needs the file and io is 0. */
static int eval_node(struct eval *e, int i, int io)
{
    const struct imapsearch_node *n = &e->q->nodes[i];
    const struct imapsearch_msg *m = e->m;
    int v;
    switch (n->key) {
    case K_AND:
        return eval_and(e, n, io);
    case K_OR:
        return eval_or(e, n, io);
    case K_NOT:
        v = eval_node(e, n->a, io);
        return v == 0 || v == 1 ? !v : v;
    case K_ALL:
        return 1;
    case K_RECENT:
        return (m->recent != 0) != n->neg;
    case K_NEW:
        return m->recent != 0 && !has_flag(m->flags, 'S');
    case K_FLAG:
        return has_flag(m->flags, n->flag) != n->neg;
    case K_KEYWORD:
        v = m->has_keyword != NULL && m->has_keyword(m->kw_arg, n->kw, n->kw_len) == 1;
        return v != n->neg;
    case K_LARGER:
        return m->size > n->num;
    case K_SMALLER:
        return m->size < n->num;
    case K_BEFORE:
    case K_ON:
    case K_SINCE:
        return eval_date(e, n);
    case K_SENTBEFORE:
    case K_SENTON:
    case K_SENTSINCE:
        return eval_sent(e, n, io);
    case K_SEQ:
        return imap_seqset_contains(&n->set, m->seq);
    case K_UID:
        return imap_seqset_contains(&n->set, m->uid);
    case K_SAVED:
        return m->saved != NULL && imap_seqset_contains(m->saved, m->uid);
    case K_MODSEQ:
        return m->modseq >= n->num;
    case K_TEXT:
        return eval_text(e, n, io);
    }
    return 0;
}

int imapsearch_match(struct imapsearch *q, const struct imapsearch_msg *m)
{
    struct eval e = {.q = q, .m = m, .fd = m->fd};
    resolve_sets(q, m);
    int v = eval_node(&e, q->root, 1);
    if (e.opened && e.fd >= 0) {
        int saved = errno;
        close(e.fd);
        errno = saved;
    }
    return v;
}

/* ---- the answer ---- */

int imapsearch_hits_add(struct imapsearch_hits *h, uint32_t seq, uint32_t uid)
{
    if (h->n == h->cap) {
        size_t cap = h->cap ? h->cap * 2 : 64;
        uint32_t *s = realloc(h->seq, cap * sizeof *s);
        if (s == NULL)
            return -1;
        h->seq = s;
        uint32_t *u = realloc(h->uid, cap * sizeof *u);
        if (u == NULL)
            return -1;
        h->uid = u;
        h->cap = cap;
    }
    h->seq[h->n] = seq;
    h->uid[h->n] = uid;
    h->n++;
    return 0;
}

void imapsearch_hits_modseq(struct imapsearch_hits *h, uint64_t modseq)
{
    if (h->n == 1)
        h->modseq_first = modseq;
    h->modseq_last = modseq;
    if (modseq > h->modseq_max)
        h->modseq_max = modseq;
}

void imapsearch_hits_free(struct imapsearch_hits *h)
{
    free(h->seq);
    free(h->uid);
    memset(h, 0, sizeof *h);
}

/* A small output buffer in front of the writer. */
struct out {
    imapsearch_writer w;
    void *arg;
    char buf[4096];
    size_t len;
    int failed;
};

static void out_flush(struct out *o)
{
    if (o->len > 0 && !o->failed && o->w(o->arg, o->buf, o->len) != 0)
        o->failed = 1;
    o->len = 0;
}

static void out_str(struct out *o, const char *s)
{
    size_t n = strlen(s);
    if (o->len + n > sizeof o->buf)
        out_flush(o);
    if (n > sizeof o->buf) {
        if (!o->failed && o->w(o->arg, s, n) != 0)
            o->failed = 1;
        return;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
}

static void out_num(struct out *o, const char *before, uint32_t n)
{
    char b[16];
    snprintf(b, sizeof b, "%u", (unsigned)n);
    out_str(o, before);
    out_str(o, b);
}

/* The numbers as a compact sequence set: runs of consecutive numbers as "a:b". */
static void out_set(struct out *o, const uint32_t *v, size_t n)
{
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j + 1 < n && v[j + 1] == v[j] + 1)
            j++;
        out_num(o, i > 0 ? "," : "", v[i]);
        if (j > i)
            out_num(o, ":", v[j]);
        i = j + 1;
    }
}

int imapsearch_set(const uint32_t *v, size_t n, imapsearch_writer w, void *arg)
{
    struct out o = {.w = w, .arg = arg};
    out_set(&o, v, n);
    out_flush(&o);
    return o.failed ? -1 : 0;
}

/* The MODSEQ an answer reports (RFC 7162 §3.1.5): the highest of the messages it shows. */
static uint64_t reported_modseq(const struct imapsearch_hits *h, unsigned ret, int esearch)
{
    if (esearch && !(ret & (IMAPSEARCH_RET_ALL | IMAPSEARCH_RET_COUNT))) {
        uint64_t a = ret & IMAPSEARCH_RET_MIN ? h->modseq_first : 0;
        uint64_t b = ret & IMAPSEARCH_RET_MAX ? h->modseq_last : 0;
        return a > b ? a : b;
    }
    return h->modseq_max;
}

static void out_modseq(struct out *o, const char *before, uint64_t v, const char *after)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    out_str(o, before);
    out_str(o, b);
    out_str(o, after);
}

int imapsearch_result(const struct imapsearch *q, const struct imapsearch_hits *h, int uid,
                      int rev2, const char *tag, imapsearch_writer w, void *arg)
{
    int modseq = q->uses_modseq && h->n > 0;
    struct out o = {.w = w, .arg = arg};
    const uint32_t *v = uid ? h->uid : h->seq;
    unsigned ret = q->has_return ? q->ret : IMAPSEARCH_RET_ALL;
    if (!q->has_return && !rev2) {
        out_str(&o, "* SEARCH");
        for (size_t i = 0; i < h->n; i++)
            out_num(&o, " ", v[i]);
        if (modseq)
            out_modseq(&o, " (MODSEQ ", reported_modseq(h, ret, 0), ")");
    } else {
        if (ret == IMAPSEARCH_RET_SAVE)
            return 0;
        out_str(&o, "* ESEARCH (TAG \"");
        out_str(&o, tag);
        out_str(&o, "\")");
        if (uid)
            out_str(&o, " UID");
        if ((ret & IMAPSEARCH_RET_MIN) && h->n > 0)
            out_num(&o, " MIN ", v[0]);
        if ((ret & IMAPSEARCH_RET_MAX) && h->n > 0)
            out_num(&o, " MAX ", v[h->n - 1]);
        if (ret & IMAPSEARCH_RET_COUNT)
            out_num(&o, " COUNT ", (uint32_t)h->n);
        if ((ret & IMAPSEARCH_RET_ALL) && h->n > 0) {
            out_str(&o, " ALL ");
            out_set(&o, v, h->n);
        }
        if (modseq && (ret & ~IMAPSEARCH_RET_SAVE) != 0)
            out_modseq(&o, " MODSEQ ", reported_modseq(h, ret, 1), "");
    }
    out_str(&o, "\r\n");
    out_flush(&o);
    return o.failed ? -1 : 0;
}

int imapsearch_save(const struct imapsearch *q, const struct imapsearch_hits *h,
                    struct imap_seqset *out)
{
    unsigned r = q->ret & (IMAPSEARCH_RET_MIN | IMAPSEARCH_RET_MAX | IMAPSEARCH_RET_ALL |
                           IMAPSEARCH_RET_COUNT);
    int only_ends = r != 0 && (r & (IMAPSEARCH_RET_ALL | IMAPSEARCH_RET_COUNT)) == 0;
    size_t n = 0;
    memset(out, 0, sizeof *out);
    out->resolved = 1;
    if (h->n == 0)
        return 0;
    if ((out->r = malloc((only_ends ? 2 : h->n) * sizeof *out->r)) == NULL)
        return -1;
    if (only_ends) {
        if (r & IMAPSEARCH_RET_MIN)
            out->r[n++] = (struct imap_seqrange){h->uid[0], h->uid[0]};
        if ((r & IMAPSEARCH_RET_MAX) && (n == 0 || h->n > 1))
            out->r[n++] = (struct imap_seqrange){h->uid[h->n - 1], h->uid[h->n - 1]};
    } else {
        for (size_t i = 0; i < h->n; i++) {
            if (n > 0 && h->uid[i] == out->r[n - 1].hi + (uint64_t)1)
                out->r[n - 1].hi = h->uid[i];
            else
                out->r[n++] = (struct imap_seqrange){h->uid[i], h->uid[i]};
        }
    }
    out->n = n;
    struct imap_seqrange *fit = realloc(out->r, n * sizeof *out->r); /* n > 0 */
    if (fit != NULL)
        out->r = fit;
    return 0;
}
