/* bench/enum_bench: the host enumerators' figures. Prints; asserts nothing.
 *   - PCI: time of one start() over the captured sysfs fixture (6 functions);
 *   - board: time of one start() over tests/host_enum/board-example.json;
 *   - USB hot-plug under umockdev: from a device's uevent (plug: the testbed adds the
 *     recorded keyboard; unplug: the "remove" uevent) to the node event at the sink,
 *     min / median / max over N rounds (issue 6 target: hot-plug to node under 1 s; this
 *     is the enumerator's share of it).
 * Usage: enum_bench [ROUNDS] (default 20). Needs libumockdev's preload: it re-executes
 * itself through umockdev-wrapper when LD_PRELOAD lacks it. Fixtures come from the source
 * tree's tests/fixtures/; DFNET_SOURCE_DIR defaults to the source tree it was built from. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <umockdev.h>

#include "host/enum/enum.h"

#define KBD_SYSFS "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-3"
#define KBD_NODE "001_011"

typedef struct bench_sink {
  pthread_mutex_t lock;
  pthread_cond_t cond;
  int added, removed; /* keyboard device events seen */
  double last_ns;     /* when the last keyboard event arrived */
} bench_sink_t;

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void on_added(void *ctx, const dfnet_v1_NodeAdd *node) {
  bench_sink_t *s = ctx;
  if (strcmp(node->parent, "usb") == 0 && strcmp(node->name, KBD_NODE) == 0) {
    pthread_mutex_lock(&s->lock);
    s->added++;
    s->last_ns = now_ns();
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
  }
}

static void on_removed(void *ctx, const char *moniker) {
  bench_sink_t *s = ctx;
  if (strcmp(moniker, "usb." KBD_NODE) == 0) {
    pthread_mutex_lock(&s->lock);
    s->removed++;
    s->last_ns = now_ns();
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
  }
}

static void on_silent_added(void *ctx, const dfnet_v1_NodeAdd *node) {
  (void)ctx;
  (void)node;
}

static void on_silent_removed(void *ctx, const char *moniker) {
  (void)ctx;
  (void)moniker;
}

/* Wait (5 s at most) until *counter reaches want; returns the arrival time or -1. */
static double wait_for(bench_sink_t *s, const int *counter, int want) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  pthread_mutex_lock(&s->lock);
  while (*counter < want) {
    if (pthread_cond_timedwait(&s->cond, &s->lock, &deadline) != 0) {
      break;
    }
  }
  double t = *counter >= want ? s->last_ns : -1;
  pthread_mutex_unlock(&s->lock);
  return t;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void print_stats(const char *what, double *ms, int n) {
  if (n == 0) {
    printf("%-28s no samples\n", what);
    return;
  }
  qsort(ms, (size_t)n, sizeof(*ms), compare_double);
  printf("%-28s min %.2f ms  median %.2f ms  max %.2f ms  (%d rounds)\n", what, ms[0], ms[n / 2],
         ms[n - 1], n);
}

static double time_start(dfnet_enum_t *e) {
  dfnet_enum_sink_t sink = {on_silent_added, on_silent_removed, NULL, NULL};
  double t0 = now_ns();
  dfnet_status_t status = dfnet_enum_start(e, &sink);
  double t1 = now_ns();
  dfnet_enum_destroy(e);
  return status == DFNET_STATUS_OK ? (t1 - t0) / 1e6 : -1;
}

static char *first_record(const char *file) {
  gchar *text = NULL;
  if (!g_file_get_contents(file, &text, NULL, NULL)) {
    return NULL;
  }
  char *blank = strstr(text, "\n\n");
  if (blank != NULL) {
    blank[1] = '\0';
  }
  return text;
}

int main(int argc, char **argv) {
  const char *preload = getenv("LD_PRELOAD");
  if (preload == NULL || strstr(preload, "libumockdev-preload") == NULL) {
    setenv("ASAN_OPTIONS", "verify_asan_link_order=0", 0);
    char *args[3] = {"umockdev-wrapper", argv[0], argc > 1 ? argv[1] : NULL};
    execvp(args[0], args);
    perror("enum_bench: exec umockdev-wrapper");
    return 1;
  }
  int rounds = argc > 1 ? atoi(argv[1]) : 20;
  if (rounds <= 0 || rounds > 1000) {
    rounds = 20;
  }
  const char *source =
      getenv("DFNET_SOURCE_DIR") ? getenv("DFNET_SOURCE_DIR") : DFNET_BENCH_SOURCE_DIR;
  char path[4096];

  /* PCI and board: synchronous start() cost. */
  dfnet_enum_t *e = NULL;
  double pci[50], board[50];
  int n_pci = 0, n_board = 0;
  snprintf(path, sizeof(path), "%s", DFNET_FIXTURES_DIR "/sysfs-virtio-vm");
  for (int i = 0; i < 50; i++) {
    if (dfnet_enum_pci_new(path, &e) == DFNET_STATUS_OK && (pci[n_pci] = time_start(e)) >= 0)
      n_pci++;
  }
  snprintf(path, sizeof(path), "%s/tests/host_enum/board-example.json", source);
  for (int i = 0; i < 50; i++) {
    if (dfnet_enum_board_new(path, &e) == DFNET_STATUS_OK && (board[n_board] = time_start(e)) >= 0)
      n_board++;
  }
  print_stats("pci start (fixture, 6 fn)", pci, n_pci);
  print_stats("board start (3 devices)", board, n_board);

  /* USB hot-plug under umockdev. */
  UMockdevTestbed *testbed = umockdev_testbed_new();
  bench_sink_t s = {.added = 0};
  pthread_mutex_init(&s.lock, NULL);
  pthread_cond_init(&s.cond, NULL);
  if (dfnet_enum_usb_new(&e) != DFNET_STATUS_OK) {
    return 1;
  }
  dfnet_enum_sink_t sink = {on_added, on_removed, NULL, &s};
  if (dfnet_enum_start(e, &sink) != DFNET_STATUS_OK) {
    return 1;
  }
  snprintf(path, sizeof(path), "%s", DFNET_FIXTURES_DIR "/usb/usbkbd.pcap.umockdev");
  char *kbd = first_record(path);
  double plug[1000], unplug[1000];
  int n_plug = 0, n_unplug = 0;
  double t0 = now_ns();
  if (kbd == NULL || !umockdev_testbed_add_from_file(testbed, path, NULL)) {
    fprintf(stderr, "enum_bench: cannot load %s\n", path);
    return 1;
  }
  double t = wait_for(&s, &s.added, 1);
  if (t >= 0) {
    plug[n_plug++] = (t - t0) / 1e6;
  }
  for (int i = 0; i < rounds; i++) {
    t0 = now_ns();
    umockdev_testbed_uevent(testbed, KBD_SYSFS, "remove");
    t = wait_for(&s, &s.removed, i + 1);
    if (t < 0) {
      fprintf(stderr, "enum_bench: unplug %d not seen within 5 s\n", i);
      break;
    }
    unplug[n_unplug++] = (t - t0) / 1e6;
    umockdev_testbed_remove_device(testbed, KBD_SYSFS);
    t0 = now_ns();
    umockdev_testbed_add_from_string(testbed, kbd, NULL);
    t = wait_for(&s, &s.added, i + 2);
    if (t < 0) {
      fprintf(stderr, "enum_bench: plug %d not seen within 5 s\n", i);
      break;
    }
    plug[n_plug++] = (t - t0) / 1e6;
  }
  print_stats("usb plug -> node added", plug, n_plug);
  print_stats("usb unplug -> node removed", unplug, n_unplug);
  printf("target: hot-plug to node under 1000 ms (this is the enumerator's share)\n");
  dfnet_enum_destroy(e);
  g_free(kbd);
  g_object_unref(testbed);
  return 0;
}
