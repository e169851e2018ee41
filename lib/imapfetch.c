/*
 * lib/imapfetch.c: the FETCH attribute parser (RFC 3501 §9 fetch-att, RFC 9051, RFC 3516
 * section-binary) and the STORE/APPEND flag lists. The rendering of one message's FETCH
 * response is in imapfetch-render.c.
 *
 * It must never read past the command's buffer (every octet is taken through the cursor's
 * bounds), never write past struct imapfetch's fixed arrays, and never accept what the
 * grammar refuses (an empty list, a count of 0, a macro inside a list, junk after the list).
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "imapfetch.h"

static int bad(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen > 0)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/* The octets of a data item's name: letters, digits and '.' ("BODY.PEEK", "RFC822.SIZE"). */
static size_t name_len(const struct imaptok *t)
{
    const char *q = t->p;
    while (q < t->end && ((*q >= 'A' && *q <= 'Z') || (*q >= 'a' && *q <= 'z') ||
                          (*q >= '0' && *q <= '9') || *q == '.'))
        q++;
    return (size_t)(q - t->p);
}

static int name_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* Appends n octets to the section text being built. */
static int text_add(struct imapfetch *f, const char *s, size_t n)
{
    if (n > sizeof f->text - 1 - f->text_len)
        return -1;
    memcpy(f->text + f->text_len, s, n);
    f->text_len += n;
    f->text[f->text_len] = '\0';
    return 0;
}

static int text_upper(struct imapfetch *f, const char *s, size_t n)
{
    size_t at = f->text_len;
    if (text_add(f, s, n) != 0)
        return -1;
    for (size_t i = at; i < f->text_len; i++)
        if (f->text[i] >= 'a' && f->text[i] <= 'z')
            f->text[i] = (char)(f->text[i] - 'a' + 'A');
    return 0;
}

/* nz-number: 1-9 then digits, at most 10 of them. */
static int nz_number(struct imaptok *t, struct imapfetch *f)
{
    const char *b = t->p;
    if (t->p >= t->end || *t->p < '1' || *t->p > '9')
        return -1;
    while (t->p < t->end && *t->p >= '0' && *t->p <= '9' && t->p - b < 10)
        t->p++;
    if (t->p < t->end && *t->p >= '0' && *t->p <= '9')
        return -1;
    return text_add(f, b, (size_t)(t->p - b));
}

/* A header field name: printable US-ASCII but ':' (RFC 5322 ftext). */
static int field_name_ok(const char *s, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= ' ' || (unsigned char)s[i] >= 0x7f || s[i] == ':')
            return 0;
    return 1;
}

/* SP header-list: "(" astring *(SP astring) ")", kept upper-cased as " (A B)". */
static int header_list(struct imaptok *t, struct imapfetch *f)
{
    if (imaptok_space(t) != 0 || imaptok_char(t, '(') != 0 || text_add(f, " (", 2) != 0)
        return -1;
    for (int first = 1;; first = 0) {
        char name[256];
        size_t n;
        if (!first && (imaptok_space(t) != 0 || text_add(f, " ", 1) != 0))
            return -1;
        if (imaptok_astring(t, name, sizeof name, &n) != 0 || !field_name_ok(name, n) ||
            text_upper(f, name, n) != 0)
            return -1;
        if (imaptok_char(t, ')') == 0)
            return text_add(f, ")", 1);
    }
}

static int keyword(struct imaptok *t, const char *w)
{
    size_t n = strlen(w);
    if ((size_t)(t->end - t->p) < n || strncasecmp(t->p, w, n) != 0)
        return -1;
    t->p += n;
    return 0;
}

/* section-msgtext / "MIME" (when after a part number). */
static int section_text(struct imaptok *t, struct imapfetch *f, int numbered)
{
    if (keyword(t, "HEADER.FIELDS.NOT") == 0)
        return text_add(f, "HEADER.FIELDS.NOT", 17) == 0 ? header_list(t, f) : -1;
    if (keyword(t, "HEADER.FIELDS") == 0)
        return text_add(f, "HEADER.FIELDS", 13) == 0 ? header_list(t, f) : -1;
    if (keyword(t, "HEADER") == 0)
        return text_add(f, "HEADER", 6);
    if (keyword(t, "TEXT") == 0)
        return text_add(f, "TEXT", 4);
    if (numbered && keyword(t, "MIME") == 0)
        return text_add(f, "MIME", 4);
    return -1;
}

/* "[" section-spec "]" (binary: "[" [section-part] "]"), its canonical text in f->text. */
static int section(struct imaptok *t, struct imapfetch *f, int binary)
{
    if (imaptok_char(t, '[') != 0)
        return -1;
    int numbered = 0;
    while (imaptok_peek(t) >= '1' && imaptok_peek(t) <= '9') {
        if (nz_number(t, f) != 0)
            return -1;
        numbered = 1;
        if (imaptok_peek(t) != '.')
            break;
        t->p++;
        if (text_add(f, ".", 1) != 0)
            return -1;
        if (imaptok_peek(t) >= '1' && imaptok_peek(t) <= '9')
            continue;
        if (binary || section_text(t, f, 1) != 0)
            return -1;
        break;
    }
    if (!numbered && !binary && imaptok_peek(t) != ']' && section_text(t, f, 0) != 0)
        return -1;
    return imaptok_char(t, ']');
}

/* "<" number "." nz-number ">" (63-bit numbers, as RFC 9051's number64). */
static int partial(struct imaptok *t, struct imapfetch_item *it)
{
    uint64_t o, c;
    if (imaptok_char(t, '<') != 0 || imaptok_number64(t, &o) != 0 || imaptok_char(t, '.') != 0 ||
        imaptok_number64(t, &c) != 0 || c == 0 || imaptok_char(t, '>') != 0)
        return -1;
    it->partial = 1;
    it->origin = o;
    it->count = c;
    return 0;
}

static const struct {
    const char *name;
    enum imapfetch_kind kind;
} simple[] = {
    {"UID", IMAPFETCH_UID},
    {"FLAGS", IMAPFETCH_FLAGS},
    {"INTERNALDATE", IMAPFETCH_INTERNALDATE},
    {"RFC822.SIZE", IMAPFETCH_RFC822_SIZE},
    {"ENVELOPE", IMAPFETCH_ENVELOPE},
    {"BODYSTRUCTURE", IMAPFETCH_BODYSTRUCTURE},
    {"BODY", IMAPFETCH_BODY},
    {"RFC822", IMAPFETCH_RFC822},
    {"RFC822.HEADER", IMAPFETCH_RFC822_HEADER},
    {"RFC822.TEXT", IMAPFETCH_RFC822_TEXT},
    {"MODSEQ", IMAPFETCH_MODSEQ},
};

static int same_item(const struct imapfetch *f, const struct imapfetch_item *a,
                     const struct imapfetch_item *b)
{
    return a->kind == b->kind && a->partial == b->partial && a->origin == b->origin &&
           a->count == b->count && a->sect_len == b->sect_len &&
           memcmp(f->text + a->sect, f->text + b->sect, a->sect_len) == 0;
}

static int has_section(unsigned kind)
{
    return kind == IMAPFETCH_SECTION || kind == IMAPFETCH_BINARY || kind == IMAPFETCH_BINARY_SIZE;
}

/* Keeps the item unless it is there already (then a non-PEEK one wins). */
static void add_item(struct imapfetch *f, struct imapfetch_item *it)
{
    for (size_t i = 0; i < f->n; i++) {
        if (same_item(f, &f->item[i], it)) {
            f->item[i].peek &= it->peek;
            if (it->sect_len > 0 || has_section(it->kind)) {
                f->text_len = it->sect; /* its section text is not needed */
                f->text[f->text_len] = '\0';
            }
            return;
        }
    }
    if (it->kind != IMAPFETCH_UID && it->kind != IMAPFETCH_FLAGS &&
        it->kind != IMAPFETCH_INTERNALDATE && it->kind != IMAPFETCH_RFC822_SIZE &&
        it->kind != IMAPFETCH_MODSEQ)
        f->needs |= IMAPFETCH_NEED_FILE;
    f->item[f->n++] = *it;
}

/* How much of the command to quote in a BAD text: up to a space or ')', at most 40. */
static int show(const char *s, const char *end)
{
    const char *q = s;
    while (q < end && q - s < 40 && *q != ' ' && *q != ')' && (unsigned char)*q >= ' ')
        q++;
    return (int)(q - s);
}

/* One fetch-att at the cursor. */
static int fetch_att(struct imaptok *t, struct imapfetch *f, char *err, size_t errlen)
{
    const char *s = t->p;
    size_t n = name_len(t);
    struct imapfetch_item it = {0};
    if (f->n >= IMAPFETCH_MAX_ITEMS)
        return bad(err, errlen, "Too many FETCH attributes");
    it.sect = (uint16_t)f->text_len;
    t->p += n;
    int c = imaptok_peek(t);
    int bracket = c == '[';
    if (bracket && (name_is(s, n, "BODY") || name_is(s, n, "BODY.PEEK"))) {
        it.kind = IMAPFETCH_SECTION;
        it.peek = n > 4;
    } else if (bracket && (name_is(s, n, "BINARY") || name_is(s, n, "BINARY.PEEK"))) {
        it.kind = IMAPFETCH_BINARY;
        it.peek = n > 6;
    } else if (bracket && name_is(s, n, "BINARY.SIZE")) {
        it.kind = IMAPFETCH_BINARY_SIZE;
    } else {
        size_t k = 0;
        while (k < sizeof simple / sizeof simple[0] && !name_is(s, n, simple[k].name))
            k++;
        if (k == sizeof simple / sizeof simple[0] || bracket)
            goto unknown;
        it.kind = simple[k].kind;
    }
    if (bracket) {
        const char *at = t->p;
        if (section(t, f, it.kind != IMAPFETCH_SECTION) != 0) {
            f->text_len = it.sect;
            return bad(err, errlen, "Invalid section %.*s", show(at, t->end), at);
        }
        it.sect_len = (uint16_t)(f->text_len - it.sect);
        if (f->text_len + 1 >= sizeof f->text)
            return bad(err, errlen, "FETCH attributes too long");
        f->text[f->text_len++] = '\0'; /* each section text keeps its NUL */
        f->text[f->text_len] = '\0';
        if (imaptok_peek(t) == '<' && (it.kind == IMAPFETCH_BINARY_SIZE || partial(t, &it) != 0))
            return bad(err, errlen, "Invalid partial");
    }
    c = imaptok_peek(t);
    if (c != -1 && c != ' ' && c != ')')
        goto unknown;
    add_item(f, &it);
    return 0;
unknown:
    return bad(err, errlen, "Unknown FETCH attribute %.*s", show(s, t->end), s);
}

static const struct {
    const char *name;
    enum imapfetch_kind items[5];
    size_t n;
} macros[] = {
    {"ALL",
     {IMAPFETCH_FLAGS, IMAPFETCH_INTERNALDATE, IMAPFETCH_RFC822_SIZE, IMAPFETCH_ENVELOPE},
     4},
    {"FAST", {IMAPFETCH_FLAGS, IMAPFETCH_INTERNALDATE, IMAPFETCH_RFC822_SIZE}, 3},
    {"FULL",
     {IMAPFETCH_FLAGS, IMAPFETCH_INTERNALDATE, IMAPFETCH_RFC822_SIZE, IMAPFETCH_ENVELOPE,
      IMAPFETCH_BODY},
     5},
};

static int macro(struct imaptok *t, struct imapfetch *f)
{
    for (size_t k = 0; k < sizeof macros / sizeof macros[0]; k++) {
        if (imaptok_word(t, macros[k].name) != 0)
            continue;
        for (size_t i = 0; i < macros[k].n; i++) {
            struct imapfetch_item it = {0};
            it.kind = (unsigned char)macros[k].items[i];
            add_item(f, &it);
        }
        return 0;
    }
    return -1;
}

/* " (CHANGEDSINCE n [VANISHED])" after the attributes (RFC 7162 fetch-modifier). 0, or -1
 * with err. */
static int modifiers(struct imaptok *t, struct imapfetch *f, char *err, size_t errlen)
{
    if (imaptok_space(t) != 0 || imaptok_char(t, '(') != 0)
        return bad(err, errlen, "Junk after FETCH attributes");
    for (int first = 1; first || imaptok_char(t, ')') != 0; first = 0) {
        if (!first && imaptok_space(t) != 0)
            return bad(err, errlen, "Invalid FETCH modifier list");
        if (!f->vanished && imaptok_word(t, "VANISHED") == 0) {
            f->vanished = 1;
            continue;
        }
        if (imaptok_word(t, "CHANGEDSINCE") != 0 || f->changedsince_given)
            return bad(err, errlen,
                       "Unknown FETCH modifier (CHANGEDSINCE n and VANISHED are taken)");
        if (imaptok_space(t) != 0 || imaptok_number64(t, &f->changedsince) != 0 ||
            f->changedsince > INT64_MAX)
            return bad(err, errlen, "CHANGEDSINCE needs a mod-sequence (0 to 2^63-1)");
        f->changedsince_given = 1;
    }
    return 0;
}

int imapfetch_parse(struct imaptok *t, struct imapfetch *f, char *err, size_t errlen)
{
    f->n = 0;
    f->text_len = 0;
    f->text[0] = '\0';
    f->needs = 0;
    f->changedsince_given = 0;
    f->changedsince = 0;
    f->vanished = 0;
    if (errlen > 0)
        err[0] = '\0';
    if (imaptok_at_end(t))
        return bad(err, errlen, "Missing FETCH attributes");
    if (imaptok_char(t, '(') == 0) {
        for (int first = 1;; first = 0) {
            if (!first && imaptok_space(t) != 0)
                return bad(err, errlen, "Invalid FETCH attribute list");
            if (fetch_att(t, f, err, errlen) != 0)
                return -1;
            if (imaptok_char(t, ')') == 0)
                break;
        }
    } else if (macro(t, f) != 0 && fetch_att(t, f, err, errlen) != 0) {
        return -1;
    }
    if (!imaptok_at_end(t) && modifiers(t, f, err, errlen) != 0)
        return -1;
    if (!imaptok_at_end(t))
        return bad(err, errlen, "Junk after FETCH attributes");
    return 0;
}

int imapfetch_sets_seen(const struct imapfetch *f)
{
    for (size_t i = 0; i < f->n; i++) {
        switch (f->item[i].kind) {
        case IMAPFETCH_SECTION:
        case IMAPFETCH_BINARY:
            if (!f->item[i].peek)
                return 1;
            break;
        case IMAPFETCH_RFC822:
        case IMAPFETCH_RFC822_TEXT:
            return 1;
        default:
            break;
        }
    }
    return 0;
}

/* ---- flags ---- */

static const struct {
    char letter;
    const char *name;
} system_flags[] = {
    {'D', "\\Draft"},    {'F', "\\Flagged"}, {'P', "$Forwarded"},
    {'R', "\\Answered"}, {'S', "\\Seen"},    {'T', "\\Deleted"},
};
#define N_SYSTEM (sizeof system_flags / sizeof system_flags[0])

static void add_letter(struct imapfetch_flags *fl, char c)
{
    size_t n = strlen(fl->letters);
    if (strchr(fl->letters, c) != NULL)
        return;
    size_t at = 0;
    while (at < n && fl->letters[at] < c)
        at++;
    memmove(fl->letters + at + 1, fl->letters + at, n - at + 1);
    fl->letters[at] = c;
}

static int one_flag(struct imaptok *t, struct imapfetch_flags *fl, char *err, size_t errlen)
{
    const char *s;
    size_t n;
    if (imaptok_flag(t, &s, &n) != 0)
        return bad(err, errlen, "Invalid flag list");
    for (size_t k = 0; k < N_SYSTEM; k++) {
        if (name_is(s, n, system_flags[k].name)) {
            add_letter(fl, system_flags[k].letter);
            return 0;
        }
    }
    if (s[0] == '\\')
        return bad(err, errlen, "Invalid system flag %.*s", (int)(n > 64 ? 64 : n), s);
    for (size_t k = 0; k < fl->n_kw; k++)
        if (fl->kw_len[k] == n && strncasecmp(fl->kw[k], s, n) == 0)
            return 0;
    if (fl->n_kw >= IMAPFETCH_MAX_KEYWORDS)
        return bad(err, errlen, "Too many keywords");
    fl->kw[fl->n_kw] = s;
    fl->kw_len[fl->n_kw++] = n;
    return 0;
}

int imapfetch_parse_flags(struct imaptok *t, struct imapfetch_flags *fl, char *err, size_t errlen)
{
    struct imaptok save = *t;
    memset(fl, 0, sizeof *fl);
    int paren = imaptok_char(t, '(') == 0;
    if (paren && imaptok_char(t, ')') == 0)
        return 0;
    for (int first = 1;; first = 0) {
        if (!first && imaptok_space(t) != 0)
            break;
        if (one_flag(t, fl, err, errlen) != 0) {
            *t = save;
            return -1;
        }
        if (!paren && imaptok_peek(t) != ' ')
            return 0;
        if (paren && imaptok_char(t, ')') == 0)
            return 0;
    }
    *t = save;
    return bad(err, errlen, "Invalid flag list");
}

int imapfetch_parse_store(struct imaptok *t, struct imapfetch_store *st, char *err, size_t errlen)
{
    static const struct {
        const char *name;
        enum imapfetch_store_op op;
        int silent;
    } items[] = {
        {"FLAGS", IMAPFETCH_STORE_SET, 0},     {"FLAGS.SILENT", IMAPFETCH_STORE_SET, 1},
        {"+FLAGS", IMAPFETCH_STORE_ADD, 0},    {"+FLAGS.SILENT", IMAPFETCH_STORE_ADD, 1},
        {"-FLAGS", IMAPFETCH_STORE_REMOVE, 0}, {"-FLAGS.SILENT", IMAPFETCH_STORE_REMOVE, 1},
    };
    size_t k = 0;
    while (k < sizeof items / sizeof items[0] && imaptok_word(t, items[k].name) != 0)
        k++;
    if (k == sizeof items / sizeof items[0])
        return bad(err, errlen, "Invalid STORE data item %.*s", show(t->p, t->end), t->p);
    st->op = items[k].op;
    st->silent = items[k].silent;
    if (imaptok_space(t) != 0)
        return bad(err, errlen, "Missing STORE flags");
    if (imapfetch_parse_flags(t, &st->flags, err, errlen) != 0)
        return -1;
    if (!imaptok_at_end(t))
        return bad(err, errlen, "Junk after STORE flags");
    return 0;
}
