/*
 * domain: the one domain-name rule and normaliser (see domain.h). It must never accept a
 * byte outside letters, digits, '-' and '.' ('_' only in a host name), and never read past
 * the end of its input.
 */
#include "config.h"

#include <string.h>

#include "domain.h"
#include "util.h"

static int label_char(unsigned char c, int flags)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           (c == '_' && (flags & DOMAIN_HOST_NAME));
}

static size_t span(const char *s, int flags)
{
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (label_char((unsigned char)s[i], flags))
            i++;
        if (i == start || i - start > 63 || s[start] == '-' || s[i - 1] == '-')
            return 0;
        if (s[i] != '.' || !label_char((unsigned char)s[i + 1], flags))
            return s[i] == '.' ? 0 : i; /* "a." then something else: no domain */
        i++;
    }
}

static int valid(const char *s, int flags)
{
    size_t len = span(s, flags);
    return len > 0 && len <= DOMAIN_MAX && s[len] == '\0';
}

size_t domain_len(const char *s)
{
    return span(s, 0);
}

int domain_valid(const char *s)
{
    return valid(s, 0);
}

int domain_normalise(char *out, size_t size, const char *in, int flags)
{
    size_t len = strlen(in);
    if ((flags & DOMAIN_TRAILING_DOT) && len > 1 && in[len - 1] == '.')
        len--;
    if (str_copy_n(out, size, in, len) != 0 || !valid(out, flags)) {
        if (size > 0)
            out[0] = '\0';
        return -1;
    }
    str_lower(out);
    return 0;
}
