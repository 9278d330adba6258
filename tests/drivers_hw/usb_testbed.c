/* tests/drivers_hw/usb_testbed.h */
#include "usb_testbed.h"

#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>

static void fixture_path(char *out, size_t cap, const char *file) {
  snprintf(out, cap, DFNET_FIXTURES_DIR "/usb/%s", file);
}

UMockdevTestbed *usb_testbed_new(const char *recording, const char *ioctl_devnode,
                                 const char *ioctl_file) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
    fprintf(stderr, "this test must run under umockdev-wrapper\n");
    return NULL;
  }
  UMockdevTestbed *tb = umockdev_testbed_new();
  if (!umockdev_in_mock_environment()) {
    g_object_unref(tb);
    return NULL;
  }
  char path[PATH_MAX];
  GError *error = NULL;
  fixture_path(path, sizeof path, recording);
  bool ok = umockdev_testbed_add_from_file(tb, path, &error);
  if (ok && ioctl_devnode != NULL) {
    fixture_path(path, sizeof path, ioctl_file);
    ok = umockdev_testbed_load_ioctl(tb, ioctl_devnode, path, &error);
  }
  if (!ok) {
    fprintf(stderr, "umockdev testbed, %s: %s\n", path, error ? error->message : "?");
    g_clear_error(&error);
    g_object_unref(tb);
    return NULL;
  }
  if (!usb_testbed_share(tb)) {
    g_object_unref(tb);
    return NULL;
  }
  return tb;
}

/* nftw: open one entry to every user (directories rx, the rest rw). */
static int share_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw) {
  (void)ftw;
  mode_t add = type == FTW_D || type == FTW_DP ? 0777 : 0666; /* its preload makes sockets */
  if (type == FTW_SL || type == FTW_SLN)
    return 0;
  if (chmod(path, (sb->st_mode & 07777) | add) != 0) {
    perror(path);
    return -1;
  }
  return 0;
}

bool usb_testbed_share(UMockdevTestbed *tb) {
  gchar *root = umockdev_testbed_get_root_dir(tb); /* transfer full: ours to free */
  bool ok = root != NULL && nftw(root, share_entry, 16, FTW_PHYS) == 0;
  g_free(root);
  return ok;
}

bool usb_testbed_add_shared(UMockdevTestbed *tb, const char *text) {
  GError *error = NULL;
  mode_t mask = umask(0);
  bool ok = umockdev_testbed_add_from_string(tb, text, &error);
  umask(mask);
  if (!ok) {
    fprintf(stderr, "umockdev_testbed_add_from_string: %s\n", error ? error->message : "?");
    g_clear_error(&error);
    return false;
  }
  return usb_testbed_share(tb);
}

size_t usb_testbed_unhex(const char *hex, uint8_t *out, size_t cap) {
  size_t n = 0;
  for (; hex[0] != '\0' && hex[1] != '\0' && n < cap; hex += 2) {
    unsigned v;
    if (sscanf(hex, "%2x", &v) != 1)
      break;
    out[n++] = (uint8_t)v;
  }
  return n;
}
