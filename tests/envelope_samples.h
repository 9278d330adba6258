/* One realistic envelope per message kind, shared by the codec tests, the protoc
 * cross-check and bench/envelope_bench. */
#ifndef DFNET_TESTS_ENVELOPE_SAMPLES_H
#define DFNET_TESTS_ENVELOPE_SAMPLES_H

#include <stddef.h>

#include "lib/envelope.h"

/* Number of samples: every member of Envelope.msg, plus a few with bulk bytes. */
size_t sample_count(void);

/* Fill *env with sample i (0 <= i < sample_count()); returns its name. Bulk bytes point
 * at static storage. */
const char *sample_fill(size_t i, dfnet_envelope_t *env);

/* The typical ~256-byte frame of the benchmark: a Call with a 64-byte payload. */
void sample_typical_call(dfnet_envelope_t *env);

#endif
