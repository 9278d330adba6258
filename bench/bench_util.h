/* Helpers the benchmarks share (rpc_bench, driver_calls_bench, lease_bench ...): the clock,
 * the end of a run on a failure, percentiles of latencies, and the CPU time processes spend
 * per unit of work, read from /proc/<pid>/stat (less sensitive to other load on the machine
 * than rates, so changes to a call path are compared with it); a process's RSS, the disk's
 * fsync floor and the load average. Measures nothing by itself. */
#ifndef DFNET_BENCH_UTIL_H
#define DFNET_BENCH_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* The program's name for bench_die's messages ("rpc_bench"). */
void bench_set_name(const char *name);

/* Print "<name>: <message>" on stderr and exit(1): atexit handlers bring down what the run
 * started. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* "met" or "NOT met". */
const char *bench_met(bool ok);

/* A latency distribution, microseconds. */
typedef struct bench_latency {
  double p50_us, p99_us;
} bench_latency_t;

/* p50 and p99 of n durations in nanoseconds (sorts t). */
bench_latency_t bench_percentiles(uint64_t *t, size_t n);

/* The processes whose CPU time a figure reports, each with the name printed for it. */
enum { BENCH_PROCS_MAX = 8 };
typedef struct bench_procs {
  int count;
  const char *names[BENCH_PROCS_MAX];
  pid_t pids[BENCH_PROCS_MAX];
} bench_procs_t;

/* Add a process (at most BENCH_PROCS_MAX; more are ignored). */
void bench_procs_add(bench_procs_t *p, const char *name, pid_t pid);

/* utime + stime of each process in clock ticks (0 for one that is gone). */
typedef struct bench_cpu {
  uint64_t ticks[BENCH_PROCS_MAX];
} bench_cpu_t;

void bench_cpu_snapshot(const bench_procs_t *p, bench_cpu_t *out);

/* CPU microseconds each process spent per unit of work since `before`, into out[i]. */
void bench_cpu_per(const bench_procs_t *p, const bench_cpu_t *before, double units,
                   double out[BENCH_PROCS_MAX]);

/* "    CPU per <unit>: name 1.0 us, name 2.0 us" and a newline. */
void bench_cpu_print(const bench_procs_t *p, const double per[BENCH_PROCS_MAX], const char *unit);

/* The first child of `pid` (/proc/<pid>/task/<pid>/children), or 0. */
pid_t bench_first_child(pid_t pid);

/* utime + stime of `pid` in seconds (0 when it is gone). */
double bench_proc_cpu_s(pid_t pid);

/* VmRSS of `pid` in KiB (/proc/<pid>/status), or -1. */
long bench_proc_rss_kib(pid_t pid);

/* The disk's floor in directory dir: n times a 4 KiB pwrite + fdatasync of a scratch file
 * "<dir>/fsync-floor" (removed after), each one's duration in t[i] (ns). Dies (bench_die)
 * when the file cannot be created or written. */
void bench_fsync_floor(const char *dir, uint64_t *t, size_t n);

/* "load average at the end: 1.00 2.00 3.00" on stdout, then " (<note>)" unless note is
 * NULL, and a newline; nothing when getloadavg fails. */
void bench_print_loadavg(const char *note);

#endif
