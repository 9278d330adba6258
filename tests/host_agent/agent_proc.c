/* A dfnet-host run by a host agent test (agent_proc.h). */
#include "agent_proc.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

void agent_proc_sleep_ms(unsigned ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

pid_t agent_proc_spawn(const char *const *argv, const char *log) {
  pid_t pid = test_child_fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      dup2(fd, 1);
      close(fd);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
  }
  return pid;
}

int agent_proc_wait_exit(pid_t pid, unsigned timeout_ms) {
  for (unsigned waited = 0; waited <= timeout_ms; waited += 20) {
    int status;
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid)
      return status;
    if (r < 0)
      return -1;
    agent_proc_sleep_ms(20);
  }
  return -1;
}

void agent_proc_terminate(pid_t pid, const char *log) {
  assert_int_equal(kill(pid, SIGTERM), 0);
  int status = agent_proc_wait_exit(pid, 15000);
  if (status == -1) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    fail_msg("the agent did not exit after SIGTERM (log: %s)", log);
  }
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

int agent_proc_log_count(const char *path, const char *what) {
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  int n = 0;
  char line[4096];
  while (fgets(line, sizeof line, f) != NULL)
    n += strstr(line, what) != NULL;
  fclose(f);
  return n;
}

const char *agent_proc_slurp(const char *path) {
  static char buf[65536];
  buf[0] = '\0';
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return buf;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}
