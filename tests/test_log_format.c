/* The log's lines (lib/log.h, lib/log_format.h; issue 24 item 3): journald's priority
 * prefixes when $JOURNAL_STREAM names stderr (and not otherwise), JSON lines that cJSON
 * parses back with every field, escaping of quotes, backslashes and newlines, the sink
 * getting the formatted line, the format chosen from the flag and $DFNET_LOG_FORMAT, and
 * whole lines from several threads at once. stderr is a file of the test while it looks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/log_format.h"

static char g_path[64];
static int g_saved_stderr = -1;

/* fd 2 becomes an empty file until capture_end(), which reads it into buf. */
static void capture_begin(void) {
  snprintf(g_path, sizeof g_path, "/tmp/dfnet-log-XXXXXX");
  int fd = mkstemp(g_path);
  assert_true(fd >= 0);
  fflush(stderr);
  g_saved_stderr = dup(STDERR_FILENO);
  assert_true(g_saved_stderr >= 0);
  assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
  close(fd);
}

static void capture_end(char *buf, size_t cap) {
  dup2(g_saved_stderr, STDERR_FILENO);
  close(g_saved_stderr);
  g_saved_stderr = -1;
  FILE *f = fopen(g_path, "r");
  assert_non_null(f);
  size_t n = fread(buf, 1, cap - 1, f);
  buf[n] = '\0';
  fclose(f);
  unlink(g_path);
}

/* $JOURNAL_STREAM set to fd 2's "DEV:INODE" (the journal's stream, as systemd sets it). */
static void journal_is_stderr(void) {
  struct stat st;
  assert_int_equal(fstat(STDERR_FILENO, &st), 0);
  char v[64];
  snprintf(v, sizeof v, "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
  setenv("JOURNAL_STREAM", v, 1);
}

static int reset(void **state) {
  (void)state;
  unsetenv("JOURNAL_STREAM");
  unsetenv("DFNET_LOG_FORMAT");
  dfnet_log_set_sink(NULL, NULL);
  dfnet_log_format_set(DFNET_LOG_FORMAT_TEXT);
  dfnet_log_set_level(DFNET_LOG_DEBUG);
  dfnet_log_journal_detect();
  return 0;
}

static void test_journal_priorities(void **state) {
  (void)state;
  char out[4096];
  capture_begin();
  journal_is_stderr();
  assert_true(dfnet_log_journal_detect());
  DFNET_LOGE("transport", "lab-a", "e %d", 1);
  DFNET_LOGW("transport", NULL, "w");
  DFNET_LOGI("bind", "dev.x", "i");
  DFNET_LOGD("manager", NULL, "d");
  capture_end(out, sizeof out);
  /* journald takes "<N>" off as the PRIORITY; it stamps the lines itself: no time */
  assert_string_equal(out,
                      "<3>E transport lab-a: e 1\n"
                      "<4>W transport: w\n"
                      "<6>I bind dev.x: i\n"
                      "<7>D manager: d\n");
  assert_int_equal(dfnet_log_priority(DFNET_LOG_WARN), 4);
}

/* Another file, a malformed variable, none: the plain line with its time. */
static void test_not_the_journal(void **state) {
  (void)state;
  static const char *const values[] = {"1:2", "abc", "12:", "", NULL};
  for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
    char out[1024];
    capture_begin();
    if (values[i] != NULL)
      setenv("JOURNAL_STREAM", values[i], 1);
    else
      unsetenv("JOURNAL_STREAM");
    assert_false(dfnet_log_journal_detect());
    DFNET_LOGW("transport", "lab-a", "w");
    capture_end(out, sizeof out);
    /* 2026-11-21T04:40:00.123Z W transport lab-a: w */
    assert_int_equal(strlen(out), 24 + strlen(" W transport lab-a: w\n"));
    assert_true(out[4] == '-' && out[10] == 'T' && out[23] == 'Z');
    assert_string_equal(out + 24, " W transport lab-a: w\n");
  }
  /* a JOURNAL_STREAM inherited from a parent whose stderr was the journal, ours not */
  capture_begin();
  journal_is_stderr();
  capture_end((char[8]){0}, 8);
  assert_false(dfnet_log_journal_detect());
}

/* One JSON line: its fields checked; returns the parsed object (cJSON_Delete it). */
static cJSON *parse_line(const char *line, const char *level, const char *subsystem,
                         const char *subject, const char *message) {
  cJSON *o = cJSON_Parse(line);
  if (o == NULL)
    fail_msg("not JSON: %s", line);
  const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "time"));
  assert_non_null(t);
  assert_int_equal(strlen(t), 24); /* 2026-11-21T04:40:00.123Z */
  assert_true(t[4] == '-' && t[10] == 'T' && t[19] == '.' && t[23] == 'Z');
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "level")), level);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "subsystem")),
                      subsystem);
  const cJSON *subj = cJSON_GetObjectItemCaseSensitive(o, "subject");
  if (subject == NULL)
    assert_true(cJSON_IsNull(subj));
  else
    assert_string_equal(cJSON_GetStringValue(subj), subject);
  assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "message")),
                      message);
  assert_int_equal(cJSON_GetArraySize(o), 5);
  return o;
}

static void test_json_lines(void **state) {
  (void)state;
  static const char tricky[] = "peer said \"bye\"\nand left \\ \t\x01 {\"x\":1} caf\xc3\xa9";
  char out[8192];
  dfnet_log_format_set(DFNET_LOG_FORMAT_JSON);
  assert_int_equal(dfnet_log_format_get(), DFNET_LOG_FORMAT_JSON);
  capture_begin();
  DFNET_LOGW("transport", "lab-a", "%s", tricky);
  DFNET_LOGE("pki", NULL, "plain");
  DFNET_LOGI("bind", "dev.\"q\"", "i");
  DFNET_LOGD("manager", NULL, "d");
  capture_end(out, sizeof out);
  /* four lines: the message's newline is escaped, not written */
  char *lines[5] = {NULL};
  size_t count = 0;
  for (char *save = NULL, *l = strtok_r(out, "\n", &save); l != NULL && count < 5;
       l = strtok_r(NULL, "\n", &save))
    lines[count++] = l;
  assert_int_equal(count, 4);
  assert_non_null(strstr(lines[0], "\\\"bye\\\"\\nand left \\\\ \\t\\u0001"));
  cJSON_Delete(parse_line(lines[0], "warning", "transport", "lab-a", tricky));
  cJSON_Delete(parse_line(lines[1], "error", "pki", NULL, "plain"));
  cJSON_Delete(parse_line(lines[2], "info", "bind", "dev.\"q\"", "i"));
  cJSON_Delete(parse_line(lines[3], "debug", "manager", NULL, "d"));
}

static void test_json_under_journal(void **state) {
  (void)state;
  char out[2048];
  dfnet_log_format_set(DFNET_LOG_FORMAT_JSON);
  capture_begin();
  journal_is_stderr();
  assert_true(dfnet_log_journal_detect());
  DFNET_LOGW("transport", NULL, "w");
  capture_end(out, sizeof out);
  assert_int_equal(strncmp(out, "<4>{", 4), 0);
  assert_int_equal(out[strlen(out) - 1], '\n');
  out[strlen(out) - 1] = '\0';
  cJSON_Delete(parse_line(out + 3, "warning", "transport", NULL, "w"));
}

typedef struct sunk {
  char line[2048];
  dfnet_log_level_t level;
  int count;
} sunk_t;

static void sink(void *user, dfnet_log_level_t level, const char *line) {
  sunk_t *s = user;
  snprintf(s->line, sizeof s->line, "%s", line);
  s->level = level;
  s->count++;
}

/* The sink gets the formatted line, without a priority (it is not journald). */
static void test_sink_gets_the_format(void **state) {
  (void)state;
  static sunk_t s;
  char out[256];
  dfnet_log_format_set(DFNET_LOG_FORMAT_JSON);
  capture_begin();
  journal_is_stderr();
  assert_true(dfnet_log_journal_detect());
  dfnet_log_set_sink(sink, &s);
  DFNET_LOGW("transport", "lab-a", "to the sink");
  dfnet_log_set_sink(NULL, NULL);
  capture_end(out, sizeof out);
  assert_string_equal(out, ""); /* nothing on stderr */
  assert_int_equal(s.count, 1);
  assert_int_equal(s.level, DFNET_LOG_WARN);
  cJSON_Delete(parse_line(s.line, "warning", "transport", "lab-a", "to the sink"));
}

static void test_format_choice(void **state) {
  (void)state;
  dfnet_log_format_t f = DFNET_LOG_FORMAT_JSON;
  assert_int_equal(dfnet_log_format_parse("text", &f), 0);
  assert_int_equal(f, DFNET_LOG_FORMAT_TEXT);
  assert_int_equal(dfnet_log_format_parse("JSON", &f), 0);
  assert_int_equal(f, DFNET_LOG_FORMAT_JSON);
  assert_int_equal(dfnet_log_format_parse("xml", &f), -1);
  assert_int_equal(dfnet_log_format_parse(NULL, &f), -1);
  assert_string_equal(dfnet_log_format_name(DFNET_LOG_FORMAT_JSON), "json");

  assert_int_equal(dfnet_log_format_configure(NULL), 0); /* nothing: text */
  assert_int_equal(dfnet_log_format_get(), DFNET_LOG_FORMAT_TEXT);
  setenv("DFNET_LOG_FORMAT", "json", 1);
  assert_int_equal(dfnet_log_format_configure(NULL), 0); /* the environment */
  assert_int_equal(dfnet_log_format_get(), DFNET_LOG_FORMAT_JSON);
  assert_int_equal(dfnet_log_format_configure("text"), 0); /* the flag wins */
  assert_int_equal(dfnet_log_format_get(), DFNET_LOG_FORMAT_TEXT);
  setenv("DFNET_LOG_FORMAT", "xml", 1);
  assert_int_equal(dfnet_log_format_configure(NULL), -1);
  assert_int_equal(dfnet_log_format_get(), DFNET_LOG_FORMAT_TEXT); /* unchanged */
  unsetenv("DFNET_LOG_FORMAT");
}

#define THREADS 4
#define LINES 300

static void *log_many(void *arg) {
  long id = (long)(intptr_t)arg;
  for (int i = 0; i < LINES; i++)
    DFNET_LOGI("bench", "t", "thread %ld line %d \"quoted\"\n%0200d", id, i, 0);
  return NULL;
}

/* One write(2) a line: lines of several threads never mix. */
static void test_whole_lines_from_threads(void **state) {
  (void)state;
  static char out[THREADS * LINES * 700];
  dfnet_log_format_set(DFNET_LOG_FORMAT_JSON);
  capture_begin();
  pthread_t th[THREADS];
  for (long i = 0; i < THREADS; i++)
    assert_int_equal(pthread_create(&th[i], NULL, log_many, (void *)(intptr_t)i), 0);
  for (int i = 0; i < THREADS; i++)
    pthread_join(th[i], NULL);
  capture_end(out, sizeof out);
  size_t count = 0;
  for (char *save = NULL, *l = strtok_r(out, "\n", &save); l != NULL;
       l = strtok_r(NULL, "\n", &save)) {
    cJSON *o = cJSON_Parse(l);
    if (o == NULL)
      fail_msg("line %zu is not JSON: %.80s", count, l);
    assert_non_null(
        strstr(cJSON_GetStringValue(cJSON_GetObjectItem(o, "message")), "\"quoted\"\n"));
    cJSON_Delete(o);
    count++;
  }
  assert_int_equal(count, THREADS * LINES);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_journal_priorities, reset, reset),
      cmocka_unit_test_setup_teardown(test_not_the_journal, reset, reset),
      cmocka_unit_test_setup_teardown(test_json_lines, reset, reset),
      cmocka_unit_test_setup_teardown(test_json_under_journal, reset, reset),
      cmocka_unit_test_setup_teardown(test_sink_gets_the_format, reset, reset),
      cmocka_unit_test_setup_teardown(test_format_choice, reset, reset),
      cmocka_unit_test_setup_teardown(test_whole_lines_from_threads, reset, reset),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
