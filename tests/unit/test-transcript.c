/*
 * test-transcript: lib/transcript on made-up dialogues, the file read back without its
 * timestamps: secrets masked (PASS, AUTH initial responses, answers to 334 and "+ ", IMAP's
 * LOGIN and AUTHENTICATE with the lines after their literals), a body
 * cut to its first lines with its size, output written in pieces cut into lines at LF, control
 * bytes shown as \xNN, an over-long line cut with a note, the size bound, and the file's
 * mode and O_EXCL name.
 */
#include "config.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "transcript.h"

static char dir[] = "/tmp/test-transcript.XXXXXX";

/* The one file in dir, read back: header lines kept, the "HH:MM:SS.mmm " of others cut. */
static char *read_back(size_t *size)
{
    static char out[65536];
    char path[4200];
    DIR *d = opendir(dir);
    struct dirent *e;
    out[0] = '\0';
    *size = 0;
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        char line[8192];
        size_t used = 0;
        while (f != NULL && fgets(line, sizeof line, f) != NULL) {
            *size += strlen(line);
            const char *text = line[0] == '#' ? line : line + 13;
            used += (size_t)snprintf(out + used, sizeof out - used, "%s", text);
        }
        if (f != NULL)
            fclose(f);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
    return out;
}

static struct transcript *open_one(uint64_t max)
{
    char err[256];
    struct transcript *t = transcript_open(dir, "test", "192.0.2.1", max, err, sizeof err);
    if (t == NULL)
        printf("# %s\n", err);
    return t;
}

static void line(struct transcript *t, char d, const char *s)
{
    transcript_line(t, d, s, strlen(s));
}

static void test_smtp(void)
{
    struct transcript *t = open_one(1 << 20);
    CHECK(t != NULL, "opened");
    if (t == NULL)
        return;
    line(t, 'S', "220 mx ESMTP yubin\r\n");
    line(t, 'C', "AUTH PLAIN AGRlbW8AZGVtbw==\r\n");
    line(t, 'S', "235 2.7.0 ok\r\n");
    line(t, 'C', "auth login\r\n");
    line(t, 'S', "334 VXNlcm5hbWU6\r\n");
    line(t, 'C', "ZGVtbw==\r\n");
    line(t, 'S', "334 UGFzc3dvcmQ6\r\n");
    line(t, 'C', "*\r\n");
    line(t, 'S', "501 cancelled\r\n");
    line(t, 'C', "DATA\r\n");
    line(t, 'S', "354 go on\r\n");
    for (int i = 1; i <= 12; i++) {
        char body[64];
        snprintf(body, sizeof body, "line %02d\r\n", i); /* 9 octets each */
        line(t, 'C', body);
    }
    line(t, 'C', ".\r\n");
    line(t, 'S', "250 ok\r\n");
    line(t, 'C', "NOOP \x01\x7f\tend\r\n");
    transcript_close(t);
    size_t size;
    const char *got = read_back(&size);
    const char *want_body = "C: line 10\n"
                            "C: [... message: 12 lines, 108 octets in all]\n"
                            "C: .\n"
                            "S: 250 ok\n";
    CHECK(strstr(got, "# yubin transcript: test pid ") == got, "header first");
    CHECK(strstr(got, "peer 192.0.2.1") != NULL, "peer in the header");
    CHECK(strstr(got, "C: AUTH PLAIN ********\n") != NULL, "AUTH PLAIN initial response masked");
    CHECK(strstr(got, "AGRlbW8") == NULL, "no base64 secret left");
    CHECK(strstr(got, "C: auth login\nS: 334 VXNlcm5hbWU6\nC: ********\n") != NULL,
          "the answer to a 334 masked");
    CHECK(strstr(got, "ZGVtbw") == NULL, "no user name in base64 left");
    CHECK(strstr(got, "S: 334 UGFzc3dvcmQ6\nC: *\n") != NULL, "a cancel is shown");
    CHECK(strstr(got, want_body) != NULL, "body: 10 lines, then its size, then the dot");
    CHECK(strstr(got, "line 11") == NULL, "line 11 not shown");
    CHECK(strstr(got, "C: NOOP \\x01\\x7f\tend\n") != NULL, "control bytes escaped, tab kept");
    CHECK(strstr(got, "# end of test dialogue") != NULL, "end line");
}

static void test_pop3_pieces(void)
{
    struct transcript *t = open_one(1 << 20);
    if (t == NULL)
        return;
    transcript_write(t, 'S', "+OK ready\r\n", 11);
    line(t, 'C', "USER a@b\r\n");
    transcript_write(t, 'S', "+OK\r\n", 5);
    line(t, 'C', "PASS hunter2\r\n");
    transcript_write(t, 'S', "+OK in\r\n", 8);
    line(t, 'C', "RETR 1\r\n");
    const char *pieces[] = {"+OK 30 octets\r", "\nSubject: x\r\n\r", "\nbo", "dy\r\n", ".\r\n"};
    for (size_t i = 0; i < sizeof pieces / sizeof pieces[0]; i++)
        transcript_write(t, 'S', pieces[i], strlen(pieces[i]));
    line(t, 'C', "LIST\r\n");
    transcript_write(t, 'S', "+OK\r\n1 30\r\n.\r\n", 14);
    line(t, 'C', "AUTH PLAIN\r\n");
    transcript_write(t, 'S', "+ \r\n", 4);
    line(t, 'C', "AGEAYg==\r\n");
    transcript_close(t);
    size_t size;
    const char *got = read_back(&size);
    CHECK(strstr(got, "C: PASS ********\nS: +OK in\n") != NULL, "PASS masked");
    CHECK(strstr(got, "hunter2") == NULL, "no password left");
    CHECK(strstr(got, "S: +OK 30 octets\nS: Subject: x\nS: \nS: body\nS: .\nC: LIST\n") != NULL,
          "pieces cut into lines at LF; a short body shown whole");
    CHECK(strstr(got, "S: +OK\nS: 1 30\nS: .\n") != NULL, "a listing is no body");
    CHECK(strstr(got, "S: + \nC: ********\n") != NULL, "the answer to '+ ' masked");
}

static void test_imap(void)
{
    struct transcript *t = open_one(1 << 20);
    if (t == NULL)
        return;
    line(t, 'C', "a1 login demo@example.test hunter2\r\n");
    line(t, 'C', "a2 LOGIN {4}\r\n");
    transcript_write(t, 'S', "+ Ready for literal data\r\n", 26);
    line(t, 'C', " {7+}\r\n");
    line(t, 'C', "\r\n");
    line(t, 'C', "a3 AUTHENTICATE PLAIN AGRlbW8AZGVtbw==\r\n");
    line(t, 'C', "a4 SELECT INBOX\r\n");
    transcript_close(t);
    size_t size;
    const char *got = read_back(&size);
    CHECK(strstr(got, "C: a1 login ********\n") != NULL, "LOGIN masked after its name");
    CHECK(strstr(got, "hunter2") == NULL, "no password left");
    CHECK(strstr(got, "C: a2 LOGIN ********\nS: + Ready for literal data\nC: ********\n"
                      "C: ********\n") != NULL,
          "the lines after LOGIN's literals masked");
    CHECK(strstr(got, "C: a3 AUTHENTICATE ********\n") != NULL && strstr(got, "AGRlbW8") == NULL,
          "AUTHENTICATE's initial response masked");
    CHECK(strstr(got, "C: a4 SELECT INBOX\n") != NULL, "other commands shown");
}

static void test_long_line_and_bound(void)
{
    struct transcript *t = open_one(2000);
    if (t == NULL)
        return;
    char big[3000];
    memset(big, 'x', sizeof big);
    transcript_line(t, 'C', big, sizeof big);
    for (int i = 0; i < 100; i++)
        line(t, 'S', "250 2.0.0 Ok, and some more text on this line\r\n");
    transcript_close(t);
    size_t size;
    const char *got = read_back(&size);
    CHECK(strstr(got, "x [... 2002 more octets]\n") != NULL, "a long line cut at 998 with a note");
    CHECK(size <= 2000, "the file within transcript_max_size (%zu)", size);
    CHECK(strstr(got, "# transcript_max_size (2000 octets) reached") != NULL,
          "the note at the end");
    CHECK(strstr(got, "# end of") == NULL, "no end line after the note");
}

static void test_body_from_a_file(void)
{
    char path[4200], data[4096] = "Subject: from a file\n\n.dot first\n";
    for (int i = 0; i < 40; i++)
        strcat(data, "more of the body\n");
    snprintf(path, sizeof path, "%s.msg", dir);
    FILE *f = fopen(path, "w");
    fputs(data, f);
    fclose(f);
    int fd = open(path, O_RDONLY);
    struct transcript *t = open_one(1 << 20);
    if (t == NULL || fd < 0)
        return;
    line(t, 'S', "354 go ahead\r\n");
    transcript_file(t, 'C', fd, 0, 777);
    line(t, 'C', ".");
    transcript_close(t);
    close(fd);
    unlink(path);
    size_t size;
    const char *got = read_back(&size);
    CHECK(strstr(got, "C: Subject: from a file\nC: \nC: ..dot first\nC: more of the body\n") !=
              NULL,
          "the first lines of the file, dot-stuffed as on the wire");
    CHECK(strstr(got, "C: more of the body\nC: [... message: 777 octets in all]\nC: .\n") != NULL,
          "then the size, then the dot");
    int shown = 0;
    for (const char *p = got; (p = strstr(p, "more of the body")) != NULL; p++)
        shown++;
    CHECK(shown == 7, "10 lines in all (%d of the 40 more)", shown);
}

static void test_file(void)
{
    char err[256];
    CHECK(transcript_open("/nonexistent/dir/below", "test", "x", 4096, err, sizeof err) == NULL,
          "a directory that cannot be made: NULL");
    CHECK(strstr(err, "/nonexistent/dir/below") != NULL, "the reason names it: %s", err);
    struct transcript *a = open_one(4096), *b = open_one(4096);
    CHECK(a != NULL && b != NULL, "two transcripts in one second, one process");
    DIR *d = opendir(dir);
    struct dirent *e;
    int files = 0, private = 1;
    while (d != NULL && (e = readdir(d)) != NULL) {
        char path[4200];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        files++;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (stat(path, &st) != 0 || (st.st_mode & 0777) != 0600)
        private = 0;
    }
    if (d != NULL)
        closedir(d);
    CHECK(files == 2, "two files");
    CHECK(private, "mode 0600");
    transcript_close(a);
    transcript_close(b);
    transcript_close(NULL);
    size_t size;
    read_back(&size);
}

int main(void)
{
    umask(022);
    if (mkdtemp(dir) == NULL)
        return 2;
    test_smtp();
    test_pop3_pieces();
    test_imap();
    test_long_line_and_bound();
    test_body_from_a_file();
    test_file();
    rmdir(dir);
    return tap_done();
}
