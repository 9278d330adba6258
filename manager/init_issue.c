/* dfnet-manager's state directory and its CA (issue 5): where the state directory is, its
 * creation with the fleet's CA and the manager's certificate (the `init` command, and every
 * start of the manager), and the `issue` command, a host's or a client's certificate signed
 * by that CA. Their options are options.c's; a configuration file's state-dir applies to
 * both (docs/configuration.md).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "lib/cmdline.h"
#include "lib/log.h"
#include "lib/pki.h"
#include "manager/cert.h"
#include "manager/options.h"

/* The state directory: --state-dir, else $DFNET_STATE_DIR, else $XDG_STATE_HOME/dfnet, else
 * $HOME/.local/state/dfnet, else ./dfnet-state. */
void mgr__state_dir(const char *given, char *out, size_t size) {
  const char *e = getenv("DFNET_STATE_DIR");
  if (given != NULL) {
    snprintf(out, size, "%s", given);
  } else if (e && *e) {
    snprintf(out, size, "%s", e);
  } else if ((e = getenv("XDG_STATE_HOME")) && *e) {
    snprintf(out, size, "%s/dfnet", e);
  } else if ((e = getenv("HOME")) && *e) {
    snprintf(out, size, "%s/.local/state/dfnet", e);
  } else {
    snprintf(out, size, "./dfnet-state");
  }
}

/* Create the CA and the manager's certificate in `dir` unless they exist. The certificate
 * names this host, localhost, 127.0.0.1 and ::1, plus `extra` SANs (NULL = none): the DNS
 * names or addresses hosts and clients use to reach the manager. An existing certificate
 * is kept as it is (to change its names: remove manager.crt/.key/.pem, init again). */
dfnet_status_t mgr__init_state(const char *dir, const str_list_t *extra) {
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  const char *name = dfnet_pki_name_valid(host) ? host : "dfnet-manager";
  const char *sans[17] = {name};
  size_t nsans = 1;
  for (size_t i = 0; extra != NULL && i < extra->count && nsans < 17; i++)
    sans[nsans++] = extra->items[i];
  bool created = false;
  dfnet_status_t st = dfnet_pki_init_state_dir(dir, name, sans, nsans, &created);
  if (st == DFNET_STATUS_OK && created)
    DFNET_LOGI("manager", dir, "state directory initialised (CA and manager certificate)");
  return st;
}

/* ---- init / issue ------------------------------------------------------------------- */

int mgr__cmd_init(const mgr_args_t *a) {
  char dir[1024];
  mgr__state_dir(a->state_dir, dir, sizeof dir);
  dfnet_status_t st = mgr__init_state(dir, &a->sans);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: init %s failed: %s\n", dir, dfnet_status_str(st));
    return 1;
  }
  printf("state directory: %s\n", dir);
  return 0;
}

int mgr__cmd_issue(const mgr_args_t *a) {
  dfnet_pki_role_t r;
  if (a->role == NULL || a->name == NULL || a->out == NULL)
    return dfnet_cmdline_usage(
        PROGRAM, "issue: --role, --name and --out are required (dfnet-manager issue --help)");
  if (dfnet_pki_role_parse(a->role, &r) != DFNET_STATUS_OK)
    return dfnet_cmdline_usage(PROGRAM, "issue: --role '%s' is not host, admin, operator or viewer",
                               a->role);
  char dir[1024];
  mgr__state_dir(a->state_dir, dir, sizeof dir);
  if (mgr__init_state(dir, NULL) != DFNET_STATUS_OK)
    return 1;
  dfnet_status_t st = dfnet_pki_issue_to_dir(dir, r, a->name, a->out, a->sans.items, a->sans.count,
                                             (unsigned)a->days);
  if (st != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: issue failed: %s\n", dfnet_status_str(st));
    return 1;
  }
  printf("%s/%s.crt, %s.key, %s.pem and ca.crt written (role %s)\n", a->out, a->name, a->name,
         a->name, a->role);
  /* `dfnet cert list` shows it from now on (issue 23): a failure is said, the files stay */
  char crt[1200], err[1400] = "";
  snprintf(crt, sizeof crt, "%s/%s.crt", a->out, a->name);
  if (cert__record_issued(dir, crt, err, sizeof err) != DFNET_STATUS_OK) {
    fprintf(stderr, "dfnet-manager: issue: the certificate was not recorded: %s\n", err);
    return 1;
  }
  return 0;
}
