/* A driver's resources, opened by the host agent (host/supervisor/resources.h). */
#include "host/supervisor/resources.h"

#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bind/dfnet_pci.h"
#include "bind/dfnet_platform.h"
#include "lib/fileio.h"
#include "lib/log.h"

#define RES_SUBSYS "resources"
#define RES_FLAGS (O_CLOEXEC | O_NONBLOCK)

/* How a property's file is opened. */
typedef enum res_kind {
  RES_RDWR,    /* O_RDWR */
  RES_TTY,     /* O_RDWR | O_NOCTTY */
  RES_BLOCK,   /* O_RDWR, else O_RDONLY; O_EXCL for a block device */
  RES_PCI_DIR, /* O_PATH | O_DIRECTORY, then "config" in it */
} res_kind_t;

/* The node properties that name a driver's files (the table of resources.h). */
static const struct {
  const char *key;
  const char *name;
  res_kind_t kind;
} k_props[] = {
    {BIND_DFNET_PLATFORM_TTY, "tty", RES_TTY},
    {BIND_DFNET_PLATFORM_GPIO_CHIP, "gpio", RES_RDWR},
    {BIND_DFNET_PLATFORM_I2C_BUS, "i2c", RES_RDWR},
    {BIND_DFNET_PLATFORM_SPI, "spi", RES_RDWR},
    {BIND_DFNET_PLATFORM_PATH, "path", RES_RDWR},
    {BIND_DFNET_PLATFORM_BLOCK, "block", RES_BLOCK},
    {BIND_DFNET_PCI_SYSFS_PATH, "sysfs", RES_PCI_DIR},
};

void dfnet_resources_close(dfnet_resource_set_t *set) {
  for (size_t i = 0; i < set->count; i++) {
    if (set->items[i].fd >= 0)
      close(set->items[i].fd);
    set->items[i].fd = -1;
  }
  set->count = 0;
}

/* The status an open's errno gives the start (resources.h). */
static dfnet_status_t open_status(int err) {
  dfnet_status_t st = dfnet_errno_status(err);
  if (st == DFNET_STATUS_NOT_FOUND || st == DFNET_STATUS_PERMISSION_DENIED ||
      st == DFNET_STATUS_RESOURCE_EXHAUSTED)
    return st;
  return DFNET_STATUS_UNAVAILABLE;
}

/* Was an O_RDWR open refused for want of write access (so that O_RDONLY may do)? */
static bool write_refused(int err) { return err == EACCES || err == EPERM || err == EROFS; }

/* Record fd as resource `name` (path) in the set. */
static dfnet_status_t add(dfnet_resource_set_t *set, const char *name, const char *path, int fd,
                          char *why, size_t why_size) {
  if (set->count == DFNET_RESOURCES_MAX) {
    close(fd);
    dfnet_why_set(why, why_size, "cannot hand resource %s %s: more than %u resources", name, path,
                  DFNET_RESOURCES_MAX);
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  dfnet_resource_t *r = &set->items[set->count];
  size_t name_len = strlen(name), path_len = strlen(path);
  if (name_len >= sizeof r->name || path_len >= sizeof r->path) {
    close(fd);
    dfnet_why_set(why, why_size,
                  "cannot hand resource %.80s: its name or path is too long (%zu, %zu bytes; at "
                  "most %zu, %zu)",
                  name, name_len, path_len, sizeof r->name - 1, sizeof r->path - 1);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  set->count++;
  memcpy(r->name, name, name_len + 1);
  memcpy(r->path, path, path_len + 1);
  r->fd = fd;
  return DFNET_STATUS_OK;
}

/* "cannot open resource tty /dev/ttyS0: ..."; a manifest's, named by its path, once:
 * "cannot open resource /dev/hwrng: ...". */
static dfnet_status_t open_failed(const char *name, const char *path, int err, char *why,
                                  size_t why_size) {
  bool named_by_path = strcmp(name, path) == 0;
  dfnet_why_set(why, why_size, "cannot open resource %s%s%s: %s", name, named_by_path ? "" : " ",
                named_by_path ? "" : path, strerror(err));
  return open_status(err);
}

/* Open the file of one property (k_props[k]) into the set. */
static dfnet_status_t open_prop(size_t k, const char *path, dfnet_resource_set_t *set, char *why,
                                size_t why_size) {
  const char *name = k_props[k].name;
  if (path[0] != '/') {
    dfnet_why_set(why, why_size, "resource %s: \"%.200s\" is not an absolute path", name, path);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  int fd = -1;
  switch (k_props[k].kind) {
  case RES_RDWR:
    fd = open(path, O_RDWR | RES_FLAGS);
    break;
  case RES_TTY:
    fd = open(path, O_RDWR | O_NOCTTY | RES_FLAGS);
    break;
  case RES_BLOCK: {
    struct stat sb;
    int excl = stat(path, &sb) == 0 && S_ISBLK(sb.st_mode) ? O_EXCL : 0;
    fd = open(path, O_RDWR | excl | RES_FLAGS);
    if (fd < 0 && write_refused(errno))
      fd = open(path, O_RDONLY | excl | RES_FLAGS);
    break;
  }
  case RES_PCI_DIR:
    fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
    break;
  }
  if (fd < 0)
    return open_failed(name, path, errno, why, why_size);
  dfnet_status_t st = add(set, name, path, fd, why, why_size);
  if (st != DFNET_STATUS_OK || k_props[k].kind != RES_PCI_DIR)
    return st;
  /* the function's configuration space, in that very directory */
  char config[sizeof set->items[0].path];
  snprintf(config, sizeof config, "%s/config", path);
  int cfd = openat(fd, "config", O_RDWR | RES_FLAGS);
  if (cfd < 0 && write_refused(errno))
    cfd = openat(fd, "config", O_RDONLY | RES_FLAGS);
  if (cfd < 0)
    return open_failed("config", config, errno, why, why_size);
  return add(set, "config", config, cfd, why, why_size);
}

static bool allowed(const dfnet_resource_source_t *src, const char *path) {
  for (size_t i = 0; i < src->allow_count; i++)
    if (src->allow[i] != NULL && fnmatch(src->allow[i], path, FNM_PATHNAME) == 0)
      return true;
  return false;
}

/* Open the manifest's resources into the set. */
static dfnet_status_t open_manifest(const dfnet_resource_source_t *src, dfnet_resource_set_t *set,
                                    char *why, size_t why_size) {
  dfnet_manifest_resource_t list[DFNET_MANIFEST_RESOURCES_MAX];
  size_t count = 0;
  char problem[256];
  if (dfnet_manifest_resources_parse(src->program_json, src->program_len, list, &count, problem,
                                     sizeof problem) != DFNET_STATUS_OK) {
    dfnet_why_set(why, why_size, "the driver's manifest: %s", problem);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  for (size_t i = 0; i < count; i++) {
    const char *path = list[i].path;
    if (!allowed(src, path)) {
      if (list[i].optional) { /* not handed: the driver does without (lib/resource.h) */
        DFNET_LOGD(RES_SUBSYS, NULL, "optional resource %s is not allowed on this host: not handed",
                   path);
        continue;
      }
      dfnet_why_set(why, why_size,
                    "resource %s is not allowed on this host (dfnet-host --allow-resource)", path);
      return DFNET_STATUS_PERMISSION_DENIED;
    }
    int fd = open(path, (list[i].writable ? O_RDWR : O_RDONLY) | RES_FLAGS);
    if (fd < 0 && list[i].optional && (errno == ENOENT || errno == ENOTDIR)) {
      DFNET_LOGD(RES_SUBSYS, NULL, "optional resource %s: %s: not handed", path, strerror(errno));
      continue;
    }
    if (fd < 0)
      return open_failed(path, path, errno, why, why_size);
    dfnet_status_t st = add(set, path, path, fd, why, why_size);
    if (st != DFNET_STATUS_OK)
      return st;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t dfnet_resources_open(const dfnet_resource_source_t *src, dfnet_resource_set_t *out,
                                    char *why, size_t why_size) {
  out->count = 0;
  dfnet_status_t st = DFNET_STATUS_OK;
  for (size_t k = 0; k < sizeof k_props / sizeof k_props[0] && st == DFNET_STATUS_OK; k++) {
    for (size_t i = 0; i < src->property_count; i++) {
      const dfnet_v1_NodeProperty *p = &src->properties[i];
      if (p->which_key != dfnet_v1_NodeProperty_str_key_tag ||
          p->which_value != dfnet_v1_NodeProperty_str_value_tag ||
          strcmp(p->key.str_key, k_props[k].key) != 0)
        continue;
      st = open_prop(k, p->value.str_value, out, why, why_size);
      break; /* one value per key (the enumerators publish each key once) */
    }
  }
  if (st == DFNET_STATUS_OK && src->program_json != NULL && src->program_len > 0)
    st = open_manifest(src, out, why, why_size);
  if (st != DFNET_STATUS_OK)
    dfnet_resources_close(out);
  return st;
}
