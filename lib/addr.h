/*
 * addr: RFC 5321 paths (the <...> of MAIL FROM and RCPT TO) and mailboxes: parse, validate,
 * normalise. Accepts "<>", "<local@domain>", source routes "@a,@b:" (parsed and thrown away,
 * never used for routing), quoted local parts and address literals ([1.2.3.4], [IPv6:...]).
 * Enforces the RFC 5321 §4.5.3.1 limits: 256-octet paths, 64-octet local parts, 255-octet
 * domains. It never allocates, never looks anything up, and never accepts 8-bit or control
 * characters.
 */
#ifndef YUBIN_ADDR_H
#define YUBIN_ADDR_H

#include <stddef.h>

#define ADDR_PATH_MAX 256             /* octets of a path, "<" and ">" included */
#define ADDR_LOCAL_MAX 64             /* octets of a local part, as written */
#define ADDR_DOMAIN_MAX 255           /* octets of a domain or address literal */
#define ADDR_SIZE (ADDR_PATH_MAX + 1) /* room for any "local@domain" text and its NUL */

enum addr_result {
    ADDR_OK = 0,
    ADDR_ERR_SYNTAX,      /* not a path or mailbox */
    ADDR_ERR_PATH_LONG,   /* over 256 octets */
    ADDR_ERR_LOCAL_LONG,  /* local part over 64 octets */
    ADDR_ERR_DOMAIN_LONG, /* domain over 255 octets */
};

/* Flags for addr_parse_path. */
#define ADDR_NULL_OK 1       /* a reverse-path: "<>" is allowed */
#define ADDR_POSTMASTER_OK 2 /* a forward-path: "<Postmaster>" without a domain is allowed */

struct addr {
    int null;                         /* "<>" */
    int quoted;                       /* the local part is a quoted string that is not a
                                         dot-string: it names no mailbox here */
    int literal;                      /* the domain is an address literal "[...]" */
    char local[ADDR_LOCAL_MAX + 1];   /* as written (quotes kept when quoted), case kept */
    char domain[ADDR_DOMAIN_MAX + 1]; /* lower case; "" for <> and <Postmaster> */
    char text[ADDR_SIZE];             /* "local@domain", "Postmaster", or "" for <> */
};

/* Parses a path starting at s (which must start with '<'). On ADDR_OK, *end points just past
 * the '>'. A quoted local part that is a plain dot-string ("john"@x) is unquoted. */
int addr_parse_path(const char *s, int flags, struct addr *a, const char **end);

/* Parses a whole string "local@domain" (no angle brackets), as in the aliases file. */
int addr_parse_mailbox(const char *s, struct addr *a);

/* A short English text for an addr_result ("bad address syntax", "path too long", ...). */
const char *addr_error_text(int result);

#endif
