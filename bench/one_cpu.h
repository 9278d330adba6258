/* The benches' "one CPU" runs: a child started with DFNET_BENCH_ONE_CPU set confines
 * itself, and every process it starts, to CPU 0, so that a figure shows the code's own
 * cost without wake-ups between CPUs. */
#ifndef DFNET_BENCH_ONE_CPU_H
#define DFNET_BENCH_ONE_CPU_H

#include <sched.h>
#include <stdio.h>
#include <stdlib.h>

/* When DFNET_BENCH_ONE_CPU is set, pin the calling process to CPU 0 (children inherit
 * it). A failure is reported on stderr under `prog` and the run goes on unpinned. */
static inline void bench_one_cpu_if_asked(const char *prog) {
  if (getenv("DFNET_BENCH_ONE_CPU") == NULL)
    return;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(0, &one);
  if (sched_setaffinity(0, sizeof one, &one) != 0) {
    fprintf(stderr, "%s: ", prog);
    perror("sched_setaffinity");
  }
}

#endif
