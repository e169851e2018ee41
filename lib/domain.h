/*
 * domain: the one rule for a domain name in yubin and its one normal form, used for addresses
 * (lib/addr), yubin.conf (hostname, local_domains), the users file and MX lookups alike, so
 * that a name one part accepts is never refused or missed by another.
 *
 * A domain is labels separated by single dots; a label is 1 to 63 letters, digits and '-', not
 * starting or ending with '-' (RFC 5321 §4.1.2 sub-domain: no '_', which DNS would allow but
 * no SMTP address may carry, so a local domain with one could never receive mail); at most
 * DOMAIN_MAX octets in all. The normal form is ASCII lower case with no trailing dot. It never
 * allocates and never looks anything up.
 */
#ifndef YUBIN_DOMAIN_H
#define YUBIN_DOMAIN_H

#include <stddef.h>

#define DOMAIN_MAX 255        /* octets (RFC 5321 §4.5.3.1.2) */
#define DOMAIN_TRAILING_DOT 1 /* domain_normalise: one trailing dot is allowed, and dropped */
/* domain_normalise: a DNS host name that is never part of an address (a smarthost): '_' is
 * allowed in its labels too (RFC 2181 §11). */
#define DOMAIN_HOST_NAME 2

/* Length of the domain at the start of s, which may go on with anything that cannot continue
 * a domain ('>', '@', ' ', ':', the end...); 0 if no valid domain starts there. The total
 * length is not checked here (callers give their own error for it): domain_valid does. */
size_t domain_len(const char *s);
/* 1 if all of s is a domain of at most DOMAIN_MAX octets, else 0. */
int domain_valid(const char *s);
/* The normal form of in (flags: DOMAIN_TRAILING_DOT for a value from a configuration file,
 * DOMAIN_HOST_NAME for a host that is looked up but never in an address) into out. 0, or -1 if in
 * is not a domain or out is too small (out is then ""). */
int domain_normalise(char *out, size_t size, const char *in, int flags);

#endif
