/* dfnet-host's state directory (issue 23 item 2; agent.h "state directory and join"): what
 * `dfnet-host join` wrote — the key (0600), the certificate, the CA, the token's labels and
 * the manager's URL — and the defaults the agent takes from it at start.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host/agent/agent.h"
#include "lib/fileio.h"

void agent__state_dir_default(char *out, size_t cap) {
  const char *e = getenv("DFNET_HOST_STATE_DIR");
  if (e != NULL && e[0] != '\0')
    snprintf(out, cap, "%s", e);
  else if (geteuid() == 0)
    snprintf(out, cap, "/var/lib/dfnet-host");
  else if ((e = getenv("XDG_STATE_HOME")) != NULL && e[0] == '/')
    snprintf(out, cap, "%s/dfnet-host", e);
  else
    snprintf(out, cap, "%s/.local/state/dfnet-host", (e = getenv("HOME")) && *e ? e : ".");
}

/* <dir>/<name> into buf when that file exists: buf, else NULL. */
static const char *state_file(const char *dir, const char *name, char *buf, size_t cap) {
  snprintf(buf, cap, "%s/%s", dir, name);
  return access(buf, F_OK) == 0 ? buf : NULL;
}

/* The manager file's URL (its first line) into buf; NULL when there is none. */
static const char *manager_url(const char *dir, char *buf, size_t cap) {
  char path[4200], why[200];
  if (state_file(dir, AGENT_STATE_MANAGER, path, sizeof path) == NULL ||
      dfnet_file_read_into(path, 0, buf, cap, NULL, why, sizeof why) != DFNET_STATUS_OK)
    return NULL;
  buf[strcspn(buf, "\r\n")] = '\0';
  return buf[0] != '\0' ? buf : NULL;
}

/* The labels file's labels not given with --label. */
static dfnet_status_t labels_merge(agent_options_t *o, const char *dir, char *err,
                                   size_t err_size) {
  char path[4200], text[8192], why[200];
  if (state_file(dir, AGENT_STATE_LABELS, path, sizeof path) == NULL)
    return DFNET_STATUS_OK;
  if (dfnet_file_read_into(path, 0, text, sizeof text, NULL, why, sizeof why) != DFNET_STATUS_OK) {
    snprintf(err, err_size, "%s: %s", path, why);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  size_t given = o->label_count;
  for (char *save = NULL, *line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    size_t klen = strcspn(line, "=");
    bool dup = false;
    for (size_t i = 0; i < given && !dup; i++)
      dup = strlen(o->labels[i].key) == klen && strncmp(o->labels[i].key, line, klen) == 0;
    char e[300];
    if (!dup && line[0] != '\0' && !agent__label_parse(line, o, e, sizeof e)) {
      snprintf(err, err_size, "%s: %s", path, e);
      return DFNET_STATUS_INVALID_ARGUMENT;
    }
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t agent__state_defaults(agent_options_t *o, char *err, size_t err_size) {
  static char dir[4096], cert[4200], key[4200], ca[4200], url[1024];
  if (o->state_dir != NULL)
    snprintf(dir, sizeof dir, "%s", o->state_dir);
  else
    agent__state_dir_default(dir, sizeof dir);
  if (o->cert_file == NULL)
    o->cert_file = state_file(dir, AGENT_STATE_CERT, cert, sizeof cert);
  if (o->key_file == NULL)
    o->key_file = state_file(dir, AGENT_STATE_KEY, key, sizeof key);
  if (o->ca_file == NULL)
    o->ca_file = state_file(dir, AGENT_STATE_CA, ca, sizeof ca);
  if (o->manager_url == NULL)
    o->manager_url = manager_url(dir, url, sizeof url);
  dfnet_status_t st = labels_merge(o, dir, err, err_size);
  if (st != DFNET_STATUS_OK)
    return st;
  const char *missing = o->manager_url == NULL ? "--manager"
                        : o->cert_file == NULL ? "--cert"
                        : o->key_file == NULL  ? "--key"
                        : o->ca_file == NULL   ? "--ca"
                                               : NULL;
  if (missing == NULL)
    return DFNET_STATUS_OK;
  snprintf(err, err_size,
           "%s is required (see --help), or enrol this host first: dfnet-host join "
           "wss://HOST:PORT --token ... --ca-pin ... (state directory %s)",
           missing, dir);
  return DFNET_STATUS_INVALID_ARGUMENT;
}
