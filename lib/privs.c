/*
 * privs: dropping root for the mail account, once and for good (see privs.h). It must never
 * leave a way back to uid 0: the switch is verified after it is made.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <string.h>
#include <unistd.h>

#include "privs.h"
#include "util.h"

static int fail(char *err, size_t errlen, const char *what, const char *user)
{
    str_format(err, errlen, "%s%s%s%s", what, user ? " '" : "", user ? user : "",
               user ? "'" : "");
    return -1;
}

static int become(const struct passwd *pw, char *err, size_t errlen)
{
    if (initgroups(pw->pw_name, pw->pw_gid) != 0)
        return fail(err, errlen, "cannot set the groups of", pw->pw_name);
    if (setgid(pw->pw_gid) != 0)
        return fail(err, errlen, "cannot set the group of", pw->pw_name);
    if (setuid(pw->pw_uid) != 0)
        return fail(err, errlen, "cannot become", pw->pw_name);
    if (setuid(0) == 0 || geteuid() != pw->pw_uid || getegid() != pw->pw_gid)
        return fail(err, errlen, "could not drop root for good as", pw->pw_name);
    return 0;
}

int privs_drop(const char *user, char *err, size_t errlen)
{
    if (geteuid() != 0)
        return getuid() == 0 ? fail(err, errlen, "refusing to run with a real uid of root", NULL)
                             : 0;
    if (user == NULL || user[0] == '\0')
        return fail(err, errlen, "no unprivileged account configured (key 'user')", NULL);
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL)
        return fail(err, errlen, "no such account", user);
    if (pw->pw_uid == 0 || pw->pw_gid == 0)
        return fail(err, errlen, "refusing to serve as a root account", user);
    return become(pw, err, errlen);
}
