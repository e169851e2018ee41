/*
 * lib/mime-render.c: the IMAP renderings of a lib/mime tree (BODYSTRUCTURE, BODY, ENVELOPE
 * with RFC 5322 address lists and groups), the syntax of the MIME fields they need (content
 * type, RFC 2045 parameters joined as RFC 2231 says, disposition, language), and the
 * HEADER.FIELDS filter.
 *
 * It must never write outside its fixed buffers (every value is bounded by MIME_MAX_FIELD),
 * never emit a string IMAP cannot read (a value that is not safe as a quoted string goes out
 * as a literal), and never decode RFC 2047 words: IMAP returns header values raw.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mime-int.h"
#include "mime.h"

/* ---- output ---- */

struct out {
    mime_writer w;
    void *arg;
    int err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (!o->err && n > 0 && o->w(o->arg, s, n) != 0)
        o->err = 1;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* A quoted string when every octet is 7-bit and printable enough, else a literal. */
static void put_string(struct out *o, const char *s, size_t n)
{
    int quoted = n <= 1024;
    for (size_t i = 0; quoted && i < n; i++)
        if ((unsigned char)s[i] >= 0x80 || s[i] == '\r' || s[i] == '\n' || s[i] == '\0')
            quoted = 0;
    if (!quoted) {
        char head[32];
        snprintf(head, sizeof head, "{%zu}\r\n", n);
        puts_(o, head);
        put(o, s, n);
        return;
    }
    put(o, "\"", 1);
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') {
            put(o, s + from, i - from);
            put(o, "\\", 1);
            from = i;
        }
    }
    put(o, s + from, n - from);
    put(o, "\"", 1);
}

static void put_nstring(struct out *o, const char *s)
{
    if (s == NULL)
        puts_(o, "NIL");
    else
        put_string(o, s, strlen(s));
}

static void put_u64(struct out *o, uint64_t v)
{
    char b[24];
    snprintf(b, sizeof b, "%llu", (unsigned long long)v);
    puts_(o, b);
}

int mime_buf_write(void *arg, const void *data, size_t len)
{
    struct mime_buf *b = arg;
    if (b->cap == 0 || len > b->cap - 1 - b->len) {
        b->overflow = 1;
        return -1;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0';
    return 0;
}

/* ---- RFC 2045 / 5322 lexical pieces ---- */

static void skip_cfws(const char **s)
{
    for (;;) {
        while (**s == ' ' || **s == '\t')
            (*s)++;
        if (**s != '(')
            return;
        int depth = 0;
        do {
            if (**s == '\\' && (*s)[1])
                (*s)++;
            else if (**s == '(')
                depth++;
            else if (**s == ')')
                depth--;
            (*s)++;
        } while (**s && depth > 0);
    }
}

static int tspecial(char c)
{
    return c <= ' ' || c == 0x7f || strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

static size_t token(const char **s)
{
    const char *b = *s;
    while (**s && !tspecial(**s))
        (*s)++;
    return (size_t)(*s - b);
}

int mime_parse_ctype(const char *v, struct mime_ctype *c)
{
    skip_cfws(&v);
    c->type = v;
    c->type_len = token(&v);
    skip_cfws(&v);
    if (c->type_len == 0 || *v != '/')
        return -1;
    v++;
    skip_cfws(&v);
    c->subtype = v;
    c->subtype_len = token(&v);
    return c->subtype_len > 0 ? 0 : -1;
}

int mime_is(const struct mime_tree *t, int i, const char *type, const char *subtype)
{
    const struct mime_part *p = &t->parts[i];
    const char *ty = p->type ? mime_str(t, p->type) : "text";
    const char *st = p->subtype ? mime_str(t, p->subtype) : "plain";
    return strcasecmp(ty, type) == 0 && (subtype == NULL || strcasecmp(st, subtype) == 0);
}

/* ---- parameters ---- */

struct param {
    const char *name, *value;
    size_t name_len, value_len;
};
struct params {
    size_t n, used;
    struct param p[MIME_MAX_PARAMS];
    char buf[3 * MIME_MAX_FIELD + 16];
};

static char *params_room(struct params *ps, size_t n)
{
    if (n > sizeof ps->buf - ps->used)
        return NULL;
    char *r = ps->buf + ps->used;
    ps->used += n;
    return r;
}

/* One value at *s: a quoted string (unescaped) or up to the next ';' (trimmed). */
static int read_value(const char **s, struct params *ps, struct param *p)
{
    const char *v = *s;
    char *dst = ps->buf + ps->used;
    size_t n = 0, room = sizeof ps->buf - ps->used;
    if (*v == '"') {
        for (v++; *v && *v != '"'; v++) {
            if (*v == '\\' && v[1])
                v++;
            if (n < room)
                dst[n++] = *v;
        }
        if (*v == '"')
            v++;
    } else {
        const char *e = v;
        while (*e && *e != ';')
            e++;
        *s = e;
        while (e > v && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        n = (size_t)(e - v) < room ? (size_t)(e - v) : room;
        memcpy(dst, v, n);
        v = *s;
    }
    *s = v;
    p->value = dst;
    p->value_len = n;
    ps->used += n;
    return 0;
}

/* The raw parameters after the first ';' of s. */
static void params_parse(const char *s, struct params *ps)
{
    ps->n = ps->used = 0;
    s = strchr(s, ';');
    while (s && *s == ';' && ps->n < MIME_MAX_PARAMS) {
        s++;
        skip_cfws(&s);
        const char *name = s;
        size_t nl = token(&s);
        skip_cfws(&s);
        if (nl > 0 && *s == '=') {
            s++;
            skip_cfws(&s);
            struct param *p = &ps->p[ps->n];
            p->name = name;
            p->name_len = nl;
            read_value(&s, ps, p);
            ps->n++;
        }
        s = strchr(s, ';');
    }
}

/* RFC 2231 name*N[*]: the base length, the segment number (-1: none) and whether extended. */
static size_t split_name(const struct param *p, long *seg, int *ext)
{
    const char *star = memchr(p->name, '*', p->name_len);
    *seg = -1;
    *ext = 0;
    if (star == NULL)
        return p->name_len;
    const char *q = star + 1, *end = p->name + p->name_len;
    if (q < end && *q >= '0' && *q <= '9') {
        long n = 0;
        while (q < end && *q >= '0' && *q <= '9' && n < 100000)
            n = n * 10 + (*q++ - '0');
        *seg = n;
    }
    if (q < end && *q == '*') {
        *ext = 1;
        q++;
    }
    if (q != end) { /* not RFC 2231 after all */
        *seg = -1;
        *ext = 0;
        return p->name_len;
    }
    if (*seg < 0 && !*ext) /* "name*" alone is taken as extended */
        *ext = 1;
    return (size_t)(star - p->name);
}

static int attribute_char(unsigned char c)
{
    return c > ' ' && c < 0x7f && !strchr("*'%()<>@,;:\\\"/[]?=", c);
}

/* Appends segment (percent-encoding it unless it is extended already) to out. */
static size_t join_segment(char *out, size_t at, size_t cap, const struct param *p, int ext,
                           int encode)
{
    for (size_t k = 0; k < p->value_len; k++) {
        unsigned char c = (unsigned char)p->value[k];
        if (encode && !ext && !attribute_char(c)) {
            if (at + 3 > cap)
                return at;
            snprintf(out + at, 4, "%%%02X", c);
            at += 3;
        } else if (at < cap)
            out[at++] = (char)c;
    }
    return at;
}

/* Whether raw parameter b has the base name of length base of raw parameter a. */
static int same_base(const struct params *raw, size_t a, size_t base, size_t b, long *seg, int *ext)
{
    size_t l2 = split_name(&raw->p[b], seg, ext);
    return l2 == base && strncasecmp(raw->p[b].name, raw->p[a].name, base) == 0;
}

/* Joins the segments of parameter a (base name of length base) into o's value. */
static size_t join_segments(const struct params *raw, size_t a, size_t base, int any_ext, char *out,
                            size_t cap)
{
    size_t len = 0;
    long seg;
    int ext;
    for (size_t b = 0; b < raw->n; b++) /* "name*" alone */
        if (same_base(raw, a, base, b, &seg, &ext) && seg < 0 && ext)
            return join_segment(out, 0, cap, &raw->p[b], 1, 1);
    for (long want = 0; want < MIME_MAX_PARAMS; want++) {
        size_t b = 0;
        while (b < raw->n && !(same_base(raw, a, base, b, &seg, &ext) && seg == want))
            b++;
        if (b == raw->n)
            break;
        if (want == 0 && any_ext && !ext && cap >= 2) {
            memcpy(out, "''", 2);
            len = 2;
        }
        len = join_segment(out, len, cap, &raw->p[b], ext, any_ext);
    }
    return len;
}

/* The joined parameters: continuations in order, "name*" with charset'lang'value when one
 * segment was extended (as Dovecot renders them); a plain name=value when no segments. */
static void params_join(const struct params *raw, struct params *j)
{
    j->n = j->used = 0;
    for (size_t a = 0; a < raw->n && j->n < MIME_MAX_PARAMS; a++) {
        long seg;
        int ext;
        size_t base = split_name(&raw->p[a], &seg, &ext);
        int seen = 0, segs = 0, any_ext = 0, plain = -1;
        for (size_t b = 0; b < raw->n; b++) {
            long s2;
            int e2;
            if (!same_base(raw, a, base, b, &s2, &e2))
                continue;
            seen |= b < a;
            if (s2 >= 0 || e2)
                segs = 1, any_ext |= e2;
            else if (plain < 0)
                plain = (int)b;
        }
        if (seen)
            continue;
        char *name = params_room(j, base + 1);
        if (name == NULL)
            return;
        memcpy(name, raw->p[a].name, base);
        struct param *o = &j->p[j->n];
        o->name = name;
        o->name_len = base + (any_ext ? 1 : 0);
        if (any_ext)
            name[base] = '*';
        else
            j->used--;
        char *v = j->buf + j->used;
        size_t cap = sizeof j->buf - j->used;
        if (segs)
            o->value_len = join_segments(raw, a, base, any_ext, v, cap);
        else
            o->value_len = join_segment(v, 0, cap, &raw->p[plain], 0, 0);
        o->value = v;
        j->used += o->value_len;
        j->n++;
    }
}

size_t mime_param(const struct mime_tree *t, int i, enum mime_field f, const char *name, char *out,
                  size_t cap)
{
    const char *v = mime_field_value(t, i, f);
    if (v == NULL || cap == 0)
        return 0;
    struct params *raw = malloc(2 * sizeof *raw);
    if (raw == NULL)
        return 0;
    size_t n = 0;
    params_parse(v, raw);
    params_join(raw, raw + 1);
    for (size_t k = 0; k < raw[1].n; k++) {
        const struct param *p = &raw[1].p[k];
        if (p->name_len == strlen(name) && strncasecmp(p->name, name, p->name_len) == 0) {
            if (p->value_len < cap) {
                memcpy(out, p->value, p->value_len);
                out[p->value_len] = '\0';
                n = p->value_len;
            }
            break;
        }
    }
    free(raw);
    return n;
}

/* ( "name" "value" ... ) or NIL; with_charset: the default ("charset" "us-ascii"). */
static void put_params(struct out *o, const char *value, int with_charset)
{
    if (value == NULL) {
        puts_(o, with_charset ? "(\"charset\" \"us-ascii\")" : "NIL");
        return;
    }
    struct params *raw = malloc(2 * sizeof *raw);
    if (raw == NULL) {
        o->err = 1;
        return;
    }
    params_parse(value, raw);
    params_join(raw, raw + 1);
    if (raw[1].n == 0)
        puts_(o, with_charset ? "(\"charset\" \"us-ascii\")" : "NIL");
    for (size_t k = 0; k < raw[1].n; k++) {
        put(o, k ? " " : "(", 1);
        put_string(o, raw[1].p[k].name, raw[1].p[k].name_len);
        put(o, " ", 1);
        put_string(o, raw[1].p[k].value, raw[1].p[k].value_len);
    }
    if (raw[1].n > 0)
        put(o, ")", 1);
    free(raw);
}

/* ---- BODYSTRUCTURE ---- */

static void put_disposition(struct out *o, const char *v)
{
    const char *s = v;
    if (v != NULL)
        skip_cfws(&s);
    const char *tok = s;
    size_t n = v ? token(&s) : 0;
    if (n == 0) {
        puts_(o, "NIL");
        return;
    }
    put(o, "(", 1);
    put_string(o, tok, n);
    put(o, " ", 1);
    put_params(o, strchr(s, ';') ? s : NULL, 0);
    put(o, ")", 1);
}

static void put_language(struct out *o, const char *v)
{
    const char *s = v, *tok[MIME_MAX_PARAMS];
    size_t len[MIME_MAX_PARAMS], n = 0;
    while (s && *s && n < MIME_MAX_PARAMS) {
        skip_cfws(&s);
        const char *b = s;
        while (*s && *s != ',' && *s != ' ' && *s != '\t' && *s != '(')
            s++;
        if (s > b)
            tok[n] = b, len[n++] = (size_t)(s - b);
        else if (*s)
            s++;
    }
    if (n == 0) {
        puts_(o, "NIL");
    } else if (n == 1) {
        put_string(o, tok[0], len[0]);
    } else {
        for (size_t k = 0; k < n; k++) {
            put(o, k ? " " : "(", 1);
            put_string(o, tok[k], len[k]);
        }
        put(o, ")", 1);
    }
}

static void put_ext(struct out *o, const struct mime_tree *t, int i, int md5)
{
    if (md5) {
        put(o, " ", 1);
        put_nstring(o, mime_field_value(t, i, MIME_F_MD5));
    }
    put(o, " ", 1);
    put_disposition(o, mime_field_value(t, i, MIME_F_DISPOSITION));
    put(o, " ", 1);
    put_language(o, mime_field_value(t, i, MIME_F_LANGUAGE));
    put(o, " ", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_LOCATION));
}

static const char EMPTY_BODY[] =
    "(\"text\" \"plain\" (\"charset\" \"us-ascii\") NIL NIL \"7bit\" 0 0)";
static const char EMPTY_ENVELOPE[] = "(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)";

static void put_body(struct out *o, const struct mime_tree *t, int i, int ext);
static void put_envelope(struct out *o, const struct mime_tree *t, int i);

static void put_multipart(struct out *o, const struct mime_tree *t, int i, int ext)
{
    const struct mime_part *p = &t->parts[i];
    put(o, "(", 1);
    if (p->child < 0)
        puts_(o, EMPTY_BODY);
    for (int c = p->child; c >= 0 && !o->err; c = t->parts[c].next)
        put_body(o, t, c, ext);
    put(o, " ", 1);
    put_nstring(o, mime_str(t, p->subtype));
    if (ext) {
        put(o, " ", 1);
        put_params(o, mime_field_value(t, i, MIME_F_CONTENT_TYPE), 0);
        put_ext(o, t, i, 0);
    }
    put(o, ")", 1);
}

static void put_body(struct out *o, const struct mime_tree *t, int i, int ext)
{
    const struct mime_part *p = &t->parts[i];
    if (p->kind == MIME_MULTIPART) {
        put_multipart(o, t, i, ext);
        return;
    }
    put(o, "(", 1);
    put_nstring(o, p->type ? mime_str(t, p->type) : "text");
    put(o, " ", 1);
    put_nstring(o, p->subtype ? mime_str(t, p->subtype) : "plain");
    put(o, " ", 1);
    put_params(o, p->type ? mime_field_value(t, i, MIME_F_CONTENT_TYPE) : NULL, p->type == 0);
    put(o, " ", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_ID));
    put(o, " ", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_DESCRIPTION));
    put(o, " ", 1);
    const char *enc = mime_field_value(t, i, MIME_F_ENCODING);
    put_nstring(o, enc && *enc ? enc : "7bit");
    put(o, " ", 1);
    put_u64(o, p->body.crlf_len);
    if (p->kind == MIME_MESSAGE) {
        put(o, " ", 1);
        if (p->child >= 0) {
            put_envelope(o, t, p->child);
            put(o, " ", 1);
            put_body(o, t, p->child, ext);
        } else {
            puts_(o, EMPTY_ENVELOPE);
            put(o, " ", 1);
            puts_(o, EMPTY_BODY);
        }
    }
    if (p->kind == MIME_MESSAGE || mime_is(t, i, "text", NULL)) {
        put(o, " ", 1);
        put_u64(o, p->lines);
    }
    if (ext)
        put_ext(o, t, i, 1);
    put(o, ")", 1);
}

int mime_bodystructure(const struct mime_tree *t, int i, int extended, mime_writer w, void *arg)
{
    struct out o = {w, arg, 0};
    if (i < 0 || (size_t)i >= t->n)
        return errno = EINVAL, -1;
    put_body(&o, t, i, extended);
    return o.err ? -1 : 0;
}

/* ---- ENVELOPE and RFC 5322 addresses ---- */

struct text {
    char s[MIME_MAX_FIELD];
    size_t n;
};

static void text_add(struct text *b, const char *s, size_t n)
{
    if (n > sizeof b->s - 1 - b->n)
        n = sizeof b->s - 1 - b->n;
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

enum { T_END, T_WORD, T_QUOTED, T_SPECIAL };

struct lexer {
    const char *s;
    struct text tok, comment;
};

/* The next token of an address field; comments are kept in x->comment (the last one). */
static int lex(struct lexer *x)
{
    x->tok.n = 0;
    x->tok.s[0] = '\0';
    for (;;) {
        while (*x->s == ' ' || *x->s == '\t')
            x->s++;
        if (*x->s != '(')
            break;
        const char *b = ++x->s;
        int depth = 1;
        for (; *x->s && depth > 0; x->s++) {
            if (*x->s == '\\' && x->s[1])
                x->s++;
            else if (*x->s == '(')
                depth++;
            else if (*x->s == ')')
                depth--;
        }
        x->comment.n = 0;
        text_add(&x->comment, b, (size_t)(x->s - b) - (depth == 0));
    }
    char c = *x->s;
    if (c == '\0')
        return T_END;
    if (strchr("<>@,;:", c)) {
        x->s++;
        text_add(&x->tok, &c, 1);
        return T_SPECIAL;
    }
    if (c == '"') {
        for (x->s++; *x->s && *x->s != '"'; x->s++) {
            if (*x->s == '\\' && x->s[1])
                x->s++;
            text_add(&x->tok, x->s, 1);
        }
        if (*x->s == '"')
            x->s++;
        return T_QUOTED;
    }
    const char *b = x->s;
    if (c == '[') {
        while (*x->s && *x->s != ']')
            x->s++;
        if (*x->s == ']')
            x->s++;
    } else {
        while (*x->s && !strchr(" \t()<>@,;:\"[", *x->s))
            x->s++;
        if (x->s == b) /* a stray ')' is a word of its own: always move on */
            x->s++;
    }
    text_add(&x->tok, b, (size_t)(x->s - b));
    return T_WORD;
}

struct addr_out {
    struct out *o; /* NULL: only count */
    size_t n;
};

static void emit(struct addr_out *a, const char *name, const char *adl, const char *mbox,
                 const char *host)
{
    if (a->n++ >= MIME_MAX_ADDRESSES || a->o == NULL)
        return;
    struct out *o = a->o;
    put(o, "(", 1);
    put_nstring(o, name);
    put(o, " ", 1);
    put_nstring(o, adl);
    put(o, " ", 1);
    put_nstring(o, mbox);
    put(o, " ", 1);
    put_nstring(o, host);
    put(o, ")", 1);
}

/* The words up to '>', ',' or ';' joined into b (a local part or a domain). */
static int collect(struct lexer *x, struct text *b, const char *stop)
{
    int t;
    while ((t = lex(x)) != T_END) {
        if (t == T_SPECIAL && strchr(stop, x->tok.s[0]))
            return x->tok.s[0];
        if (t == T_QUOTED)
            text_add(b, "\"", 1);
        text_add(b, x->tok.s, x->tok.n);
        if (t == T_QUOTED)
            text_add(b, "\"", 1);
    }
    return 0;
}

/* < [@route,@route:] local@domain > after the '<'. */
static void angle_addr(struct lexer *x, struct addr_out *a, const char *name, struct text *w)
{
    struct text *adl = w, *local = w + 1, *domain = w + 2;
    adl->n = local->n = domain->n = 0;
    local->s[0] = domain->s[0] = '\0';
    const char *save = x->s;
    int t = lex(x);
    if (t == T_SPECIAL && x->tok.s[0] == '@') { /* a source route */
        text_add(adl, "@", 1);
        int end = collect(x, adl, ":>");
        if (end != ':')
            adl->n = 0;
    } else
        x->s = save;
    int end = collect(x, local, "@>,;");
    if (end == '@')
        end = collect(x, domain, ">,;");
    emit(a, name, adl->n ? adl->s : NULL, local->s, domain->s);
    if (end == '>') { /* skip to the next address */
        save = x->s;
        while ((t = lex(x)) != T_END && !(t == T_SPECIAL && strchr(",;", x->tok.s[0])))
            save = x->s;
        x->s = save;
    } else if (end)
        x->s--;
}

/* One address list; returns how many addresses (group markers included) it holds. */
static size_t addresses(const char *s, struct out *o)
{
    struct addr_out a = {o, 0};
    struct lexer *x = malloc(sizeof *x + 4 * sizeof(struct text));
    if (x == NULL) {
        if (o)
            o->err = 1;
        return 0;
    }
    struct text *phrase = (struct text *)(x + 1), *w = phrase + 1;
    x->s = s;
    int in_group = 0, t;
    do {
        phrase->n = 0;
        phrase->s[0] = '\0';
        x->comment.n = 0;
        int words = 0;
        const char *start = x->s;
        while ((t = lex(x)) == T_WORD || t == T_QUOTED) {
            if (words++ > 0)
                text_add(phrase, " ", 1);
            text_add(phrase, x->tok.s, x->tok.n);
        }
        char c = t == T_SPECIAL ? x->tok.s[0] : '\0';
        if (c == '<') {
            angle_addr(x, &a, words ? phrase->s : NULL, w);
        } else if (c == ':' && words) {
            emit(&a, NULL, NULL, phrase->s, NULL);
            in_group = 1;
        } else if (c == '@' || ((c == ',' || c == ';' || c == '\0') && words)) {
            /* addr-spec: start again from the first word, without spaces */
            x->s = start;
            struct text *local = w, *domain = w + 1;
            local->n = domain->n = 0;
            local->s[0] = domain->s[0] = '\0';
            x->comment.n = 0;
            int end = collect(x, local, "@,;<>:");
            if (end == '@')
                end = collect(x, domain, ",;<>:");
            emit(&a, x->comment.n ? x->comment.s : NULL, NULL, local->s, domain->s);
            if (end)
                x->s--;
            continue;
        }
        if (c == ';' && in_group) {
            emit(&a, NULL, NULL, NULL, NULL);
            in_group = 0;
        }
    } while (t != T_END);
    if (in_group)
        emit(&a, NULL, NULL, NULL, NULL);
    free(x);
    return a.n;
}

static void put_addresses(struct out *o, const char *v)
{
    if (v == NULL || addresses(v, NULL) == 0) {
        puts_(o, "NIL");
        return;
    }
    put(o, "(", 1);
    addresses(v, o);
    put(o, ")", 1);
}

static void put_envelope(struct out *o, const struct mime_tree *t, int i)
{
    const char *from = mime_field_value(t, i, MIME_F_FROM);
    const char *sender = mime_field_value(t, i, MIME_F_SENDER);
    const char *reply = mime_field_value(t, i, MIME_F_REPLY_TO);
    if (sender == NULL || addresses(sender, NULL) == 0)
        sender = from;
    if (reply == NULL || addresses(reply, NULL) == 0)
        reply = from;
    put(o, "(", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_DATE));
    put(o, " ", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_SUBJECT));
    const char *lists[] = {from,
                           sender,
                           reply,
                           mime_field_value(t, i, MIME_F_TO),
                           mime_field_value(t, i, MIME_F_CC),
                           mime_field_value(t, i, MIME_F_BCC)};
    for (size_t k = 0; k < sizeof lists / sizeof lists[0]; k++) {
        put(o, " ", 1);
        put_addresses(o, lists[k]);
    }
    put(o, " ", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_IN_REPLY_TO));
    put(o, " ", 1);
    put_nstring(o, mime_field_value(t, i, MIME_F_MESSAGE_ID));
    put(o, ")", 1);
}

int mime_envelope(const struct mime_tree *t, int i, mime_writer w, void *arg)
{
    struct out o = {w, arg, 0};
    if (i < 0 || (size_t)i >= t->n || !t->parts[i].is_message)
        return errno = EINVAL, -1;
    put_envelope(&o, t, i);
    return o.err ? -1 : 0;
}

/* ---- HEADER.FIELDS ---- */

/* Whether the field name (up to its colon) is in the space-separated list. */
static int listed(const char *f, size_t flen, const char *names, size_t names_len)
{
    const char *colon = memchr(f, ':', flen);
    if (colon == NULL)
        return 0;
    size_t n = (size_t)(colon - f);
    while (n > 0 && (f[n - 1] == ' ' || f[n - 1] == '\t'))
        n--;
    const char *p = names, *end = names + names_len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == '(' || *p == ')' || *p == '"'))
            p++;
        const char *b = p;
        while (p < end && *p != ' ' && *p != ')' && *p != '"')
            p++;
        if ((size_t)(p - b) == n && n > 0 && strncasecmp(b, f, n) == 0)
            return 1;
    }
    return 0;
}

struct hf {
    struct out o;
    const char *names;
    size_t names_len;
    int not, keep; /* keep: the current field is written */
};

/* One header line (without its LF): a new field decides, a continuation follows it. */
static void hf_line(struct hf *h, const char *l, size_t n, int first_piece)
{
    if (first_piece && !(n > 0 && (l[0] == ' ' || l[0] == '\t')))
        h->keep = listed(l, n, h->names, h->names_len) != h->not ;
    if (h->keep)
        put(&h->o, l, n);
}

int mime_header_fields(int fd, const struct mime_span *header, const char *names, size_t names_len,
                       int not, mime_writer w, void *arg)
{
    struct hf h = {{w, arg, 0}, names, names_len, not, 0};
    char buf[MIME_CHUNK], line[MIME_MAX_FIELD];
    size_t ln = 0;
    int first = 1;
    uint64_t at = header->off, end = header->off + header->len;
    while (at < end && !h.o.err) {
        size_t want = end - at < sizeof buf ? (size_t)(end - at) : sizeof buf;
        ssize_t got = pread(fd, buf, want, (off_t)at);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        at += (uint64_t)got;
        for (ssize_t k = 0; k < got; k++) {
            if (buf[k] != '\n' && ln < sizeof line) {
                line[ln++] = buf[k];
                continue;
            }
            if (ln > 0 && line[ln - 1] == '\r' && buf[k] == '\n')
                ln--;
            if (ln == 0 && first && buf[k] == '\n')
                break; /* the blank line */
            hf_line(&h, line, ln, first);
            first = buf[k] == '\n';
            if (first && h.keep)
                put(&h.o, "\r\n", 2);
            ln = 0;
            if (!first)
                line[ln++] = buf[k];
        }
    }
    if (ln > 0) {
        hf_line(&h, line, ln, first);
        if (h.keep)
            put(&h.o, "\r\n", 2);
    }
    put(&h.o, "\r\n", 2);
    return h.o.err ? -1 : 0;
}
