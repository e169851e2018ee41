/*
 * mailbox-flags: IMAP flag names and the keywords of a folder (see mailbox.h): the system
 * flags as maildir letters, and keywords as the letters a-z named in <folder>/dovecot-keywords
 * (Dovecot's file and format, so both servers agree on them). It must never rewrite the
 * keywords file except under the folder's index lock as write-new + fsync + rename, and never
 * reuse a letter that names another keyword.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mailbox-int.h"
#include "mailbox.h"
#include "util.h"

#define KEYWORDS_NAME "dovecot-keywords"

static const struct {
    const char *name;
    char letter;
} system_flags[] = {
    {"\\Draft", 'D'},    {"\\Flagged", 'F'}, {"$Forwarded", 'P'},
    {"\\Answered", 'R'}, {"\\Seen", 'S'},    {"\\Deleted", 'T'},
};

void mbx_keywords_free(struct mailbox_keywords *kw)
{
    for (int i = 0; i < MAILBOX_KEYWORDS; i++) {
        free(kw->names[i]);
        kw->names[i] = NULL;
    }
}

/* An IMAP atom (RFC 3501 flag-keyword): no specials, no controls, no '\\'. */
static int is_atom(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len > MAILBOX_KEYWORD_MAX)
        return 0;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        if (*p <= 0x20 || *p >= 0x7f || strchr("(){%*\"\\]", *p) != NULL)
            return 0;
    return 1;
}

void mbx_keywords_load(const char *maildir, struct mailbox_keywords *kw)
{
    char path[PATH_MAX], line[MAILBOX_KEYWORD_MAX + 16];
    memset(kw, 0, sizeof *kw);
    if (str_format(path, sizeof path, "%s/" KEYWORDS_NAME, maildir) < 0)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    FILE *f = fd >= 0 ? fdopen(fd, "r") : NULL;
    if (f == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        unsigned n;
        int off = 0;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%u %n", &n, &off) != 1 || off == 0 || n >= MAILBOX_KEYWORDS ||
            !is_atom(line + off) || kw->names[n] != NULL)
            continue;
        kw->names[n] = strdup(line + off);
    }
    fclose(f);
}

static int write_keywords(const char *maildir, const struct mailbox_keywords *kw)
{
    char text[MAILBOX_KEYWORDS * (MAILBOX_KEYWORD_MAX + 4)];
    size_t len = 0;
    for (int i = 0; i < MAILBOX_KEYWORDS; i++)
        if (kw->names[i] != NULL) {
            int n = snprintf(text + len, sizeof text - len, "%d %s\n", i, kw->names[i]);
            if (n < 0 || (size_t)n >= sizeof text - len)
                return errno = ENAMETOOLONG, -1;
            len += (size_t)n;
        }
    return mbx_replace_file(maildir, KEYWORDS_NAME, text, len);
}

static int find_keyword(const struct mailbox_keywords *kw, const char *name)
{
    for (int i = 0; i < MAILBOX_KEYWORDS; i++)
        if (kw->names[i] != NULL && str_ieq(kw->names[i], name))
            return i;
    return -1;
}

/* Under the index lock: the file read again (another session may have added names), name
 * added at the first free letter, the file written. The letter index, or -1. */
static int add_keyword(struct mailbox *mb, const char *name)
{
    int lock = mbx_lock_index(mb->path);
    if (lock < 0)
        return -1;
    mbx_keywords_free(&mb->kw);
    mbx_keywords_load(mb->path, &mb->kw);
    int n = find_keyword(&mb->kw, name);
    for (int i = 0; n < 0 && i < MAILBOX_KEYWORDS; i++)
        if (mb->kw.names[i] == NULL) {
            if ((mb->kw.names[i] = strdup(name)) == NULL) {
                errno = ENOMEM;
                break;
            }
            if (write_keywords(mb->path, &mb->kw) != 0) {
                free(mb->kw.names[i]);
                mb->kw.names[i] = NULL;
                break;
            }
            n = i;
        }
    if (n < 0 && errno == 0)
        errno = ENOSPC;
    int saved = errno;
    close(lock);
    errno = saved;
    return n;
}

char mailbox_flag_letter(struct mailbox *mb, const char *flag, int create)
{
    for (size_t i = 0; i < ARRAY_LEN(system_flags); i++)
        if (str_ieq(flag, system_flags[i].name))
            return system_flags[i].letter;
    if (flag[0] == '\\' || !is_atom(flag))
        return errno = EINVAL, 0;
    int n = find_keyword(&mb->kw, flag);
    if (n < 0 && !create)
        return errno = ENOENT, 0;
    if (n < 0) {
        errno = 0;
        n = add_keyword(mb, flag);
    }
    return n < 0 ? 0 : (char)('a' + n);
}

/* Appends word (and a space before it unless first) to out. */
static int add_word(char *out, size_t size, size_t *len, const char *word)
{
    size_t w = strlen(word), sp = *len > 0;
    if (*len + sp + w + 1 > size)
        return errno = ENAMETOOLONG, -1;
    if (sp)
        out[(*len)++] = ' ';
    memcpy(out + *len, word, w + 1);
    *len += w;
    return 0;
}

int mailbox_flags_imap(const struct mailbox *mb, const struct mailbox_msg *m, char *out,
                       size_t size)
{
    char letters[64];
    size_t len = 0;
    if (size == 0)
        return errno = ENAMETOOLONG, -1;
    out[0] = '\0';
    if (m->recent && add_word(out, size, &len, "\\Recent") != 0)
        return -1;
    mailbox_flags(m, letters, sizeof letters);
    for (const char *p = letters; *p != '\0'; p++) {
        const char *word = NULL;
        for (size_t i = 0; i < ARRAY_LEN(system_flags); i++)
            if (system_flags[i].letter == *p)
                word = system_flags[i].name;
        if (*p >= 'a' && *p <= 'z')
            word = mb->kw.names[*p - 'a'];
        if (word != NULL && add_word(out, size, &len, word) != 0)
            return -1;
    }
    return 0;
}
