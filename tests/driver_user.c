/* The tests' driver user (driver_user.h). */
#include "driver_user.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"

/* Look the user up. */
static bool lookup(uid_t *uid, gid_t *gid) {
  struct passwd *pw = getpwnam(TEST_DRIVER_USER);
  if (pw == NULL)
    return false;
  *uid = pw->pw_uid;
  *gid = pw->pw_gid;
  return true;
}

/* Run useradd once; returns its exit status (-1: it could not run). */
static int useradd(void) {
  pid_t pid = test_child_fork();
  if (pid < 0)
    return -1;
  if (pid == 0) {
    execlp("useradd", "useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
           TEST_DRIVER_USER, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool test_driver_user(uid_t *uid, gid_t *gid) {
  if (geteuid() != 0) {
    *uid = getuid();
    *gid = getgid();
    return true;
  }
  for (int attempt = 0; attempt < 20; attempt++) {
    if (lookup(uid, gid))
      return true;
    int rc = useradd(); /* another test may hold /etc/passwd's lock: try again */
    if (rc == 0 && lookup(uid, gid))
      return true;
    struct timespec pause = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    nanosleep(&pause, NULL);
  }
  fprintf(stderr, "test_driver_user: no user %s and useradd could not create it\n",
          TEST_DRIVER_USER);
  return false;
}

bool test_driver_user_ensure(void) {
  uid_t uid;
  gid_t gid;
  return test_driver_user(&uid, &gid);
}
