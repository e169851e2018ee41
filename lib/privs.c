/*
 * privs: dropping root for the mail account, once and for good (see privs.h). It must never
 * leave a way back to uid 0: the switch is verified after it is made. The account is read from
 * /etc/passwd directly and gets no supplementary groups.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "privs.h"
#include "util.h"

#define PRIVS_PASSWD_FILE "/etc/passwd"

static int fail(char *err, size_t errlen, const char *what, const char *user)
{
    str_format(err, errlen, "%s%s%s%s", what, user ? " '" : "", user ? user : "", user ? "'" : "");
    return -1;
}

/* The account from /etc/passwd itself, not through NSS: the mail account is a local system
 * account, and a handler that skips NSS loads no extra libraries on every connection. */
static int find_account(const char *user, uid_t *uid, gid_t *gid)
{
    FILE *f = fopen(PRIVS_PASSWD_FILE, "re");
    if (f == NULL)
        return -1;
    struct passwd *pw;
    int found = 0;
    while (!found && (pw = fgetpwent(f)) != NULL) {
        if (strcmp(pw->pw_name, user) == 0) {
            *uid = pw->pw_uid;
            *gid = pw->pw_gid;
            found = 1;
        }
    }
    fclose(f);
    return found ? 0 : -1;
}

static int become(const char *user, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    if (setgroups(1, &gid) != 0)
        return fail(err, errlen, "cannot set the groups of", user);
    if (setgid(gid) != 0)
        return fail(err, errlen, "cannot set the group of", user);
    if (setuid(uid) != 0)
        return fail(err, errlen, "cannot become", user);
    if (setuid(0) == 0 || geteuid() != uid || getegid() != gid)
        return fail(err, errlen, "could not drop root for good as", user);
    return 0;
}

int privs_drop(const char *user, char *err, size_t errlen)
{
    uid_t uid;
    gid_t gid;
    if (geteuid() != 0)
        return getuid() == 0 ? fail(err, errlen, "refusing to run with a real uid of root", NULL)
                             : 0;
    if (user == NULL || user[0] == '\0')
        return fail(err, errlen, "no unprivileged account configured (key 'user')", NULL);
    if (find_account(user, &uid, &gid) != 0)
        return fail(err, errlen, "no such account in " PRIVS_PASSWD_FILE, user);
    if (uid == 0 || gid == 0)
        return fail(err, errlen, "refusing to serve as a root account", user);
    return become(user, uid, gid, err, errlen);
}
