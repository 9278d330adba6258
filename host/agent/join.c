/* `dfnet-host join` (issue 23 item 2; agent.h "state directory and join"): enrol this host
 * with a join token. The key is made here and written 0600 into the state directory; it is
 * never sent. The manager's certificate must verify against the CA of --ca-pin before the
 * token goes out (lib/enroll.h). Then the state directory holds everything `dfnet-host`
 * needs: host.key, host.crt, ca.crt, labels (the token's), manager (the URL).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "host/agent/agent.h"
#include "lib/cmdline.h"
#include "lib/enroll.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define PROGRAM "dfnet-host join"

typedef struct join_args {
  const char *url, *token, *pin, *name, *state_dir;
} join_args_t;

static const char k_usage[] =
    "Usage: dfnet-host join wss://HOST:PORT --token ID.SECRET --ca-pin sha256:HEX [--name NAME] "
    "[--state-dir DIR]\n\n"
    "Enrol this host with a join token (dfnet token create --role host): make its key here\n"
    "(never sent), check the manager's CA against --ca-pin before sending anything, and write\n"
    "the key (0600), the certificate, the CA, the token's labels and the manager's URL into\n"
    "the state directory, where dfnet-host finds them.\n\n"
    "  --token ID.SECRET     the join token, as `dfnet token create` printed it\n"
    "  --ca-pin sha256:HEX   the SHA-256 of the manager CA's SubjectPublicKeyInfo\n"
    "  --name NAME           this host's name, the certificate's CN (default: the host name)\n"
    "  --state-dir DIR       default state-dir of host.conf (as dfnet-host reads it), else\n"
    "                        $DFNET_HOST_STATE_DIR, /var/lib/dfnet-host as root, else\n"
    "                        $XDG_STATE_HOME/dfnet-host or ~/.local/state/dfnet-host\n";

/* argv after "join". 0 when parsed, else the exit code (usage printed). */
static int parse(int argc, char **argv, join_args_t *a) {
  memset(a, 0, sizeof *a);
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    const char **dest = strcmp(arg, "--token") == 0       ? &a->token
                        : strcmp(arg, "--ca-pin") == 0    ? &a->pin
                        : strcmp(arg, "--name") == 0      ? &a->name
                        : strcmp(arg, "--state-dir") == 0 ? &a->state_dir
                                                          : NULL;
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      fputs(k_usage, stdout);
      return -1;
    }
    if (dest == NULL && arg[0] != '-' && a->url == NULL) {
      a->url = arg;
      continue;
    }
    if (dest == NULL)
      return dfnet_cmdline_usage(PROGRAM, "unknown argument %s (dfnet-host join --help)", arg);
    if (i + 1 >= argc || argv[i + 1][0] == '\0')
      return dfnet_cmdline_usage(PROGRAM, "%s needs a value", arg);
    *dest = argv[++i];
  }
  if (a->url == NULL || strncmp(a->url, "wss://", 6) != 0)
    return dfnet_cmdline_usage(PROGRAM, "the manager's URL, wss://HOST:PORT, is required");
  if (a->token == NULL || a->pin == NULL)
    return dfnet_cmdline_usage(PROGRAM, "%s is required (dfnet-host join --help)",
                               a->token == NULL ? "--token" : "--ca-pin");
  return 0;
}

/* The labels file's text: "key=value" lines. */
static void labels_text(const dfnet_v1_EnrollResult *r, char *out, size_t cap) {
  size_t n = 0;
  out[0] = '\0';
  for (pb_size_t i = 0; i < r->labels_count && n < cap; i++)
    n += (size_t)snprintf(out + n, cap - n, "%s=%s\n", r->labels[i].key, r->labels[i].value);
}

/* Write the state directory (made 0700 when missing). 0, or 1 with the line printed. */
static int write_state(const char *dir, const char *url, const dfnet_enroll_result_t *r) {
  char key[4200], cert[4200], ca[4200], labels[4200], manager[4200], why[600], text[4096];
  if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
    fprintf(stderr, "dfnet-host join: cannot make %s: %s\n", dir, strerror(errno));
    return 1;
  }
  snprintf(key, sizeof key, "%s/%s", dir, AGENT_STATE_KEY);
  snprintf(cert, sizeof cert, "%s/%s", dir, AGENT_STATE_CERT);
  snprintf(ca, sizeof ca, "%s/%s", dir, AGENT_STATE_CA);
  snprintf(labels, sizeof labels, "%s/%s", dir, AGENT_STATE_LABELS);
  snprintf(manager, sizeof manager, "%s/%s", dir, AGENT_STATE_MANAGER);
  dfnet_status_t st = dfnet_enroll_write(r->key, r->answer.certificate_pem, r->answer.ca_pem, key,
                                         cert, ca, why, sizeof why);
  labels_text(&r->answer, text, sizeof text);
  if (st == DFNET_STATUS_OK)
    st = dfnet_file_write_atomic(labels, text, strlen(text), 0644, why, sizeof why);
  snprintf(text, sizeof text, "%s\n", url);
  if (st == DFNET_STATUS_OK)
    st = dfnet_file_write_atomic(manager, text, strlen(text), 0644, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-host join: enrolled, but %s: %s\n", why, dfnet_status_str(st));
    return 1;
  }
  return 0;
}

int agent__join(int argc, char **argv) {
  join_args_t a;
  int rc = parse(argc, argv, &a);
  if (rc != 0)
    return rc < 0 ? 0 : rc;
  char host[65] = "", dir[4096], why[700];
  if (a.name == NULL) {
    gethostname(host, sizeof host - 1);
    a.name = host;
  }
  if (a.state_dir == NULL) { /* host.conf's state-dir: where the agent will look */
    static agent_options_t conf;
    char *none[] = {argv[0], NULL};
    char err[700];
    if (agent__options_parse(1, none, &conf, err, sizeof err) != DFNET_STATUS_OK) {
      fprintf(stderr, "dfnet-host join: %s\n", err);
      return DFNET_CMDLINE_EXIT_USAGE;
    }
    a.state_dir = conf.state_dir;
  }
  if (a.state_dir != NULL)
    snprintf(dir, sizeof dir, "%s", a.state_dir);
  else
    agent__state_dir_default(dir, sizeof dir);
  if (getenv("DFNET_LOG_LEVEL") == NULL) /* the one line below says what went wrong */
    dfnet_log_set_level(DFNET_LOG_ERROR);
  dfnet_enroll_request_t rq = {.url = a.url, .token = a.token, .ca_pin = a.pin, .name = a.name};
  dfnet_enroll_result_t r;
  dfnet_status_t st = dfnet_enroll(&rq, &r, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-host join: %s: %s\n", dfnet_status_str(st), why);
    return st == DFNET_STATUS_INVALID_ARGUMENT ? DFNET_CMDLINE_EXIT_USAGE : 1;
  }
  rc = write_state(dir, a.url, &r);
  if (rc == 0) {
    char until[40] = "?";
    time_t na = (time_t)(r.answer.not_after_ms / 1000u);
    struct tm tm;
    if (gmtime_r(&na, &tm) != NULL)
      strftime(until, sizeof until, "%Y-%m-%d %H:%M:%S UTC", &tm);
    printf(
        "Enrolled %s (role host, certificate valid until %s) with %u label(s).\n"
        "Key (0600, never sent), certificate and CA written to %s.\n\n"
        "Start the agent with:\n\n  dfnet-host%s%s\n",
        r.answer.name, until, (unsigned)r.answer.labels_count, dir,
        a.state_dir ? " --state-dir " : "", a.state_dir ? a.state_dir : "");
  }
  dfnet_enroll_free(&r);
  return rc;
}
