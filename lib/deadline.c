/*
 * deadline: deadlines and the run's alarm (see deadline.h). The SIGALRM handler only sets a flag
 * and re-arms itself for a second later, so a wait() entered just after the first alarm is
 * still interrupted; it must never do more than that (async-signal safety).
 */
#include "config.h"

#include <signal.h>
#include <time.h>
#include <unistd.h>

#include "deadline.h"

static volatile sig_atomic_t run_over;

long long deadline_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void deadline_start(long long *deadline, unsigned seconds)
{
    if (*deadline == 0)
        *deadline = deadline_now_ms() + (long long)seconds * 1000;
}

unsigned deadline_left(long long deadline, unsigned cap)
{
    if (deadline == 0)
        return cap;
    long long left = deadline - deadline_now_ms();
    if (left <= 0)
        return 0;
    if (left >= (long long)cap * 1000)
        return cap;
    return (unsigned)((left + 999) / 1000);
}

static void on_alarm(int sig)
{
    (void)sig;
    run_over = 1;
    alarm(1);
}

int deadline_run_alarm(unsigned seconds)
{
    struct sigaction sa = {.sa_handler = on_alarm}; /* no SA_RESTART: it ends a wait() */
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGALRM, &sa, NULL) != 0)
        return -1;
    run_over = 0;
    alarm(seconds);
    return 0;
}

int deadline_run_over(void)
{
    return run_over != 0;
}

void deadline_run_child(void)
{
    alarm(0);
    signal(SIGALRM, SIG_DFL);
    run_over = 0;
}
