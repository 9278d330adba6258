/* Metrics in the Prometheus text format 0.0.4 (lib/metrics.h; issue 24 item 4). */
#include "lib/array.h"
#include "lib/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uthash.h>
#include <utlist.h>

#include "lib/log.h"

const double dfnet_metrics_latency_buckets[DFNET_METRICS_LATENCY_BUCKET_COUNT] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

struct dfnet_metric_series {
  UT_hash_handle hh; /* by key */
  dfnet_metric_t *family;
  char *key; /* the label values, each ending in '\0' (sanitised) */
  size_t key_len;
  double value;            /* counter, gauge; histogram: the sum */
  uint64_t count;          /* histogram: observations */
  uint64_t *bucket_counts; /* histogram: per bound, not cumulative ([bucket_count]) */
};

struct dfnet_metric {
  dfnet_metric_t *next, *prev; /* utlist DL: the registry's families, in the order added */
  dfnet_metric_type_t type;
  char *name, *help;
  size_t label_count;
  char *labels[DFNET_METRICS_LABELS_MAX];
  double buckets[DFNET_METRICS_BUCKETS_MAX];
  size_t bucket_count;
  dfnet_metric_series_t *series; /* uthash by key, in the order made */
  size_t series_count;
  bool full_logged;
};

struct dfnet_metrics {
  dfnet_metric_t *families; /* utlist DL, in the order added */
};

/* ---- names and values ---------------------------------------------------------------- */

static bool name_valid(const char *s, bool colon) {
  if (s == NULL || *s == '\0')
    return false;
  for (const char *p = s; *p; p++) {
    char c = *p;
    bool alpha =
        (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (colon && c == ':');
    if (!alpha && !(p != s && c >= '0' && c <= '9'))
      return false;
  }
  return true;
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The length of the UTF-8 sequence at p (of at most `left` bytes), or 0 when it is not one
 * (overlong forms, surrogates and code points past U+10FFFF included: RFC 3629). */
static size_t utf8_len(const unsigned char *p, size_t left) {
  unsigned c = p[0];
  size_t n;
  uint32_t cp;
  if (c < 0x80)
    return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
    cp = c & 0x1f;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    cp = c & 0x0f;
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (left < n)
    return 0;
  for (size_t i = 1; i < n; i++) {
    if ((p[i] & 0xc0) != 0x80)
      return 0;
    cp = cp << 6 | (p[i] & 0x3f);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) || (n == 4 && cp < 0x10000) ||
      cp > 0x10ffff)
    return 0;
  return n;
}

/* Copy value into dst (room for its length + 1), '?' for what is not UTF-8 or is a control
 * character other than '\n'; returns the bytes written (no NUL). */
static size_t sanitise(char *dst, const char *value) {
  const unsigned char *p = (const unsigned char *)value;
  size_t left = strlen(value), w = 0;
  while (left > 0) {
    size_t n = utf8_len(p, left);
    if (n == 0 || (n == 1 && ((*p < 0x20 && *p != '\n') || *p == 0x7f))) {
      dst[w++] = '?';
      n = 1;
    } else {
      memcpy(dst + w, p, n);
      w += n;
    }
    p += n;
    left -= n;
  }
  return w;
}

/* ---- registry and families ----------------------------------------------------------- */

dfnet_status_t dfnet_metrics_create(dfnet_metrics_t **out) {
  if (out == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  *out = calloc(1, sizeof **out);
  return *out ? DFNET_STATUS_OK : DFNET_STATUS_RESOURCE_EXHAUSTED;
}

static void series_free(dfnet_metric_series_t *s) {
  free(s->key);
  free(s->bucket_counts);
  free(s);
}

void dfnet_metric_clear(dfnet_metric_t *f) {
  if (f == NULL)
    return;
  dfnet_metric_series_t *s, *tmp;
  HASH_ITER(hh, f->series, s, tmp) {
    HASH_DEL(f->series, s);
    series_free(s);
  }
  f->series_count = 0;
}

static void family_free(dfnet_metric_t *f) {
  dfnet_metric_clear(f);
  for (size_t i = 0; i < f->label_count; i++)
    free(f->labels[i]);
  free(f->name);
  free(f->help);
  free(f);
}

void dfnet_metrics_destroy(dfnet_metrics_t *r) {
  if (r == NULL)
    return;
  dfnet_metric_t *f, *next;
  DL_FOREACH_SAFE(r->families, f, next) {
    family_free(f);
  }
  free(r);
}

/* Why d breaks a rule of lib/metrics.h, or NULL. */
static const char *desc_invalid(const dfnet_metrics_t *r, const dfnet_metric_desc_t *d) {
  if (!name_valid(d->name, true))
    return "not a metric name ([a-zA-Z_:][a-zA-Z0-9_:]*)";
  if (d->type != DFNET_METRIC_COUNTER && d->type != DFNET_METRIC_GAUGE &&
      d->type != DFNET_METRIC_HISTOGRAM)
    return "no such metric type";
  if ((d->type == DFNET_METRIC_COUNTER) != ends_with(d->name, "_total"))
    return "counters, and only counters, are named *_total";
  const dfnet_metric_t *f;
  DL_FOREACH(r->families, f) {
    if (strcmp(f->name, d->name) == 0)
      return "added twice";
  }
  for (size_t i = 0; i < DFNET_METRICS_LABELS_MAX && d->labels[i] != NULL; i++) {
    if (!name_valid(d->labels[i], false) || strncmp(d->labels[i], "__", 2) == 0)
      return "a label name is not [a-zA-Z_][a-zA-Z0-9_]* or starts with __";
    if (d->type == DFNET_METRIC_HISTOGRAM && strcmp(d->labels[i], "le") == 0)
      return "a histogram cannot have a label le";
  }
  if (d->type != DFNET_METRIC_HISTOGRAM)
    return d->bucket_count == 0 ? NULL : "only histograms have buckets";
  if (d->bucket_count == 0 || d->bucket_count > DFNET_METRICS_BUCKETS_MAX || d->buckets == NULL)
    return "a histogram needs 1..24 bucket bounds";
  for (size_t i = 0; i < d->bucket_count; i++)
    if (!isfinite(d->buckets[i]) || (i > 0 && d->buckets[i] <= d->buckets[i - 1]))
      return "bucket bounds must be finite and strictly increasing";
  return NULL;
}

dfnet_metric_t *dfnet_metrics_add(dfnet_metrics_t *r, const dfnet_metric_desc_t *d) {
  if (r == NULL || d == NULL)
    return NULL;
  const char *why = desc_invalid(r, d);
  if (why != NULL) {
    DFNET_LOGE("metrics", d->name ? d->name : "(null)", "metric refused: %s", why);
    return NULL;
  }
  dfnet_metric_t *f = calloc(1, sizeof *f);
  if (f == NULL)
    goto no_memory;
  f->type = d->type;
  f->name = strdup(d->name);
  f->help = strdup(d->help ? d->help : "");
  if (f->name == NULL || f->help == NULL)
    goto free_family;
  for (size_t i = 0; i < DFNET_METRICS_LABELS_MAX && d->labels[i] != NULL; i++) {
    if ((f->labels[i] = strdup(d->labels[i])) == NULL)
      goto free_family;
    f->label_count = i + 1;
  }
  if (d->bucket_count > 0)
    memcpy(f->buckets, d->buckets, d->bucket_count * sizeof *d->buckets);
  f->bucket_count = d->bucket_count;
  DL_APPEND(r->families, f);
  return f;

free_family:
  family_free(f);
no_memory:
  DFNET_LOGE("metrics", d->name, "metric refused: out of memory");
  return NULL;
}

/* ---- series ------------------------------------------------------------------------ */

/* The key of `values` (sanitised, each ending in '\0') into buf (cap bytes) when it fits,
 * else into a new buffer (*heap true: the caller frees it); NULL without memory or with a
 * NULL value. The common case, a lookup of an existing series on a hot path (a call's
 * method and code), allocates nothing. */
static char *make_key(const dfnet_metric_t *f, const char *const *values, char *buf, size_t cap,
                      size_t *len, bool *heap) {
  size_t need = 1;
  for (size_t i = 0; i < f->label_count; i++) {
    if (values == NULL || values[i] == NULL)
      return NULL;
    need += strlen(values[i]) + 1;
  }
  *heap = need > cap;
  char *key = *heap ? malloc(need) : buf;
  if (key == NULL)
    return NULL;
  size_t w = 0;
  for (size_t i = 0; i < f->label_count; i++) {
    w += sanitise(key + w, values[i]);
    key[w++] = '\0';
  }
  *len = w;
  return key;
}

/* The series of `values`, or NULL. When it is not there and key_out is given, *key_out gets
 * its key (malloc'd, *len_out bytes) for the caller to insert it. */
static dfnet_metric_series_t *series_find(dfnet_metric_t *f, const char *const *values,
                                          char **key_out, size_t *len_out) {
  char stack[256];
  size_t len = 0;
  bool heap = false;
  char *key = make_key(f, values, stack, sizeof stack, &len, &heap);
  if (key == NULL)
    return NULL;
  dfnet_metric_series_t *s = NULL;
  HASH_FIND(hh, f->series, key, len, s);
  if (key_out != NULL && s == NULL) {
    if (!heap && (key = malloc(len ? len : 1)) != NULL)
      memcpy(key, stack, len);
    *key_out = key;
    *len_out = len;
  } else if (heap) {
    free(key);
  }
  return s;
}

dfnet_metric_series_t *dfnet_metric_series(dfnet_metric_t *f, const char *const *values) {
  if (f == NULL)
    return NULL;
  char *key = NULL;
  size_t len = 0;
  dfnet_metric_series_t *s = series_find(f, values, &key, &len);
  if (s != NULL || key == NULL)
    return s;
  if (f->series_count >= DFNET_METRICS_SERIES_MAX) {
    if (!f->full_logged)
      DFNET_LOGW("metrics", f->name, "%d series: new label sets are dropped",
                 DFNET_METRICS_SERIES_MAX);
    f->full_logged = true;
    free(key);
    return NULL;
  }
  s = calloc(1, sizeof *s);
  if (s == NULL ||
      (f->type == DFNET_METRIC_HISTOGRAM &&
       (s->bucket_counts = calloc(f->bucket_count, sizeof *s->bucket_counts)) == NULL)) {
    free(s);
    free(key);
    return NULL;
  }
  s->family = f;
  s->key = key;
  s->key_len = len;
  HASH_ADD_KEYPTR(hh, f->series, s->key, s->key_len, s);
  f->series_count++;
  return s;
}

void dfnet_metric_series_add(dfnet_metric_series_t *s, double v) {
  if (s == NULL || s->family->type == DFNET_METRIC_HISTOGRAM ||
      (s->family->type == DFNET_METRIC_COUNTER && !(v >= 0)))
    return;
  s->value += v;
}

void dfnet_metric_series_set(dfnet_metric_series_t *s, double v) {
  if (s != NULL && s->family->type == DFNET_METRIC_GAUGE)
    s->value = v;
}

void dfnet_metric_series_observe(dfnet_metric_series_t *s, double v) {
  if (s == NULL || s->family->type != DFNET_METRIC_HISTOGRAM || isnan(v))
    return;
  const dfnet_metric_t *f = s->family;
  for (size_t i = 0; i < f->bucket_count; i++) {
    if (v <= f->buckets[i]) {
      s->bucket_counts[i]++;
      break;
    }
  }
  s->count++;
  s->value += v;
}

void dfnet_metric_add(dfnet_metric_t *f, const char *const *values, double v) {
  dfnet_metric_series_add(dfnet_metric_series(f, values), v);
}

void dfnet_metric_set(dfnet_metric_t *f, const char *const *values, double v) {
  dfnet_metric_series_set(dfnet_metric_series(f, values), v);
}

void dfnet_metric_observe(dfnet_metric_t *f, const char *const *values, double v) {
  dfnet_metric_series_observe(dfnet_metric_series(f, values), v);
}

void dfnet_metric_remove(dfnet_metric_t *f, const char *const *values) {
  if (f == NULL)
    return;
  dfnet_metric_series_t *s = series_find(f, values, NULL, NULL);
  if (s == NULL)
    return;
  HASH_DEL(f->series, s);
  f->series_count--;
  series_free(s);
}

/* ---- rendering ----------------------------------------------------------------------- */

typedef struct buf {
  char *data;
  size_t len, cap;
  bool failed;
} buf_t;

static bool reserve(buf_t *b, size_t more) {
  char *p = b->failed ? NULL : dfnet_array_reserve(b->data, b->len + more + 1, &b->cap, 1, 4096);
  if (p == NULL) {
    b->failed = true;
    return false;
  }
  b->data = p;
  return true;
}

static void put(buf_t *b, const char *s, size_t n) {
  if (!reserve(b, n))
    return;
  memcpy(b->data + b->len, s, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void puts_(buf_t *b, const char *s) { put(b, s, strlen(s)); }

/* s[0..n) with '\\' and '\n' escaped, and '"' too in a label value. */
static void put_escaped(buf_t *b, const char *s, size_t n, bool quote) {
  size_t from = 0;
  for (size_t i = 0; i < n; i++) {
    const char *esc = s[i] == '\\'           ? "\\\\"
                      : s[i] == '\n'         ? "\\n"
                      : quote && s[i] == '"' ? "\\\""
                                             : NULL;
    if (esc == NULL)
      continue;
    put(b, s + from, i - from);
    put(b, esc, 2);
    from = i + 1;
  }
  put(b, s + from, n - from);
}

/* A sample value: an integer as such (counts, timestamps), else the shortest %.17g, and
 * +Inf, -Inf, NaN as the format spells them. */
static void put_value(buf_t *b, double v) {
  char text[40];
  if (isnan(v))
    snprintf(text, sizeof text, "NaN");
  else if (isinf(v))
    snprintf(text, sizeof text, "%s", v > 0 ? "+Inf" : "-Inf");
  else if (v == floor(v) && fabs(v) < 9007199254740992.0)
    snprintf(text, sizeof text, "%.0f", v);
  else {
    snprintf(text, sizeof text, "%.15g", v);
    if (strtod(text, NULL) != v)
      snprintf(text, sizeof text, "%.17g", v);
  }
  puts_(b, text);
}

static void put_u64(buf_t *b, uint64_t v) {
  char text[24];
  int n = snprintf(text, sizeof text, "%llu", (unsigned long long)v);
  put(b, text, (size_t)n);
}

/* "{a="x",b="y"" without the closing brace (the caller adds le or the brace), or nothing
 * when there are no labels and no le is to follow. */
static void put_labels(buf_t *b, const dfnet_metric_t *f, const dfnet_metric_series_t *s,
                       bool more) {
  if (f->label_count == 0 && !more)
    return;
  puts_(b, "{");
  const char *v = s->key;
  for (size_t i = 0; i < f->label_count; i++) {
    size_t n = strlen(v);
    if (i > 0)
      puts_(b, ",");
    puts_(b, f->labels[i]);
    puts_(b, "=\"");
    put_escaped(b, v, n, true);
    puts_(b, "\"");
    v += n + 1;
  }
  if (!more)
    puts_(b, "}");
}

static void render_histogram(buf_t *b, const dfnet_metric_t *f, const dfnet_metric_series_t *s) {
  uint64_t cumulative = 0;
  char bound[40];
  for (size_t i = 0; i <= f->bucket_count; i++) {
    if (i < f->bucket_count) {
      cumulative += s->bucket_counts[i];
      snprintf(bound, sizeof bound, "%.15g", f->buckets[i]);
    } else {
      cumulative = s->count;
      snprintf(bound, sizeof bound, "+Inf");
    }
    puts_(b, f->name);
    puts_(b, "_bucket");
    put_labels(b, f, s, true);
    puts_(b, f->label_count ? ",le=\"" : "le=\"");
    puts_(b, bound);
    puts_(b, "\"} ");
    put_u64(b, cumulative);
    puts_(b, "\n");
  }
  puts_(b, f->name);
  puts_(b, "_sum");
  put_labels(b, f, s, false);
  puts_(b, " ");
  put_value(b, s->value);
  puts_(b, "\n");
  puts_(b, f->name);
  puts_(b, "_count");
  put_labels(b, f, s, false);
  puts_(b, " ");
  put_u64(b, s->count);
  puts_(b, "\n");
}

static void render_family(buf_t *b, const dfnet_metric_t *f) {
  static const char *const types[] = {"", "counter", "gauge", "histogram"};
  puts_(b, "# HELP ");
  puts_(b, f->name);
  puts_(b, " ");
  put_escaped(b, f->help, strlen(f->help), false);
  puts_(b, "\n# TYPE ");
  puts_(b, f->name);
  puts_(b, " ");
  puts_(b, types[f->type]);
  puts_(b, "\n");
  for (const dfnet_metric_series_t *s = f->series; s != NULL; s = s->hh.next) {
    if (f->type == DFNET_METRIC_HISTOGRAM) {
      render_histogram(b, f, s);
      continue;
    }
    puts_(b, f->name);
    put_labels(b, f, s, false);
    puts_(b, " ");
    put_value(b, s->value);
    puts_(b, "\n");
  }
}

dfnet_status_t dfnet_metrics_render(const dfnet_metrics_t *r, char **out, size_t *len) {
  if (r == NULL || out == NULL || len == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  buf_t b = {0};
  if (reserve(&b, 0))
    b.data[0] = '\0';
  const dfnet_metric_t *f;
  DL_FOREACH(r->families, f) {
    render_family(&b, f);
  }
  if (b.failed) {
    free(b.data);
    *out = NULL;
    *len = 0;
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *out = b.data;
  *len = b.len;
  return DFNET_STATUS_OK;
}

bool dfnet_metrics_listen_parse(const char *text, char *addr, size_t cap, uint16_t *port) {
  const char *colon = text ? strrchr(text, ':') : NULL;
  if (colon == NULL || colon == text || addr == NULL || port == NULL)
    return false;
  const char *a = text, *aend = colon;
  if (*a == '[' && aend[-1] == ']') {
    a++;
    aend--;
  }
  if (aend <= a || (size_t)(aend - a) >= cap)
    return false;
  char *end;
  errno = 0;
  long p = strtol(colon + 1, &end, 10);
  if (errno != 0 || end == colon + 1 || *end != '\0' || p < 0 || p > 65535)
    return false;
  memcpy(addr, a, (size_t)(aend - a));
  addr[aend - a] = '\0';
  *port = (uint16_t)p;
  return true;
}

bool dfnet_metrics_add_process(dfnet_metrics_t *r, const char *who, const char *version) {
  char build_help[96], start_help[96];
  snprintf(build_help, sizeof build_help, "%s's version (always 1)", who);
  snprintf(start_help, sizeof start_help, "when %s started, Unix time in seconds", who);
  dfnet_metric_t *build, *start;
  if (!DFNET_METRICS_ADD(r, build, GAUGE, "dfnet_build_info", build_help, "version") ||
      !DFNET_METRICS_ADD(r, start, GAUGE, "process_start_time_seconds", start_help, NULL))
    return false;
  dfnet_metric_set(build, (const char *[]){version}, 1);
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  dfnet_metric_set(start, NULL, (double)now.tv_sec);
  return true;
}
