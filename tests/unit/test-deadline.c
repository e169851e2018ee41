/*
 * test-deadline: lib/deadline: deadlines that are not started, running, cut and passed, and the
 * run's alarm ending a wait() for a child that would take much longer.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deadline.h"
#include "tap.h"

static void test_deadlines(void)
{
    long long d = 0;
    CHECK(deadline_left(0, 600) == 600, "a deadline not started leaves the cap");
    deadline_start(&d, 3);
    long long first = d;
    CHECK(d > 0 && deadline_left(d, 600) == 3, "3 s left of a 3 s deadline");
    CHECK(deadline_left(d, 2) == 2, "the cap when less than what is left");
    deadline_start(&d, 100);
    CHECK(d == first, "a started deadline is never moved");
    d = deadline_now_ms() - 1;
    CHECK(deadline_left(d, 600) == 0, "none left after it");
    d = deadline_now_ms() + 1500;
    CHECK(deadline_left(d, 600) == 2, "part of a second counts as one (%u)", deadline_left(d, 600));
}

static void test_alarm(void)
{
    CHECK(!deadline_run_over(), "not over before the alarm");
    pid_t pid = fork();
    if (pid == 0) {
        deadline_run_child();
        sleep(5);
        _exit(0);
    }
    long long start = deadline_now_ms();
    CHECK(deadline_run_alarm(1) == 0, "alarm armed");
    int st, rc = wait(&st), err = errno;
    long long took = deadline_now_ms() - start;
    CHECK(rc == -1 && err == EINTR && deadline_run_over(), "the wait ends with EINTR, over");
    CHECK(took >= 900 && took < 3000, "after about a second (%lld ms)", took);
    kill(pid, SIGKILL);
    CHECK(waitpid(pid, &st, 0) == pid, "the child is still there to reap");
    alarm(0);
}

int main(void)
{
    test_deadlines();
    test_alarm();
    return tap_done();
}
