/* drvkit: shared helpers of the hardware drivers (see drvkit.h). */
#include "drivers/common/drvkit.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <pb_decode.h>
#include <pb_encode.h>

#include "lib/fileio.h"

bool drvkit__decode(dfnet_call_t *call, const pb_msgdesc_t *fields, void *msg,
                    const uint8_t *request, size_t len) {
  pb_istream_t in = pb_istream_from_buffer(request, len);
  if (!pb_decode(&in, fields, msg)) {
    drvkit__fail(call, DFNET_STATUS_INVALID_ARGUMENT, "%s: request is not a valid message: %s",
                 dfnet_call_method(call), PB_GET_ERROR(&in));
    return false;
  }
  return true;
}

void drvkit__reply(dfnet_call_t *call, const pb_msgdesc_t *fields, const void *msg) {
  size_t size = 0;
  if (!pb_get_encoded_size(&size, fields, msg)) {
    drvkit__fail(call, DFNET_STATUS_INTERNAL, "%s: reply cannot be encoded",
                 dfnet_call_method(call));
    return;
  }
  uint8_t *buf = malloc(size > 0 ? size : 1);
  if (buf == NULL) {
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "%s: out of memory for a %zu-byte reply",
                 dfnet_call_method(call), size);
    return;
  }
  pb_ostream_t out = pb_ostream_from_buffer(buf, size);
  if (!pb_encode(&out, fields, msg)) {
    drvkit__fail(call, DFNET_STATUS_INTERNAL, "%s: reply cannot be encoded: %s",
                 dfnet_call_method(call), PB_GET_ERROR(&out));
    goto free_buf;
  }
  (void)dfnet_call_reply(call, DFNET_STATUS_OK, NULL, buf, out.bytes_written);
free_buf:
  free(buf);
}

dfnet_status_t drvkit__call_encoded(dfnet_driver_client_t *client,
                                    const dfnet_driver_client_call_args_t *args,
                                    const pb_msgdesc_t *fields, const void *msg,
                                    dfnet_driver_call_id_t *id) {
  uint8_t small[64]; /* the usual request: no allocation */
  size_t size = 0;
  if (!pb_get_encoded_size(&size, fields, msg))
    return DFNET_STATUS_INTERNAL;
  uint8_t *buf = size <= sizeof small ? small : malloc(size);
  if (buf == NULL)
    return DFNET_STATUS_INTERNAL;
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  pb_ostream_t out = pb_ostream_from_buffer(buf, size);
  if (pb_encode(&out, fields, msg)) {
    dfnet_driver_client_call_args_t a = *args;
    a.request = buf;
    a.len = out.bytes_written;
    st = dfnet_driver_client_call(client, &a, id);
  }
  if (buf != small)
    free(buf);
  return st;
}

void drvkit__fail(dfnet_call_t *call, dfnet_status_t status, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  bool callers_mistake = status == DFNET_STATUS_INVALID_ARGUMENT ||
                         status == DFNET_STATUS_OUT_OF_RANGE || status == DFNET_STATUS_NOT_FOUND;
  dfnet_driver_log(dfnet_call_driver(call),
                   callers_mistake ? DFNET_DRIVER_LOG_INFO : DFNET_DRIVER_LOG_WARN, "%s: %s",
                   dfnet_status_str(status), msg);
  (void)dfnet_call_reply(call, status, msg, NULL, 0);
}

void *drvkit__calloc(dfnet_call_t *call, size_t size) {
  void *p = calloc(1, size);
  if (p == NULL)
    drvkit__fail(call, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  return p;
}

/* The one errno map of dfnet (lib/fileio.h: ENOENT is NOT_FOUND there, an absent device
 * ENODEV/ENXIO UNAVAILABLE), shared inline: drivers do not link libdfnet-common. */
dfnet_status_t drvkit__status_from_errno(int err) { return dfnet_errno_status(err); }

const char *drvkit__prop_string(const dfnet_driver_t *driver, const char *key) {
  const dfnet_node_property_t *p = dfnet_driver_property_find(driver, 0, key);
  return p != NULL && p->type == DFNET_PROPERTY_STRING ? p->value_str : NULL;
}

bool drvkit__prop_uint(const dfnet_driver_t *driver, uint32_t int_key, const char *str_key,
                       uint32_t *out) {
  const dfnet_node_property_t *p = dfnet_driver_property_find(driver, int_key, str_key);
  if (p == NULL || p->type != DFNET_PROPERTY_UINT)
    return false;
  *out = p->value_uint;
  return true;
}

static dfnet_status_t copy_out(const char *value, char *buf, size_t cap) {
  if (strlen(value) >= cap)
    return DFNET_STATUS_OUT_OF_RANGE;
  memcpy(buf, value, strlen(value) + 1);
  return DFNET_STATUS_OK;
}

dfnet_status_t drvkit__setting(const dfnet_driver_t *driver, const char *key, const char *env,
                               const char *dflt, char *buf, size_t cap) {
  dfnet_status_t st = DFNET_STATUS_OK;
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(config, key);
  if (v != NULL) {
    st = cJSON_IsString(v) ? copy_out(v->valuestring, buf, cap) : DFNET_STATUS_INVALID_ARGUMENT;
    goto free_program;
  }
  const char *e = env != NULL ? getenv(env) : NULL;
  st = copy_out(e != NULL && e[0] != '\0' ? e : dflt, buf, cap);
free_program:
  cJSON_Delete(program);
  return st;
}

int drvkit__resource(const dfnet_driver_t *driver, const char *name, const char *source) {
  int fd = dfnet_driver_resource_fd(driver, name);
  if (fd < 0)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR,
                     "the node has no resource \"%s\" (dfnet-host hands it for %s)", name, source);
  return fd;
}

dfnet_status_t drvkit__read_text_at(int dirfd, const char *path, char *buf, size_t cap) {
  int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return dfnet_errno_status(errno);
  dfnet_status_t st = DFNET_STATUS_OK;
  size_t len = 0;
  for (;;) {
    if (len + 1 >= cap) {
      char extra;
      st = read(fd, &extra, 1) == 0 ? DFNET_STATUS_OK : DFNET_STATUS_OUT_OF_RANGE;
      break;
    }
    ssize_t n = read(fd, buf + len, cap - 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      st = dfnet_errno_status(errno);
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' ' || buf[len - 1] == '\t'))
    buf[--len] = '\0';
  return st;
}

dfnet_status_t drvkit__read_link_at(int dirfd, const char *path, char *buf, size_t cap) {
  if (cap == 0)
    return DFNET_STATUS_OUT_OF_RANGE;
  ssize_t n = readlinkat(dirfd, path, buf, cap);
  if (n >= 0) {
    if ((size_t)n >= cap)
      return DFNET_STATUS_OUT_OF_RANGE;
    buf[n] = '\0';
    return DFNET_STATUS_OK;
  }
  if (errno != EINVAL) /* EINVAL: not a link */
    return dfnet_errno_status(errno);
  /* Not a symlink: a captured tree may keep the link's text in a regular file. */
  struct stat sb;
  if (fstatat(dirfd, path, &sb, 0) != 0 || !S_ISREG(sb.st_mode))
    return DFNET_STATUS_INVALID_ARGUMENT;
  dfnet_status_t st = drvkit__read_text_at(dirfd, path, buf, cap);
  if (st != DFNET_STATUS_OK)
    return st;
  if (strchr(buf, '/') == NULL || strchr(buf, '\n') != NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  return DFNET_STATUS_OK;
}

const char *drvkit__basename(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}

static void class_added(dfnet_driver_t *driver, void *ctx, const char *name, dfnet_status_t status,
                        void *arg) {
  (void)ctx;
  (void)arg;
  if (status == DFNET_STATUS_OK)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_DEBUG, "class node %s added", name);
  else
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN,
                     "class node %s refused by the manager: %s (the driver stays reachable "
                     "by its node's moniker)",
                     name, dfnet_status_str(status));
}

static void offer_child_added(dfnet_driver_t *driver, void *ctx, const char *name,
                              dfnet_status_t status, void *arg) {
  (void)ctx;
  (void)arg;
  if (status != DFNET_STATUS_OK)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN,
                     "the child %s refused by the manager: %s (no composite can take it)", name,
                     dfnet_status_str(status));
}

dfnet_status_t drvkit__offer_child(dfnet_driver_t *driver, const char *name, const char *service) {
  dfnet_node_property_t part = {.str_key = DRVKIT_PROP_PART,
                                .type = DFNET_PROPERTY_STRING,
                                .value_str = dfnet_driver_node_moniker(driver)};
  const char *offers[] = {service};
  dfnet_child_args_t args = {
      .name = name, .properties = &part, .property_count = 1, .offers = offers, .offer_count = 1};
  dfnet_status_t st = dfnet_driver_add_child(driver, &args, offer_child_added, NULL);
  if (st != DFNET_STATUS_OK)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "cannot add the child %s offering %s: %s", name,
                     service, dfnet_status_str(st));
  return st;
}

dfnet_status_t drvkit__publish_class(dfnet_driver_t *driver, const char *class_name) {
  dfnet_child_args_t args = {
      .name = class_name,
      .class_name = class_name,
      .owned = true, /* the driver keeps it: the manager binds nothing to it */
  };
  dfnet_status_t st = dfnet_driver_add_child(driver, &args, class_added, NULL);
  if (st != DFNET_STATUS_OK)
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_WARN, "cannot add class node %s: %s", class_name,
                     dfnet_status_str(st));
  return st;
}

uint64_t drvkit__now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}
