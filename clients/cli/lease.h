/* dfnet CLI: what the lease commands share (cmd_lease.c, lease_run.c): the acquire options
 * of `lease acquire` and `lease run`, acquiring with a cancel on SIGINT/SIGTERM (both
 * lease_ask.c), a lease as text and JSON (lease_format.c), and the signal watcher
 * (lease_run.c). Not installed. */
#ifndef DFNET_CLIENTS_CLI_LEASE_H
#define DFNET_CLIENTS_CLI_LEASE_H

#include <pthread.h>
#include <signal.h>
#include <sys/types.h>

#include "clients/cli/cli.h"

#define CLI_LEASE_TARGETS_MAX 16

/* An acquire as the command line asks it. */
typedef struct cli_lease_ask {
  cli_strings_t match; /* --match K=V */
  const char *ttl;     /* --ttl DURATION ("0": no expiry) */
  const char *wait;    /* --wait [TIMEOUT]: "" = as long as it takes; NULL = no wait */
  const char *priority;
  const char *reason;
  bool json;
  const char *targets[CLI_LEASE_TARGETS_MAX]; /* TARGET... (borrowed from argv) */
  size_t target_count;
  dfnet_client_lease_options_t opts; /* cli__lease_ask_prepare's result */
} cli_lease_ask_t;

/* --wait's value is optional: a copy of argv[0..argc) into out (argc + 1 entries, NULL
 * last) where a bare "--wait" (the last word, or one not followed by a duration) reads
 * "--wait=" (wait as long as it takes). Words after "--" are copied as they are. */
void cli__lease_wait_argv(int argc, char **argv, char **out);

/* Parse argv (the words after the command, up to "--" for `lease run`) into a: the acquire
 * options (--match, --ttl, --wait, --priority, --reason and, with json, --json; syntax's own
 * options are not used), then TARGET... Returns CLI_EXIT_OK, CLI_EXIT_USAGE (printed), or -1
 * after --help and in describe mode. */
int cli__lease_ask_parse(int argc, char **argv, const cli_syntax_t *syntax, bool json,
                         cli_lease_ask_t *a);

/* Signals while a lease is waited for or a command runs under it: SIGINT, SIGTERM, SIGHUP
 * and SIGQUIT are blocked in every thread (the client's included) and taken by a watcher
 * thread. While an acquire runs, the first cancels it; while a child runs, each is sent to
 * it, but one the terminal sent (Ctrl-C: the child, in our process group, has it already). */
typedef struct cli_lease_signals {
  sigset_t set, old;
  pthread_t thread;
  bool started;
  pthread_mutex_t mu;
  dfnet_client_t *client; /* an acquire runs on it */
  pid_t child;            /* the command, once started */
  int first;              /* the first signal received; 0 = none */
  int unsent;             /* the last one that came with nobody to act on; 0 = none */
  bool stopping;
} cli_lease_signals_t;

/* Block the signals and start the watcher. CLI_EXIT_OK or CLI_EXIT_FAILED (printed). Call
 * before connecting, so that the client's thread has them blocked too. */
int cli__lease_signals_start(cli_lease_signals_t *w);
/* Stop the watcher and unblock the signals (what came meanwhile stays pending and is
 * acted on: call it last). Returns the first signal received, 0 = none. */
int cli__lease_signals_stop(cli_lease_signals_t *w);
/* Who the watcher acts on: the client an acquire runs on (NULL: none), the child (0: none).
 * A child is sent at once the signal that came while nobody was there to act on it. */
void cli__lease_signals_target(cli_lease_signals_t *w, dfnet_client_t *client, pid_t child);
/* The first signal received so far, 0 = none. */
int cli__lease_signals_first(cli_lease_signals_t *w);

/* Start the watcher w (cli__lease_signals_start), connect (*c), then acquire a's lease on
 * *c, cancelled by the watcher's first signal; queue positions go to stderr. renew: the
 * library renews it (lease run), else not (lease acquire). The caller closes *c
 * (dfnet_client_close; NULL when the connection failed) and stops w
 * (cli__lease_signals_stop) on every path. On CLI_EXIT_OK *out is the lease
 * (dfnet_client_lease_free); else the error is printed and the exit code returned: 1 (2 for
 * missing settings), or 128 + the signal that cancelled it. */
int cli__lease_acquire(cli_lease_ask_t *a, cli_lease_signals_t *w, bool renew, dfnet_client_t **c,
                       dfnet_client_lease_t **out);

/* A lease as `lease show` prints it ("Lease    : 42" ...). */
void cli__lease_print(const dfnet_client_lease_t *l, uint64_t now_ms);
/* A lease as JSON (clients/cli/JSON.md "lease"); NULL when out of memory. */
cJSON *cli__lease_json(const dfnet_client_lease_t *l);
/* {"lease": LEASE}, the document of `lease acquire --json`, `lease show --json` and `lease
 * renew --json` (the caller owns it); NULL when out of memory. */
cJSON *cli__lease_doc(const dfnet_client_lease_t *l);

#endif /* DFNET_CLIENTS_CLI_LEASE_H */
