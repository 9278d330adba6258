/* bench/bind_bench: match one node of 12 properties against 1,000 verified programs of
 * realistic size (PCI, USB and service-offer rules as Fuchsia drivers write them, 5-12
 * instructions each, compiled by dfnet_bind_compile from the built-in libraries).
 * Prints ns per program and per full scan, and counts heap allocations made while
 * matching (malloc/calloc/realloc are wrapped; counting is off under sanitizers, whose
 * runtimes own malloc). Asserts nothing; the target is a full scan < 100 us. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dfnet/bind.h"
#include "dfnet/bind_keys.h"

#if defined(__SANITIZE_ADDRESS__)
#define BENCH_COUNT_ALLOCS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BENCH_COUNT_ALLOCS 0
#endif
#endif
#ifndef BENCH_COUNT_ALLOCS
#define BENCH_COUNT_ALLOCS 1
#endif

#if BENCH_COUNT_ALLOCS
/* Interpose glibc's allocator to count calls (glibc exports the __libc_ entry points). */
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);
static volatile long g_allocs;
void *malloc(size_t size) {
  g_allocs++;
  return __libc_malloc(size);
}
void *calloc(size_t n, size_t size) {
  g_allocs++;
  return __libc_calloc(n, size);
}
void *realloc(void *p, size_t size) {
  g_allocs++;
  return __libc_realloc(p, size);
}
void free(void *p) { __libc_free(p); }
#else
static volatile long g_allocs;
#endif

#define PROGRAMS 1000

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Realistic rules, varied by i: most fail at the first or second condition, some go deep. */
static void make_rules(int i, char *out, size_t n) {
  static const char *const pci_dids[] = {"VIRTIO_DEV_TYPE_NETWORK", "VIRTIO_DEV_TYPE_BLOCK",
                                         "VIRTIO_DEV_TYPE_CONSOLE", "VIRTIO_DEV_TYPE_GPU",
                                         "VIRTIO_DEV_TYPE_INPUT",   "VIRTIO_DEV_TYPE_SOCKET"};
  static const char *const usb_vids[] = {"FTDI", "CYPRESS", "ASIX", "REALTEK", "GOOGLE"};
  switch (i % 4) {
  case 0: /* a virtio PCI driver: protocol, vendor, accept list of device ids */
    snprintf(out, n,
             "using fuchsia.pci;\n"
             "fuchsia.BIND_PROTOCOL == fuchsia.pci.BIND_PROTOCOL.DEVICE;\n"
             "fuchsia.BIND_PCI_VID == fuchsia.pci.BIND_PCI_VID.VIRTIO;\n"
             "accept fuchsia.BIND_PCI_DID { fuchsia.pci.BIND_PCI_DID.%s, %u, %u }\n"
             "fuchsia.BIND_PCI_REVISION != %u;\n",
             pci_dids[i % 6], 0x2000u + (unsigned)i, 0x3000u + (unsigned)i,
             200u + (unsigned)(i % 50));
    break;
  case 1: /* a PCI class driver from another vendor */
    snprintf(out, n,
             "using fuchsia.pci;\n"
             "fuchsia.BIND_PROTOCOL == fuchsia.pci.BIND_PROTOCOL.DEVICE;\n"
             "fuchsia.BIND_PCI_VID == %u;\n"
             "fuchsia.BIND_PCI_CLASS == fuchsia.pci.BIND_PCI_CLASS.NETWORK;\n"
             "fuchsia.BIND_PCI_SUBCLASS == 0;\n",
             0x8000u + (unsigned)i);
    break;
  case 2: /* a USB interface driver */
    snprintf(out, n,
             "using fuchsia.usb;\n"
             "fuchsia.BIND_PROTOCOL == fuchsia.usb.BIND_PROTOCOL.INTERFACE;\n"
             "if fuchsia.BIND_USB_VID == fuchsia.usb.BIND_USB_VID.%s {\n"
             "  fuchsia.BIND_USB_PID == %u;\n"
             "} else {\n"
             "  fuchsia.BIND_USB_CLASS == fuchsia.usb.BIND_USB_CLASS.VENDOR_SPECIFIC;\n"
             "  fuchsia.BIND_USB_SUBCLASS == %u;\n"
             "}\n",
             usb_vids[i % 5], 0x1000u + (unsigned)i, (unsigned)(i % 7));
    break;
  default: /* a driver bound through an offered service (string keys, enum values) */
    snprintf(out, n,
             "using fuchsia.pci;\n"
             "using dfnet.hardware.%s;\n"
             "dfnet.hardware.%s.Service == dfnet.hardware.%s.Service.ZirconTransport;\n"
             "fuchsia.BIND_PCI_VID == fuchsia.pci.BIND_PCI_VID.VIRTIO;\n"
             "fuchsia.BIND_PCI_DID != %u;\n",
             (i % 3 == 0)   ? "rng"
             : (i % 3 == 1) ? "serial"
                            : "usb",
             (i % 3 == 0)   ? "rng"
             : (i % 3 == 1) ? "serial"
                            : "usb",
             (i % 3 == 0)   ? "rng"
             : (i % 3 == 1) ? "serial"
                            : "usb",
             0x5000u + (unsigned)i);
    break;
  }
}

int main(int argc, char **argv) {
  long scans = argc > 1 ? strtol(argv[1], NULL, 10) : 2000;
  if (scans <= 0) {
    scans = 2000;
  }
  static dfnet_bind_program_t *progs[PROGRAMS];
  const char *dirs[] = {getenv("DFNET_BIND_LIB_DIR") ? getenv("DFNET_BIND_LIB_DIR")
                                                     : DFNET_BIND_LIB_DIR};
  dfnet_bind_compile_options_t opts = {NULL, 0, dirs, 1, false};
  size_t total_bytes = 0, total_insts_bytes = 0;
  double t0 = now_ns();
  for (int i = 0; i < PROGRAMS; i++) {
    char rules[2048];
    make_rules(i, rules, sizeof rules);
    dfnet_bind_source_t src = {"bench.bind", rules, strlen(rules)};
    uint8_t *bytes = NULL;
    size_t len = 0;
    char *err = NULL;
    if (dfnet_bind_compile(&src, &opts, &bytes, &len, &err) != DFNET_STATUS_OK) {
      fprintf(stderr, "bind_bench: program %d: %s", i, err ? err : "out of memory\n");
      return 1;
    }
    char why[256];
    if (dfnet_bind_program_load(bytes, len, &progs[i], why, sizeof why) != DFNET_STATUS_OK) {
      fprintf(stderr, "bind_bench: program %d does not verify: %s\n", i, why);
      return 1;
    }
    total_bytes += len;
    total_insts_bytes += len > 25 ? len - 25 : 0;
    free(bytes);
    free(err);
  }
  double t_compile = now_ns() - t0;
  long compile_allocs = g_allocs; /* proves the counter sees the library's allocations */

  /* A virtio-rng PCI node as the host agent publishes it: 12 properties. */
  const dfnet_bind_property_t props[12] = {
      {DFNET_BIND_PROTOCOL, NULL, DFNET_BIND_VALUE_UINT, 0x1f, NULL, false},
      {DFNET_BIND_PCI_VID, NULL, DFNET_BIND_VALUE_UINT, 0x1af4, NULL, false},
      {DFNET_BIND_PCI_DID, NULL, DFNET_BIND_VALUE_UINT, 0x1044, NULL, false},
      {DFNET_BIND_PCI_CLASS, NULL, DFNET_BIND_VALUE_UINT, 0xff, NULL, false},
      {DFNET_BIND_PCI_SUBCLASS, NULL, DFNET_BIND_VALUE_UINT, 0x00, NULL, false},
      {DFNET_BIND_PCI_INTERFACE, NULL, DFNET_BIND_VALUE_UINT, 0x00, NULL, false},
      {DFNET_BIND_PCI_REVISION, NULL, DFNET_BIND_VALUE_UINT, 0x01, NULL, false},
      {DFNET_BIND_PCI_TOPO, NULL, DFNET_BIND_VALUE_UINT, 0x28, NULL, false},
      {0, "fuchsia.hardware.pci.Service", DFNET_BIND_VALUE_ENUM, 0,
       "fuchsia.hardware.pci.Service.ZirconTransport", false},
      {0, "dfnet.hardware.rng.Service", DFNET_BIND_VALUE_ENUM, 0,
       "dfnet.hardware.rng.Service.ZirconTransport", false},
      {0, "fuchsia.pci.Device", DFNET_BIND_VALUE_BOOL, 0, NULL, true},
      {0, "dfnet.host", DFNET_BIND_VALUE_STRING, 0, "lab-a", false},
  };
  dfnet_bind_node_t node;
  if (dfnet_bind_node_init(&node, props, 12) != DFNET_STATUS_OK) {
    return 1;
  }

  long matched = 0, errors = 0;
  long allocs_before = g_allocs;
  double best = 1e18, sum = 0;
  for (long s = 0; s < scans; s++) {
    double a = now_ns();
    for (int i = 0; i < PROGRAMS; i++) {
      dfnet_bind_result_t r = dfnet_bind_program_match(progs[i], &node, NULL);
      if (s == 0) {
        matched += r == DFNET_BIND_MATCH;
        errors += r == DFNET_BIND_ERROR;
      }
    }
    double d = now_ns() - a;
    sum += d;
    if (d < best) {
      best = d;
    }
  }
  long match_allocs = g_allocs - allocs_before;

  /* Trace mode (what `dfnet bind why` uses), same node. */
  double tbest = 1e18;
  allocs_before = g_allocs;
  for (long s = 0; s < scans / 10 + 1; s++) {
    double a = now_ns();
    for (int i = 0; i < PROGRAMS; i++) {
      dfnet_bind_trace_t trace;
      (void)dfnet_bind_program_match(progs[i], &node, &trace);
    }
    double d = now_ns() - a;
    if (d < tbest) {
      tbest = d;
    }
  }
  long trace_allocs = g_allocs - allocs_before;

  printf(
      "bind_bench: %d programs, %zu bytecode bytes (avg %.1f per program), compiled and "
      "verified in %.1f ms\n",
      PROGRAMS, total_bytes, (double)total_bytes / PROGRAMS, t_compile / 1e6);
  printf("node: 12 properties; matched %ld programs, %ld errors\n", matched, errors);
  printf("full scan (1,000 programs): best %.1f us, mean %.1f us over %ld scans\n", best / 1e3,
         sum / (double)scans / 1e3, scans);
  printf("per program: best %.1f ns, mean %.1f ns\n", best / PROGRAMS,
         sum / (double)scans / PROGRAMS);
  printf("trace mode full scan: best %.1f us (%.1f ns per program)\n", tbest / 1e3,
         tbest / PROGRAMS);
#if BENCH_COUNT_ALLOCS
  printf("heap allocations while matching: %ld (plain), %ld (trace); while compiling: %ld\n",
         match_allocs, trace_allocs, compile_allocs);
#else
  (void)match_allocs;
  (void)trace_allocs;
  (void)compile_allocs;
  printf("heap allocations while matching: not counted (sanitizer build)\n");
#endif
  (void)total_insts_bytes;
  for (int i = 0; i < PROGRAMS; i++) {
    dfnet_bind_program_destroy(progs[i]);
  }
  return 0;
}
