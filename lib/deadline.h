/*
 * deadline: the wall-clock limits of a queue-run pass (yubin.conf relay_session_limit,
 * relay_destination_limit, queue_run_limit; queue-run(8)): deadlines on CLOCK_MONOTONIC, so a
 * clock set back or forward never stretches or cuts them, and the run's own limit as a
 * SIGALRM that ends the wait() for workers.
 *
 * It never sleeps and never kills anything: it only says how much time is left.
 */
#ifndef YUBIN_DEADLINE_H
#define YUBIN_DEADLINE_H

/* Milliseconds on CLOCK_MONOTONIC. */
long long deadline_now_ms(void);
/* Starts a deadline seconds from now, unless *deadline is already started (non-zero). */
void deadline_start(long long *deadline, unsigned seconds);
/* Whole seconds something started now may take: cap, cut to what is left before deadline
 * (rounded up; a deadline of 0 is not started: cap). 0 once the deadline has passed. */
unsigned deadline_left(long long deadline, unsigned cap);

/* Arms the run's limit: after seconds, deadline_run_over() is true, and a wait() or other slow
 * system call in progress then (or within a second after it) fails with EINTR. A child
 * that must not see it calls deadline_run_child(). 0, or -1 (errno set). */
int deadline_run_alarm(unsigned seconds);
int deadline_run_over(void);
void deadline_run_child(void);

#endif
