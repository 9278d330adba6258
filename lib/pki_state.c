/* The manager's state directory (lib/pki.h "The manager's state directory"): `init` makes
 * the CA and the manager's certificate once; `issue` writes a peer's set from that CA. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/pki_internal.h"
#include "lib/role.h"

static __attribute__((warn_unused_result)) dfnet_status_t
path_join(char *out, size_t size, const char *dir, const char *name, const char *ext) {
  int n = snprintf(out, size, "%s/%s%s", dir, name, ext ? ext : "");
  if (n < 0 || (size_t)n >= size)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, dir, "path too long");
  return DFNET_STATUS_OK;
}

/* 1: exists, 0: does not, -1: error (logged, *st set). */
static int file_exists(const char *path, dfnet_status_t *st) {
  struct stat sb;
  if (stat(path, &sb) == 0)
    return 1;
  if (errno == ENOENT)
    return 0;
  *st = pki__fail_errno(errno, path, "stat");
  return -1;
}

/* mkdir -p with mode 0700 for every directory it creates. */
static __attribute__((warn_unused_result)) dfnet_status_t dir_ensure(const char *dir) {
  if (mkdir(dir, 0700) == 0) {
    DFNET_LOGI(PKI_LOG, dir, "created directory");
    return DFNET_STATUS_OK;
  }
  if (errno == ENOENT) { /* a parent is missing: make it first */
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%s", dir);
    char *slash = strrchr(parent, '/');
    while (slash != NULL && slash > parent && slash[1] == '\0') { /* trailing slashes */
      *slash = '\0';
      slash = strrchr(parent, '/');
    }
    if (slash != NULL && slash > parent) {
      *slash = '\0';
      dfnet_status_t st = dir_ensure(parent);
      if (st != DFNET_STATUS_OK)
        return st;
      if (mkdir(dir, 0700) == 0) {
        DFNET_LOGI(PKI_LOG, dir, "created directory");
        return DFNET_STATUS_OK;
      }
    }
  }
  if (errno != EEXIST)
    return pki__fail_errno(errno, dir, "creating directory");
  struct stat sb;
  if (stat(dir, &sb) != 0)
    return pki__fail_errno(errno, dir, "stat");
  if (!S_ISDIR(sb.st_mode))
    return pki__fail(DFNET_STATUS_FAILED_PRECONDITION, dir, "exists and is not a directory");
  return DFNET_STATUS_OK;
}

/* Load a certificate and its key, and check they belong together. */
static __attribute__((warn_unused_result)) dfnet_status_t pair_load(const char *crt_path,
                                                                    const char *key_path,
                                                                    dfnet_pki_cert_t **cert,
                                                                    dfnet_pki_key_t **key) {
  dfnet_status_t st = dfnet_pki_cert_load(crt_path, cert);
  if (st != DFNET_STATUS_OK)
    return st;
  if ((st = dfnet_pki_key_load(key_path, key)) != DFNET_STATUS_OK)
    goto cert_loaded;
  if ((st = dfnet_pki_key_check_pair(*cert, *key)) != DFNET_STATUS_OK)
    goto key_loaded;
  return DFNET_STATUS_OK;
key_loaded:
  dfnet_pki_key_free(*key);
  *key = NULL;
cert_loaded:
  dfnet_pki_cert_free(*cert);
  *cert = NULL;
  return st;
}

/* How many of the files exist; -1 on a stat error (logged, *st set). */
static int count_existing(const char *const *paths, size_t n, dfnet_status_t *st) {
  int have = 0;
  for (size_t i = 0; i < n; i++) {
    int e = file_exists(paths[i], st);
    if (e < 0)
      return -1;
    have += e;
  }
  return have;
}

static __attribute__((warn_unused_result)) dfnet_status_t partial_set(const char *const *paths,
                                                                      size_t n, const char *what) {
  dfnet_status_t ignored = DFNET_STATUS_OK;
  for (size_t i = 0; i < n; i++) {
    if (file_exists(paths[i], &ignored) == 0)
      return pki__fail(DFNET_STATUS_FAILED_PRECONDITION, paths[i],
                       "missing while the rest of the %s is there; restore it or remove the "
                       "set to make a new one",
                       what);
  }
  return pki__fail(DFNET_STATUS_FAILED_PRECONDITION, paths[0], "incomplete %s", what);
}

/* The CA of a state directory: load it, or create it when neither file exists. */
static __attribute__((warn_unused_result)) dfnet_status_t
state_ca(const char *dir, const char *manager_name, bool *created, dfnet_pki_cert_t **ca,
         dfnet_pki_key_t **ca_key) {
  char crt_path[PATH_MAX], key_path[PATH_MAX];
  dfnet_status_t st;
  if ((st = path_join(crt_path, sizeof crt_path, dir, DFNET_PKI_CA_CERT_FILE, NULL)) != 0 ||
      (st = path_join(key_path, sizeof key_path, dir, DFNET_PKI_CA_KEY_FILE, NULL)) != 0)
    return st;
  const char *paths[] = {crt_path, key_path};
  int have = count_existing(paths, 2, &st);
  if (have < 0)
    return st;
  if (have == 2)
    return pair_load(crt_path, key_path, ca, ca_key);
  if (have == 1)
    return partial_set(paths, 2, "CA (ca.crt, ca.key)");
  char cn[DFNET_PKI_NAME_MAX + 16];
  snprintf(cn, sizeof cn, "dfnet CA %s", manager_name);
  if (strlen(cn) > DFNET_PKI_NAME_MAX)
    cn[DFNET_PKI_NAME_MAX] = '\0';
  if ((st = dfnet_pki_ca_create(cn, ca, ca_key)) != DFNET_STATUS_OK)
    return st;
  /* Key first: a ca.crt without its key would block the next init. */
  if ((st = dfnet_pki_key_write(*ca_key, key_path)) != DFNET_STATUS_OK ||
      (st = dfnet_pki_cert_write(*ca, crt_path)) != DFNET_STATUS_OK) {
    dfnet_pki_cert_free(*ca);
    dfnet_pki_key_free(*ca_key);
    *ca = NULL;
    *ca_key = NULL;
    return st;
  }
  *created = true;
  return DFNET_STATUS_OK;
}

/* Write <cert, key, cert+key> to three paths. */
static __attribute__((warn_unused_result)) dfnet_status_t
set_write(const dfnet_pki_cert_t *cert, const dfnet_pki_key_t *key, const char *crt_path,
          const char *key_path, const char *pem_path) {
  dfnet_status_t st = dfnet_pki_key_write(key, key_path);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_pem_write(cert, key, pem_path);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_cert_write(cert, crt_path);
  return st;
}

static __attribute__((warn_unused_result)) dfnet_status_t
state_manager(const char *dir, const char *manager_name, const char *const *sans, size_t san_count,
              const dfnet_pki_cert_t *ca, const dfnet_pki_key_t *ca_key, bool *created) {
  char crt_path[PATH_MAX], key_path[PATH_MAX], pem_path[PATH_MAX];
  dfnet_status_t st;
  if ((st = path_join(crt_path, sizeof crt_path, dir, DFNET_PKI_MANAGER_CERT_FILE, NULL)) != 0 ||
      (st = path_join(key_path, sizeof key_path, dir, DFNET_PKI_MANAGER_KEY_FILE, NULL)) != 0 ||
      (st = path_join(pem_path, sizeof pem_path, dir, DFNET_PKI_MANAGER_PEM_FILE, NULL)) != 0)
    return st;
  const char *paths[] = {crt_path, key_path, pem_path};
  int have = count_existing(paths, 3, &st);
  if (have < 0)
    return st;
  if (have > 0 && have < 3)
    return partial_set(paths, 3, "manager certificate (manager.crt, .key, .pem)");
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_key_t *key = NULL;
  if (have == 3) {
    if ((st = pair_load(crt_path, key_path, &cert, &key)) != DFNET_STATUS_OK)
      return st;
    int rc;
    uint32_t flags;
    uint32_t reasons = pki__verify_quiet(ca, cert, &rc, &flags);
    if (reasons &
        (DFNET_PKI_VERIFY_UNTRUSTED | DFNET_PKI_VERIFY_BAD_USAGE | DFNET_PKI_VERIFY_OTHER))
      st = pki__fail(DFNET_STATUS_FAILED_PRECONDITION, crt_path,
                     "not issued by this state directory's CA (mbedTLS flags 0x%08x)", flags);
    else if (reasons != 0) /* init leaves existing files alone, but says so */
      DFNET_LOGW(PKI_LOG, crt_path,
                 "the manager certificate is %s; remove manager.crt, .key and .pem and run "
                 "init again to renew it",
                 (reasons & DFNET_PKI_VERIFY_EXPIRED) ? "expired" : "not yet valid");
    goto pair_made;
  }
  const char *all[DFNET_PKI_MAX_SANS];
  all[0] = "localhost";
  all[1] = "127.0.0.1";
  all[2] = "::1";
  for (size_t i = 0; i < san_count; i++)
    all[3 + i] = sans[i];
  dfnet_pki_leaf_params_t p = {
      .name = manager_name,
      .role = DFNET_PKI_ROLE_MANAGER,
      .sans = all,
      .san_count = 3 + san_count,
      .days = DFNET_PKI_MANAGER_DAYS,
  };
  if ((st = dfnet_pki_leaf_issue(ca, ca_key, &p, &cert, &key)) != DFNET_STATUS_OK)
    return st;
  if ((st = set_write(cert, key, crt_path, key_path, pem_path)) == DFNET_STATUS_OK)
    *created = true;
pair_made:
  dfnet_pki_cert_free(cert);
  dfnet_pki_key_free(key);
  return st;
}

dfnet_status_t dfnet_pki_init_state_dir(const char *dir, const char *manager_name,
                                        const char *const *sans, size_t san_count,
                                        bool *created_out) {
  if (created_out)
    *created_out = false;
  if (dir == NULL || dir[0] == '\0')
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, NULL, "init: no state directory");
  dfnet_status_t st = pki__name_check("init: manager name", manager_name, dir);
  if (st != DFNET_STATUS_OK)
    return st;
  if (san_count > DFNET_PKI_MAX_SANS - 3 || (san_count > 0 && sans == NULL))
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, dir,
                     "init: %zu extra SANs (at most %d, and not NULL)", san_count,
                     DFNET_PKI_MAX_SANS - 3);
  /* Check the SANs before anything is written. */
  pki__san_t *check = calloc(DFNET_PKI_MAX_SANS, sizeof *check);
  if (check == NULL)
    return pki__fail(DFNET_STATUS_INTERNAL, dir, "out of memory");
  st = pki__sans_parse(sans, san_count, manager_name, check);
  free(check);
  if (st != DFNET_STATUS_OK)
    return st;
  if ((st = dir_ensure(dir)) != DFNET_STATUS_OK)
    return st;
  bool created = false;
  dfnet_pki_cert_t *ca = NULL;
  dfnet_pki_key_t *ca_key = NULL;
  if ((st = state_ca(dir, manager_name, &created, &ca, &ca_key)) != DFNET_STATUS_OK)
    return st;
  st = state_manager(dir, manager_name, sans, san_count, ca, ca_key, &created);
  dfnet_pki_cert_free(ca);
  dfnet_pki_key_free(ca_key);
  if (created_out)
    *created_out = created;
  if (st == DFNET_STATUS_OK)
    DFNET_LOGI(PKI_LOG, dir, created ? "PKI initialised" : "PKI already initialised");
  return st;
}

/* Is <path> absent, or a certificate whose DER equals ca's? 1 absent, 0 same, -1 differs or
 * error (logged, *st set). */
static int ca_copy_state(const char *path, const dfnet_pki_cert_t *ca, dfnet_status_t *st) {
  int e = file_exists(path, st);
  if (e <= 0)
    return e < 0 ? -1 : 1;
  dfnet_pki_cert_t *there = NULL;
  if ((*st = dfnet_pki_cert_load(path, &there)) != DFNET_STATUS_OK)
    return -1;
  bool same = there->crt.raw.len == ca->crt.raw.len &&
              memcmp(there->crt.raw.p, ca->crt.raw.p, ca->crt.raw.len) == 0;
  dfnet_pki_cert_free(there);
  if (same)
    return 0;
  *st = pki__fail(DFNET_STATUS_ALREADY_EXISTS, path, "holds another CA's certificate");
  return -1;
}

dfnet_status_t dfnet_pki_issue_to_dir(const char *state_dir, dfnet_pki_role_t role,
                                      const char *name, const char *out_dir,
                                      const char *const *sans, size_t san_count, unsigned days) {
  if (state_dir == NULL || out_dir == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, name, "issue: NULL directory");
  if (role == DFNET_PKI_ROLE_MANAGER || dfnet_role_by_pki(role) == NULL)
    return pki__fail(DFNET_STATUS_INVALID_ARGUMENT, name,
                     "issue: role must be host, admin, operator or viewer");
  dfnet_status_t st = pki__name_check("issue: name", name, NULL);
  if (st != DFNET_STATUS_OK)
    return st;
  char ca_crt[PATH_MAX], ca_key_path[PATH_MAX], crt_path[PATH_MAX], key_path[PATH_MAX],
      pem_path[PATH_MAX], ca_copy[PATH_MAX];
  if ((st = path_join(ca_crt, sizeof ca_crt, state_dir, DFNET_PKI_CA_CERT_FILE, NULL)) != 0 ||
      (st = path_join(ca_key_path, sizeof ca_key_path, state_dir, DFNET_PKI_CA_KEY_FILE, NULL)) !=
          0 ||
      (st = path_join(crt_path, sizeof crt_path, out_dir, name, ".crt")) != 0 ||
      (st = path_join(key_path, sizeof key_path, out_dir, name, ".key")) != 0 ||
      (st = path_join(pem_path, sizeof pem_path, out_dir, name, ".pem")) != 0 ||
      (st = path_join(ca_copy, sizeof ca_copy, out_dir, DFNET_PKI_CA_CERT_FILE, NULL)) != 0)
    return st;

  dfnet_pki_cert_t *ca = NULL, *cert = NULL;
  dfnet_pki_key_t *ca_key = NULL, *key = NULL;
  if ((st = pair_load(ca_crt, ca_key_path, &ca, &ca_key)) != DFNET_STATUS_OK)
    return st;
  if ((st = dir_ensure(out_dir)) != DFNET_STATUS_OK)
    goto ca_loaded;
  const char *outputs[] = {crt_path, key_path, pem_path};
  for (size_t i = 0; i < 3; i++) {
    int e = file_exists(outputs[i], &st);
    if (e < 0)
      goto ca_loaded;
    if (e > 0) {
      st = pki__fail(DFNET_STATUS_ALREADY_EXISTS, outputs[i],
                     "already exists; remove it to issue a new certificate for %s", name);
      goto ca_loaded;
    }
  }
  int ca_state = ca_copy_state(ca_copy, ca, &st);
  if (ca_state < 0)
    goto ca_loaded;
  dfnet_pki_leaf_params_t p = {
      .name = name, .role = role, .sans = sans, .san_count = san_count, .days = days};
  if ((st = dfnet_pki_leaf_issue(ca, ca_key, &p, &cert, &key)) != DFNET_STATUS_OK)
    goto ca_loaded;
  if ((st = set_write(cert, key, crt_path, key_path, pem_path)) != DFNET_STATUS_OK)
    goto leaf_made;
  if (ca_state == 1 && (st = dfnet_pki_cert_write(ca, ca_copy)) != DFNET_STATUS_OK)
    goto leaf_made;
  DFNET_LOGI(PKI_LOG, name, "wrote %s, %s, %s", crt_path, key_path, pem_path);

leaf_made:
  dfnet_pki_cert_free(cert);
  dfnet_pki_key_free(key);
ca_loaded:
  dfnet_pki_cert_free(ca);
  dfnet_pki_key_free(ca_key);
  return st;
}
