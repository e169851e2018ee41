/*
 * esmtp.c: SMTP command arguments as a server reads them (see esmtp.h). Nothing here
 * allocates or copies past the caller's strings.
 */
#include "config.h"

#include <string.h>

#include "esmtp.h"
#include "util.h"

int esmtp_helo_ok(const char *arg)
{
    size_t len = arg ? strlen(arg) : 0;
    if (len == 0 || len > ESMTP_HELO_MAX)
        return 0;
    for (; *arg != '\0'; arg++)
        if ((unsigned char)*arg <= 32 || (unsigned char)*arg >= 127)
            return 0;
    return 1;
}

const char *esmtp_after_keyword(const char *arg, const char *keyword)
{
    if (arg == NULL || !str_iprefix(arg, keyword))
        return NULL;
    arg += strlen(keyword);
    while (*arg == ' ')
        arg++;
    return arg;
}

const char *esmtp_mail_params(char *rest, int ehlo, int auth, struct esmtp_params *p)
{
    char *save = NULL;
    memset(p, 0, sizeof *p);
    if (*rest != '\0' && *rest != ' ')
        return "501 5.5.4 syntax: MAIL FROM:<address> [parameters]";
    for (char *w = strtok_r(rest, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save)) {
        if (!ehlo)
            return "555 5.5.4 parameters need EHLO";
        if (str_iprefix(w, "SIZE=") && !p->have_size) {
            p->have_size = 1;
            if (parse_u64(w + 5, &p->size) != 0)
                return "501 5.5.4 bad SIZE parameter";
        } else if (str_iprefix(w, "BODY=") && !p->have_body) {
            p->have_body = 1;
            if (!str_ieq(w + 5, "7BIT") && !str_ieq(w + 5, "8BITMIME"))
                return "501 5.5.4 BODY must be 7BIT or 8BITMIME";
        } else if (str_iprefix(w, "AUTH=") && auth) {
            continue; /* RFC 4954 §5: accepted; we trust only our own AUTH, not this claim */
        } else if (str_iprefix(w, "SIZE=") || str_iprefix(w, "BODY=")) {
            return "501 5.5.4 parameter given twice";
        } else {
            return "555 5.5.4 unsupported parameter";
        }
    }
    return NULL;
}
