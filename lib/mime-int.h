/*
 * lib/mime-int.h: what the two halves of lib/mime (mime.c, the parser; mime-render.c, the
 * IMAP renderings and the field syntax) share. Not for other modules: use mime.h.
 */
#ifndef YUBIN_MIME_INT_H
#define YUBIN_MIME_INT_H

#include "mime.h"

struct mime_ctype {
    const char *type, *subtype;
    size_t type_len, subtype_len;
};

uint32_t mime_store(struct mime_tree *t, const char *s, size_t len);
const char *mime_str(const struct mime_tree *t, uint32_t ref);
/* type "/" subtype of a Content-Type value; -1 when it has none (the default applies) */
int mime_parse_ctype(const char *value, struct mime_ctype *c);
/* part i's type is type (and subtype, unless NULL), case-insensitively, defaults applied */
int mime_is(const struct mime_tree *t, int i, const char *type, const char *subtype);
/* The value of parameter name of field f of part i (RFC 2231 segments joined) copied into out
 * (NUL-terminated); its length, or 0 when absent, empty or longer than cap - 1. */
size_t mime_param(const struct mime_tree *t, int i, enum mime_field f, const char *name, char *out,
                  size_t cap);

#endif
