/* serial: Write and Configure, the jobs (serial.h): a queue served one job at a time, in
 * order, by the port's backend once the port is open (serial__port_ready), each ended by
 * serial__job_done with its reply; a failed port ends the jobs that wait UNAVAILABLE.
 * Dispatcher. */
#include <stdio.h>
#include <stdlib.h>

#include <utlist.h>

#include "drivers/common/drvkit.h"
#include "drivers/serial/serial.h"

/* ---- Write and Configure: the jobs ------------------------------------------------------ */

static void job_end(serial_t *s, dfnet_status_t status, const char *message,
                    const dfnet_hw_serial_Config *got);

/* Start the jobs at the head of the queue while the port takes them. Dispatcher. */
void serial__pump(serial_t *s) {
  if (s->pumping)
    return; /* a job ended inside run: the loop below goes on */
  s->pumping = true;
  char why[256];
  while (s->jobs != NULL && !s->jobs->started) {
    serial_job_t *j = s->jobs;
    dfnet_status_t st = dfnet_call_status(j->call);
    bool failed = serial__failed(s, why, sizeof why);
    if (!failed && st == DFNET_STATUS_OK && !s->ready)
      break; /* the port is still opening: the job waits */
    j->started = true;
    if (failed)
      job_end(s, DFNET_STATUS_UNAVAILABLE, why, NULL); /* the failure names the port */
    else if (st != DFNET_STATUS_OK)
      job_end(s, st, NULL, NULL); /* it ended while it waited */
    else
      s->ops->run(s, j);
  }
  s->pumping = false;
}

/* End every job, the one in progress too (stop: the backend is closed). */
void serial__drop_jobs(serial_t *s, const char *why) {
  while (s->jobs != NULL) {
    serial_job_t *j = s->jobs;
    LL_DELETE(s->jobs, j);
    (void)dfnet_call_reply(j->call, DFNET_STATUS_UNAVAILABLE, why, NULL, 0);
    free(j);
  }
}

void serial__port_ready(serial_t *s) {
  s->ready = true;
  serial__pump(s);
}

/* End the job at the head of the queue with `status` and the whole `message` (NULL: none)
 * or, when OK, its answer; start the next. */
static void job_end(serial_t *s, dfnet_status_t status, const char *message,
                    const dfnet_hw_serial_Config *got) {
  serial_job_t *j = s->jobs;
  LL_DELETE(s->jobs, j);
  if (status != DFNET_STATUS_OK && message != NULL) {
    drvkit__fail(j->call, status, "%s", message);
  } else if (status != DFNET_STATUS_OK) {
    (void)dfnet_call_reply(j->call, status, NULL, NULL, 0);
  } else if (j->configure) {
    dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_INFO,
                     "%s: %u baud, %u data bits, parity %d, %u stop bits, flow control %d", s->name,
                     got->baud_rate, got->data_bits, (int)got->parity, got->stop_bits,
                     (int)got->flow_control);
    drvkit__reply(j->call, dfnet_hw_serial_Config_fields, got);
  } else {
    dfnet_hw_serial_WriteReply reply = {.written = (uint32_t)j->done};
    drvkit__reply(j->call, dfnet_hw_serial_WriteReply_fields, &reply);
  }
  free(j);
  serial__pump(s);
}

void serial__job_done(serial_t *s, dfnet_status_t status, const char *why,
                      const dfnet_hw_serial_Config *got) {
  if (s->jobs == NULL || !s->jobs->started)
    return;
  char message[768];
  if (why != NULL)
    snprintf(message, sizeof message, "%.200s: %.500s", s->name, why);
  job_end(s, status, why != NULL ? message : NULL, got);
}

void serial__config_defaults(const dfnet_hw_serial_Config *want, dfnet_hw_serial_Config *out) {
  *out = *want;
  if (out->baud_rate == 0)
    out->baud_rate = 115200;
  if (out->data_bits == 0)
    out->data_bits = 8;
  if (out->stop_bits == 0)
    out->stop_bits = 1;
}

/* Queue a job and start it when its turn comes. */
void serial__enqueue(serial_t *s, serial_job_t *j) {
  char why[256];
  if (serial__failed(s, why, sizeof why)) {
    drvkit__fail(j->call, DFNET_STATUS_UNAVAILABLE, "%s", why);
    free(j);
    return;
  }
  LL_APPEND(s->jobs, j);
  serial__pump(s);
}
