/* bench/envelope_bench: size of the generated Envelope struct and encode/decode time of a
 * typical ~256-byte frame (a Call with a 64-byte payload and its target/method strings).
 * Prints figures; asserts nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "envelope_samples.h"
#include "lib/envelope.h"

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? strtol(argv[1], NULL, 10) : 2000000;
  if (iterations <= 0)
    iterations = 2000000;
  dfnet_envelope_t *env = malloc(sizeof *env), *out = malloc(sizeof *out);
  uint8_t buf[1024];
  size_t len = 0;
  sample_typical_call(env);
  /* Pad the target so the frame is a typical ~256 bytes. */
  snprintf(env->pb.msg.call.target, sizeof env->pb.msg.call.target,
           "dev.lab-a.pci.00_05_0.virtio-rng.instance-0000000000000000000000000000000000000");
  snprintf(env->pb.msg.call.method, sizeof env->pb.msg.call.method,
           "/dfnet.hw.rng.Rng/ReadWithAVeryDescriptiveMethodNameForBenchmarking");
  if (dfnet_envelope_encode(env, buf, sizeof buf, &len, NULL) != DFNET_STATUS_OK)
    return 1;

  double t0 = now_ns();
  for (long i = 0; i < iterations; i++) {
    env->pb.id = (uint64_t)i;
    if (dfnet_envelope_encode(env, buf, sizeof buf, &len, NULL) != DFNET_STATUS_OK)
      return 1;
  }
  double t1 = now_ns();
  for (long i = 0; i < iterations; i++) {
    if (dfnet_envelope_decode(buf, len, DFNET_FRAME_MAX_DEFAULT, out, NULL) != DFNET_STATUS_OK)
      return 1;
  }
  double t2 = now_ns();

  printf("sizeof(dfnet_v1_Envelope)      %zu bytes\n", sizeof(dfnet_v1_Envelope));
  printf("sizeof(dfnet_envelope_t)       %zu bytes\n", sizeof(dfnet_envelope_t));
  printf(
      "largest members                NodeInfo %zu, AddCompositeNodeSpec %zu, "
      "DriverStart %zu, NodeAdd %zu bytes\n",
      sizeof(dfnet_v1_NodeInfo), sizeof(dfnet_v1_AddCompositeNodeSpec),
      sizeof(dfnet_v1_DriverStart), sizeof(dfnet_v1_NodeAdd));
  printf("typical frame (Call, 64 B payload)  %zu bytes\n", len);
  printf("encode                         %.0f ns/frame (%ld frames)\n", (t1 - t0) / iterations,
         iterations);
  printf("decode                         %.0f ns/frame (%ld frames)\n", (t2 - t1) / iterations,
         iterations);
  free(env);
  free(out);
  return 0;
}
