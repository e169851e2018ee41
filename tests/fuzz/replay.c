/*
 * tests/fuzz/replay.c: the main() of a fuzz harness built without libFuzzer (by `make
 * check`). It feeds every file named on the command line (a directory: every file in it, in
 * name order) to LLVMFuzzerTestOneInput once. With no arguments it replays
 * $YUBIN_SRC/tests/fuzz/corpus/<program name>/. Each input has 20 seconds (SIGALRM kills a
 * hang). It prints one TAP line per directory or file; it never changes the corpus.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (1u << 20)

/* Every input is read before LLVMFuzzerInitialize, which may drop root: the corpus need not
 * be readable by the mail account. */
struct input {
    unsigned char *data; /* exactly len bytes, so that ASan sees reads past the end */
    size_t len;
};
static struct input *inputs;
static size_t n_inputs, cap_inputs;

static int load_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    unsigned char *buf = malloc(REPLAY_MAX_INPUT);
    if (buf == NULL) {
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_MAX_INPUT, f);
    int bad = ferror(f);
    fclose(f);
    unsigned char *exact = bad ? NULL : malloc(n ? n : 1);
    if (exact != NULL)
        memcpy(exact, buf, n);
    free(buf);
    if (exact == NULL)
        return -1;
    if (n_inputs == cap_inputs) {
        cap_inputs = cap_inputs ? cap_inputs * 2 : 256;
        struct input *grown = realloc(inputs, cap_inputs * sizeof *inputs);
        if (grown == NULL)
            abort();
        inputs = grown;
    }
    inputs[n_inputs].data = exact;
    inputs[n_inputs++].len = n;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file in dir, in name order. Returns the count, or -1. */
static long load_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            char **grown = realloc(names, cap * sizeof *names);
            if (grown == NULL)
                abort();
            names = grown;
        }
        names[n] = strdup(e->d_name);
        if (names[n++] == NULL)
            abort();
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    long done = 0;
    for (size_t i = 0; i < n; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (load_file(path) != 0)
                return -1;
            done++;
        }
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    char deflt[4096];
    char *only[] = {deflt};
    char **args = argv + 1;
    int nargs = argc - 1;
    const char *self = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (strncmp(self, "lt-", 3) == 0)
        self += 3;
    if (nargs == 0) {
        const char *src = getenv("YUBIN_SRC");
        snprintf(deflt, sizeof deflt, "%s/tests/fuzz/corpus/%s", src ? src : ".", self);
        args = only;
        nargs = 1;
    }
    long *counts = calloc((size_t)nargs, sizeof *counts);
    if (counts == NULL)
        return 1;
    for (int i = 0; i < nargs; i++) {
        struct stat st;
        counts[i] = -1;
        if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode))
            counts[i] = load_dir(args[i]);
        else if (stat(args[i], &st) == 0)
            counts[i] = load_file(args[i]) == 0 ? 1 : -1;
        else
            fprintf(stderr, "%s: %s\n", args[i], strerror(errno));
    }
    LLVMFuzzerInitialize(&argc, &argv);
    printf("1..%d\n", nargs);
    fflush(stdout);
    int failed = 0;
    size_t next = 0;
    for (int i = 0; i < nargs; i++) {
        for (long k = 0; k < counts[i]; k++, next++) {
            alarm(20); /* a hang is killed by SIGALRM */
            LLVMFuzzerTestOneInput(inputs[next].data, inputs[next].len);
            alarm(0);
            free(inputs[next].data);
        }
        printf("%s %d - %s: %ld inputs replayed\n", counts[i] > 0 ? "ok" : "not ok", i + 1, args[i],
               counts[i]);
        failed |= counts[i] <= 0;
    }
    free(counts);
    free(inputs);
    return failed ? 1 : 0;
}
