/* dfnet CLI: disk images — `image upload TARGET FILE` puts a file into the artifact cache
 * of TARGET's host (the upload: image_upload.c), `image write TARGET FILE` then has TARGET's
 * block driver write it to its device (dfnet.hw.block.Block/WriteImage,
 * proto/dfnet/hw/block.proto; labgrid's USBStorageDriver.write_image).
 *
 * Progress: on a terminal (stderr), one line redrawn with \r per phase (upload, then write,
 * sync, verify); with --json one JSON object per line on stdout (clients/cli/JSON.md "image
 * upload"); otherwise one line per phase's end on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"

#define M_WRITE_IMAGE "/dfnet.hw.block.Block/WriteImage"
#define IMAGE_WRITE_TIMEOUT_MS 3600000u

/* ---- WriteImage ----------------------------------------------------------------------------- */

static const char *const write_phases[] = {"write", "sync", "verify"};

/* The WriteImage stream, shared with its callbacks (client thread). Progress is reported
 * from the item callback (not while an upload runs: its own progress is shown then); the end
 * wakes the waiting thread. */
typedef struct write_call {
  cli_image_t *im;
  dfnet_client_call_id_t id;
  int wake[2];
  int phase;         /* the current phase (-1: none yet) */
  uint64_t phase_ms; /* when it began */
  uint64_t done;     /* its done_bytes */
  uint64_t last_report;
  bool ended;
  bool ended_uploading; /* it ended while the upload ran */
  dfnet_status_t status;
  char message[512];
} write_call_t;

static void write_item(void *user, dfnet_client_call_id_t id, const uint8_t *msg, size_t len) {
  write_call_t *w = user;
  (void)id;
  uint64_t phase = 0, done = 0;
  if (cli__pb_find_varint(msg, len, 1, &phase) < 0 || phase > 2 || /* WriteImageProgress.phase */
      cli__pb_find_varint(msg, len, 2, &done) < 0)                 /* .done_bytes */
    return;
  uint64_t now = cli__image_mono_ms();
  bool quiet = __atomic_load_n(&w->im->uploading, __ATOMIC_ACQUIRE);
  if ((int)phase != w->phase) {
    if (w->phase >= 0 && !quiet)
      cli__image_report(w->im, write_phases[w->phase], w->done, 0, w->phase_ms, true);
    w->phase = (int)phase;
    w->phase_ms = now;
    w->last_report = 0;
  }
  w->done = done;
  if (now - w->last_report >= CLI_IMAGE_REPORT_MS && !quiet) {
    w->last_report = now;
    cli__image_report(w->im, write_phases[w->phase], done, 0, w->phase_ms, false);
  }
}

/* May a WriteImage that ended with st while the upload ran be started again once the upload
 * is done (the connection dropped, or the upload it followed was started over)? */
static bool write_again(dfnet_status_t st) {
  return st == DFNET_STATUS_UNAVAILABLE || st == DFNET_STATUS_ABORTED ||
         st == DFNET_STATUS_CANCELLED || st == DFNET_STATUS_DEADLINE_EXCEEDED;
}

static void write_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  write_call_t *w = user;
  (void)id;
  bool uploading = __atomic_load_n(&w->im->uploading, __ATOMIC_ACQUIRE);
  if (st == DFNET_STATUS_OK && w->phase >= 0)
    cli__image_report(w->im, write_phases[w->phase], w->done, 0, w->phase_ms, true);
  w->status = st;
  w->ended_uploading = uploading;
  snprintf(w->message, sizeof w->message, "%s", msg != NULL ? msg : "");
  if (uploading && st != DFNET_STATUS_OK && !write_again(st))
    __atomic_store_n(&w->im->stop, true, __ATOMIC_RELEASE); /* no use uploading on */
  __atomic_store_n(&w->ended, true, __ATOMIC_RELEASE);
  char b = 'e';
  ssize_t n = write(w->wake[1], &b, 1);
  (void)n;
}

/* Start WriteImage on target (follow: while the upload may still run, follow_upload_size =
 * the image's size). On OK the call runs: write_wait ends it. */
static dfnet_status_t write_start(dfnet_client_t *c, const char *target, cli_image_t *im,
                                  uint32_t deadline_ms, bool follow, write_call_t *w,
                                  dfnet_client_error_t *err) {
  *w = (write_call_t){.im = im, .wake = {-1, -1}, .phase = -1};
  if (pipe2(w->wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    err->code = DFNET_STATUS_RESOURCE_EXHAUSTED;
    snprintf(err->message, sizeof err->message, "pipe: %s", strerror(errno));
    return err->code;
  }
  uint8_t req[48] = {0x0a, 32}; /* WriteImageRequest.artifact_sha256 = 1 */
  memcpy(req + 2, im->sha256, 32);
  size_t len = 34;
  if (follow) {
    req[len++] = 0x10; /* .follow_upload_size = 2, a varint */
    len += cli__pb_put_varint(req + len, im->size);
  }
  dfnet_client_call_options_t co = {.deadline_ms = deadline_ms, .credit = 16};
  /* (may wait for a session: a signal meanwhile ends the process, and the call with it) */
  dfnet_status_t st = dfnet_client_call_start(c, target, M_WRITE_IMAGE, req, len, &co, write_item,
                                              write_done, w, &w->id);
  if (st != DFNET_STATUS_OK) {
    close(w->wake[0]);
    close(w->wake[1]);
    err->code = st;
    snprintf(err->message, sizeof err->message, "cannot start WriteImage: %s",
             dfnet_status_str(st));
  }
  return st;
}

/* Wait for a started WriteImage to end (cancel: cancel it first); a signal cancels it. Its
 * outcome as cli__image_write's. */
static dfnet_status_t write_wait(dfnet_client_t *c, write_call_t *w, bool cancel, char *message,
                                 size_t cap, dfnet_client_error_t *err) {
  if (cancel)
    (void)dfnet_client_call_cancel(c, w->id);
  cli__stop_on_signals(w->wake[1]);
  bool cancelled = cancel;
  while (!__atomic_load_n(&w->ended, __ATOMIC_ACQUIRE)) {
    if (!cli__image_wait_wake(w->wake[0], 1000) && !cancelled) {
      cancelled = true;
      (void)dfnet_client_call_cancel(c, w->id);
    }
  }
  cli__stop_default();
  dfnet_status_t st = w->status;
  if (cancelled && st != DFNET_STATUS_OK) {
    st = err->code = DFNET_STATUS_CANCELLED;
    snprintf(err->message, sizeof err->message, "interrupted: the device holds a partial image");
  } else if (st != DFNET_STATUS_OK) {
    err->code = st;
    snprintf(err->message, sizeof err->message, "%s", w->message);
  } else {
    snprintf(message, cap, "%s", w->message);
  }
  close(w->wake[0]);
  close(w->wake[1]);
  return st;
}

dfnet_status_t cli__image_write(dfnet_client_t *c, const char *target, cli_image_t *im,
                                uint32_t deadline_ms, char *message, size_t cap,
                                dfnet_client_error_t *err) {
  write_call_t w;
  dfnet_status_t st = write_start(c, target, im, deadline_ms, false, &w, err);
  return st == DFNET_STATUS_OK ? write_wait(c, &w, false, message, cap, err) : st;
}

dfnet_status_t cli__image_upload_write(dfnet_client_t *c, const char *target, cli_image_t *im,
                                       uint32_t deadline_ms, char *message, size_t cap,
                                       dfnet_client_error_t *err) {
  write_call_t w;
  __atomic_store_n(&im->stop, false, __ATOMIC_RELEASE);
  __atomic_store_n(&im->uploading, true, __ATOMIC_RELEASE);
  bool writing = write_start(c, target, im, deadline_ms, true, &w, err) == DFNET_STATUS_OK;
  dfnet_status_t st = cli__image_upload(c, target, im, err);
  __atomic_store_n(&im->uploading, false, __ATOMIC_RELEASE);
  if (!writing) /* it could not start alongside: after the upload, then */
    return st == DFNET_STATUS_OK ? cli__image_write(c, target, im, deadline_ms, message, cap, err)
                                 : st;
  if (st != DFNET_STATUS_OK) {
    dfnet_client_error_t werr = {DFNET_STATUS_OK, ""};
    bool write_failed = __atomic_load_n(&im->stop, __ATOMIC_ACQUIRE);
    (void)write_wait(c, &w, !write_failed, message, cap, &werr);
    if (write_failed) /* the write's failure stopped the upload: it is the news */
      *err = werr;
    return err->code;
  }
  st = write_wait(c, &w, false, message, cap, err);
  if (st != DFNET_STATUS_OK && w.ended_uploading && write_again(st) && !cli__stop_signal())
    st = cli__image_write(c, target, im, deadline_ms, message, cap, err);
  return st;
}

/* ---- showing it -------------------------------------------------------------------------- */

typedef struct image_cmd {
  cli_image_t im;
  bool json, write, tty;
  const char *timeout; /* write: --timeout DURATION */
  uint64_t timeout_ms;
  bool bar_open; /* a progress line is on the terminal without its newline */
  char result[512];
} image_cmd_t;

/* The phase's rate in this run (none for sync, which moves no bytes of its own). */
static double mb_per_s(const cli_image_progress_t *p) {
  return p->seconds > 0 && p->done_bytes > p->base_bytes && strcmp(p->phase, "sync") != 0
             ? (double)(p->done_bytes - p->base_bytes) / p->seconds / 1e6
             : 0.0;
}

static void show_json(const cli_image_progress_t *p) {
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "phase", p->phase);
  cJSON_AddNumberToObject(o, "done_bytes", (double)p->done_bytes);
  cJSON_AddNumberToObject(o, "total_bytes", (double)p->total_bytes);
  cJSON_AddNumberToObject(o, "mb_per_s", (double)(int64_t)(mb_per_s(p) * 10.0 + 0.5) / 10.0);
  if (p->end)
    cJSON_AddBoolToObject(o, "end", true);
  cli__json_line(o);
}

static void show_progress(void *user, const cli_image_progress_t *p) {
  image_cmd_t *s = user;
  if (s->json) {
    show_json(p);
    return;
  }
  char done[32], total[32], base[32];
  cli__size_str(p->done_bytes, done, sizeof done);
  cli__size_str(p->total_bytes, total, sizeof total);
  cli__size_str(p->base_bytes, base, sizeof base);
  double rate = mb_per_s(p);
  if (p->end) {
    FILE *f = s->tty ? stderr : stdout;
    char sent[32], what[160];
    cli__size_str(p->done_bytes - p->base_bytes, sent, sizeof sent);
    if (p->done_bytes <= p->base_bytes)
      snprintf(what, sizeof what, "nothing to send: the host has all %s", total);
    else if (strcmp(p->phase, "sync") == 0)
      snprintf(what, sizeof what, "%s in %.1f s", total, p->seconds);
    else if (p->base_bytes > 0)
      snprintf(what, sizeof what, "%s of %s in %.1f s (%.1f MB/s), resumed at %s", sent, total,
               p->seconds, rate, base);
    else
      snprintf(what, sizeof what, "%s in %.1f s (%.1f MB/s)", total, p->seconds, rate);
    fprintf(f, "%s%-6s %s\n", s->tty ? "\r\033[K" : "", p->phase, what);
    fflush(f);
    s->bar_open = false;
    return;
  }
  if (!s->tty)
    return;
  unsigned pct = p->total_bytes ? (unsigned)(p->done_bytes * 100 / p->total_bytes) : 0;
  char eta[32] = "";
  if (rate > 0)
    cli__duration_str((uint64_t)((double)(p->total_bytes - p->done_bytes) / (rate * 1e3)), eta,
                      sizeof eta);
  fprintf(stderr, "\r\033[K%-6s %3u%%  %s / %s  %.1f MB/s%s%s", p->phase, pct, done, total, rate,
          eta[0] ? "  ETA " : "", eta);
  fflush(stderr);
  s->bar_open = true;
}

/* The end of the run on stdout: the final JSON line, or the result in words. */
static void show_end(image_cmd_t *s, cli_run_t *run, dfnet_status_t st, const char *message) {
  if (s->bar_open) {
    fputc('\n', stderr);
    s->bar_open = false;
  }
  if (!s->json)
    return;
  cJSON *o = cJSON_CreateObject();
  cJSON_AddStringToObject(o, "status", dfnet_status_str(st));
  cJSON_AddStringToObject(o, "message", message);
  cJSON_AddStringToObject(o, "target", run->args[0]);
  if (s->im.hex[0] != '\0') {
    cJSON_AddStringToObject(o, "sha256", s->im.hex);
    cJSON_AddNumberToObject(o, "total_bytes", (double)s->im.size);
    cJSON_AddNumberToObject(o, "sent_bytes", (double)s->im.sent);
    cJSON_AddNumberToObject(o, "resumed_at", (double)s->im.start_offset);
    cJSON_AddBoolToObject(o, "already_held", s->im.already);
    cJSON_AddNumberToObject(o, "retries", s->im.retries);
  }
  cli__json_line(o);
}

/* ---- the commands ------------------------------------------------------------------------- */

static int image_prepare(cli_run_t *run) {
  image_cmd_t *s = run->ctx;
  if (s->timeout != NULL && !cli__duration_parse(s->timeout, 7 * 86400000ull, &s->timeout_ms))
    return cli__usage("--timeout: '%s' is not a duration of at most 7d (30m, 2h)", s->timeout);
  if (s->timeout_ms == 0 || s->timeout_ms > UINT32_MAX)
    s->timeout_ms =
        s->timeout != NULL && s->timeout_ms > UINT32_MAX ? UINT32_MAX : IMAGE_WRITE_TIMEOUT_MS;
  s->tty = !s->json && isatty(STDERR_FILENO);
  s->im.progress = show_progress;
  s->im.progress_user = s;
  return cli__image_open(&s->im, run->args[1]);
}

static int image_request(cli_run_t *run) {
  image_cmd_t *s = run->ctx;
  const char *target = run->args[0];
  dfnet_client_error_t err = {DFNET_STATUS_OK, ""};
  dfnet_status_t st = DFNET_STATUS_OK;
  const char *what = "cannot upload";
  if (!s->write) {
    st = cli__image_upload(run->client, target, &s->im, &err);
  } else {
    what = "cannot write the image";
    st = cli__image_upload_write(run->client, target, &s->im, (uint32_t)s->timeout_ms, s->result,
                                 sizeof s->result, &err);
  }
  if (st == DFNET_STATUS_OK)
    return CLI_EXIT_OK;
  show_end(s, run, st, err.message);
  if (st == DFNET_STATUS_CANCELLED && cli__stop_signal())
    return cli__fail(st, "%s", err.message);
  return cli__fail(st, "%s %s to %s: %s", what, run->args[1], target, err.message);
}

static int image_print(cli_run_t *run) {
  image_cmd_t *s = run->ctx;
  char size[32];
  cli__size_str(s->im.size, size, sizeof size);
  if (s->json) {
    show_end(s, run, DFNET_STATUS_OK,
             s->write        ? s->result
             : s->im.already ? "host already has it"
                             : "uploaded");
    return CLI_EXIT_OK;
  }
  show_end(s, run, DFNET_STATUS_OK, "");
  if (s->im.already)
    printf("the host of %s already has it: %s (%s)\n", run->args[0], s->im.hex, size);
  else
    printf("uploaded %s (%s) to the host of %s: %s\n", run->args[1], size, run->args[0], s->im.hex);
  if (s->write)
    printf("%s: %s\n", run->args[0], s->result);
  return CLI_EXIT_OK;
}

static void image_release(cli_run_t *run) {
  image_cmd_t *s = run->ctx;
  cli__image_close(&s->im);
}

#define IMAGE_UPLOAD_ARGS_HELP                                        \
  "  TARGET   any node of the host: a node moniker or a class path\n" \
  "  FILE     the file (an image, firmware)\n"
#define IMAGE_WRITE_ARGS_HELP \
  CLI_TARGET_HELP("the block device's", "block") "  FILE     the image file\n"

static const cli_command_ops_t image_ops = {image_prepare, image_request, NULL, image_print,
                                            image_release};
#define IMAGE_OPT_JSON(s)                                                           \
  {                                                                                 \
    "json", 0, CLI_OPT_FLAG, &(s).json, 0, 0, NULL,                                 \
        "one JSON object per line: progress, then the result (clients/cli/JSON.md)" \
  }

int cmd_image_upload(int argc, char **argv) {
  image_cmd_t s = {.im = {.fd = -1}};
  const cli_option_t opts[] = {IMAGE_OPT_JSON(s), CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "image upload TARGET FILE [--json]",
      .about =
          "Put FILE into the artifact cache of TARGET's host, named by its SHA-256 "
          "(dfnet.lab.ArtifactCache; any node of the host will do). An upload that "
          "was cut off goes on from what the host holds, and one the host has "
          "complete is not sent again. Prints the digest.",
      .options = opts,
      .min_args = 2,
      .max_args = 2,
      .args_help = IMAGE_UPLOAD_ARGS_HELP};
  return cli__run(argc, argv, &syn, &image_ops, &s);
}

int cmd_image_write(int argc, char **argv) {
  image_cmd_t s = {.im = {.fd = -1}, .write = true};
  const cli_option_t opts[] = {
      {"timeout", 't', CLI_OPT_STRING, &s.timeout, 0, 0, "DURATION",
       "how long the device may take to write, sync and verify it (default 1h)"},
      IMAGE_OPT_JSON(s),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "image write TARGET FILE [--timeout DURATION] [--json]",
      .about =
          "Upload FILE to the artifact cache of TARGET's host as `image upload` does, "
          "and have TARGET's block driver write it to its device from byte 0 as the "
          "bytes arrive, sync it and read it back: the read-back SHA-256 must be the "
          "file's (/dfnet.hw.block.Block/WriteImage). Ctrl-C stops it, leaving a "
          "partial image.",
      .options = opts,
      .min_args = 2,
      .max_args = 2,
      .args_help = IMAGE_WRITE_ARGS_HELP};
  return cli__run(argc, argv, &syn, &image_ops, &s);
}
