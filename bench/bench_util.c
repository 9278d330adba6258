/* Helpers the call benchmarks share (bench_util.h): the clock, failures, percentiles and
 * CPU time per process. Measures nothing by itself. */
#include "bench_util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char *g_name = "bench";

uint64_t bench_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_set_name(const char *name) { g_name = name; }

void bench_die(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: ", g_name);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1); /* atexit: what the run started goes */
}

const char *bench_met(bool ok) { return ok ? "met" : "NOT met"; }

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

bench_latency_t bench_percentiles(uint64_t *t, size_t n) {
  if (n == 0)
    return (bench_latency_t){0, 0};
  qsort(t, n, sizeof t[0], cmp_u64);
  return (bench_latency_t){t[n / 2] / 1e3, t[n * 99 / 100] / 1e3};
}

void bench_procs_add(bench_procs_t *p, const char *name, pid_t pid) {
  if (p->count >= BENCH_PROCS_MAX)
    return;
  p->names[p->count] = name;
  p->pids[p->count] = pid;
  p->count++;
}

/* utime + stime of `pid` in clock ticks, or 0. */
static uint64_t cpu_ticks(pid_t pid) {
  char path[64], buf[1024];
  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  FILE *f = fopen(path, "r");
  if (f == NULL)
    return 0;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  char *p = strrchr(buf, ')'); /* the name may hold spaces */
  unsigned long long ut = 0, st = 0;
  if (p == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
    return 0;
  return ut + st;
}

void bench_cpu_snapshot(const bench_procs_t *p, bench_cpu_t *out) {
  memset(out, 0, sizeof *out);
  for (int i = 0; i < p->count; i++)
    out->ticks[i] = p->pids[i] > 0 ? cpu_ticks(p->pids[i]) : 0;
}

void bench_cpu_per(const bench_procs_t *p, const bench_cpu_t *before, double units,
                   double out[BENCH_PROCS_MAX]) {
  bench_cpu_t now;
  bench_cpu_snapshot(p, &now);
  double tick_us = 1e6 / (double)sysconf(_SC_CLK_TCK);
  for (int i = 0; i < p->count; i++)
    out[i] = units > 0 && now.ticks[i] >= before->ticks[i]
                 ? (double)(now.ticks[i] - before->ticks[i]) * tick_us / units
                 : 0.0;
}

void bench_cpu_print(const bench_procs_t *p, const double per[BENCH_PROCS_MAX], const char *unit) {
  printf("    CPU per %s:", unit);
  for (int i = 0; i < p->count; i++)
    printf("%s %s %.1f us", i ? "," : "", p->names[i], per[i]);
  printf("\n");
}

pid_t bench_first_child(pid_t pid) {
  char path[80];
  snprintf(path, sizeof path, "/proc/%ld/task/%ld/children", (long)pid, (long)pid);
  FILE *f = fopen(path, "r");
  long child = 0;
  if (f != NULL && fscanf(f, "%ld", &child) != 1)
    child = 0;
  if (f != NULL)
    fclose(f);
  return (pid_t)child;
}

double bench_proc_cpu_s(pid_t pid) { return (double)cpu_ticks(pid) / (double)sysconf(_SC_CLK_TCK); }

long bench_proc_rss_kib(pid_t pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
  FILE *f = fopen(path, "r");
  long kib = -1;
  while (f && fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = strtol(line + 6, NULL, 10);
  if (f)
    fclose(f);
  return kib;
}

void bench_fsync_floor(const char *dir, uint64_t *t, size_t n) {
  static char page[4096];
  char path[600];
  snprintf(path, sizeof path, "%s/fsync-floor", dir);
  int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0)
    bench_die("%s: cannot create", path);
  for (size_t i = 0; i < n; i++) {
    uint64_t t0 = bench_now_ns();
    if (pwrite(fd, page, sizeof page, (off_t)(i % 16) * 4096) != (ssize_t)sizeof page ||
        fdatasync(fd) != 0)
      bench_die("%s: write failed", path);
    t[i] = bench_now_ns() - t0;
  }
  close(fd);
  unlink(path);
}

void bench_print_loadavg(const char *note) {
  double load[3] = {0};
  if (getloadavg(load, 3) != 3)
    return;
  printf("load average at the end: %.2f %.2f %.2f", load[0], load[1], load[2]);
  if (note != NULL)
    printf(" (%s)", note);
  printf("\n");
}
