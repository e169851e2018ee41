/*
 * privs: the one place where a program started as root becomes the unprivileged mail
 * account (yubin.conf `user`). Handlers call it before reading a byte of input; nothing in
 * yubin ever runs as root past this call, and nothing is setuid or setgid.
 */
#ifndef YUBIN_PRIVS_H
#define YUBIN_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

/* Run as root: switch to `user` (looked up in /etc/passwd, not NSS; its primary group only) for
 * good (checked), refusing an account
 * whose uid is 0. Run as anybody else: keep that identity, but refuse uid 0.
 * Returns 0, or -1 with a reason in err. */
int privs_drop(const char *user, char *err, size_t errlen);

/* The uid and primary gid of user in /etc/passwd. 0, or -1 if there is no such account. */
int privs_account(const char *user, uid_t *uid, gid_t *gid);

#endif
