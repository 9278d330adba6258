/* dfnet CLI: an image's upload into the artifact cache of a host (dfnet.lab.ArtifactCache,
 * proto/dfnet/lab/artifact.proto, answered by the host agent for any of its nodes), as `image
 * upload` and `image write` (cmd_image.c) make it.
 *
 * The upload (cli__image_upload) is content-addressed and resumable: the file's SHA-256 is
 * its name; Stat says how much the host holds; Puts of IMAGE_CHUNK bytes go from there,
 * im->window of them in flight. A Put refused FAILED_PRECONDITION ("expected offset N"), or
 * lost with the connection (UNAVAILABLE: libdfnet-client reconnects by itself, and the next
 * call waits for the new session), makes it ask Stat again and go on from what the host
 * holds; after a lost connection a NOT_FOUND is taken as the host not announced again yet.
 * A Put refused RESOURCE_EXHAUSTED with more than one in flight (a send queue on the way is
 * full: the manager's towards the agent holds 8 MiB) goes on with one Put at a time. IMAGE_TRIES
 * such attempts in a row without a byte more held end it, with the last status; any other
 * status ends it at once. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <mbedtls/sha256.h>

#include "lib/hex.h"
#include "clients/cli/cli.h"

#define M_STAT "/dfnet.lab.ArtifactCache/Stat"
#define M_PUT "/dfnet.lab.ArtifactCache/Put"
#define IMAGE_CHUNK (1024u * 1024u)  /* bytes per Put */
#define IMAGE_CALL_DEADLINE_MS 60000 /* per Stat and Put */
#define IMAGE_TRIES 10               /* attempts in a row without progress */

uint64_t cli__image_mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- the file ---------------------------------------------------------------------------- */

int cli__image_open(cli_image_t *im, const char *path) {
  im->fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat sb;
  if (im->fd < 0 || fstat(im->fd, &sb) != 0)
    return cli__usage("FILE %s: %s", path, strerror(errno));
  if (!S_ISREG(sb.st_mode))
    return cli__usage("FILE %s: not a regular file", path);
  if (sb.st_size == 0)
    return cli__fail(DFNET_STATUS_INVALID_ARGUMENT, "FILE %s is empty: an image has bytes", path);
  im->size = (uint64_t)sb.st_size;
  uint8_t *buf = malloc(IMAGE_CHUNK);
  if (buf == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  mbedtls_sha256_context sha;
  mbedtls_sha256_init(&sha);
  int rc = mbedtls_sha256_starts_ret(&sha, 0) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAILED;
  uint64_t off = 0;
  while (rc == CLI_EXIT_OK && off < im->size) {
    ssize_t n = pread(im->fd, buf, IMAGE_CHUNK, (off_t)off);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "FILE %s: %s", path,
                     n < 0 ? strerror(errno) : "shorter than its size");
    else if (mbedtls_sha256_update_ret(&sha, buf, (size_t)n) != 0)
      rc = CLI_EXIT_FAILED;
    else
      off += (uint64_t)n;
  }
  if (rc == CLI_EXIT_OK && mbedtls_sha256_finish_ret(&sha, im->sha256) != 0)
    rc = CLI_EXIT_FAILED;
  mbedtls_sha256_free(&sha);
  free(buf);
  if (rc != CLI_EXIT_OK)
    return rc;
  dfnet_hex_encode(im->sha256, sizeof im->sha256, im->hex);
  return CLI_EXIT_OK;
}

void cli__image_close(cli_image_t *im) {
  if (im->fd >= 0)
    close(im->fd);
  im->fd = -1;
}

/* ---- messages ----------------------------------------------------------------------------- */

/* ArtifactStatRequest{sha256, total_size} or the head of an ArtifactPutRequest{sha256,
 * total_size, offset, data (field 15) of `len` bytes}, whose bytes follow; returns its
 * length (at most 64). */
static size_t artifact_head(const cli_image_t *im, bool put, uint64_t offset, size_t len,
                            uint8_t *p) {
  size_t n = 0;
  p[n++] = 0x0a; /* sha256 = 1 */
  p[n++] = 32;
  memcpy(p + n, im->sha256, 32);
  n += 32;
  p[n++] = 0x10; /* total_size = 2 */
  n += cli__pb_put_varint(p + n, im->size);
  if (!put)
    return n;
  p[n++] = 0x18; /* offset = 3 */
  n += cli__pb_put_varint(p + n, offset);
  p[n++] = 0x7a; /* data = 15, length-delimited */
  n += cli__pb_put_varint(p + n, len);
  return n;
}

/* ArtifactStatus: size_held (1), total_size (2), complete (3). */
static bool artifact_status(const uint8_t *msg, size_t len, uint64_t *held, bool *complete) {
  uint64_t c = 0;
  if (cli__pb_find_varint(msg, len, 1, held) < 0 || cli__pb_find_varint(msg, len, 3, &c) < 0)
    return false;
  *complete = c != 0;
  return true;
}

/* ---- the upload ---------------------------------------------------------------------------- */

/* One Put in flight: a slot of the window (the main thread takes a free one; its end frees
 * it). */
typedef struct put_slot {
  struct put_window *w;
  bool busy;
  dfnet_client_call_id_t id; /* 0 until dfnet_client_call_start returned */
  uint64_t held;             /* its reply's ArtifactStatus */
  bool complete, parsed;
} put_slot_t;

/* The Puts in flight, shared with their callbacks (client thread) under mu. */
typedef struct put_window {
  pthread_mutex_t mu;
  int wake[2]; /* a byte per Put that ended (and per signal: cli__stop_on_signals) */
  unsigned in_flight;
  put_slot_t slots[CLI_IMAGE_WINDOW_MAX];
  uint64_t held; /* the most any reply said the host holds */
  bool complete;
  dfnet_status_t status; /* the first Put that failed, OK while none did */
  char message[512];
} put_window_t;

static void put_message(void *user, dfnet_client_call_id_t id, const uint8_t *data, size_t len) {
  put_slot_t *p = user;
  (void)id;
  p->parsed = artifact_status(data, len, &p->held, &p->complete);
}

static void put_done(void *user, dfnet_client_call_id_t id, dfnet_status_t st, const char *msg) {
  put_slot_t *p = user;
  put_window_t *w = p->w;
  (void)id;
  pthread_mutex_lock(&w->mu);
  if (st == DFNET_STATUS_OK && !p->parsed) {
    st = DFNET_STATUS_DATA_LOSS;
    msg = "the host answered a Put with no ArtifactStatus";
  }
  if (st == DFNET_STATUS_OK) {
    if (p->held > w->held)
      w->held = p->held;
    w->complete |= p->complete;
  } else if (w->status == DFNET_STATUS_OK) {
    w->status = st;
    snprintf(w->message, sizeof w->message, "%s", msg != NULL ? msg : "");
  }
  p->busy = false;
  w->in_flight--;
  pthread_mutex_unlock(&w->mu);
  char b = 'p';
  ssize_t n = write(w->wake[1], &b, 1);
  (void)n;
}

/* Report progress to im's callback. */
void cli__image_report(cli_image_t *im, const char *phase, uint64_t done, uint64_t base,
                       uint64_t since_ms, bool end) {
  if (im->progress == NULL)
    return;
  cli_image_progress_t p = {.phase = phase,
                            .done_bytes = done,
                            .total_bytes = im->size,
                            .base_bytes = base,
                            .seconds = (double)(cli__image_mono_ms() - since_ms) / 1000.0,
                            .end = end};
  im->progress(im->progress_user, &p);
}

/* Wait for a byte on fd, up to ms; drains what is there. false when a signal stopped us. */
bool cli__image_wait_wake(int fd, int ms) {
  struct pollfd p = {.fd = fd, .events = POLLIN};
  if (poll(&p, 1, ms) > 0) {
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    (void)n;
  }
  return cli__stop_signal() == 0;
}

/* Start the Put of the chunk at `offset` (buf: room for IMAGE_CHUNK bytes and a head). */
static dfnet_status_t put_start(dfnet_client_t *c, const char *target, cli_image_t *im,
                                put_window_t *w, uint64_t offset, uint8_t *buf,
                                dfnet_client_error_t *err) {
  size_t len = im->size - offset < IMAGE_CHUNK ? (size_t)(im->size - offset) : IMAGE_CHUNK;
  size_t head = artifact_head(im, true, offset, len, buf);
  for (size_t got = 0; got < len;) {
    ssize_t n = pread(im->fd, buf + head + got, len - got, (off_t)(offset + got));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      err->code = DFNET_STATUS_UNAVAILABLE;
      snprintf(err->message, sizeof err->message, "reading the file at %llu: %s",
               (unsigned long long)(offset + got), n < 0 ? strerror(errno) : "it shrank");
      return err->code;
    }
    got += (size_t)n;
  }
  pthread_mutex_lock(&w->mu); /* counted first: its end may come before call_start returns */
  put_slot_t *p = &w->slots[0];
  while (p->busy)
    p++; /* in_flight < window: one is free */
  *p = (put_slot_t){.w = w, .busy = true};
  w->in_flight++;
  pthread_mutex_unlock(&w->mu);
  dfnet_client_call_options_t co = {.deadline_ms = IMAGE_CALL_DEADLINE_MS};
  dfnet_client_call_id_t id = 0;
  dfnet_status_t st = dfnet_client_call_start(c, target, M_PUT, buf, head + len, &co, put_message,
                                              put_done, p, &id);
  pthread_mutex_lock(&w->mu);
  if (st != DFNET_STATUS_OK) {
    p->busy = false;
    w->in_flight--;
  } else if (p->busy) { /* not ended yet */
    p->id = id;
  }
  pthread_mutex_unlock(&w->mu);
  if (st != DFNET_STATUS_OK) {
    err->code = st;
    snprintf(err->message, sizeof err->message, "cannot send a Put: %s", dfnet_status_str(st));
  }
  return st;
}

/* Puts from `held` to the end, `window` in flight, until the host holds it all or a Put
 * fails (the rest in flight are waited for). OK when the host has it complete; else the
 * first failure in err; CANCELLED (and every Put cancelled) on a signal. */
static dfnet_status_t put_all(dfnet_client_t *c, const char *target, cli_image_t *im,
                              put_window_t *w, unsigned window, uint64_t held, uint64_t since_ms,
                              uint8_t *buf, dfnet_client_error_t *err) {
  uint64_t next = held, last_report = cli__image_mono_ms();
  dfnet_status_t local = DFNET_STATUS_OK; /* a Put we could not start */
  bool stopped = false;
  pthread_mutex_lock(&w->mu);
  w->held = held;
  w->complete = false;
  w->status = DFNET_STATUS_OK;
  w->message[0] = '\0';
  for (;;) {
    bool failed = w->status != DFNET_STATUS_OK || local != DFNET_STATUS_OK || stopped ||
                  __atomic_load_n(&im->stop, __ATOMIC_ACQUIRE);
    if (!failed && w->in_flight < window && next < im->size) {
      pthread_mutex_unlock(&w->mu);
      local = put_start(c, target, im, w, next, buf, err);
      if (local == DFNET_STATUS_OK)
        next += im->size - next < IMAGE_CHUNK ? im->size - next : IMAGE_CHUNK;
      pthread_mutex_lock(&w->mu);
      continue;
    }
    if (w->in_flight == 0 && (failed || next >= im->size))
      break;
    uint64_t done = w->held;
    pthread_mutex_unlock(&w->mu);
    bool told = __atomic_load_n(&im->stop, __ATOMIC_ACQUIRE); /* the write failed */
    if ((!cli__image_wait_wake(w->wake[0], CLI_IMAGE_REPORT_MS) || told) && !stopped) {
      stopped = true;
      dfnet_client_call_id_t ids[CLI_IMAGE_WINDOW_MAX] = {0};
      pthread_mutex_lock(&w->mu);
      for (unsigned i = 0; i < CLI_IMAGE_WINDOW_MAX; i++)
        ids[i] = w->slots[i].busy ? w->slots[i].id : 0;
      pthread_mutex_unlock(&w->mu);
      for (unsigned i = 0; i < CLI_IMAGE_WINDOW_MAX; i++)
        if (ids[i] != 0) /* one that ended since: NOT_FOUND, harmless */
          (void)dfnet_client_call_cancel(c, ids[i]);
    }
    if (cli__image_mono_ms() - last_report >= CLI_IMAGE_REPORT_MS && !stopped) {
      last_report = cli__image_mono_ms();
      cli__image_report(im, "upload", done, im->start_offset, since_ms, false);
    }
    pthread_mutex_lock(&w->mu);
  }
  dfnet_status_t st = w->status;
  bool complete = w->complete;
  im->held = w->held;
  if (st != DFNET_STATUS_OK) {
    err->code = st;
    snprintf(err->message, sizeof err->message, "%s", w->message);
  }
  pthread_mutex_unlock(&w->mu);
  if (stopped && __atomic_load_n(&im->stop, __ATOMIC_ACQUIRE)) {
    err->code = DFNET_STATUS_CANCELLED;
    snprintf(err->message, sizeof err->message, "stopped: the write failed");
    return DFNET_STATUS_CANCELLED;
  }
  if (stopped) {
    err->code = DFNET_STATUS_CANCELLED;
    snprintf(err->message, sizeof err->message,
             "interrupted: the host keeps the %llu bytes it holds (run it again to go on)",
             (unsigned long long)im->held);
    return DFNET_STATUS_CANCELLED;
  }
  if (local != DFNET_STATUS_OK)
    return local;
  if (st == DFNET_STATUS_OK && !complete) {
    err->code = DFNET_STATUS_DATA_LOSS;
    snprintf(err->message, sizeof err->message,
             "the host took all %llu bytes but did not say the artifact is complete",
             (unsigned long long)im->size);
    return err->code;
  }
  return st;
}

/* Stat: how much of the artifact the host of target holds. */
static dfnet_status_t stat_call(dfnet_client_t *c, const char *target, const cli_image_t *im,
                                uint64_t *held, bool *complete, dfnet_client_error_t *err) {
  uint8_t req[64];
  size_t len = artifact_head(im, false, 0, 0, req);
  dfnet_client_call_options_t co = {.deadline_ms = IMAGE_CALL_DEADLINE_MS};
  uint8_t *reply = NULL;
  size_t reply_len = 0;
  dfnet_status_t st = dfnet_client_call(c, target, M_STAT, req, len, &co, &reply, &reply_len, err);
  if (st == DFNET_STATUS_OK && !artifact_status(reply, reply_len, held, complete)) {
    st = err->code = DFNET_STATUS_DATA_LOSS;
    snprintf(err->message, sizeof err->message, "the host answered Stat with no ArtifactStatus");
  }
  free(reply);
  return st;
}

/* May the upload go on after this status (a lost connection seen before: `dropped`)? */
static bool retryable(dfnet_status_t st, bool dropped) {
  return st == DFNET_STATUS_FAILED_PRECONDITION || st == DFNET_STATUS_UNAVAILABLE ||
         st == DFNET_STATUS_DEADLINE_EXCEEDED || (st == DFNET_STATUS_NOT_FOUND && dropped);
}

/* Stat, then Puts from what the host holds, again after each failure that may pass. */
static dfnet_status_t upload_loop(dfnet_client_t *c, const char *target, cli_image_t *im,
                                  put_window_t *w, uint8_t *buf, dfnet_client_error_t *err) {
  uint64_t since = cli__image_mono_ms(), best = 0;
  unsigned tries = 0, window = im->window == 0                     ? CLI_IMAGE_WINDOW
                               : im->window > CLI_IMAGE_WINDOW_MAX ? CLI_IMAGE_WINDOW_MAX
                                                                   : im->window;
  bool first = true, dropped = false;
  for (;;) {
    uint64_t held = 0;
    bool complete = false;
    /* a blocking call (it may wait for the session to come back): a signal meanwhile ends
     * the process, which leaves nothing behind (no Put is in flight) */
    cli__stop_default();
    dfnet_status_t st = stat_call(c, target, im, &held, &complete, err);
    cli__stop_on_signals(w->wake[1]);
    if (st == DFNET_STATUS_OK) {
      dropped = false;
      if (first) {
        im->start_offset = held;
        im->already = complete;
        best = held;
        cli__image_report(im, "upload", complete ? im->size : held, held, since, complete);
        first = false;
        if (complete)
          return DFNET_STATUS_OK;
      }
      if (complete) { /* the last reply was lost: the host has it */
        im->held = im->size;
        break;
      }
      if (held > best) {
        best = held;
        tries = 0;
      }
      st = put_all(c, target, im, w, window, held, since, buf, err);
      if (st == DFNET_STATUS_OK)
        break;
      if (im->held > best) {
        best = im->held;
        tries = 0;
      }
    }
    if (st == DFNET_STATUS_CANCELLED &&
        (cli__stop_signal() || __atomic_load_n(&im->stop, __ATOMIC_ACQUIRE)))
      return st;
    if (st == DFNET_STATUS_RESOURCE_EXHAUSTED && window > 1) {
      window = 1; /* a full send queue on the way (or the host's disk: then it fails again) */
    } else if (!retryable(st, dropped)) {
      return st;
    }
    if (++tries > IMAGE_TRIES)
      return st;
    dropped |= st == DFNET_STATUS_UNAVAILABLE;
    im->retries++;
    /* a refused offset goes on at once; else give the link (or the host's announce) time */
    int pause = st == DFNET_STATUS_FAILED_PRECONDITION ? 0 : 200 * (1 << (tries < 4 ? tries : 4));
    if (pause > 0 && !cli__image_wait_wake(w->wake[0], pause))
      return err->code = DFNET_STATUS_CANCELLED;
  }
  im->held = im->size;
  cli__image_report(im, "upload", im->size, im->start_offset, since, true);
  return DFNET_STATUS_OK;
}

dfnet_status_t cli__image_upload(dfnet_client_t *c, const char *target, cli_image_t *im,
                                 dfnet_client_error_t *err) {
  put_window_t w = {.mu = PTHREAD_MUTEX_INITIALIZER, .wake = {-1, -1}};
  uint8_t *buf = malloc(IMAGE_CHUNK + 64);
  if (buf == NULL || pipe2(w.wake, O_CLOEXEC | O_NONBLOCK) != 0) {
    free(buf);
    err->code = DFNET_STATUS_RESOURCE_EXHAUSTED;
    snprintf(err->message, sizeof err->message, "out of memory or descriptors");
    return err->code;
  }
  uint64_t t0 = cli__image_mono_ms();
  im->retries = 0;
  dfnet_status_t st = upload_loop(c, target, im, &w, buf, err);
  im->seconds = (double)(cli__image_mono_ms() - t0) / 1000.0;
  im->sent = im->held > im->start_offset ? im->held - im->start_offset : 0;
  cli__stop_default();
  close(w.wake[0]);
  close(w.wake[1]);
  free(buf);
  pthread_mutex_destroy(&w.mu);
  return st;
}
