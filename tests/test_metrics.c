/* lib/metrics.h (issue 24 item 4): the exact text of a small registry, label value and HELP
 * escaping, histogram buckets (cumulative, +Inf, _sum, _count), non-UTF-8 label values,
 * the naming rules refused at add, the series bound, clear and remove, and
 * --metrics-listen's ADDR:PORT. The output of each case is also checked by promtool
 * (installed by scripts/deps.sh) when DFNET_PROMTOOL names it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/metrics.h"

/* Render r, compare with `want`, and have promtool check it: exit 0, nothing printed. */
static void expect_text(const dfnet_metrics_t *r, const char *want) {
  char *text = NULL;
  size_t len = 0;
  assert_int_equal(dfnet_metrics_render(r, &text, &len), DFNET_STATUS_OK);
  assert_int_equal(len, strlen(text));
  assert_string_equal(text, want);
  char path[] = "/tmp/dfnet-test-metrics-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_non_null(f);
  assert_int_equal(fwrite(text, 1, len, f), len);
  fclose(f);
  char cmd[512];
  snprintf(cmd, sizeof cmd, "%s check metrics < %s 2>&1", DFNET_PROMTOOL, path);
  FILE *p = popen(cmd, "r");
  assert_non_null(p);
  char out[4096];
  size_t got = fread(out, 1, sizeof out - 1, p);
  out[got] = '\0';
  int st = pclose(p);
  unlink(path);
  if (got > 0 || st != 0)
    fprintf(stderr, "promtool (status %d) on:\n%s\nsaid:\n%s\n", st, text, out);
  assert_int_equal(st, 0);
  assert_int_equal(got, 0);
  free(text);
}

static dfnet_metrics_t *new_registry(void) {
  dfnet_metrics_t *r = NULL;
  assert_int_equal(dfnet_metrics_create(&r), DFNET_STATUS_OK);
  return r;
}

static void test_small_registry(void **state) {
  (void)state;
  dfnet_metrics_t *r = new_registry();
  dfnet_metric_t *c = dfnet_metrics_add(r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_COUNTER,
                                                                  .name = "dfnet_calls_total",
                                                                  .help = "calls ended",
                                                                  .labels = {"method", "code"}});
  dfnet_metric_t *g = dfnet_metrics_add(r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_GAUGE,
                                                                  .name = "dfnet_hosts",
                                                                  .help = "hosts",
                                                                  .labels = {"state"}});
  dfnet_metric_t *u = dfnet_metrics_add(
      r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_GAUGE, .name = "dfnet_up", .help = "up"});
  dfnet_metrics_add(r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_COUNTER,
                                              .name = "dfnet_empty_total",
                                              .help = "never counted"});
  assert_non_null(c);
  assert_non_null(g);
  assert_non_null(u);
  dfnet_metric_add(c, (const char *[]){"/a.B/C", "OK"}, 1);
  dfnet_metric_add(c, (const char *[]){"/a.B/C", "OK"}, 2);
  dfnet_metric_add(c, (const char *[]){"/a.B/C", "NOT_FOUND"}, 1);
  dfnet_metric_add(c, (const char *[]){"/a.B/C", "OK"}, -5); /* counters never go down */
  dfnet_metric_set(c, (const char *[]){"/a.B/C", "OK"}, 0);  /* nor are set */
  dfnet_metric_set(g, (const char *[]){"online"}, 2);
  dfnet_metric_set(g, (const char *[]){"offline"}, 0);
  dfnet_metric_add(g, (const char *[]){"offline"}, 1);
  dfnet_metric_set(u, NULL, 0.25);
  expect_text(r,
              "# HELP dfnet_calls_total calls ended\n"
              "# TYPE dfnet_calls_total counter\n"
              "dfnet_calls_total{method=\"/a.B/C\",code=\"OK\"} 3\n"
              "dfnet_calls_total{method=\"/a.B/C\",code=\"NOT_FOUND\"} 1\n"
              "# HELP dfnet_hosts hosts\n"
              "# TYPE dfnet_hosts gauge\n"
              "dfnet_hosts{state=\"online\"} 2\n"
              "dfnet_hosts{state=\"offline\"} 1\n"
              "# HELP dfnet_up up\n"
              "# TYPE dfnet_up gauge\n"
              "dfnet_up 0.25\n"
              "# HELP dfnet_empty_total never counted\n"
              "# TYPE dfnet_empty_total counter\n");
  dfnet_metrics_destroy(r);
}

static void test_escaping(void **state) {
  (void)state;
  dfnet_metrics_t *r = new_registry();
  dfnet_metric_t *g = dfnet_metrics_add(
      r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_GAUGE,
                                .name = "dfnet_lease_holder",
                                .help = "help with a \\ backslash\nand a newline \"quoted\"",
                                .labels = {"target", "holder"}});
  dfnet_metric_set(g, (const char *[]){"a\\b", "say \"hi\"\nbye"}, 1);
  /* not UTF-8 (a lone continuation byte, an overlong '/', a surrogate), a control
   * character: each '?'; valid multi-byte UTF-8 kept */
  dfnet_metric_set(g, (const char *[]){"x\x80y\xc0\xafz\xed\xa0\x80", "t\tab \xc3\xa9t\xc3\xa9"},
                   1);
  expect_text(r,
              "# HELP dfnet_lease_holder help with a \\\\ backslash\\nand a newline "
              "\"quoted\"\n"
              "# TYPE dfnet_lease_holder gauge\n"
              "dfnet_lease_holder{target=\"a\\\\b\",holder=\"say \\\"hi\\\"\\nbye\"} 1\n"
              "dfnet_lease_holder{target=\"x?y??z???\",holder=\"t?ab \xc3\xa9t\xc3\xa9\"} 1\n");
  dfnet_metrics_destroy(r);
}

static void test_histogram(void **state) {
  (void)state;
  dfnet_metrics_t *r = new_registry();
  static const double bounds[] = {0.005, 0.1, 1};
  dfnet_metric_t *h =
      dfnet_metrics_add(r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_HISTOGRAM,
                                                  .name = "dfnet_call_duration_seconds",
                                                  .help = "call latency",
                                                  .labels = {"method"},
                                                  .buckets = bounds,
                                                  .bucket_count = 3});
  dfnet_metric_t *w =
      dfnet_metrics_add(r, &(dfnet_metric_desc_t){.type = DFNET_METRIC_HISTOGRAM,
                                                  .name = "dfnet_lease_wait_seconds",
                                                  .help = "waits",
                                                  .buckets = bounds,
                                                  .bucket_count = 1});
  assert_non_null(h);
  assert_non_null(w);
  const char *m[] = {"/e.E/Echo"};
  dfnet_metric_observe(h, m, 0.001);
  dfnet_metric_observe(h, m, 0.005); /* on a bound: counted in it (le is <=) */
  dfnet_metric_observe(h, m, 0.5);
  dfnet_metric_observe(h, m, 7);
  dfnet_metric_series_observe(dfnet_metric_series(w, NULL), 0.25);
  expect_text(r,
              "# HELP dfnet_call_duration_seconds call latency\n"
              "# TYPE dfnet_call_duration_seconds histogram\n"
              "dfnet_call_duration_seconds_bucket{method=\"/e.E/Echo\",le=\"0.005\"} 2\n"
              "dfnet_call_duration_seconds_bucket{method=\"/e.E/Echo\",le=\"0.1\"} 2\n"
              "dfnet_call_duration_seconds_bucket{method=\"/e.E/Echo\",le=\"1\"} 3\n"
              "dfnet_call_duration_seconds_bucket{method=\"/e.E/Echo\",le=\"+Inf\"} 4\n"
              "dfnet_call_duration_seconds_sum{method=\"/e.E/Echo\"} 7.506\n"
              "dfnet_call_duration_seconds_count{method=\"/e.E/Echo\"} 4\n"
              "# HELP dfnet_lease_wait_seconds waits\n"
              "# TYPE dfnet_lease_wait_seconds histogram\n"
              "dfnet_lease_wait_seconds_bucket{le=\"0.005\"} 0\n"
              "dfnet_lease_wait_seconds_bucket{le=\"+Inf\"} 1\n"
              "dfnet_lease_wait_seconds_sum 0.25\n"
              "dfnet_lease_wait_seconds_count 1\n");
  dfnet_metrics_destroy(r);
}

/* Descriptions that break a naming rule are refused (NULL), and nothing is added. */
static void test_refused(void **state) {
  (void)state;
  static const double up[] = {1, 2}, down[] = {2, 1};
  const dfnet_metric_desc_t bad[] = {
      {.type = DFNET_METRIC_COUNTER, .name = "dfnet_calls", .help = "no _total"},
      {.type = DFNET_METRIC_GAUGE, .name = "dfnet_calls_total", .help = "_total, not a counter"},
      {.type = DFNET_METRIC_GAUGE, .name = "9lives", .help = "bad name"},
      {.type = DFNET_METRIC_GAUGE, .name = "dfnet-x", .help = "bad name"},
      {.type = DFNET_METRIC_GAUGE, .name = "dfnet_x", .help = "", .labels = {"bad-label"}},
      {.type = DFNET_METRIC_GAUGE, .name = "dfnet_x", .help = "", .labels = {"__reserved"}},
      {.type = DFNET_METRIC_HISTOGRAM, .name = "dfnet_h_seconds", .help = "no buckets"},
      {.type = DFNET_METRIC_HISTOGRAM,
       .name = "dfnet_h_seconds",
       .help = "le label",
       .labels = {"le"},
       .buckets = up,
       .bucket_count = 2},
      {.type = DFNET_METRIC_HISTOGRAM,
       .name = "dfnet_h_seconds",
       .help = "decreasing",
       .buckets = down,
       .bucket_count = 2},
      {.type = DFNET_METRIC_GAUGE,
       .name = "dfnet_g",
       .help = "buckets",
       .buckets = up,
       .bucket_count = 2},
  };
  dfnet_metrics_t *r = new_registry();
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_null(dfnet_metrics_add(r, &bad[i]));
  const dfnet_metric_desc_t ok = {.type = DFNET_METRIC_GAUGE, .name = "dfnet_g", .help = "g"};
  assert_non_null(dfnet_metrics_add(r, &ok));
  assert_null(dfnet_metrics_add(r, &ok)); /* twice */
  expect_text(r, "# HELP dfnet_g g\n# TYPE dfnet_g gauge\n");
  dfnet_metrics_destroy(r);
}

/* A family keeps DFNET_METRICS_SERIES_MAX series; clear and remove drop them. */
static void test_series_bound(void **state) {
  (void)state;
  dfnet_metrics_t *r = new_registry();
  dfnet_metric_t *c = dfnet_metrics_add(
      r, &(dfnet_metric_desc_t){
             .type = DFNET_METRIC_COUNTER, .name = "dfnet_x_total", .help = "x", .labels = {"m"}});
  char v[32];
  for (int i = 0; i < DFNET_METRICS_SERIES_MAX; i++) {
    snprintf(v, sizeof v, "m%d", i);
    assert_non_null(dfnet_metric_series(c, (const char *[]){v}));
  }
  assert_null(dfnet_metric_series(c, (const char *[]){"one-more"}));
  assert_non_null(dfnet_metric_series(c, (const char *[]){"m7"})); /* existing ones still */
  assert_null(dfnet_metric_series(c, (const char *[]){NULL}));
  dfnet_metric_clear(c);
  dfnet_metric_add(c, (const char *[]){"a"}, 1);
  dfnet_metric_add(c, (const char *[]){"b"}, 2);
  dfnet_metric_remove(c, (const char *[]){"a"});
  dfnet_metric_remove(c, (const char *[]){"never"});
  expect_text(r,
              "# HELP dfnet_x_total x\n# TYPE dfnet_x_total counter\ndfnet_x_total{m=\"b\"} 2\n");
  dfnet_metrics_destroy(r);
}

static void test_values(void **state) {
  (void)state;
  dfnet_metrics_t *r = new_registry();
  dfnet_metric_t *g = dfnet_metrics_add(
      r, &(dfnet_metric_desc_t){
             .type = DFNET_METRIC_GAUGE, .name = "dfnet_v", .help = "v", .labels = {"k"}});
  dfnet_metric_set(g, (const char *[]){"big"}, 1796668637);
  dfnet_metric_set(g, (const char *[]){"tenth"}, 0.1);
  dfnet_metric_set(g, (const char *[]){"neg"}, -3);
  dfnet_metric_set(g, (const char *[]){"huge"}, 1e300);
  expect_text(r,
              "# HELP dfnet_v v\n# TYPE dfnet_v gauge\n"
              "dfnet_v{k=\"big\"} 1796668637\n"
              "dfnet_v{k=\"tenth\"} 0.1\n"
              "dfnet_v{k=\"neg\"} -3\n"
              "dfnet_v{k=\"huge\"} 1e+300\n");
  dfnet_metrics_destroy(r);
}

static void test_listen_parse(void **state) {
  (void)state;
  char addr[64];
  uint16_t port = 1;
  assert_true(dfnet_metrics_listen_parse("127.0.0.1:9464", addr, sizeof addr, &port));
  assert_string_equal(addr, "127.0.0.1");
  assert_int_equal(port, 9464);
  assert_true(dfnet_metrics_listen_parse("[::1]:0", addr, sizeof addr, &port));
  assert_string_equal(addr, "::1");
  assert_int_equal(port, 0);
  const char *bad[] = {"9464", ":9464", "127.0.0.1:", "127.0.0.1:65536", "127.0.0.1:9x", "[]:1"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    assert_false(dfnet_metrics_listen_parse(bad[i], addr, sizeof addr, &port));
  assert_false(dfnet_metrics_listen_parse("127.0.0.1:1", addr, 9, &port)); /* does not fit */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_registry), cmocka_unit_test(test_escaping),
      cmocka_unit_test(test_histogram),      cmocka_unit_test(test_refused),
      cmocka_unit_test(test_series_bound),   cmocka_unit_test(test_values),
      cmocka_unit_test(test_listen_parse),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
