/*
 * addrlist.c: the scanner of RFC 5322 address lists (see addrlist.h). It works on the
 * caller's text with fixed buffers of one address each; it never allocates.
 */
#include "config.h"

#include <string.h>

#include "addrlist.h"
#include "util.h"

struct scan {
    char word[ADDR_SIZE]; /* the addr-spec outside <>, white space removed */
    size_t wlen;
    char angle[ADDR_SIZE]; /* the inside of <...> */
    size_t alen;
    int got_angle, space, phrase, too_long;
};

static void scan_reset(struct scan *s)
{
    memset(s, 0, sizeof *s);
}

static void put(char *buf, size_t *len, int *too_long, char ch)
{
    if (*len + 1 >= ADDR_SIZE) {
        *too_long = 1;
        return;
    }
    buf[(*len)++] = ch;
    buf[*len] = '\0';
}

/* One character of the addr-spec outside <>. Words apart with only white space between them
 * ("John Smith") are a phrase, not an address; around '.' and '@' white space is allowed. */
static void word_char(struct scan *s, char ch)
{
    int special = ch == '.' || ch == '@';
    char last = s->wlen > 0 ? s->word[s->wlen - 1] : '\0';
    if (s->space && s->wlen > 0 && !special && last != '.' && last != '@')
        s->phrase = 1;
    s->space = 0;
    put(s->word, &s->wlen, &s->too_long, ch);
}

/* Skips a comment starting at v[i] == '('; returns the index after it. */
static size_t skip_comment(const char *v, size_t len, size_t i)
{
    int depth = 0;
    for (; i < len; i++) {
        if (v[i] == '\\' && i + 1 < len)
            i++;
        else if (v[i] == '(')
            depth++;
        else if (v[i] == ')' && --depth == 0)
            return i + 1;
    }
    return len;
}

/* Copies a quoted string starting at v[i] == '"' into the word; returns the index after it. */
static size_t take_quoted(struct scan *s, const char *v, size_t len, size_t i)
{
    word_char(s, '"');
    for (i++; i < len && v[i] != '"'; i++) {
        if (v[i] == '\\' && i + 1 < len)
            put(s->word, &s->wlen, &s->too_long, v[i++]);
        if (v[i] != '\n' && v[i] != '\r')
            put(s->word, &s->wlen, &s->too_long, v[i]);
    }
    put(s->word, &s->wlen, &s->too_long, '"');
    return i < len ? i + 1 : len;
}

/* Copies the inside of <...> starting at v[i] == '<' without white space or comments;
 * returns the index after '>', or len + 1 when there is no '>'. */
static size_t take_angle(struct scan *s, const char *v, size_t len, size_t i)
{
    int quoted = 0;
    s->got_angle = 1;
    s->alen = 0;
    for (i++; i < len; i++) {
        char ch = v[i];
        if (!quoted && ch == '>')
            return i + 1;
        if (!quoted && ch == '(') {
            i = skip_comment(v, len, i) - 1;
            continue;
        }
        if (ch == '"')
            quoted = !quoted;
        else if (ch == '\\' && i + 1 < len)
            put(s->angle, &s->alen, &s->too_long, v[i++]);
        if (quoted || (ch != ' ' && ch != '\t' && ch != '\r' && ch != '\n'))
            put(s->angle, &s->alen, &s->too_long, v[i]);
    }
    return len + 1;
}

/* The end of one mailbox (',' or ';' or the end): adds it, if there is one. */
static int scan_emit(struct scan *s, const struct addrlist_taker *t)
{
    const char *text = s->got_angle ? s->angle : s->word;
    int rc = 0;
    if (s->got_angle && text[0] == '@') { /* an obsolete source route: dropped */
        const char *colon = strchr(text, ':');
        text = colon != NULL ? colon + 1 : text;
    }
    if (s->too_long)
        rc = (str_copy(t->why, t->why_size, "an address is too long"), -1);
    else if (!s->got_angle && s->phrase)
        rc = (str_format(t->why, t->why_size, "not an address: %s", s->word), -1);
    else if (text[0] != '\0')
        rc = t->take(t->arg, text);
    scan_reset(s);
    return rc;
}

int addrlist_scan(const char *v, size_t len, const struct addrlist_taker *t)
{
    struct scan s;
    int rc = 0;
    scan_reset(&s);
    for (size_t i = 0; i < len && rc == 0;) {
        char ch = v[i];
        if (ch == '(') {
            i = skip_comment(v, len, i);
            s.space = 1;
        } else if (ch == '"') {
            i = take_quoted(&s, v, len, i);
        } else if (ch == '<') {
            if ((i = take_angle(&s, v, len, i)) > len)
                rc = (str_copy(t->why, t->why_size, "'<' without '>'"), -1);
        } else if (ch == ',' || ch == ';') {
            rc = scan_emit(&s, t);
            i++;
        } else if (ch == '[') { /* a domain literal, which may hold ':' */
            for (; i < len && v[i] != ']'; i++)
                word_char(&s, v[i]);
            if (i < len)
                word_char(&s, v[i++]);
        } else if (ch == ':' && !s.got_angle) {
            scan_reset(&s); /* "group name:" */
            i++;
        } else if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n') {
            s.space = s.wlen > 0;
            i++;
        } else {
            word_char(&s, ch);
            i++;
        }
    }
    return rc != 0 ? rc : scan_emit(&s, t);
}
