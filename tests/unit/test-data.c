/*
 * test-data: lib/data, the DATA stream of smtp-in, fed through a pipe into lib/netio and
 * stored with lib/deliver in a mkdtemp state directory: dot-unstuffing, CRLF to LF, the size
 * as SIZE counts it, Received hops, submission's Date: and Message-ID:, and the refusals
 * (a bare CR or LF ends the session; a long line, a big message, a loop refuse the message
 * and store nothing more). It never touches anything outside its temporary directory.
 */
#include "config.h"

#include "data.h"
#include "deliver.h"
#include "netio.h"
#include "tap.h"
#include "util.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char top[PATH_MAX];
static struct deliver dl;
static struct netio io;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* The one message in new/ of demo@example.test (removed after reading), "" if none. */
static void stored(char *buf, size_t size)
{
    char dir[PATH_MAX], path[PATH_MAX + 300];
    struct dirent *e;
    buf[0] = '\0';
    str_format(dir, sizeof dir, "%s/mail/example.test/demo/new", top);
    DIR *d = opendir(dir);
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        str_format(path, sizeof path, "%s/%s", dir, e->d_name);
        int fd = open(path, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;
        buf[n > 0 ? n : 0] = '\0';
        if (fd >= 0)
            close(fd);
        unlink(path);
    }
    if (d != NULL)
        closedir(d);
}

/* Feeds input (len octets, then EOF) to data_read; stores the message when it ends well and
 * nothing refused it. */
static enum data_end run(const char *input, size_t len, const struct data_opts *o,
                         struct data_state *st, char *out, size_t size)
{
    int p[2];
    out[0] = '\0';
    if (pipe(p) != 0 || write(p[1], input, len) != (ssize_t)len)
        abort();
    close(p[1]);
    netio_init(&io, p[0], -1, 5);
    deliver_reset(&dl, "a@remote.test");
    deliver_add(&dl, "demo@example.test", 0, 0, 0);
    enum data_end end = DATA_LOST;
    if (deliver_begin(&dl, 0) == 0)
        end = data_read(&io, &dl, o, st);
    int ok = end == DATA_END && data_refusal(st, o) == NULL && st->store_errno == 0 &&
             deliver_commit(&dl) == 0;
    deliver_end(&dl, !ok);
    close(p[0]);
    if (ok)
        stored(out, size);
    return end;
}

#define RUN(text, o, st, out) run(text, sizeof text - 1, o, st, out, sizeof out)

static void test_plain(void)
{
    struct data_opts o = {.max_size = 100000, .max_hops = 3, .hostname = "host.test"};
    struct data_state st;
    char out[4000];
    CHECK(RUN("Received: from a\r\nReceived: from b\r\nSubject: x\r\n\r\n..dot\r\n.\r\n", &o, &st,
              out) == DATA_END,
          "a message ends at <CRLF>.<CRLF>");
    CHECK_STR(out, "Received: from a\nReceived: from b\nSubject: x\n\n.dot\n",
              "stored with LF line ends, the stuffing dot removed");
    CHECK(st.hops == 2 && st.size == 56, "two hops, size %llu with CRLF line ends",
          (unsigned long long)st.size);
    CHECK(strstr(out, "Date:") == NULL && strstr(out, "Message-ID:") == NULL,
          "port 25 adds no header fields");
    o.submission = 1;
    CHECK(RUN("Subject: x\r\n\r\nbody\r\n.\r\n", &o, &st, out) == DATA_END &&
              strncmp(out, "Subject: x\nDate: ", 17) == 0 && strstr(out, "\nMessage-ID: <") &&
              strstr(out, "@host.test>\n\nbody\n") != NULL,
          "submission adds Date: and Message-ID: where the header section ends");
    CHECK(RUN("Subject: x\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <1@a>\r\n"
              "\r\nb\r\n.\r\n",
              &o, &st, out) == DATA_END &&
              strstr(strstr(out, "Date:") + 1, "Date:") == NULL &&
              strstr(out, "Message-ID: <1@a>\n\nb\n") != NULL &&
              strstr(strstr(out, "Message-ID:") + 1, "Message-ID:") == NULL,
          "submission keeps the fields it has");
    CHECK(RUN("Subject: only headers\r\n.\r\n", &o, &st, out) == DATA_END &&
              strstr(out, "Subject: only headers\nDate: ") == out,
          "a message that is all header section gets them at its end");
}

static void test_refusals(void)
{
    struct data_opts o = {.max_size = 60, .max_hops = 1, .hostname = "host.test"};
    struct data_state st;
    char out[4000], big[1200];
    CHECK(RUN("a\nb\r\n.\r\n", &o, &st, out) == DATA_BARE, "a bare LF: DATA_BARE");
    CHECK(RUN("a\rb\r\n.\r\n", &o, &st, out) == DATA_BARE, "a bare CR: DATA_BARE");
    CHECK(RUN("a\r\n.\n", &o, &st, out) == DATA_BARE, "<CRLF>.<LF> ends nothing: DATA_BARE");
    CHECK(RUN("a\r\n", &o, &st, out) == DATA_LOST, "end of input in DATA: DATA_LOST");
    CHECK(RUN("Received: a\r\nReceived: b\r\n\r\nx\r\n.\r\n", &o, &st, out) == DATA_END &&
              st.hops == 2 && strstr(data_refusal(&st, &o), "554 5.4.6") != NULL && !out[0],
          "two hops over max_hops 1: 554 5.4.6, nothing stored");
    o.max_hops = 10;
    CHECK(RUN("0123456789012345678901234567890123456789\r\n0123456789012345678901234\r\n.\r\n", &o,
              &st, out) == DATA_END &&
              strstr(data_refusal(&st, &o), "552 5.3.4") != NULL && !out[0],
          "over max_size: 552 5.3.4, nothing stored");
    o.max_size = 100000;
    memset(big, 'L', sizeof big);
    memcpy(big + 999, "\r\nok\r\n.\r\n", 9);
    CHECK(run(big, 1008, &o, &st, out, sizeof out) == DATA_END && st.too_long &&
              strstr(data_refusal(&st, &o), "554 5.6.0") != NULL && !out[0],
          "a line of 1001 octets: 554 5.6.0, read to the end, nothing stored");
    memcpy(big + 998, "\r\nok\r\n.\r\n", 9);
    CHECK(run(big, 1007, &o, &st, out, sizeof out) == DATA_END && !st.too_long &&
              strlen(out) == 1002,
          "a line of 1000 octets is fine");
    memset(big, 'L', sizeof big);
    memcpy(big + 999, "\nok\r\n.\r\n", 8);
    CHECK(run(big, 1007, &o, &st, out, sizeof out) == DATA_BARE,
          "a long line ended by a bare LF: DATA_BARE");
}

int main(void)
{
    str_format(top, sizeof top, "%s/test-data.XXXXXX",
               getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(top) == NULL)
        return 1;
    deliver_init(&dl, top, "host.test", DELIVER_QUEUE_RETRY);
    test_plain();
    test_refusals();
    deliver_free(&dl);
    nftw(top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return tap_done();
}
