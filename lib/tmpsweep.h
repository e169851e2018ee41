/*
 * tmpsweep: removes what interrupted writes left behind in tmp directories (queue-run(8)):
 * files in state_dir/tmp/ (where every message is written first) and in the tmp/ of every
 * Maildir under state_dir/mail (<domain>/<user>/tmp/ and its Maildir++ folders'
 * <domain>/<user>/.<folder>/tmp/) that nobody has read or written for max_age seconds
 * (maildir(5): 36 hours). The queue's own leftovers are queue_clean's.
 *
 * It never follows a symbolic link: state_dir is opened by name (the administrator's path),
 * everything below it with openat(O_NOFOLLOW | O_DIRECTORY) from its parent's descriptor, and
 * only regular files are removed (unlinkat), never a directory, a link or a dot file. It runs
 * as the mail account (queue-run has dropped root by then), and never reads a message.
 */
#ifndef YUBIN_TMPSWEEP_H
#define YUBIN_TMPSWEEP_H

#define TMPSWEEP_MAX_AGE (36 * 3600) /* maildir(5) */
#define TMPSWEEP_EVERY 3600          /* at most one sweep an hour */

/* Sweeps now; files removed, or -1 (errno set) if state_dir cannot be opened. */
int tmpsweep(const char *state_dir, unsigned max_age);
/* Sweeps if the last sweep (the time of the file state_dir/.tmp-swept, which it renews) is
 * every seconds old or more, or there was none; files removed, 0 when not due, or -1. */
int tmpsweep_due(const char *state_dir, unsigned every, unsigned max_age);

#endif
