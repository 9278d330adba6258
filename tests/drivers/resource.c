/* resource: a test driver that reports the resources it was handed (include/dfnet/driver.h
 * "Resources"; docs/architecture.md "Resources"). Serves dfnet.test.Resource with raw bytes
 * payloads:
 *   /dfnet.test.Resource/List  unary: "<name>=<kind>,..." in the order handed, kind "file",
 *                              "dir", "chr", "blk", "fifo", "sock" or "bad" (fstat fails),
 *                              "" when it was handed none.
 *   /dfnet.test.Resource/Read  unary: the request is a resource's name; the reply what
 *                              read(2) gives from its descriptor (at most 256 bytes; a
 *                              regular file from byte 0, with pread): NOT_FOUND when
 *                              dfnet_driver_resource_fd() says -1; UNAVAILABLE with the
 *                              errno text when the read fails (EAGAIN when nothing waits).
 *   /dfnet.test.Resource/Write unary: the request is "<name>=<bytes>": the bytes written to
 *                              that descriptor (pwrite at 0 for a regular file).
 * It opens nothing by path: everything it reads comes through the handed descriptors.
 *
 * With "config": {"kid_did": N, "kid_tty": PATH} in its manifest's program block it adds a
 * child "kid" for the manager to bind: its own node's properties, but
 * fuchsia.BIND_PLATFORM_DEV_DID N and "dfnet.platform.TTY" PATH (a driver may write any path
 * into a child's properties: the agent hands the child's driver nothing from them).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "dfnet/bind_keys.h"
#include "dfnet/driver.h"

#define RES_READ_MAX 256

static const char *kind(int fd) {
  struct stat sb;
  if (fd < 0 || fstat(fd, &sb) != 0)
    return "bad";
  if (S_ISREG(sb.st_mode))
    return "file";
  if (S_ISDIR(sb.st_mode))
    return "dir";
  if (S_ISCHR(sb.st_mode))
    return "chr";
  if (S_ISBLK(sb.st_mode))
    return "blk";
  if (S_ISFIFO(sb.st_mode))
    return "fifo";
  if (S_ISSOCK(sb.st_mode))
    return "sock";
  return "other";
}

static bool is_regular(int fd) {
  struct stat sb;
  return fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void res_list(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  (void)req;
  (void)len;
  dfnet_driver_t *driver = dfnet_call_driver(call);
  char text[4096] = "";
  size_t used = 0;
  for (size_t i = 0; i < dfnet_driver_resource_count(driver) && used < sizeof text; i++) {
    const char *name = dfnet_driver_resource_name(driver, i);
    int n = snprintf(text + used, sizeof text - used, "%s%s=%s", i > 0 ? "," : "", name,
                     kind(dfnet_driver_resource_fd(driver, name)));
    if (n < 0)
      break;
    used += (size_t)n;
  }
  used = strnlen(text, sizeof text);
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)text, used);
}

/* The descriptor of the resource named by req[0 .. len), or -1 (the call is then answered). */
static int find(dfnet_call_t *call, const uint8_t *req, size_t len) {
  char name[256];
  snprintf(name, sizeof name, "%.*s", (int)len, (const char *)req);
  int fd = dfnet_driver_resource_fd(dfnet_call_driver(call), name);
  if (fd < 0) {
    char msg[300];
    snprintf(msg, sizeof msg, "no resource \"%s\"", name);
    dfnet_call_reply(call, DFNET_STATUS_NOT_FOUND, msg, NULL, 0);
  }
  return fd;
}

static void res_read(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  int fd = find(call, req, len);
  if (fd < 0)
    return;
  uint8_t buf[RES_READ_MAX];
  ssize_t n = is_regular(fd) ? pread(fd, buf, sizeof buf, 0) : read(fd, buf, sizeof buf);
  if (n < 0) {
    dfnet_call_reply(call, DFNET_STATUS_UNAVAILABLE, strerror(errno), NULL, 0);
    return;
  }
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, buf, (size_t)n);
}

static void res_write(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)ctx;
  const uint8_t *eq = memchr(req, '=', len);
  if (eq == NULL) {
    dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, "want <name>=<bytes>", NULL, 0);
    return;
  }
  int fd = find(call, req, (size_t)(eq - req));
  if (fd < 0)
    return;
  size_t n = len - (size_t)(eq + 1 - req);
  ssize_t put = is_regular(fd) ? pwrite(fd, eq + 1, n, 0) : write(fd, eq + 1, n);
  if (put < 0 || (size_t)put != n) {
    dfnet_call_reply(call, DFNET_STATUS_UNAVAILABLE, put < 0 ? strerror(errno) : "short write",
                     NULL, 0);
    return;
  }
  dfnet_call_reply(call, DFNET_STATUS_OK, NULL, NULL, 0);
}

/* The child "kid" of "kid_did" / "kid_tty" (see the top), when configured. */
static dfnet_status_t add_kid(dfnet_driver_t *driver) {
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const cJSON *did = cJSON_GetObjectItemCaseSensitive(config, "kid_did");
  const cJSON *tty = cJSON_GetObjectItemCaseSensitive(config, "kid_tty");
  dfnet_status_t st = DFNET_STATUS_OK;
  if (cJSON_IsNumber(did) && cJSON_IsString(tty)) {
    size_t n = 0;
    const dfnet_node_property_t *own = dfnet_driver_properties(driver, &n);
    dfnet_node_property_t props[64];
    size_t k = 0;
    for (size_t i = 0; i < n && k < 63; i++) {
      if (own[i].str_key != NULL && strcmp(own[i].str_key, "dfnet.platform.TTY") == 0)
        continue;
      props[k] = own[i];
      if (own[i].str_key == NULL && own[i].int_key == DFNET_BIND_PLATFORM_DEV_DID)
        props[k].value_uint = (uint32_t)did->valuedouble;
      k++;
    }
    props[k++] = (dfnet_node_property_t){.str_key = "dfnet.platform.TTY",
                                         .type = DFNET_PROPERTY_STRING,
                                         .value_str = tty->valuestring};
    const dfnet_child_args_t args = {.name = "kid", .properties = props, .property_count = k};
    st = dfnet_driver_add_child(driver, &args, NULL, NULL);
  }
  cJSON_Delete(program);
  return st;
}

static dfnet_status_t res_start(dfnet_driver_t *driver, void *ctx) {
  (void)ctx;
  dfnet_status_t st = add_kid(driver);
  if (st != DFNET_STATUS_OK)
    return st;
  static const dfnet_method_t methods[] = {
      {.name = "List", .handler = res_list},
      {.name = "Read", .handler = res_read},
      {.name = "Write", .handler = res_write},
  };
  return dfnet_driver_serve(driver, "dfnet.test.Resource", methods, 3);
}

DFNET_DRIVER("resource", char, .start = res_start);
