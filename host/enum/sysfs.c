/* Reading sysfs attributes and links. See sysfs.h. */
#include "host/enum/sysfs.h"

#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fileio.h"

static dfnet_status_t join(char *buf, size_t cap, const char *dir, const char *name) {
  int n = snprintf(buf, cap, "%s/%s", dir, name);
  return (n < 0 || (size_t)n >= cap) ? DFNET_STATUS_OUT_OF_RANGE : DFNET_STATUS_OK;
}

static void strip_trailing_space(char *s) {
  size_t len = strlen(s);
  while (len > 0 &&
         (s[len - 1] == '\n' || s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\r')) {
    s[--len] = '\0';
  }
}

dfnet_status_t sysfs__read_attr(const char *dir, const char *name, char *buf, size_t cap) {
  char path[PATH_MAX];
  dfnet_status_t status = join(path, sizeof(path), dir, name);
  if (status != DFNET_STATUS_OK) {
    return status;
  }
  status = dfnet_file_read_into(path, 0, buf, cap, NULL, NULL, 0);
  if (status != DFNET_STATUS_OK) {
    return status;
  }
  strip_trailing_space(buf);
  return DFNET_STATUS_OK;
}

dfnet_status_t sysfs__read_uint(const char *dir, const char *name, uint32_t max, uint32_t *out) {
  char text[64];
  dfnet_status_t status = sysfs__read_attr(dir, name, text, sizeof(text));
  if (status != DFNET_STATUS_OK) {
    return status;
  }
  if (text[0] == '\0' || text[0] == '-' || text[0] == '+' || text[0] == ' ') {
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  char *end = NULL;
  errno = 0;
  unsigned long long v = strtoull(text, &end, 0);
  if (errno != 0 || end == text || *end != '\0' || v > max) {
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  *out = (uint32_t)v;
  return DFNET_STATUS_OK;
}

/* Does text look like a link target: one line of printable characters, no NUL? */
static bool looks_like_path(const char *text) {
  if (text[0] == '\0') {
    return false;
  }
  for (const char *c = text; *c != '\0'; c++) {
    if ((unsigned char)*c < 0x20 || *c == 0x7f) {
      return false;
    }
  }
  return strchr(text, '/') != NULL;
}

dfnet_status_t sysfs__read_link(const char *path, char *buf, size_t cap) {
  if (cap == 0) {
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  ssize_t n = readlink(path, buf, cap);
  if (n >= 0) {
    if ((size_t)n >= cap) {
      return DFNET_STATUS_OUT_OF_RANGE;
    }
    buf[n] = '\0';
    return DFNET_STATUS_OK;
  }
  if (errno != EINVAL) {
    return dfnet_errno_status(errno);
  }
  /* Not a symlink: a captured tree may hold the link text in a plain file. */
  struct stat st;
  if (stat(path, &st) != 0) {
    return dfnet_errno_status(errno);
  }
  if (!S_ISREG(st.st_mode) || (size_t)st.st_size >= cap) {
    return S_ISREG(st.st_mode) ? DFNET_STATUS_OUT_OF_RANGE : DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t status = dfnet_file_read_into(path, 0, buf, cap, NULL, NULL, 0);
  if (status != DFNET_STATUS_OK) {
    return status;
  }
  strip_trailing_space(buf);
  return looks_like_path(buf) ? DFNET_STATUS_OK : DFNET_STATUS_INVALID_ARGUMENT;
}

/* Normalize a path lexically, in place: drop "." and empty components; ".." removes the
 * previous component (kept at the start of a relative path, dropped at the root). */
static void normalize(char *path) {
  char copy[PATH_MAX * 2];
  const char *comps[PATH_MAX];
  size_t count = 0;
  bool absolute = path[0] == '/';
  snprintf(copy, sizeof(copy), "%s", path);
  char *save = NULL;
  for (char *c = strtok_r(copy, "/", &save); c != NULL; c = strtok_r(NULL, "/", &save)) {
    if (strcmp(c, ".") == 0) {
      continue;
    }
    if (strcmp(c, "..") == 0) {
      if (count > 0 && strcmp(comps[count - 1], "..") != 0) {
        count--;
        continue;
      }
      if (absolute) {
        continue;
      }
    }
    if (count < sizeof(comps) / sizeof(comps[0])) {
      comps[count++] = c;
    }
  }
  size_t len = 0;
  if (absolute) {
    path[len++] = '/';
  }
  for (size_t i = 0; i < count; i++) {
    size_t clen = strlen(comps[i]);
    if (i > 0) {
      path[len++] = '/';
    }
    memcpy(path + len, comps[i], clen);
    len += clen;
  }
  if (len == 0) {
    path[len++] = '.';
  }
  path[len] = '\0';
}

dfnet_status_t sysfs__resolve_link(const char *path, char *buf, size_t cap) {
  char target[PATH_MAX];
  dfnet_status_t status = sysfs__read_link(path, target, sizeof(target));
  if (status != DFNET_STATUS_OK) {
    return status;
  }
  char joined[PATH_MAX * 2];
  if (target[0] == '/') {
    snprintf(joined, sizeof(joined), "%s", target);
  } else {
    const char *slash = strrchr(path, '/');
    int dir_len = slash != NULL ? (int)(slash - path) : 1;
    const char *dir = slash != NULL ? path : ".";
    snprintf(joined, sizeof(joined), "%.*s/%s", dir_len, dir, target);
  }
  char real[PATH_MAX];
  const char *result = joined;
  if (realpath(joined, real) != NULL) {
    result = real;
  } else {
    normalize(joined);
  }
  if (strlen(result) >= cap) {
    return DFNET_STATUS_OUT_OF_RANGE;
  }
  memcpy(buf, result, strlen(result) + 1);
  return DFNET_STATUS_OK;
}

const char *sysfs__basename(const char *path) {
  const char *slash = strrchr(path, '/');
  return slash != NULL ? slash + 1 : path;
}
