/* usb_class: a test class driver for a USB interface child of usb-device (issue 18 item 3).
 * It does all its USB I/O through the dfnet.hw.usb.Interface offered to its node, as a
 * real class driver would:
 *
 *   start         connects to the offer, reads the interface (GetInterface), claims it
 *                 (detach_kernel_driver), and with program.config "ptp": "true" runs the
 *                 first exchanges of a PTP session (PIMA 15740) on its bulk endpoints:
 *                 OpenSession(1) as transaction 0, GetDeviceInfo as transaction 1 (command,
 *                 data phase, response), each answer checked.
 * A driver cannot call out once it is stopping, so its claim lasts until usb-device stops (or
 * the same child's next driver claims it again).
 *
 * It serves dfnet.test.UsbClass:
 *   DeviceInfo  the GetDeviceInfo data container as the device sent it (header included),
 *               once the session has run; waits for it; the failing step's status and
 *               message if it failed.
 *   Interface   the InterfaceInfo GetInterface returned (encoded), waiting for it likewise.
 * With program.config "trace" naming a file it appends "<hook> <moniker>" per hook there, and
 * in prepare_stop and stop whether usb-device still serves it ("prepare_stop <moniker>
 * serving:OK"): the manager stops a child's driver before its parent's.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "dfnet/driver.h"
#include "test_file.h"
#include "dfnet/hw/usb.pb.h"

#define PTP_COMMAND 1
#define PTP_DATA 2
#define PTP_RESPONSE 3
#define PTP_OPEN_SESSION 0x1002
#define PTP_GET_DEVICE_INFO 0x1001
#define PTP_OK 0x2001
#define PTP_HEADER 12u
#define DATA_MAX 16384u

typedef struct waiter {
  dfnet_call_t *call;
  bool device_info; /* else Interface */
  struct waiter *next;
} waiter_t;

typedef struct usb_class {
  dfnet_driver_t *driver;
  dfnet_driver_client_t *client;
  char trace[512];
  bool ptp;
  uint8_t ep_in, ep_out;
  /* the session: step names what runs now */
  const char *step;
  bool done;
  dfnet_status_t status;
  char message[512];
  uint8_t info_bytes[8192]; /* GetInterface's answer, encoded */
  size_t info_len;
  uint8_t data[DATA_MAX]; /* the data phase */
  size_t data_len, data_want;
  waiter_t *waiters;
} usb_class_t;

/* "<hook> <moniker>[ <detail>]" into the trace file, if any. */
static void trace(usb_class_t *c, const char *hook, const char *detail) {
  if (c->trace[0] == '\0')
    return;
  char line[512];
  snprintf(line, sizeof line, "%s %s%s%s\n", hook, dfnet_driver_node_moniker(c->driver),
           detail ? " " : "", detail ? detail : "");
  (void)test_file_write(c->driver, c->trace, line, true);
}

static void answer(usb_class_t *c, waiter_t *w) {
  if (c->status != DFNET_STATUS_OK)
    (void)dfnet_call_reply(w->call, c->status, c->message, NULL, 0);
  else if (w->device_info)
    (void)dfnet_call_reply(w->call, DFNET_STATUS_OK, NULL, c->data, c->data_len);
  else
    (void)dfnet_call_reply(w->call, DFNET_STATUS_OK, NULL, c->info_bytes, c->info_len);
}

/* The session ended (status OK: every answer as expected). */
static void finish(usb_class_t *c, dfnet_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void finish(usb_class_t *c, dfnet_status_t status, const char *fmt, ...) {
  if (c->done)
    return;
  c->done = true;
  c->status = status;
  if (fmt != NULL) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->message, sizeof c->message, fmt, ap);
    va_end(ap);
  }
  dfnet_driver_log(c->driver,
                   status == DFNET_STATUS_OK ? DFNET_DRIVER_LOG_INFO : DFNET_DRIVER_LOG_WARN,
                   "session %s%s%s", dfnet_status_str(status), fmt != NULL ? ": " : "", c->message);
  while (c->waiters != NULL) {
    waiter_t *w = c->waiters;
    c->waiters = w->next;
    answer(c, w);
    free(w);
  }
}

/* A unary Interface call; false (the session failed) when it cannot start. */
static bool call(usb_class_t *c, const char *method, const pb_msgdesc_t *fields, const void *msg,
                 dfnet_driver_client_done_fn done) {
  uint8_t *buf = malloc(DATA_MAX + 64);
  pb_ostream_t os = pb_ostream_from_buffer(buf, DATA_MAX + 64);
  dfnet_status_t st = DFNET_STATUS_INTERNAL;
  if (buf != NULL && pb_encode(&os, fields, msg)) {
    const dfnet_driver_client_call_args_t args = {
        .method = method,
        .request = buf,
        .len = os.bytes_written,
        .deadline_ms = 10000,
        .on_done = done,
        .arg = c,
    };
    st = dfnet_driver_client_call(c->client, &args, NULL);
  }
  free(buf);
  if (st != DFNET_STATUS_OK)
    finish(c, st, "%s: cannot call %s", c->step, method);
  return st == DFNET_STATUS_OK;
}

/* ---- PTP ----------------------------------------------------------------------------- */

static void put16(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static void put32(uint8_t *p, uint32_t v) {
  put16(p, v);
  put16(p + 2, v >> 16);
}
static uint32_t get16(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8; }
static uint32_t get32(const uint8_t *p) { return get16(p) | get16(p + 2) << 16; }

static void bulk_out_done(dfnet_driver_t *, void *, dfnet_driver_call_id_t, dfnet_status_t,
                          const char *, const uint8_t *, size_t, void *);
static void bulk_in_done(dfnet_driver_t *, void *, dfnet_driver_call_id_t, dfnet_status_t,
                         const char *, const uint8_t *, size_t, void *);

/* Send a command container: `code`, transaction `tid`, nparams parameters. */
static void command(usb_class_t *c, const char *step, uint32_t code, uint32_t tid,
                    const uint32_t *params, size_t nparams) {
  dfnet_hw_usb_TransferRequest *t = calloc(1, sizeof *t);
  c->step = step;
  size_t len = PTP_HEADER + 4 * nparams;
  put32(t->data.bytes, (uint32_t)len);
  put16(t->data.bytes + 4, PTP_COMMAND);
  put16(t->data.bytes + 6, code);
  put32(t->data.bytes + 8, tid);
  for (size_t i = 0; i < nparams; i++)
    put32(t->data.bytes + PTP_HEADER + 4 * i, params[i]);
  t->data.size = (pb_size_t)len;
  t->endpoint = c->ep_out;
  t->timeout_ms = 2000;
  (void)call(c, "BulkTransfer", dfnet_hw_usb_TransferRequest_fields, t, bulk_out_done);
  free(t);
}

static void read_in(usb_class_t *c, const char *step) {
  dfnet_hw_usb_TransferRequest t = {.endpoint = c->ep_in, .length = 512, .timeout_ms = 2000};
  c->step = step;
  (void)call(c, "BulkTransfer", dfnet_hw_usb_TransferRequest_fields, &t, bulk_in_done);
}

static void bulk_out_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                          dfnet_status_t status, const char *message, const uint8_t *data,
                          size_t len, void *arg) {
  (void)driver, (void)id, (void)data, (void)len, (void)arg;
  usb_class_t *c = ctx;
  if (status != DFNET_STATUS_OK) {
    finish(c, status, "%s (OUT): %s", c->step, message);
    return;
  }
  read_in(c, strcmp(c->step, "OpenSession") == 0 ? "OpenSession response" : "GetDeviceInfo data");
}

/* A response container: code OK for transaction tid? */
static bool response_ok(usb_class_t *c, const uint8_t *d, size_t n, uint32_t tid) {
  if (n < PTP_HEADER || get16(d + 4) != PTP_RESPONSE || get16(d + 6) != PTP_OK ||
      get32(d + 8) != tid) {
    finish(c, DFNET_STATUS_DATA_LOSS, "%s: not an OK response to transaction %u (%zu bytes)",
           c->step, tid, n);
    return false;
  }
  return true;
}

static void bulk_in_done(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                         dfnet_status_t status, const char *message, const uint8_t *data,
                         size_t len, void *arg) {
  (void)driver, (void)id, (void)arg;
  usb_class_t *c = ctx;
  dfnet_hw_usb_TransferReply *r = calloc(1, sizeof *r);
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (status != DFNET_STATUS_OK || !pb_decode(&is, dfnet_hw_usb_TransferReply_fields, r)) {
    finish(c, status != DFNET_STATUS_OK ? status : DFNET_STATUS_INTERNAL, "%s (IN): %s", c->step,
           message != NULL ? message : "malformed reply");
  } else if (strcmp(c->step, "OpenSession response") == 0) {
    if (response_ok(c, r->data.bytes, r->data.size, 0))
      command(c, "GetDeviceInfo", PTP_GET_DEVICE_INFO, 1, NULL, 0);
  } else if (strcmp(c->step, "GetDeviceInfo data") == 0) {
    if (c->data_len == 0 && (r->data.size < PTP_HEADER || get16(r->data.bytes + 4) != PTP_DATA)) {
      finish(c, DFNET_STATUS_DATA_LOSS, "GetDeviceInfo: no data container");
    } else if (c->data_len + r->data.size > sizeof c->data) {
      finish(c, DFNET_STATUS_OUT_OF_RANGE, "GetDeviceInfo: over %zu bytes", sizeof c->data);
    } else {
      memcpy(c->data + c->data_len, r->data.bytes, r->data.size);
      c->data_len += r->data.size;
      c->data_want = get32(c->data);
      read_in(c, c->data_len < c->data_want ? "GetDeviceInfo data" : "GetDeviceInfo response");
    }
  } else if (response_ok(c, r->data.bytes, r->data.size, 1)) {
    finish(c, DFNET_STATUS_OK, NULL);
  }
  free(r);
}

/* ---- the interface ------------------------------------------------------------------------ */

static void claimed(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                    dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                    void *arg) {
  (void)driver, (void)id, (void)data, (void)len, (void)arg;
  usb_class_t *c = ctx;
  if (status != DFNET_STATUS_OK) {
    finish(c, status, "Claim: %s", message);
    return;
  }
  if (!c->ptp) {
    finish(c, DFNET_STATUS_OK, NULL);
    return;
  }
  const uint32_t session = 1;
  command(c, "OpenSession", PTP_OPEN_SESSION, 0, &session, 1);
}

static void got_interface(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t id,
                          dfnet_status_t status, const char *message, const uint8_t *data,
                          size_t len, void *arg) {
  (void)driver, (void)id, (void)arg;
  usb_class_t *c = ctx;
  dfnet_hw_usb_InterfaceInfo *info = calloc(1, sizeof *info);
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (status != DFNET_STATUS_OK || len > sizeof c->info_bytes ||
      !pb_decode(&is, dfnet_hw_usb_InterfaceInfo_fields, info)) {
    finish(c, status != DFNET_STATUS_OK ? status : DFNET_STATUS_INTERNAL, "GetInterface: %s",
           message != NULL ? message : "malformed");
    free(info);
    return;
  }
  memcpy(c->info_bytes, data, len);
  c->info_len = len;
  for (pb_size_t i = 0; i < info->endpoints_count; i++) {
    const dfnet_hw_usb_Endpoint *e = &info->endpoints[i];
    if ((e->attributes & 3) == 2 && (e->address & 0x80) && c->ep_in == 0)
      c->ep_in = (uint8_t)e->address;
    else if ((e->attributes & 3) == 2 && !(e->address & 0x80) && c->ep_out == 0)
      c->ep_out = (uint8_t)e->address;
  }
  dfnet_hw_usb_ClaimRequest req = {.interface_number = info->interface_number,
                                   .detach_kernel_driver = true};
  free(info);
  if (c->ptp && (c->ep_in == 0 || c->ep_out == 0)) {
    finish(c, DFNET_STATUS_FAILED_PRECONDITION, "the interface has no bulk IN and OUT endpoints");
    return;
  }
  c->step = "Claim";
  (void)call(c, "Claim", dfnet_hw_usb_ClaimRequest_fields, &req, claimed);
}

/* ---- dfnet.test.UsbClass ---------------------------------------------------------------- */

static void wait_for(usb_class_t *c, dfnet_call_t *call, bool device_info) {
  waiter_t w = {.call = call, .device_info = device_info};
  if (c->done) {
    answer(c, &w);
    return;
  }
  waiter_t *p = malloc(sizeof *p);
  if (p == NULL) {
    (void)dfnet_call_reply(call, DFNET_STATUS_RESOURCE_EXHAUSTED, NULL, NULL, 0);
    return;
  }
  *p = w;
  p->next = c->waiters;
  c->waiters = p;
}

static void device_info(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  (void)request, (void)len;
  wait_for(ctx, call, true);
}

static void interface(void *ctx, dfnet_call_t *call, const uint8_t *request, size_t len) {
  (void)request, (void)len;
  wait_for(ctx, call, false);
}

/* ---- lifecycle ----------------------------------------------------------------------------- */

static void read_config(usb_class_t *c) {
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(c->driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const char *ptp = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "ptp"));
  const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "trace"));
  c->ptp = ptp != NULL && strcmp(ptp, "true") == 0;
  if (path != NULL)
    snprintf(c->trace, sizeof c->trace, "%s", path);
  cJSON_Delete(program);
}

static dfnet_status_t usb_class_start(dfnet_driver_t *driver, void *ctx) {
  usb_class_t *c = ctx;
  c->driver = driver;
  read_config(c);
  trace(c, "start", NULL);
  dfnet_status_t st = dfnet_driver_connect(driver, "dfnet.hw.usb.Interface", NULL, &c->client);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_log(driver, DFNET_DRIVER_LOG_ERROR, "connect: %s", dfnet_status_str(st));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  static const dfnet_method_t methods[] = {
      {.name = "DeviceInfo", .handler = device_info},
      {.name = "Interface", .handler = interface},
  };
  st = dfnet_driver_serve(driver, "dfnet.test.UsbClass", methods, 2);
  if (st != DFNET_STATUS_OK) {
    dfnet_driver_client_close(c->client);
    return st;
  }
  dfnet_hw_usb_GetInterfaceRequest req = dfnet_hw_usb_GetInterfaceRequest_init_zero;
  c->step = "GetInterface";
  (void)call(c, "GetInterface", dfnet_hw_usb_GetInterfaceRequest_fields, &req, got_interface);
  return DFNET_STATUS_OK;
}

/* In prepare_stop and stop: whether the driver serving the offer still runs, as far as this
 * driver host knows (exact when both run in it: colocated). DFv2 stops a child's driver
 * before its parent's, so it should. */
static void trace_serving(usb_class_t *c, const char *hook) {
  char serving[64];
  snprintf(serving, sizeof serving, "serving:%s",
           dfnet_status_str(dfnet_driver_client_status(c->client)));
  trace(c, hook, serving);
}

static void usb_class_prepare_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  trace_serving(ctx, "prepare_stop");
}

static void usb_class_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  usb_class_t *c = ctx;
  trace_serving(c, "stop");
  dfnet_driver_client_close(c->client);
  while (c->waiters != NULL) {
    waiter_t *w = c->waiters;
    c->waiters = w->next;
    (void)dfnet_call_reply(w->call, DFNET_STATUS_UNAVAILABLE, "stopping", NULL, 0);
    free(w);
  }
}

DFNET_DRIVER("usb-class", usb_class_t, .start = usb_class_start,
             .prepare_stop = usb_class_prepare_stop, .stop = usb_class_stop);
