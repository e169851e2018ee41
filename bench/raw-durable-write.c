/*
 * raw-durable-write: the baseline for bench/smtp-ingest. The durable Maildir write loop alone,
 * with no SMTP, no parsing and no yubin code: per message open tmp/<name>, write the bytes,
 * fsync, close, rename into new/, fsync new/. N writer processes share the M messages; the
 * result is messages per second of wall time, on the disk of --dir.
 *
 *     raw-durable-write --dir DIR [--writers N] [--messages M] [--size BYTES]
 *
 * It is a measurement, not a test: it must never be run on tmpfs to mean anything, and it
 * never touches anything outside DIR (it makes DIR/tmp and DIR/new and leaves the files).
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static int die(const char *what, const char *path)
{
    fprintf(stderr, "raw-durable-write: %s %s: %s\n", what, path, strerror(errno));
    return 1;
}

static int write_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    if (close(fd) != 0)
        rc = -1;
    return rc;
}

/* One message, the way a durable Maildir writer must do it. */
static int one(const char *dir, const char *data, size_t size, int writer, long i)
{
    char tmp[4096], new[4096], newdir[4096];
    snprintf(tmp, sizeof tmp, "%s/tmp/%ld.W%dP%ld.raw", dir, (long)time(NULL), writer, i);
    snprintf(new, sizeof new, "%s/new/%ld.W%dP%ld.raw", dir, (long)time(NULL), writer, i);
    snprintf(newdir, sizeof newdir, "%s/new", dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return die("open", tmp);
    if (write_all(fd, data, size) != 0 || fsync(fd) != 0)
        return die("write/fsync", tmp);
    if (close(fd) != 0)
        return die("close", tmp);
    if (rename(tmp, new) != 0)
        return die("rename", new);
    if (fsync_dir(newdir) != 0)
        return die("fsync", newdir);
    return 0;
}

static int writer(const char *dir, size_t size, int w, long count)
{
    char *data = malloc(size + 1);
    if (data == NULL)
        return 1;
    for (size_t j = 0; j < size; j++)
        data[j] = (j % 72 == 71) ? '\n' : (char)('a' + j % 26);
    for (long i = 0; i < count; i++)
        if (one(dir, data, size, w, i) != 0)
            return 1;
    free(data);
    return 0;
}

static int usage(void)
{
    fprintf(stderr,
            "usage: raw-durable-write --dir DIR [--writers N] [--messages M] [--size BYTES]\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *dir = NULL;
    long writers = 1, messages = 2000, size = 4096;
    char path[4096];
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--dir") == 0)
            dir = argv[i + 1];
        else if (strcmp(argv[i], "--writers") == 0)
            writers = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--messages") == 0)
            messages = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--size") == 0)
            size = atol(argv[i + 1]);
        else
            return usage();
    }
    if (dir == NULL || argc % 2 == 0 || writers < 1 || writers > 256 || messages < writers ||
        size < 0)
        return usage();
    snprintf(path, sizeof path, "%s/tmp", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return die("mkdir", path);
    snprintf(path, sizeof path, "%s/new", dir);
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return die("mkdir", path);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long w = 0; w < writers; w++) {
        long count = messages / writers + (w < messages % writers ? 1 : 0);
        pid_t pid = fork();
        if (pid < 0)
            return die("fork", "");
        if (pid == 0)
            _exit(writer(dir, (size_t)size, (int)w, count));
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (failed)
        return 1;
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("raw durable write: %ld writer(s), %ld messages of %ld bytes in %.2f s: "
           "%.1f messages/s\n",
           writers, messages, size, secs, (double)messages / secs);
    return 0;
}
