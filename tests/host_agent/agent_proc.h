/* A dfnet-host run by a host agent test (test_host_agent*.c): started as a child the test
 * harness kills on every way out (tests/child.h), its stdout and stderr appended to a log,
 * waited for, stopped, and its log read back. cmocka: the functions that assert say so. */
#ifndef DFNET_TESTS_HOST_AGENT_AGENT_PROC_H
#define DFNET_TESTS_HOST_AGENT_AGENT_PROC_H

#include <stdbool.h>
#include <sys/types.h>

/* Sleep ms milliseconds. */
void agent_proc_sleep_ms(unsigned ms);

/* Start argv[0] with argv (NULL-terminated) as a registered child (test_child_fork), its
 * output appended to log. Returns its pid, or -1 when fork failed. */
pid_t agent_proc_spawn(const char *const *argv, const char *log);

/* Wait up to timeout_ms for pid to exit. Its wait status, or -1 (still running, or not a
 * child). */
int agent_proc_wait_exit(pid_t pid, unsigned timeout_ms);

/* SIGTERM pid and assert that it exits 0 within 15 s (else it is killed and the test fails,
 * naming log). */
void agent_proc_terminate(pid_t pid, const char *log);

/* How many lines of the file at path hold `what` (0 when it cannot be read). */
int agent_proc_log_count(const char *path, const char *what);

/* The first 64 KiB of the file at path, NUL-terminated, in a static buffer ("" when it
 * cannot be read): valid until the next call. */
const char *agent_proc_slurp(const char *path);

#endif
