/* `dfnet login URL --token ID.SECRET --ca-pin sha256:HEX [--name NAME]` (issue 23 item 2;
 * clients/cli/trust.h): enrol a person with a join token of role operator or viewer. The key
 * is made here (never sent) and written 0600 beside the config file, with the certificate
 * and the CA whose pin was checked before anything was sent (lib/enroll.h); the config file
 * then names the manager, the certificate, the key and the CA, so that every other command
 * finds them. */
#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "clients/cli/trust.h"
#include "lib/enroll.h"
#include "lib/fileio.h"
#include "lib/log.h"

/* mkdir -p of dir, 0700. */
static bool make_dir(const char *dir) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s", dir);
  for (char *p = tmp + 1; *p; p++) {
    if (*p != '/')
      continue;
    *p = '\0';
    if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
      return false;
    *p = '/';
  }
  return mkdir(tmp, 0700) == 0 || errno == EEXIST;
}

/* Write key, certificate, CA and the config file. CLI_EXIT_OK or CLI_EXIT_FAILED (said). */
static int write_login(const char *config, const char *url, const dfnet_enroll_result_t *r) {
  char dirbuf[4096], key[4200], crt[4200], ca[4200], text[13000], why[600];
  snprintf(dirbuf, sizeof dirbuf, "%s", config);
  const char *dir = dirname(dirbuf);
  if (!make_dir(dir)) {
    fprintf(stderr, "dfnet: cannot make %s: %s\n", dir, strerror(errno));
    return CLI_EXIT_FAILED;
  }
  snprintf(key, sizeof key, "%s/%s.key", dir, r->answer.name);
  snprintf(crt, sizeof crt, "%s/%s.crt", dir, r->answer.name);
  snprintf(ca, sizeof ca, "%s/ca.crt", dir);
  dfnet_status_t st = dfnet_enroll_write(r->key, r->answer.certificate_pem, r->answer.ca_pem, key,
                                         crt, ca, why, sizeof why);
  snprintf(text, sizeof text,
           "# written by dfnet login\nmanager = %s\ncert = %s\nkey = %s\nca = %s\n", url, crt, key,
           ca);
  if (st == DFNET_STATUS_OK)
    st = dfnet_file_write_atomic(config, text, strlen(text), 0600, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet: enrolled, but %s: %s\n", why, dfnet_status_str(st));
    return CLI_EXIT_FAILED;
  }
  return CLI_EXIT_OK;
}

int cmd_login(int argc, char **argv) {
  const char *token = NULL, *pin = NULL, *name = NULL;
  const cli_option_t opts[] = {
      {"token", 0, CLI_OPT_STRING, &token, 0, 0, "ID.SECRET", "the join token (required)"},
      {"ca-pin", 0, CLI_OPT_STRING, &pin, 0, 0, "sha256:HEX",
       "the SHA-256 of the manager CA's SubjectPublicKeyInfo (required)"},
      {"name", 0, CLI_OPT_STRING, &name, 0, 0, "NAME",
       "the certificate's CN (default: $USER; the token may fix it or its prefix)"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "login URL --token ID.SECRET --ca-pin sha256:HEX [--name NAME]",
      .about =
          "Enrol yourself with a join token of role operator or viewer: a key made here "
          "(never sent), a certificate from the manager after its CA matched --ca-pin, "
          "both written beside the config file, which then names them and the manager.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = "  URL   the manager, wss://HOST:PORT\n"};
  const char *args[CLI_ARGS_MAX] = {0};
  size_t nargs = 0;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (token == NULL || pin == NULL)
    return cli__usage("login needs %s", token == NULL ? "--token" : "--ca-pin");
  const char *user = getenv("USER");
  if (name == NULL)
    name = user != NULL && user[0] ? user : "user";
  char config[4096], why[700];
  bool explicit_path;
  if (!cli__config_path(config, sizeof config, &explicit_path))
    return cli__usage("no config file to write: set DFNET_CONFIG or HOME");
  if (getenv("DFNET_LOG_LEVEL") == NULL) /* the one line below says what went wrong */
    dfnet_log_set_level(DFNET_LOG_ERROR);
  dfnet_enroll_request_t rq = {.url = args[0], .token = token, .ca_pin = pin, .name = name};
  dfnet_enroll_result_t r;
  dfnet_status_t st = dfnet_enroll(&rq, &r, why, sizeof why);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet: %s: %s\n", dfnet_status_str(st), why);
    return st == DFNET_STATUS_INVALID_ARGUMENT ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
  }
  rc = write_login(config, args[0], &r);
  if (rc == CLI_EXIT_OK)
    printf(
        "Logged in as %s (role %s); key (0600, never sent), certificate and CA written "
        "beside %s, which now names them.\nTry: dfnet host list\n",
        r.answer.name,
        r.answer.role == dfnet_v1_Role_OPERATOR ? "operator"
        : r.answer.role == dfnet_v1_Role_VIEWER ? "viewer"
                                                : "?",
        config);
  dfnet_enroll_free(&r);
  return rc;
}
