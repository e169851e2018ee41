/*
 * users: reading the users file (see users.h). This part only answers "is there such a
 * mailbox"; it never reads or compares a password.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "users.h"
#include "util.h"

int users_exists(const char *users_file, const char *address)
{
    FILE *f = fopen(users_file, "r");
    if (f == NULL)
        return errno == ENOENT ? 0 : -1;
    char line[4096];
    size_t addr_len = strlen(address);
    int found = 0;
    while (!found && fgets(line, sizeof line, f) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        char *colon = strchr(line, ':');
        if (colon == NULL || (size_t)(colon - line) != addr_len)
            continue;
        *colon = '\0';
        found = str_ieq(line, address);
    }
    int read_error = ferror(f);
    fclose(f);
    if (read_error) {
        errno = EIO;
        return -1;
    }
    return found;
}
