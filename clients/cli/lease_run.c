/* dfnet CLI: `lease run [acquire options] TARGET... -- CMD [ARGS...]` — hold a lease while a
 * command runs, the way a CI job wants it: acquire (waiting if asked), keep it renewed (the
 * library renews it at TTL/3), run CMD with DFNET_LEASE set to its token, release it when
 * CMD ends — whether CMD exits, crashes, or is stopped by Ctrl-C or a CI runner's SIGTERM —
 * and exit with CMD's status (128 + the signal that ended it, as a shell does).
 *
 * Signals (lease.h, cli_lease_signals_t; also `lease acquire`): SIGINT, SIGTERM, SIGHUP and
 * SIGQUIT are blocked in every thread and taken by one watcher thread (sigwaitinfo). While
 * the lease is awaited, one cancels the acquire (the request leaves the queue) and dfnet
 * exits 128 + it. While CMD runs, each is sent on to CMD — but one the terminal sent
 * (si_code SI_KERNEL: Ctrl-C reached CMD already, it runs in our process group) — and dfnet
 * waits for CMD, releases, and exits with CMD's status. CMD starts with the signal mask and
 * the SIGPIPE disposition dfnet had. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clients/cli/lease.h"

#define STOP_SIGNAL SIGUSR2 /* cli__lease_signals_stop to the watcher */

extern char **environ;

/* ---- the signal watcher ------------------------------------------------------------------ */

static void *watch(void *p) {
  cli_lease_signals_t *w = p;
  for (;;) {
    siginfo_t si;
    int sig = sigwaitinfo(&w->set, &si);
    if (sig < 0)
      continue;
    pthread_mutex_lock(&w->mu);
    if (w->stopping) {
      pthread_mutex_unlock(&w->mu);
      return NULL;
    }
    if (sig == STOP_SIGNAL) { /* not ours: as if it were not blocked, to nobody */
      pthread_mutex_unlock(&w->mu);
      continue;
    }
    if (w->first == 0)
      w->first = sig;
    dfnet_client_t *c = w->client;
    pid_t child = w->child;
    if (c == NULL && child == 0)
      w->unsent = sig;
    pthread_mutex_unlock(&w->mu);
    if (child > 0 && si.si_code != SI_KERNEL)
      kill(child, sig);
    else if (c != NULL)
      dfnet_client_lease_acquire_cancel(c);
  }
}

int cli__lease_signals_start(cli_lease_signals_t *w) {
  memset(w, 0, sizeof *w);
  pthread_mutex_init(&w->mu, NULL);
  sigemptyset(&w->set);
  sigaddset(&w->set, SIGINT);
  sigaddset(&w->set, SIGTERM);
  sigaddset(&w->set, SIGHUP);
  sigaddset(&w->set, SIGQUIT);
  sigaddset(&w->set, STOP_SIGNAL);
  pthread_sigmask(SIG_BLOCK, &w->set, &w->old);
  int e = pthread_create(&w->thread, NULL, watch, w);
  if (e != 0) {
    pthread_sigmask(SIG_SETMASK, &w->old, NULL);
    return cli__fail(DFNET_STATUS_INTERNAL, "cannot start a thread: %s", strerror(e));
  }
  w->started = true;
  return CLI_EXIT_OK;
}

int cli__lease_signals_stop(cli_lease_signals_t *w) {
  if (!w->started)
    return 0;
  pthread_mutex_lock(&w->mu);
  w->stopping = true;
  pthread_mutex_unlock(&w->mu);
  pthread_kill(w->thread, STOP_SIGNAL);
  pthread_join(w->thread, NULL);
  w->started = false;
  pthread_sigmask(SIG_SETMASK, &w->old, NULL);
  pthread_mutex_destroy(&w->mu);
  return w->first;
}

void cli__lease_signals_target(cli_lease_signals_t *w, dfnet_client_t *client, pid_t child) {
  pthread_mutex_lock(&w->mu);
  w->client = client;
  w->child = child;
  int unsent = child > 0 ? w->unsent : 0;
  if (child > 0)
    w->unsent = 0;
  pthread_mutex_unlock(&w->mu);
  if (unsent != 0)
    kill(child, unsent);
}

int cli__lease_signals_first(cli_lease_signals_t *w) {
  pthread_mutex_lock(&w->mu);
  int sig = w->first;
  pthread_mutex_unlock(&w->mu);
  return sig;
}

/* ---- lease run --------------------------------------------------------------------------- */

/* The library stopped renewing the lease (client thread): say so; CMD goes on. */
static void lease_lost(void *user, uint64_t id, dfnet_status_t st, uint64_t expires_ms,
                       const char *message) {
  (void)user;
  (void)expires_ms;
  if (st != DFNET_STATUS_OK)
    fprintf(stderr, "dfnet: %s: lease %" PRIu64 " is no longer renewed: %s\n", dfnet_status_str(st),
            id, message);
}

/* Our environment with DFNET_LEASE=token (malloc'd: the array and that one string; the
 * others are borrowed), or NULL. Built before fork: the child only switches to it (setenv
 * is not for a process with threads). */
static char **environment_with(const char *token) {
  size_t n = 0;
  while (environ[n] != NULL)
    n++;
  char **env = malloc((n + 2) * sizeof *env);
  size_t len = strlen("DFNET_LEASE=") + strlen(token) + 1;
  char *lease = malloc(len);
  if (env == NULL || lease == NULL) {
    free(env);
    free(lease);
    return NULL;
  }
  snprintf(lease, len, "DFNET_LEASE=%s", token);
  size_t k = 0;
  for (size_t i = 0; i < n; i++)
    if (strncmp(environ[i], "DFNET_LEASE=", 12) != 0)
      env[k++] = environ[i];
  env[k++] = lease;
  env[k] = NULL;
  return env;
}

static void environment_free(char **env) {
  size_t n = 0;
  while (env[n] != NULL)
    n++;
  free(env[n - 1]); /* the last: DFNET_LEASE=, ours */
  free(env);
}

/* Run cmd (argv-style) in a child with DFNET_LEASE set, the watcher's signals going to it;
 * its exit status as a shell gives it. */
static int run_child(char **cmd, const dfnet_client_lease_t *l, cli_lease_signals_t *w) {
  char **env = environment_with(l->token);
  if (env == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  char failed[512]; /* written by the child when exec fails: formatted before fork */
  int flen = snprintf(failed, sizeof failed, "dfnet: lease run: cannot run '%s': ", cmd[0]);
  if (flen < 0 || (size_t)flen >= sizeof failed)
    flen = (int)strlen(failed);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    environment_free(env);
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "cannot start '%s': %s", cmd[0],
                     strerror(errno));
  }
  if (pid == 0) {
    pthread_sigmask(SIG_SETMASK, &w->old, NULL);
    signal(SIGPIPE, SIG_DFL);
    environ = env;
    execvp(cmd[0], cmd);
    int e = errno;
    const char *why = strerror(e);
    (void)cli__write_all(STDERR_FILENO, failed, (size_t)flen);
    (void)cli__write_all(STDERR_FILENO, why, strlen(why));
    (void)cli__write_all(STDERR_FILENO, "\n", 1);
    _exit(e == ENOENT ? 127 : 126);
  }
  environment_free(env);
  cli__lease_signals_target(w, NULL, pid);
  int ws = 0;
  while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
  }
  cli__lease_signals_target(w, NULL, 0);
  if (WIFSIGNALED(ws))
    return 128 + WTERMSIG(ws);
  return WIFEXITED(ws) ? WEXITSTATUS(ws) : CLI_EXIT_FAILED;
}

/* Hold lease l while cmd runs; release it after. Returns cmd's status. */
static int hold_while(dfnet_client_t *c, const dfnet_client_lease_t *l, char **cmd,
                      cli_lease_signals_t *w) {
  char when[80];
  cli__expiry_str(l->expires_ms, cli__now_ms(), when, sizeof when);
  fprintf(stderr, "[dfnet: lease %" PRIu64 " acquired, expires %s, renewed while '%s' runs]\n",
          l->id, when, cmd[0]);
  int sig = cli__lease_signals_first(w); /* one that came as the lease was granted */
  int code = sig != 0 ? 128 + sig : run_child(cmd, l, w);
  dfnet_client_error_t err;
  if (dfnet_client_lease_release(c, l->id, NULL, false, NULL, &err) == DFNET_STATUS_OK)
    fprintf(stderr, "[dfnet: lease %" PRIu64 " released]\n", l->id);
  else
    cli__fail_err(&err);
  return code;
}

int cmd_lease_run(int argc, char **argv) {
  int split = argc; /* the first "--": the command follows it */
  for (int i = 0; i < argc && split == argc; i++)
    if (strcmp(argv[i], "--") == 0)
      split = i;
  cli_lease_ask_t a = {0};
  static const cli_syntax_t syn = {
      .usage =
          "lease run [--match K=V]... [--ttl DURATION] [--wait [TIMEOUT]] [--priority P] "
          "[--reason TEXT] TARGET... -- CMD [ARGS...]",
      .about =
          "Run CMD holding a lease on TARGET...: acquire it (waiting in the queue with "
          "--wait), run CMD with DFNET_LEASE set to its token while the lease is renewed "
          "(every TTL/3), and release it when CMD ends — when it exits, crashes, or is "
          "stopped by Ctrl-C or SIGTERM (SIGINT, SIGTERM, SIGHUP and SIGQUIT are sent on to "
          "CMD, which is waited for). Exits with CMD's status, 128 + the signal when a signal "
          "ended it (as a shell does); 1 or 2 when dfnet itself failed first.",
      .max_args = CLI_LEASE_TARGETS_MAX,
      .args_help =
          "  TARGET   as `lease acquire` takes it\n"
          "  CMD      the command to run, and its ARGS, after --\n"};
  int rc = cli__lease_ask_parse(split, argv, &syn, false, &a);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (split + 1 >= argc)
    return cli__usage(
        "lease run needs -- CMD [ARGS...] after its targets (dfnet lease run "
        "--help)");
  char **cmd = argv + split + 1;
  a.opts.on_renew = lease_lost;
  cli_lease_signals_t w;
  dfnet_client_t *c = NULL;
  dfnet_client_lease_t *l = NULL;
  rc = cli__lease_acquire(&a, &w, true, &c, &l);
  if (rc == CLI_EXIT_OK)
    rc = hold_while(c, l, cmd, &w);
  dfnet_client_close(c);
  dfnet_client_lease_free(l);
  cli__lease_signals_stop(&w);
  return rc;
}
