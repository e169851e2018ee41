/*
 * privs: dropping root for the mail account, once and for good (see privs.h). It must never
 * leave a way back to uid 0: the switch is verified after it is made. The account is read from
 * /etc/passwd directly and gets no supplementary groups.
 */
#include "config.h"

#include <errno.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Reads "name:password:uid:gid:..." fields 3 and 4 of one passwd line. 0, or -1 if malformed. */
static int passwd_ids(const char *line, uid_t *uid, gid_t *gid)
{
    char *end;
    const char *p = strchr(line, ':');
    p = p ? strchr(p + 1, ':') : NULL;
    if (p == NULL)
        return -1;
    unsigned long u = strtoul(p + 1, &end, 10);
    if (end == p + 1 || *end != ':')
        return -1;
    p = end + 1;
    unsigned long g = strtoul(p, &end, 10);
    if (end == p || *end != ':' || u > 0xfffffffeUL || g > 0xfffffffeUL)
        return -1;
    *uid = (uid_t)u;
    *gid = (gid_t)g;
    return 0;
}

/* The account from /etc/passwd itself, not through NSS: the mail account is a local system
 * account, and a handler that skips NSS (and fgetpwent's lseek per line) does the least on
 * every connection. */
static int find_account(const char *user, uid_t *uid, gid_t *gid)
{
    FILE *f = fopen(PRIVS_PASSWD_FILE, "re");
    if (f == NULL)
        return -1;
    char line[1024];
    size_t len = strlen(user);
    int found = 0, line_start = 1;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        found = line_start && strncmp(line, user, len) == 0 && line[len] == ':' &&
                passwd_ids(line, uid, gid) == 0;
        line_start = strchr(line, '\n') != NULL; /* the rest of a long line is no new entry */
    }
    fclose(f);
    return found ? 0 : -1;
}

int privs_account(const char *user, uid_t *uid, gid_t *gid)
{
    return user != NULL && user[0] != '\0' ? find_account(user, uid, gid) : -1;
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
