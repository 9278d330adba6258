/* The serial driver's tty backend (serial.h): a kernel tty named by the node's
 * "dfnet.platform.TTY" (a board file's UART; the tests use a pty), whose descriptor
 * dfnet-host hands as resource "tty" (the driver host's: never closed here).
 *
 * Threads. The reader thread is the only reader of the tty: it polls the tty and an eventfd
 * (its stop signal) and hands what arrives to serial__deliver; a hang-up or an error ends
 * it, with the reason. Writes run on the dispatcher: what the non-blocking tty takes now,
 * then the rest every 5 ms until done, cancelled, or the job's deadline (10 s at most).
 * Configure is termios (port.h), at once.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "drivers/common/drvkit.h"
#include "drivers/common/retry.h"
#include "drivers/serial/port.h"
#include "drivers/serial/serial.h"

#define TTY_WRITE_RETRY_MS 5u

typedef struct tty {
  int fd;
  int wake_fd; /* eventfd: tells the reader thread to exit */
  pthread_t reader;
  bool reader_running;
  drvkit_retry_t write_retry; /* write again: the tty took less than asked */
} tty_t;

static void *reader_main(void *arg) {
  serial_t *s = arg;
  tty_t *t = s->port;
  uint8_t buf[SERIAL_ITEM_MAX];
  char failure[256];
  for (;;) {
    struct pollfd pfd[2] = {{.fd = t->fd, .events = POLLIN}, {.fd = t->wake_fd, .events = POLLIN}};
    if (poll(pfd, 2, -1) < 0) {
      if (errno == EINTR)
        continue;
      snprintf(failure, sizeof failure, "serial port %.200s: poll: %s", s->name, strerror(errno));
      serial__deliver(s, NULL, 0, failure);
      return NULL;
    }
    if (pfd[1].revents != 0)
      return NULL; /* prepare_stop */
    if (pfd[0].revents == 0)
      continue;
    ssize_t n = read(t->fd, buf, sizeof buf);
    if (n > 0) {
      serial__deliver(s, buf, (size_t)n, NULL);
      continue;
    }
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
      continue;
    /* End of file, EIO (hang-up: the other end closed, the adapter was unplugged) or
     * another error: the port is gone; stop reading it. */
    snprintf(failure, sizeof failure, "serial port %.200s failed: %s", s->name,
             n == 0 ? "hang-up" : strerror(errno));
    serial__deliver(s, NULL, 0, failure);
    return NULL;
  }
}

/* Write what the tty takes of the job at the head of the queue; retry for the rest. */
static void write_pump(serial_t *s) {
  tty_t *t = s->port;
  serial_job_t *j = s->jobs;
  if (j == NULL || !j->started || j->configure)
    return;
  ssize_t n = 0;
  while (j->done < j->len && (n = write(t->fd, j->data + j->done, j->len - j->done)) > 0)
    j->done += (size_t)n;
  dfnet_status_t st;
  char why[256];
  if (j->done == j->len) {
    serial__job_done(s, DFNET_STATUS_OK, NULL, NULL);
  } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
    snprintf(why, sizeof why, "writing: %s (%zu of %zu bytes written)", strerror(errno), j->done,
             j->len);
    serial__job_done(s, DFNET_STATUS_UNAVAILABLE, why, NULL);
  } else if ((st = dfnet_call_status(j->call)) != DFNET_STATUS_OK) {
    serial__job_done(s, st, NULL, NULL);
  } else if (drvkit__now_ms() >= j->give_up_ms) {
    snprintf(why, sizeof why,
             "took %zu of %zu bytes before the deadline (flow control holding it?)", j->done,
             j->len);
    serial__job_done(s, DFNET_STATUS_DEADLINE_EXCEEDED, why, NULL);
  } else {
    drvkit__retry_arm(s->driver, &t->write_retry); /* when stopping, stop() ends it */
  }
}

static void write_again(void *ctx) { write_pump(ctx); }

static void tty_run(serial_t *s, serial_job_t *j) {
  tty_t *t = s->port;
  if (!j->configure) {
    write_pump(s);
    return;
  }
  dfnet_hw_serial_Config got = dfnet_hw_serial_Config_init_zero;
  char why[256];
  dfnet_status_t st = serial__configure(t->fd, &j->config, &got, why, sizeof why);
  serial__job_done(s, st, st == DFNET_STATUS_OK ? NULL : why, &got);
}

static dfnet_status_t tty_open(serial_t *s, char *why, size_t cap) {
  tty_t *t = calloc(1, sizeof *t);
  if (t == NULL) {
    snprintf(why, cap, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *t = (tty_t){
      .fd = -1, .wake_fd = -1, .write_retry = {.run = write_again, .delay_ms = TTY_WRITE_RETRY_MS}};
  dfnet_status_t st = serial__find_tty(s->driver, s->name, sizeof s->name, &t->fd, why, cap);
  if (st == DFNET_STATUS_OK)
    st = serial__make_raw(t->fd, s->name, why, cap);
  if (st != DFNET_STATUS_OK)
    goto free_state;
  st = DFNET_STATUS_INTERNAL;
  if ((t->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
    snprintf(why, cap, "eventfd: %s", strerror(errno));
    goto free_state;
  }
  s->port = t;
  int rc = pthread_create(&t->reader, NULL, reader_main, s);
  if (rc != 0) {
    snprintf(why, cap, "cannot start the reader thread: %s", strerror(rc));
    goto close_wake;
  }
  t->reader_running = true;
  serial__port_ready(s);
  return DFNET_STATUS_OK;

close_wake:
  s->port = NULL;
  close(t->wake_fd);
free_state:
  free(t);
  return st;
}

static void tty_prepare_stop(serial_t *s) {
  tty_t *t = s->port;
  if (t != NULL && t->reader_running) {
    uint64_t one = 1;
    (void)!write(t->wake_fd, &one, sizeof one);
    pthread_join(t->reader, NULL);
    t->reader_running = false;
  }
}

static void tty_close(serial_t *s) {
  tty_t *t = s->port;
  close(t->wake_fd); /* t->fd is the driver host's, closed after `stop` */
}

const serial_port_ops_t serial__tty_ops = {
    .name = "tty",
    .open = tty_open,
    .run = tty_run,
    .prepare_stop = tty_prepare_stop,
    .close = tty_close,
};
