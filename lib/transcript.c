/*
 * transcript: the C:/S: record of one dialogue (see transcript.h). It follows just enough of
 * SMTP and POP3 to mask secrets and shorten bodies: 354 starts a client body, +OK after RETR
 * or TOP a server body, "." ends either; 334 and "+ " make the next client line a secret.
 * It must never write a masked secret, grow past max_size, or let a failed write reach the
 * session (it just stops recording).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "transcript.h"
#include "util.h"

#define MASK "********"
#define NOTE_ROOM 160 /* kept free for the last note or the end line */

struct transcript {
    int fd;
    uint64_t max_size, written;
    int stopped;
    char prog[32];
    /* what the protocol has said so far */
    int secret_next; /* the next client line answers a challenge */
    int imap_login;  /* the next client line continues an IMAP LOGIN after its literal */
    int retr_sent;   /* the last client command was RETR or TOP */
    char body_dir;   /* 'C' or 'S' while a message body goes by, else 0 */
    uint64_t body_lines, body_octets;
    /* a line being assembled by transcript_write */
    char part_dir, part_last;
    int part_open;
    size_t part_len;     /* octets kept in part */
    uint64_t part_total; /* octets of the line so far */
    char part[TRANSCRIPT_SHOW_MAX];
};

static void put(struct transcript *t, const char *buf, size_t len)
{
    if (t->stopped)
        return;
    if (t->written + len + NOTE_ROOM > t->max_size) {
        char note[NOTE_ROOM];
        int n = snprintf(note, sizeof note,
                         "# transcript_max_size (%llu octets) reached: the rest of the dialogue "
                         "is not recorded\n",
                         (unsigned long long)t->max_size);
        if (n > 0 && (size_t)n < sizeof note)
            (void)write_all(t->fd, note, (size_t)n);
        t->stopped = 1;
        return;
    }
    if (write_all(t->fd, buf, len) != 0)
        t->stopped = 1;
    t->written += len;
}

/* "HH:MM:SS.mmm " in local time, as syslog shows it. */
static size_t stamp(char *out, size_t size)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    localtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, size, "%H:%M:%S", &tm);
    int m = snprintf(out + n, size - n, ".%03ld ", ts.tv_nsec / 1000000);
    return m > 0 && (size_t)m < size - n ? n + (size_t)m : n;
}

/* One output line: stamp, "C: ", the text with control bytes as \xNN, and a note when only
 * the first shown octets of total are there. */
static void emit(struct transcript *t, char dir, const char *text, size_t shown, uint64_t total)
{
    char line[TRANSCRIPT_SHOW_MAX * 4 + 128];
    size_t n = stamp(line, sizeof line);
    line[n++] = dir;
    line[n++] = ':';
    line[n++] = ' ';
    for (size_t i = 0; i < shown && i < TRANSCRIPT_SHOW_MAX; i++) {
        unsigned char ch = (unsigned char)text[i];
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
            n += (size_t)snprintf(line + n, 5, "\\x%02x", ch);
        else
            line[n++] = (char)ch;
    }
    if (total > shown)
        n += (size_t)snprintf(line + n, 64, " [... %llu more octets]",
                              (unsigned long long)(total - shown));
    line[n++] = '\n';
    put(t, line, n);
}

static void emitf(struct transcript *t, char dir, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void emitf(struct transcript *t, char dir, const char *fmt, ...)
{
    char text[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    if (n > 0)
        emit(t, dir, text, strlen(text), strlen(text));
}

static void body_summary(struct transcript *t)
{
    if (t->body_lines > TRANSCRIPT_BODY_LINES)
        emitf(t, t->body_dir, "[... message: %llu lines, %llu octets in all]",
              (unsigned long long)t->body_lines, (unsigned long long)t->body_octets);
}

/* A line inside a body: shown while it is one of the first lines, counted always. */
static void body_line(struct transcript *t, const char *text, size_t shown, uint64_t total)
{
    if (total == 1 && text[0] == '.') {
        body_summary(t);
        emit(t, t->body_dir, text, 1, 1);
        t->body_dir = 0;
        return;
    }
    t->body_lines++;
    t->body_octets += total + 2; /* as on the wire, CR LF included */
    if (t->body_lines <= TRANSCRIPT_BODY_LINES)
        emit(t, t->body_dir, text, shown, total);
}

static int verb_is(const char *text, size_t len, const char *verb)
{
    size_t v = strlen(verb);
    if (len < v || (len > v && text[v] != ' '))
        return 0;
    for (size_t i = 0; i < v; i++)
        if ((text[i] | 0x20) != (verb[i] | 0x20))
            return 0;
    return 1;
}

/* The length of "tag LOGIN" or "tag AUTHENTICATE" at the start of an IMAP line, or 0. */
static size_t imap_login_prefix(const char *text, size_t shown)
{
    const char *sp = memchr(text, ' ', shown);
    if (sp == NULL || verb_is(text, shown, "AUTH"))
        return 0;
    size_t tag = (size_t)(sp + 1 - text), rest = shown - tag;
    if (verb_is(sp + 1, rest, "LOGIN"))
        return tag + 5;
    if (verb_is(sp + 1, rest, "AUTHENTICATE"))
        return tag + 12;
    return 0;
}

/* IMAP (imap4-in): "tag LOGIN user password" and "tag AUTHENTICATE mech response" are shown
 * as far as the command name; the lines after a LOGIN line's literal are masked too. */
static int imap_secret(struct transcript *t, const char *text, size_t shown)
{
    size_t prefix = t->imap_login ? 0 : imap_login_prefix(text, shown);
    if (t->imap_login)
        emit(t, 'C', MASK, strlen(MASK), strlen(MASK));
    else if (prefix > 0)
        emitf(t, 'C', "%.*s %s", (int)prefix, text, MASK);
    else
        return 0;
    t->imap_login = shown > 0 && text[shown - 1] == '}';
    return 1;
}

static void client_line(struct transcript *t, const char *text, size_t shown, uint64_t total)
{
    t->retr_sent = verb_is(text, shown, "RETR") || verb_is(text, shown, "TOP");
    if (t->secret_next) {
        t->secret_next = 0;
        if (total == 1 && text[0] == '*')
            emit(t, 'C', "*", 1, 1); /* a cancel is no secret */
        else
            emit(t, 'C', MASK, strlen(MASK), strlen(MASK));
        return;
    }
    if (imap_secret(t, text, shown))
        return;
    if (verb_is(text, shown, "PASS")) {
        emitf(t, 'C', "%.4s %s", text, MASK);
        return;
    }
    if (verb_is(text, shown, "AUTH")) {
        const char *mech = text + 5;
        size_t rest = shown > 5 ? shown - 5 : 0;
        const char *sp = memchr(mech, ' ', rest);
        if (sp != NULL) {
            emitf(t, 'C', "%.4s %.*s %s", text, (int)(sp - mech < 40 ? sp - mech : 40), mech, MASK);
            return;
        }
    }
    emit(t, 'C', text, shown, total);
}

static void server_line(struct transcript *t, const char *text, size_t shown, uint64_t total)
{
    int retr = t->retr_sent;
    t->retr_sent = 0;
    if (shown >= 3 && memcmp(text, "354", 3) == 0) {
        t->body_dir = 'C';
        t->body_lines = t->body_octets = 0;
    } else if ((shown >= 4 && memcmp(text, "334 ", 4) == 0) ||
               (shown == 3 && !memcmp(text, "334", 3)) ||
               (shown >= 2 && text[0] == '+' && text[1] == ' ') || (shown == 1 && text[0] == '+'))
        t->secret_next = 1;
    emit(t, 'S', text, shown, total);
    if (retr && shown >= 3 && memcmp(text, "+OK", 3) == 0) {
        t->body_dir = 'S';
        t->body_lines = t->body_octets = 0;
    }
}

/* One whole line without its line end: shown (at most TRANSCRIPT_SHOW_MAX) of total octets. */
static void one_line(struct transcript *t, char dir, const char *text, size_t shown, uint64_t total)
{
    if (t->stopped)
        return;
    if (t->body_dir == dir) {
        body_line(t, text, shown, total);
        return;
    }
    if (dir == 'C')
        client_line(t, text, shown, total);
    else if (dir == 'S')
        server_line(t, text, shown, total);
    else
        emit(t, dir, text, shown, total);
}

static void part_end(struct transcript *t);

void transcript_line(struct transcript *t, char dir, const char *text, size_t len)
{
    if (t->part_open)
        part_end(t);
    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len > 0 && text[len - 1] == '\r')
        len--;
    one_line(t, dir, text, len < TRANSCRIPT_SHOW_MAX ? len : TRANSCRIPT_SHOW_MAX, len);
}

/* Ends the assembled line (its LF seen, or the direction changed). */
static void part_end(struct transcript *t)
{
    uint64_t total = t->part_total;
    if (total > 0 && t->part_last == '\r')
        total--;
    size_t shown = t->part_len < total ? t->part_len : (size_t)total;
    one_line(t, t->part_dir, t->part, shown, total);
    t->part_len = 0;
    t->part_total = 0;
    t->part_last = 0;
    t->part_open = 0;
}

void transcript_write(struct transcript *t, char dir, const char *buf, size_t len)
{
    if (t->stopped)
        return;
    if (t->part_open && t->part_dir != dir)
        part_end(t);
    t->part_dir = dir;
    while (len > 0) {
        const char *lf = memchr(buf, '\n', len);
        size_t take = lf ? (size_t)(lf - buf) : len;
        size_t room = TRANSCRIPT_SHOW_MAX - t->part_len;
        memcpy(t->part + t->part_len, buf, take < room ? take : room);
        t->part_len += take < room ? take : room;
        t->part_total += take;
        if (take > 0)
            t->part_last = buf[take - 1];
        t->part_open = 1;
        if (lf == NULL)
            return;
        part_end(t);
        buf += take + 1;
        len -= take + 1;
    }
}

void transcript_file(struct transcript *t, char dir, int fd, uint64_t offset, uint64_t size)
{
    char buf[TRANSCRIPT_BODY_LINES * 200 + 2], line[TRANSCRIPT_SHOW_MAX + 1];
    ssize_t n = pread(fd, buf, sizeof buf - 1, (off_t)offset);
    size_t have = n > 0 ? (size_t)n : 0, pos = 0;
    for (int i = 0; i < TRANSCRIPT_BODY_LINES && pos < have && !t->stopped; i++) {
        const char *lf = memchr(buf + pos, '\n', have - pos);
        size_t len = lf ? (size_t)(lf - (buf + pos)) : have - pos;
        size_t shown = 0;
        if (buf[pos] == '.')
            line[shown++] = '.'; /* as on the wire */
        size_t copy = len < sizeof line - shown ? len : sizeof line - shown;
        memcpy(line + shown, buf + pos, copy);
        emit(t, dir, line, shown + copy, shown + len);
        pos += len + 1;
    }
    if (pos < have || have == sizeof buf - 1) /* more than was shown */
        emitf(t, dir, "[... message: %llu octets in all]", (unsigned long long)size);
}

/* Creates dir/<stamp>.<prog>.<pid>.<n> for writing. The fd, or -1 (errno set). */
static int open_new(const char *dir, const char *prog, char *path, size_t size)
{
    static unsigned serial;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -1;
    for (int tries = 0; tries < 100; tries++) {
        if (str_format(path, size, "%s/%s.%s.%ld.%u", dir, when, prog, (long)getpid(), ++serial) <
            0) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_APPEND | O_CLOEXEC, 0600);
        if (fd >= 0 || errno != EEXIST)
            return fd;
    }
    return -1;
}

struct transcript *transcript_open(const char *dir, const char *prog, const char *peer,
                                   uint64_t max_size, char *err, size_t errlen)
{
    char path[4096], when[64];
    struct transcript *t = calloc(1, sizeof *t);
    if (t == NULL) {
        str_format(err, errlen, "transcript: out of memory");
        return NULL;
    }
    t->fd = open_new(dir, prog, path, sizeof path);
    if (t->fd < 0) {
        str_format(err, errlen, "transcript in %s: %s", dir, strerror(errno));
        free(t);
        return NULL;
    }
    t->max_size = max_size < TRANSCRIPT_MIN_SIZE ? TRANSCRIPT_MIN_SIZE : max_size;
    str_copy(t->prog, sizeof t->prog, prog);
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S %z", &tm);
    char head[512];
    int n = snprintf(head, sizeof head,
                     "# yubin transcript: %s pid %ld, peer %s, %s\n"
                     "# C: the client  S: the server  (passwords masked, bodies shortened)\n",
                     prog, (long)getpid(), peer, when);
    if (n > 0 && (size_t)n < sizeof head)
        put(t, head, (size_t)n);
    return t;
}

struct transcript *transcript_start(const char *dir, uint64_t max_size, const char *prog,
                                    const char *peer)
{
    char err[600];
    if (dir == NULL || dir[0] == '\0')
        return NULL;
    struct transcript *t = transcript_open(dir, prog, peer, max_size, err, sizeof err);
    if (t == NULL)
        log_msg(LOG_WARNING, "no transcript: %s", err);
    return t;
}

void transcript_close(struct transcript *t)
{
    if (t == NULL)
        return;
    if (t->part_open)
        part_end(t);
    if (t->body_dir != 0)
        body_summary(t);
    if (!t->stopped) {
        char line[128];
        int n = snprintf(line, sizeof line, "# end of %s dialogue, %llu octets recorded\n", t->prog,
                         (unsigned long long)t->written);
        if (n > 0 && (size_t)n < sizeof line)
            (void)write_all(t->fd, line, (size_t)n);
    }
    close(t->fd);
    free(t);
}
