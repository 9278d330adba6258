/* Child processes of a test program, which never outlive it.
 *
 * Every test and benchmark that starts a process (a manager, an agent, a CLI run, a server)
 * forks it through test_child_fork() or test_child_forkpty(). Such a child:
 *   - gets PR_SET_PDEATHSIG(SIGKILL): when the test program dies, whatever the way (a
 *     crash, ctest's timeout, SIGKILL), the kernel kills the child;
 *   - leads a process group of its own, which the processes it starts in turn (an agent's
 *     driver hosts) inherit;
 *   - is registered: at exit (a failed cmocka assertion that ends the program included)
 *     and on SIGTERM, SIGINT and SIGHUP, every registered child that has not been reaped
 *     yet has its whole process group killed (SIGKILL) and is reaped.
 *
 * A child that the test reaped itself (waitpid) is skipped: its number may already belong
 * to another process. PR_SET_PDEATHSIG fires when the *thread* that forked exits, so fork
 * from the thread that lives as long as the child should (the test's main thread).
 * The registry holds up to 256 children per program; past that, test_child_fork() fails
 * with EMFILE. Not thread-safe: fork from one thread. scripts/test.sh checks after every
 * ctest run that no process of the build tree is left.
 */
#ifndef DFNET_TESTS_CHILD_H
#define DFNET_TESTS_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* fork(2) for a test. Returns 0 in the child (PDEATHSIG set, its own process group; call
 * exec or _exit, never return into cmocka), the child's pid in the parent, or -1 with
 * errno set (fork's errors; EMFILE when the registry is full). */
pid_t test_child_fork(void);

/* forkpty(3) for a test: the child runs in a new session on the pty's slave (its own
 * process group as session leader), with PDEATHSIG set; *master gets the master side.
 * Returns as test_child_fork(). */
pid_t test_child_forkpty(int *master);

/* Kill (SIGKILL to the process group) and reap every registered child not reaped yet.
 * Runs at exit and on SIGTERM/SIGINT/SIGHUP by itself; a test may call it too. Only the
 * process that registered the children acts (a forked child calling exit() does not). */
void test_child_kill_all(void);

/* What a child left in a file (its stdout or stderr redirected there, a file it wrote): up
 * to cap - 1 bytes of path into buf, NUL-terminated; "" when the file cannot be opened. */
void test_child_read_output(const char *path, char *buf, size_t cap);

#endif /* DFNET_TESTS_CHILD_H */
