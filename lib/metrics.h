/* Metrics in the Prometheus text exposition format 0.0.4 (issue 24 item 4; docs/metrics.md).
 *
 * Debian bookworm packages no Prometheus client library for C (only prometheus-cpp, for
 * C++), so this is a small one: counters, gauges and histograms, each a family with a fixed
 * list of label names whose series are found by their label values (uthash), and a renderer
 * to the text format (https://prometheus.io/docs/instrumenting/exposition_formats/):
 *
 *   # HELP <name> <help, with \\ and \n escaped>
 *   # TYPE <name> counter|gauge|histogram
 *   <name>{<label>="<value, with \\ \" \n escaped>",...} <value>
 *   <name>_bucket{...,le="<bound>"} <cumulative count>   (every bound, then le="+Inf")
 *   <name>_sum{...} <sum>
 *   <name>_count{...} <count>
 *
 * Families render in the order they were added, series in the order they were made.
 * Naming (https://prometheus.io/docs/practices/naming/) is checked when a family is added:
 * [a-zA-Z_:][a-zA-Z0-9_:]* for names, [a-zA-Z_][a-zA-Z0-9_]* (not "__...") for label
 * names, counters end in "_total", only counters do, and a histogram has no label "le".
 *
 * Label values are copied; bytes that are not UTF-8 (and control characters other than
 * \n) become '?', so that any string a peer sent (a call's method) renders valid text.
 * A family keeps at most DFNET_METRICS_SERIES_MAX series: past it a new label set is not
 * made (its updates are dropped; logged once per family), so that a peer that invents
 * label values (method names) cannot grow the registry without bound.
 *
 * Threads: none of its own and no locks. A registry and everything in it belong to one
 * thread at a time (the manager's and the host agent's service thread, docs/style.md 7):
 * the owner serialises every call.
 */
#ifndef DFNET_LIB_METRICS_H
#define DFNET_LIB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Label names one family may have. */
#define DFNET_METRICS_LABELS_MAX 4
/* Series one family may have (see above). */
#define DFNET_METRICS_SERIES_MAX 10000
/* Bucket bounds one histogram may have (+Inf is implicit, not given). */
#define DFNET_METRICS_BUCKETS_MAX 24

typedef enum dfnet_metric_type {
  DFNET_METRIC_COUNTER = 1,
  DFNET_METRIC_GAUGE = 2,
  DFNET_METRIC_HISTOGRAM = 3,
} dfnet_metric_type_t;

typedef struct dfnet_metrics dfnet_metrics_t;             /* a registry */
typedef struct dfnet_metric dfnet_metric_t;               /* a family (owned by its registry) */
typedef struct dfnet_metric_series dfnet_metric_series_t; /* one label set of a family */

/* A family to add. Strings are copied. */
typedef struct dfnet_metric_desc {
  dfnet_metric_type_t type;
  const char *name;                             /* "dfnet_calls_total" */
  const char *help;                             /* one line: what it counts, in base units */
  const char *labels[DFNET_METRICS_LABELS_MAX]; /* label names, NULL-terminated when fewer */
  /* histograms: strictly increasing upper bounds, finite (+Inf is added) */
  const double *buckets;
  size_t bucket_count; /* 1..DFNET_METRICS_BUCKETS_MAX for a histogram, else 0 */
} dfnet_metric_desc_t;

/* Latency buckets in seconds, 500 us .. 10 s (DFNET_METRICS_LATENCY_BUCKET_COUNT of them). */
extern const double dfnet_metrics_latency_buckets[];
#define DFNET_METRICS_LATENCY_BUCKET_COUNT 14

/* Make an empty registry. On OK *out is the caller's, freed with dfnet_metrics_destroy.
 * Errors: INVALID_ARGUMENT (out NULL), RESOURCE_EXHAUSTED (memory). */
dfnet_status_t dfnet_metrics_create(dfnet_metrics_t **out);

/* Free a registry, its families and series (handles to them become invalid). NULL: no-op. */
void dfnet_metrics_destroy(dfnet_metrics_t *r);

/* Add a family. Returns it (owned by r, valid until dfnet_metrics_destroy), or NULL when the
 * description breaks a rule above (a bad name or label name, a counter not named *_total, a
 * histogram without buckets or with bounds not increasing, a name r already has) or memory
 * ran out; the cause is logged (subsystem "metrics", subject the name). */
dfnet_metric_t *dfnet_metrics_add(dfnet_metrics_t *r, const dfnet_metric_desc_t *d);

/* Add a family into `field` (a dfnet_metric_t *) and say whether it was added: a shorthand
 * for the tables of families the manager and the agent add at start, chained with &&.
 * The label names follow help_ (none: NULL). */
#define DFNET_METRICS_ADD(reg, field, type_, name_, help_, ...)                             \
  (((field) = dfnet_metrics_add((reg), &(dfnet_metric_desc_t){.type = DFNET_METRIC_##type_, \
                                                              .name = (name_),              \
                                                              .help = (help_),              \
                                                              .labels = {__VA_ARGS__}})) != NULL)

/* The families every dfnet daemon exports first: dfnet_build_info{version} 1 and
 * process_start_time_seconds (now, Unix seconds), their help naming `who` ("the manager").
 * Returns false when either cannot be added (logged by dfnet_metrics_add). Call it once,
 * before the process's own families. */
bool dfnet_metrics_add_process(dfnet_metrics_t *r, const char *who, const char *version);

/* The series of family f with label values values[0..label count) (NULL with a family
 * without labels), made (at 0) if it is not there yet. The handle stays valid until the
 * series is removed (dfnet_metric_remove, dfnet_metric_clear) or r is destroyed: keep it for
 * a hot path. NULL when f is NULL, a value is NULL, the family is full
 * (DFNET_METRICS_SERIES_MAX) or memory ran out (the update is then dropped). */
dfnet_metric_series_t *dfnet_metric_series(dfnet_metric_t *f, const char *const *values);

/* Counters: add v (>= 0; a negative v is ignored). Gauges: add v (any sign). Ignored for
 * histograms and a NULL series. */
void dfnet_metric_series_add(dfnet_metric_series_t *s, double v);
/* Gauges: set the value (counters: ignored, they only go up). */
void dfnet_metric_series_set(dfnet_metric_series_t *s, double v);
/* Histograms: count one observation v (in the family's unit). */
void dfnet_metric_series_observe(dfnet_metric_series_t *s, double v);

/* Shorthands: the series of `values` (made if need be), then add / set / observe. */
void dfnet_metric_add(dfnet_metric_t *f, const char *const *values, double v);
void dfnet_metric_set(dfnet_metric_t *f, const char *const *values, double v);
void dfnet_metric_observe(dfnet_metric_t *f, const char *const *values, double v);

/* Remove the series of `values` (a host that left); absent: no-op. */
void dfnet_metric_remove(dfnet_metric_t *f, const char *const *values);
/* Remove every series of f (state recounted at each scrape). */
void dfnet_metric_clear(dfnet_metric_t *f);

/* Render every family of r in the text format into a new malloc(3)ed buffer *out of *len
 * bytes (NUL-terminated too; the caller frees it, or hands it on to an HTTP response). A
 * family without series renders its HELP and TYPE lines only. Errors: INVALID_ARGUMENT (a
 * NULL argument), RESOURCE_EXHAUSTED (memory; *out NULL). */
dfnet_status_t dfnet_metrics_render(const dfnet_metrics_t *r, char **out, size_t *len);

/* Split --metrics-listen's "ADDR:PORT" ("127.0.0.1:9464", "[::1]:9464"; PORT 0..65535)
 * into addr (a copy without brackets, NUL-terminated, at most cap - 1 bytes) and *port.
 * false when text is not of that form or the address does not fit. Any thread. */
bool dfnet_metrics_listen_parse(const char *text, char *addr, size_t cap, uint16_t *port);

/* The media type of what dfnet_metrics_render writes, for Content-Type. */
#define DFNET_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#ifdef __cplusplus
}
#endif
#endif /* DFNET_LIB_METRICS_H */
