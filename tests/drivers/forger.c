/* forger: a deliberately bad test driver (Zephyr's bad_driver.c idea) for the host agent's
 * check of a driver's calls (issue 18): it writes a Call straight onto its driver host's
 * link, bypassing the runtime, naming whatever caller it likes. The agent must believe its
 * own records only: a caller that is not a node whose driver runs in that driver host is
 * refused PERMISSION_DENIED, and the caller fields of a call it lets through are its own.
 *
 *   /dfnet.test.Forger/Forge  unary: request "caller|caller_driver_url"; writes
 *                             Call{target: the string property "dfnet.test.TARGET",
 *                             method: /dfnet.test.Echo/WhoCalls, caller, caller_driver_url}
 *                             with an id of its own, and replies OK. The answer to that
 *                             Call reaches the runtime, which knows no such call and drops
 *                             it.
 *
 * The link is the driver host's --fd (read from /proc/self/cmdline). The frame is a u32 LE
 * length and the protobuf Envelope{id = 1, call = 5}, encoded here by hand: a test driver
 * links nothing but the driver API.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dfnet/driver.h"

typedef struct forger {
  dfnet_driver_t *driver;
  int link;
  uint64_t next_id;
} forger_t;

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  do {
    p[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    v >>= 7;
  } while (v != 0);
  return n;
}

static size_t put_string(uint8_t *p, unsigned field, const char *s) {
  size_t len = strlen(s), n = 0;
  p[n++] = (uint8_t)(field << 3 | 2);
  n += put_varint(p + n, len);
  memcpy(p + n, s, len);
  return n + len;
}

static int link_fd(void) {
  char buf[4096];
  int fd = open("/proc/self/cmdline", O_RDONLY);
  if (fd < 0)
    return -1;
  ssize_t got = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (got <= 0)
    return -1;
  buf[got] = '\0';
  for (ssize_t i = 0; i < got;) {
    const char *arg = buf + i;
    size_t len = strlen(arg);
    if (strcmp(arg, "--fd") == 0 && i + (ssize_t)len + 1 < got)
      return atoi(arg + len + 1);
    i += (ssize_t)len + 1;
  }
  return -1;
}

static void forge(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  forger_t *f = ctx;
  char caller[512] = "", url[256] = "";
  const char *bar = memchr(req, '|', len);
  size_t clen = bar != NULL ? (size_t)(bar - (const char *)req) : len;
  snprintf(caller, sizeof caller, "%.*s", (int)clen, (const char *)req);
  if (bar != NULL)
    snprintf(url, sizeof url, "%.*s", (int)(len - clen - 1), bar + 1);
  const dfnet_node_property_t *t = dfnet_driver_property_find(f->driver, 0, "dfnet.test.TARGET");
  uint8_t body[2048], frame[2100];
  size_t n = 0;
  n += put_string(body + n, 1, t != NULL && t->value_str != NULL ? t->value_str : "");
  n += put_string(body + n, 2, "/dfnet.test.Echo/WhoCalls");
  n += put_string(body + n, 5, caller);
  n += put_string(body + n, 6, url);
  size_t m = 0;
  uint8_t *env = frame + 4;
  env[m++] = 1 << 3 | 0; /* id */
  m += put_varint(env + m, f->next_id++);
  env[m++] = 5 << 3 | 2; /* call */
  m += put_varint(env + m, n);
  memcpy(env + m, body, n);
  m += n;
  frame[0] = (uint8_t)m;
  frame[1] = (uint8_t)(m >> 8);
  frame[2] = (uint8_t)(m >> 16);
  frame[3] = (uint8_t)(m >> 24);
  bool sent = f->link >= 0 && write(f->link, frame, m + 4) == (ssize_t)(m + 4);
  dfnet_call_reply(call, sent ? DFNET_STATUS_OK : DFNET_STATUS_INTERNAL, NULL, NULL, 0);
}

static const dfnet_method_t forger_methods[] = {{"Forge", forge, false}};

static dfnet_status_t forger_start(dfnet_driver_t *driver, void *ctx) {
  forger_t *f = ctx;
  f->driver = driver;
  f->link = link_fd();
  f->next_id = (1ull << 63) | (1ull << 40); /* far from the runtime's own ids */
  return dfnet_driver_serve(driver, "dfnet.test.Forger", forger_methods, 1);
}

DFNET_DRIVER("forger", forger_t, .start = forger_start);
