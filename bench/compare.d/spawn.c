/*
 * spawn: the machine's fork+exec ceiling for bench/compare. N processes each fork and exec a
 * trivial program (default /bin/true), wait for it, and repeat for S seconds; the result is
 * programs started and reaped per second of wall time, all processes together. It is the
 * upper bound of any one-process-per-connection server (yubin under inetd or systemd, and
 * Dovecot's pop3) on this machine.
 *
 *     spawn [--procs N] [--seconds S] [--program PATH]
 *
 * It is a measurement, not a test: it never runs anything but PROGRAM with no arguments.
 */
#define _DEFAULT_SOURCE /* MAP_ANONYMOUS */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* One loop: returns the number of programs run, or -1. */
static long loop(const char *program, double seconds)
{
    long n = 0;
    double end = now() + seconds;
    while (now() < end) {
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            execl(program, program, (char *)NULL);
            _exit(127);
        }
        int status;
        if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return -1;
        n++;
    }
    return n;
}

int main(int argc, char **argv)
{
    long procs = 1;
    double seconds = 2.0;
    const char *program = "/bin/true";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--procs") == 0)
            procs = atol(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--program") == 0)
            program = argv[i + 1];
        else
            argc = 0;
    }
    if (argc % 2 == 0 || procs < 1 || procs > 64 || seconds <= 0 || seconds > 60) {
        fprintf(stderr, "usage: spawn [--procs N] [--seconds S] [--program PATH]\n");
        return 2;
    }
    /* Each child writes its count into a shared page. */
    long *counts =
        mmap(NULL, sizeof(long) * 64, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (counts == MAP_FAILED) {
        perror("spawn: mmap");
        return 1;
    }
    double t0 = now();
    for (long p = 0; p < procs; p++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("spawn: fork");
            return 1;
        }
        if (pid == 0) {
            counts[p] = loop(program, seconds);
            _exit(counts[p] < 0 ? 1 : 0);
        }
    }
    int status, failed = 0;
    while (wait(&status) > 0)
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            failed = 1;
    double took = now() - t0;
    if (failed) {
        fprintf(stderr, "spawn: %s failed: %s\n", program, strerror(errno));
        return 1;
    }
    long total = 0;
    for (long p = 0; p < procs; p++)
        total += counts[p];
    printf("spawn: %ld process(es), %ld runs of %s in %.2f s: %.1f per second\n", procs, total,
           program, took, (double)total / took);
    return 0;
}
