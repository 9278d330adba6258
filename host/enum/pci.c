/* PCI functions from sysfs (issue 6 "Enumerators"; the kernel's sysfs PCI ABI,
 * Documentation/ABI/testing/sysfs-bus-pci).
 *
 * start() walks <root>/bus/pci/devices/, one entry per function named by its address
 * "DDDD:BB:DD.F" and linking to the device's directory, and publishes, in address order:
 *
 *   pci                       the bus node (owned)
 *   pci.<BB>_<DD>_<F>         one node per function (domain != 0: "<DDDD>_<BB>_<DD>_<F>")
 *     fuchsia.BIND_PROTOCOL     = fuchsia.pci.BIND_PROTOCOL.DEVICE
 *     fuchsia.BIND_PCI_VID      = vendor            fuchsia.BIND_PCI_DID = device
 *     fuchsia.BIND_PCI_CLASS    = class[23:16]      fuchsia.BIND_PCI_SUBCLASS = class[15:8]
 *     fuchsia.BIND_PCI_INTERFACE= class[7:0]        fuchsia.BIND_PCI_REVISION = revision
 *     fuchsia.BIND_PCI_TOPO     = BIND_PCI_TOPO_PACK(bus, dev, func) = bus<<8 | dev<<3 | func
 *                                 (Fuchsia's src/lib/ddk/include/lib/ddk/binding_priv.h)
 *     "dfnet.pci.SUBSYSTEM_VID" / "dfnet.pci.SUBSYSTEM_DID" (uint; when sysfs has them)
 *     "dfnet.pci.SYSFS_PATH"    = the device's directory, resolved
 *     "dfnet.pci.KERNEL_DRIVER" = basename of its `driver` link (absent when none is bound)
 *
 * A function whose attributes cannot be read is logged and skipped; the others are
 * published. Everything happens inside start(), on the caller's thread.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/array.h"
#include "bind/fuchsia_pci.h"
#include "dfnet/bind_keys.h"
#include "host/enum/enum.h"
#include "host/enum/sysfs.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define PCI_LOG "enum.pci"

typedef struct pci_priv {
  char root[PATH_MAX];
} pci_priv_t;

/* One function's address, parsed from its sysfs name "DDDD:BB:DD.F". */
typedef struct pci_address {
  unsigned domain, bus, dev, fn;
} pci_address_t;

static bool parse_address(const char *name, pci_address_t *a) {
  int used = -1;
  if (strlen(name) != 12 ||
      sscanf(name, "%4x:%2x:%2x.%1x%n", &a->domain, &a->bus, &a->dev, &a->fn, &used) != 4 ||
      used != 12 || a->dev > 0x1f || a->fn > 7) {
    return false;
  }
  for (size_t i = 0; i < 12; i++) {
    bool sep = i == 4 || i == 7 || i == 10;
    if (sep != (name[i] == ':' || name[i] == '.') ||
        (!sep && strchr("0123456789abcdefABCDEF", name[i]) == NULL)) {
      return false;
    }
  }
  return true;
}

/* The attributes that make a PCI node. */
typedef struct pci_function {
  uint32_t vendor, device, class_code, revision;
  uint32_t subsys_vendor, subsys_device;
  bool has_subsys;
  char sysfs_path[PATH_MAX];
  char driver[NAME_MAX + 1]; /* "" when none */
} pci_function_t;

static const char *attr_error(dfnet_status_t status) {
  return status == DFNET_STATUS_INVALID_ARGUMENT ? "not a number in range"
                                                 : dfnet_status_str(status);
}

/* Read the function's attributes from its directory. Logs and returns an error when a
 * required one is missing or malformed. */
static dfnet_status_t read_function(const char *name, const char *link, pci_function_t *f) {
  dfnet_status_t status = sysfs__resolve_link(link, f->sysfs_path, sizeof(f->sysfs_path));
  if (status != DFNET_STATUS_OK) {
    DFNET_LOGW(PCI_LOG, name, "cannot resolve %s: %s", link, dfnet_status_str(status));
    return status;
  }
  struct {
    const char *attr;
    uint32_t max;
    uint32_t *out;
  } required[] = {
      {"vendor", 0xffff, &f->vendor},
      {"device", 0xffff, &f->device},
      {"class", 0xffffff, &f->class_code},
      {"revision", 0xff, &f->revision},
  };
  for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++) {
    status = sysfs__read_uint(f->sysfs_path, required[i].attr, required[i].max, required[i].out);
    if (status != DFNET_STATUS_OK) {
      DFNET_LOGW(PCI_LOG, name, "%s/%s: %s; function skipped", f->sysfs_path, required[i].attr,
                 attr_error(status));
      return status;
    }
  }
  f->has_subsys = sysfs__read_uint(f->sysfs_path, "subsystem_vendor", 0xffff, &f->subsys_vendor) ==
                      DFNET_STATUS_OK &&
                  sysfs__read_uint(f->sysfs_path, "subsystem_device", 0xffff, &f->subsys_device) ==
                      DFNET_STATUS_OK;

  char driver_link[PATH_MAX + 8];
  char target[PATH_MAX];
  snprintf(driver_link, sizeof(driver_link), "%s/driver", f->sysfs_path);
  status = sysfs__read_link(driver_link, target, sizeof(target));
  f->driver[0] = '\0';
  if (status == DFNET_STATUS_OK) {
    snprintf(f->driver, sizeof(f->driver), "%s", sysfs__basename(target));
  } else if (status != DFNET_STATUS_NOT_FOUND) {
    DFNET_LOGW(PCI_LOG, name, "%s: %s; published without a kernel driver", driver_link,
               dfnet_status_str(status));
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t build_node(const pci_address_t *a, const pci_function_t *f,
                                 dfnet_v1_NodeAdd *node) {
  char node_name[32];
  if (a->domain == 0) {
    snprintf(node_name, sizeof(node_name), "%02x_%02x_%x", a->bus, a->dev, a->fn);
  } else {
    snprintf(node_name, sizeof(node_name), "%04x_%02x_%02x_%x", a->domain, a->bus, a->dev, a->fn);
  }
  dfnet_status_t s = enum__node_init(node, "pci", node_name);
  uint32_t topo = (uint32_t)((a->bus << 8) | (a->dev << 3) | a->fn);
  struct {
    uint32_t key;
    uint32_t value;
  } ints[] = {
      {DFNET_BIND_PROTOCOL, BIND_FUCHSIA_PCI_BIND_PROTOCOL_DEVICE},
      {DFNET_BIND_PCI_VID, f->vendor},
      {DFNET_BIND_PCI_DID, f->device},
      {DFNET_BIND_PCI_CLASS, (f->class_code >> 16) & 0xff},
      {DFNET_BIND_PCI_SUBCLASS, (f->class_code >> 8) & 0xff},
      {DFNET_BIND_PCI_INTERFACE, f->class_code & 0xff},
      {DFNET_BIND_PCI_REVISION, f->revision},
      {DFNET_BIND_PCI_TOPO, topo},
  };
  for (size_t i = 0; s == DFNET_STATUS_OK && i < sizeof(ints) / sizeof(ints[0]); i++) {
    s = enum__prop_int(node, ints[i].key, NULL, ints[i].value);
  }
  if (s == DFNET_STATUS_OK && f->has_subsys) {
    s = enum__prop_int(node, 0, DFNET_ENUM_KEY_PCI_SUBSYSTEM_VID, f->subsys_vendor);
    if (s == DFNET_STATUS_OK) {
      s = enum__prop_int(node, 0, DFNET_ENUM_KEY_PCI_SUBSYSTEM_DID, f->subsys_device);
    }
  }
  if (s == DFNET_STATUS_OK) {
    s = enum__prop_str(node, 0, DFNET_ENUM_KEY_PCI_SYSFS_PATH, f->sysfs_path);
  }
  if (s == DFNET_STATUS_OK && f->driver[0] != '\0') {
    s = enum__prop_str(node, 0, DFNET_ENUM_KEY_PCI_KERNEL_DRIVER, f->driver);
  }
  return s;
}

static int compare_names(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The entries of dir that look like PCI addresses, sorted; caller frees each and the
 * array. */
static dfnet_status_t list_functions(const char *dir, char ***out, size_t *count) {
  DIR *d = opendir(dir);
  if (d == NULL) {
    return dfnet_errno_status(errno);
  }
  char **names = NULL;
  size_t n = 0, cap = 0;
  dfnet_status_t status = DFNET_STATUS_OK;
  struct dirent *ent;
  while ((ent = readdir(d)) != NULL) {
    pci_address_t a;
    if (!parse_address(ent->d_name, &a)) {
      continue;
    }
    char **grown = dfnet_array_grow(names, n, &cap, sizeof *names, 32);
    if (grown == NULL) {
      status = DFNET_STATUS_RESOURCE_EXHAUSTED;
      break;
    }
    names = grown;
    names[n] = strdup(ent->d_name);
    if (names[n] == NULL) {
      status = DFNET_STATUS_RESOURCE_EXHAUSTED;
      break;
    }
    n++;
  }
  closedir(d);
  if (status != DFNET_STATUS_OK) {
    for (size_t i = 0; i < n; i++) {
      free(names[i]);
    }
    free(names);
    return status;
  }
  if (n > 1) {
    qsort(names, n, sizeof(*names), compare_names);
  }
  *out = names;
  *count = n;
  return DFNET_STATUS_OK;
}

static dfnet_status_t pci_start(dfnet_enum_t *e) {
  const pci_priv_t *priv = enum__priv(e);
  struct stat st;
  if (stat(priv->root, &st) != 0 || !S_ISDIR(st.st_mode)) {
    DFNET_LOGE(PCI_LOG, NULL, "sysfs root %s: not a directory", priv->root);
    return DFNET_STATUS_NOT_FOUND;
  }
  char dir[PATH_MAX + 32];
  snprintf(dir, sizeof(dir), "%s/bus/pci/devices", priv->root);
  char **names = NULL;
  size_t count = 0;
  dfnet_status_t status = list_functions(dir, &names, &count);
  if (status == DFNET_STATUS_NOT_FOUND) {
    DFNET_LOGW(PCI_LOG, NULL, "%s: no PCI bus in sysfs; nothing published", dir);
    return DFNET_STATUS_OK;
  }
  if (status != DFNET_STATUS_OK) {
    DFNET_LOGE(PCI_LOG, NULL, "%s: %s", dir, dfnet_status_str(status));
    return status;
  }
  dfnet_v1_NodeAdd *node = malloc(sizeof(*node));
  pci_function_t *f = malloc(sizeof(*f));
  if (node == NULL || f == NULL) {
    DFNET_LOGE(PCI_LOG, NULL, "out of memory");
    status = DFNET_STATUS_RESOURCE_EXHAUSTED;
    goto free_names;
  }
  status = enum__publish_bus(e, "pci");
  size_t published = 0;
  for (size_t i = 0; status == DFNET_STATUS_OK && i < count; i++) {
    char link[PATH_MAX + 64];
    pci_address_t a;
    snprintf(link, sizeof(link), "%s/%s", dir, names[i]);
    (void)parse_address(names[i], &a); /* listed only when it parses */
    if (read_function(names[i], link, f) != DFNET_STATUS_OK) {
      continue;
    }
    dfnet_status_t s = build_node(&a, f, node);
    if (s != DFNET_STATUS_OK) {
      DFNET_LOGW(PCI_LOG, names[i],
                 "cannot describe the function (%s, sysfs path %s); "
                 "skipped",
                 dfnet_status_str(s), f->sysfs_path);
      continue;
    }
    enum__node_added(e, node);
    published++;
  }
  if (status == DFNET_STATUS_OK) {
    DFNET_LOGI(PCI_LOG, NULL, "%zu of %zu PCI functions published from %s", published, count, dir);
  }
free_names:
  free(f);
  free(node);
  for (size_t i = 0; i < count; i++) {
    free(names[i]);
  }
  free(names);
  return status;
}

static const dfnet_enum_ops_t pci_ops = {
    .name = "pci",
    .priv_size = sizeof(pci_priv_t),
    .start = pci_start,
    .stop = NULL,
    .destroy = NULL,
};

dfnet_status_t dfnet_enum_pci_new(const char *sysfs_root, dfnet_enum_t **out) {
  if (sysfs_root == NULL) {
    sysfs_root = "/sys";
  }
  size_t len = strlen(sysfs_root);
  if (len == 0 || len >= PATH_MAX - 64) {
    DFNET_LOGE(PCI_LOG, NULL, "sysfs root: empty or too long (%zu bytes)", len);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_enum_t *e = enum__new(&pci_ops);
  if (e == NULL) {
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  pci_priv_t *priv = enum__priv(e);
  memcpy(priv->root, sysfs_root, len + 1);
  while (len > 1 && priv->root[len - 1] == '/') {
    priv->root[--len] = '\0';
  }
  *out = e;
  return DFNET_STATUS_OK;
}
