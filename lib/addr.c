/*
 * addr: RFC 5321 §4.1.2 path grammar (see addr.h). A small recursive-descent parser over a
 * NUL-terminated string; every element is measured before it is copied. It must never accept
 * what the grammar refuses (bare spaces, 8-bit bytes, control characters, empty labels) and
 * never route by a source route: "@a,@b:" is checked and dropped.
 */
#include "config.h"

#include <arpa/inet.h>
#include <string.h>

#include "addr.h"
#include "domain.h"
#include "util.h"

static int is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* RFC 5322 atext. */
static int is_atext(int c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* Length of a dot-string (Atom *("." Atom)) at s, or 0 if there is none. */
static size_t dot_string_len(const char *s)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (is_atext((unsigned char)s[i]))
            i++;
        if (i == start)
            return 0;
        if (s[i] != '.')
            return i;
        i++;
    }
}

/* Length of a quoted string at s ('"' ... '"'), or 0 if it is not one. */
static size_t quoted_len(const char *s)
{
    size_t i = 1;
    if (s[0] != '"')
        return 0;
    for (;;) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"')
            return i + 1;
        if (c == '\\') {
            unsigned char next = (unsigned char)s[i + 1];
            if (next < 32 || next > 126)
                return 0;
            i += 2;
        } else if (c >= 32 && c <= 126) {
            i++;
        } else {
            return 0;
        }
    }
}

/* Is the text between the brackets (len octets at s) a valid address literal? */
static int valid_literal(const char *s, size_t len)
{
    char text[ADDR_DOMAIN_MAX + 1];
    unsigned char bin[16];
    if (str_copy_n(text, sizeof text, s, len) != 0 || len == 0)
        return 0;
    if (str_iprefix(text, "IPv6:"))
        return inet_pton(AF_INET6, text + 5, bin) == 1;
    const char *colon = strchr(text, ':');
    if (colon == NULL)
        return inet_pton(AF_INET, text, bin) == 1;
    /* General-address-literal: Standardized-tag ":" 1*dcontent. */
    size_t tag = domain_len(text);
    return tag > 0 && text + tag == colon && colon[1] != '\0';
}

/* Length of an address literal "[...]" at s, or 0. */
static size_t literal_len(const char *s)
{
    size_t i = 1;
    if (s[0] != '[')
        return 0;
    while (s[i] != ']') {
        unsigned char c = (unsigned char)s[i];
        if (c < 33 || c > 126 || c == '[' || c == '\\')
            return 0;
        i++;
    }
    return valid_literal(s + 1, i - 1) ? i + 1 : 0;
}

/* Skips an A-d-l ("@d1,@d2:") at s; returns its length (0 if there is none, -1 if bad). */
static long skip_source_route(const char *s)
{
    size_t i = 0;
    if (s[0] != '@')
        return 0;
    for (;;) {
        if (s[i] != '@') /* checked first: after "@a," s[i] may be the NUL */
            return -1;
        size_t d = domain_len(s + i + 1);
        if (d == 0)
            return -1;
        i += 1 + d;
        if (s[i] == ':')
            return (long)i + 1;
        if (s[i] != ',')
            return -1;
        i++;
    }
}

/* Stores the local part (unquoting a quoted dot-string). */
static int store_local(struct addr *a, const char *s, size_t len, int quoted)
{
    if (len > ADDR_LOCAL_MAX)
        return ADDR_ERR_LOCAL_LONG;
    if (quoted && len > 2 && dot_string_len(s + 1) == len - 2) {
        s++;
        len -= 2;
        quoted = 0;
    }
    a->quoted = quoted;
    str_copy_n(a->local, sizeof a->local, s, len);
    return ADDR_OK;
}

/* Parses Local-part "@" (Domain / address-literal) at s; *used gets its length. */
static int parse_mailbox_at(const char *s, struct addr *a, size_t *used)
{
    int quoted = s[0] == '"';
    size_t local = quoted ? quoted_len(s) : dot_string_len(s);
    if (local == 0 || s[local] != '@')
        return ADDR_ERR_SYNTAX;
    const char *dom = s + local + 1;
    size_t dlen = dom[0] == '[' ? literal_len(dom) : domain_len(dom);
    if (dlen == 0)
        return ADDR_ERR_SYNTAX;
    int rc = store_local(a, s, local, quoted);
    if (rc != ADDR_OK)
        return rc;
    if (dlen > ADDR_DOMAIN_MAX)
        return ADDR_ERR_DOMAIN_LONG;
    a->literal = dom[0] == '[';
    str_copy_n(a->domain, sizeof a->domain, dom, dlen);
    str_lower(a->domain);
    *used = local + 1 + dlen;
    return ADDR_OK;
}

static int finish_text(struct addr *a)
{
    if (a->domain[0] == '\0')
        return str_copy(a->text, sizeof a->text, a->local) == 0 ? ADDR_OK : ADDR_ERR_PATH_LONG;
    return str_format(a->text, sizeof a->text, "%s@%s", a->local, a->domain) < 0
               ? ADDR_ERR_PATH_LONG
               : ADDR_OK;
}

int addr_parse_path(const char *s, int flags, struct addr *a, const char **end)
{
    memset(a, 0, sizeof *a);
    if (s[0] != '<')
        return ADDR_ERR_SYNTAX;
    if (s[1] == '>') {
        if (!(flags & ADDR_NULL_OK))
            return ADDR_ERR_SYNTAX;
        a->null = 1;
        *end = s + 2;
        return ADDR_OK;
    }
    long route = skip_source_route(s + 1);
    if (route < 0)
        return ADDR_ERR_SYNTAX;
    const char *p = s + 1 + route;
    size_t used = 0;
    int rc;
    if ((flags & ADDR_POSTMASTER_OK) && route == 0 && str_iprefix(p, "postmaster>")) {
        used = 10;
        str_copy_n(a->local, sizeof a->local, p, used);
        rc = ADDR_OK;
    } else {
        rc = parse_mailbox_at(p, a, &used);
    }
    if (rc != ADDR_OK)
        return rc;
    if (p[used] != '>')
        return ADDR_ERR_SYNTAX;
    if ((size_t)(p + used + 1 - s) > ADDR_PATH_MAX)
        return ADDR_ERR_PATH_LONG;
    *end = p + used + 1;
    return finish_text(a);
}

int addr_parse_mailbox(const char *s, struct addr *a)
{
    size_t used = 0;
    memset(a, 0, sizeof *a);
    int rc = parse_mailbox_at(s, a, &used);
    if (rc != ADDR_OK)
        return rc;
    if (s[used] != '\0')
        return ADDR_ERR_SYNTAX;
    if (used + 2 > ADDR_PATH_MAX)
        return ADDR_ERR_PATH_LONG;
    return finish_text(a);
}

const char *addr_error_text(int result)
{
    switch (result) {
    case ADDR_OK:
        return "ok";
    case ADDR_ERR_PATH_LONG:
        return "path too long (over 256 octets)";
    case ADDR_ERR_LOCAL_LONG:
        return "local part too long (over 64 octets)";
    case ADDR_ERR_DOMAIN_LONG:
        return "domain too long (over 255 octets)";
    default:
        return "bad address syntax";
    }
}
