/* The serial driver's internals: the core (serial.c: the Serial service, its buffers and
 * streams; ring.c: the byte rings; jobs.c: the queue of Writes and Configures) and its port
 * backends, one per file behind one ops table (as libusb's backends in libusb/os/):
 *
 *   tty.c   a kernel tty: a board file's UART ("dfnet.platform.TTY"), a pty. A reader
 *           thread reads it; writes and line settings go through write(2) and termios
 *           (port.h).
 *   usb.c   a USB serial adapter's interface, bound as a child of usb-device: every byte
 *           and every setting goes through the dfnet.hw.usb.Interface offered to the node
 *           (dfnet_driver_connect), with the chip's protocol (usb_chip.h: CDC-ACM, FTDI,
 *           CP210x, CH340). No libusb, no kernel tty.
 *
 * Threads. The core and the backends run on the driver's default dispatcher (no
 * allow_sync_calls: nothing blocks it), except the tty reader thread, which hands what it
 * reads to serial__deliver.
 */
#ifndef DFNET_DRIVERS_SERIAL_SERIAL_H
#define DFNET_DRIVERS_SERIAL_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/driver.h"
#include "dfnet/hw/serial.pb.h"
#include "drivers/common/retry.h"
#include "drivers/serial/history.h"

#define SERIAL_BUF_SIZE 65536u /* the Read buffer and each stream's buffer, bytes */
#define SERIAL_ITEM_MAX 4096u  /* bytes per Read reply / Data item / Write (serial.options) */
#define SERIAL_WRITE_MAX_MS 10000u

typedef struct serial serial_t;
typedef struct serial_job serial_job_t;

/* A Write or a Configure, served one at a time in the order they came. */
struct serial_job {
  dfnet_call_t *call;
  bool configure;                /* else a Write */
  dfnet_hw_serial_Config config; /* Configure: what is wanted */
  uint8_t data[SERIAL_ITEM_MAX]; /* Write: the bytes */
  size_t len, done;              /* Write: bytes to write, written so far */
  uint64_t give_up_ms;           /* Write: the call's deadline, at most 10 s from its start */
  bool started;                  /* handed to the backend */
  serial_job_t *next;
};

/* A port backend. Every hook runs on the default dispatcher. */
typedef struct serial_port_ops {
  const char *name; /* "tty", "usb": for logs */
  /* In `start`: open the port, its state (malloc'd) in s->port. OK: open and reading (then
   * call serial__port_ready now) or opening (call serial__port_ready or serial__port_failed
   * later). Else the status `start` returns, the reason in why[cap]; nothing is left to
   * close and s->port is NULL. */
  dfnet_status_t (*open)(serial_t *s, char *why, size_t cap);
  /* Serve job j, the head of the queue (the port is ready): end it with serial__job_done,
   * now or later. */
  void (*run)(serial_t *s, serial_job_t *j);
  /* prepare_stop, and in stop before close: stop the backend's threads and calls.
   * Idempotent. */
  void (*prepare_stop)(serial_t *s);
  /* stop, after prepare_stop: release what open acquired but s->port itself, which the core
   * frees after. Optional (NULL: the state holds nothing else). */
  void (*close)(serial_t *s);
} serial_port_ops_t;

extern const serial_port_ops_t serial__tty_ops;
extern const serial_port_ops_t serial__usb_ops;

typedef struct serial_ring {
  uint8_t *buf; /* SERIAL_BUF_SIZE bytes */
  size_t head;  /* index of the oldest byte */
  size_t len;
} serial_ring_t;

/* ---- ring.c: the byte rings (under the caller's lock) ---- */

/* Append data[0..n) to r, dropping its oldest bytes to make room (more than SERIAL_BUF_SIZE:
 * only the last SERIAL_BUF_SIZE are kept). Returns how many bytes were dropped. */
size_t serial_ring_push(serial_ring_t *r, const uint8_t *data, size_t n);

/* Take up to max of r's oldest bytes into out. Returns how many (0: r is empty). */
size_t serial_ring_pop(serial_ring_t *r, uint8_t *out, size_t max);

typedef struct serial_stream serial_stream_t;
typedef struct serial_read serial_read_t;
typedef struct serial_log serial_log_t;

struct serial {
  dfnet_driver_t *driver;
  const serial_port_ops_t *ops;
  void *port;      /* the backend's state */
  char name[1024]; /* the port, for messages: "/dev/ttyS0", "USB 0403:6001 ifc-000" */
  pthread_mutex_t mu;
  bool mu_ready;
  /* Under mu (the tty reader thread delivers): */
  serial_ring_t rx;         /* received, not yet Read */
  serial_history_t history; /* everything received, as far as it holds (log.c) */
  serial_stream_t *streams;
  bool flush_posted; /* a flush task is queued */
  char failure[256]; /* non-empty once the port failed */
  /* Dispatcher only: */
  bool ready;           /* the port is open (USB: set up) */
  serial_read_t *reads; /* parked Reads, oldest first */
  serial_log_t *logs;   /* Log and Attach streams (log.c) */
  bool writer_held;     /* an Attach holds the writer seat ... */
  char writer[128];     /* ... for this caller */
  serial_job_t *jobs;   /* Writes and Configures, oldest first */
  bool pumping;
  drvkit_retry_t flush_retry; /* flush again: a stream's window was full */
  uint64_t next_id;
};

/* ---- serial.c: the core ---- */

/* Received bytes (n may be 0) and/or the port's failure (NULL: none): appended to the Read
 * buffer and every stream's, then served on the dispatcher. Any thread. */
void serial__deliver(serial_t *s, const uint8_t *data, size_t n, const char *failure);

/* The port failed (why: the reason later calls get): every waiting call and stream ends
 * UNAVAILABLE. Dispatcher. */
void serial__port_failed(serial_t *s, const char *why);

/* The port's failure into why[cap] (the empty string while it is healthy). Returns true when
 * it failed. Dispatcher or any thread (takes mu). */
bool serial__failed(serial_t *s, char *why, size_t cap);

/* ---- jobs.c: Write and Configure, the jobs ---- */

/* The port is open: the queued jobs start. Dispatcher. */
void serial__port_ready(serial_t *s);

/* Queue job j (malloc'd; owned from here) and start it when its turn comes. A port that
 * failed ends it UNAVAILABLE with the reason at once. Dispatcher. */
void serial__enqueue(serial_t *s, serial_job_t *j);

/* Start the jobs at the head of the queue while the port takes them (a job waits while the
 * port is opening; one whose call ended, or every one once the port failed, ends). A call
 * from inside a job's run returns at once: the running loop goes on. Dispatcher. */
void serial__pump(serial_t *s);

/* End every job, the one in progress too, UNAVAILABLE with why (stop: the backend is
 * closed). Dispatcher. */
void serial__drop_jobs(serial_t *s, const char *why);

/* The job at the head of the queue ended: its reply is `status` with `why` (NULL: none)
 * and, when OK, the bytes written (a Write) or the settings in effect `got` (a Configure).
 * The next job starts. Dispatcher. */
void serial__job_done(serial_t *s, dfnet_status_t status, const char *why,
                      const dfnet_hw_serial_Config *got);

/* The line settings `want` with its defaults filled in (0 baud: 115200, 0 data bits: 8,
 * 0 stop bits: 1) into *out. */
void serial__config_defaults(const dfnet_hw_serial_Config *want, dfnet_hw_serial_Config *out);

/* ---- log.c: Log, Attach and the writer seat ---- */

/* /dfnet.hw.serial.Serial/Log and /Attach: method handlers (dfnet_method_handler_t). */
void serial__log(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len);
void serial__attach(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len);

/* Send every log stream what the history holds for it, while its window has room (sets
 * *window_full when one had none: flush again later); end the finished ones. Dispatcher. */
void serial__logs_flush(serial_t *s, bool *window_full);

/* End every log stream UNAVAILABLE with why (the driver stops). Dispatcher. */
void serial__logs_end(serial_t *s, const char *why);

/* May `call`'s caller write to the port? False, with the reason in why, while an Attach of
 * another caller holds the writer seat. Dispatcher. */
bool serial__may_write(serial_t *s, dfnet_call_t *call, char *why, size_t cap);

#endif /* DFNET_DRIVERS_SERIAL_SERIAL_H */
