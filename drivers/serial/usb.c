/* The serial driver's USB backend (serial.h): a USB serial adapter's interface, a child node
 * of usb-device, driven entirely through the dfnet.hw.usb.Interface its parent offers it
 * (dfnet_driver_connect; proto/dfnet/hw/usb.proto), with the chip's protocol (usb_chip.h).
 * No libusb and no kernel tty: usb-device is the one process that opens the device.
 *
 * Opening, after `start` returned (each step a call whose on_done starts the next, on the
 * dispatcher; a failure fails the port with the step and its reason):
 *   GetInterface                 the interface's endpoints and descriptors
 *   Claim (own, then the chip's  taken from the kernel's driver (cdc_acm, ftdi_sio, ...):
 *     extra interface)           the adapter is dfnet's from now on
 *   ControlTransfer ...          the chip's set-up, then 115200 8N1 without flow control
 *   ReadStream (bulk IN)         what the adapter receives, for as long as it runs
 * then the jobs that waited start. Writes are BulkTransfers on the bulk OUT endpoint (the
 * job's deadline, at most 10 s); Configure is the chip's control requests, and replies with
 * the settings sent (the chips have no way to read them back).
 *
 * Stopping: prepare_stop closes the client (its calls end CANCELLED; their callbacks see
 * `closing` and touch nothing); the manager stops this driver before usb-device's (DFv2
 * removal is bottom-up), and usb-device releases the interfaces when it stops.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pb_decode.h>

#include "dfnet/bind_keys.h"
#include "drivers/common/drvkit.h"
#include "drivers/serial/serial.h"
#include "drivers/serial/usb_chip.h"

#define USB_SERVICE "dfnet.hw.usb.Interface"
#define USB_CALL_MS 5000u  /* deadline of a set-up or configuration request */
#define USB_CREDIT 16u     /* ReadStream items in flight */
#define USB_READ_MAX 4096u /* bytes per ReadStream transfer */

static const serial_usb_chip_t *const chips[] = {&serial__ftdi, &serial__cp210x, &serial__ch340,
                                                 &serial__cdc_acm};

typedef struct usb_port usb_port_t;
typedef void (*usb_next_fn)(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *why);

/* What to do with the end of a call to Interface (usb_call's on_done), unless the port is
 * closing: one of the two. */
typedef struct usb_answer {
  /* the call's status, message and (a unary OK) reply */
  void (*fn)(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *message,
             const uint8_t *data, size_t len);
  /* or (GetInterface, Claim) the InterfaceInfo an OK answer carries (only read); a failed
   * or malformed answer fails the opening port at `step` (what was being done) instead */
  void (*info)(serial_t *s, usb_port_t *u, const dfnet_hw_usb_InterfaceInfo *info);
  const char *step;
} usb_answer_t;

struct usb_port {
  serial_t *s;
  const serial_usb_chip_t *chip;
  dfnet_driver_client_t *client;
  serial_usb_port_t p;
  bool closing; /* prepare_stop: callbacks touch nothing (a failed port's do: the
                   job in progress still ends with its own answer) */
  int extra;    /* the chip's extra interface (-1: none) */
  /* the control requests running: steps[step .. count-1], then `then` */
  serial_usb_ctrl_t steps[2 * SERIAL_USB_STEPS_MAX];
  size_t count, step;
  usb_next_fn then;
  dfnet_hw_serial_Config applying; /* the Configure (or the defaults at opening) */
  dfnet_driver_call_id_t stream;
};

dfnet_status_t serial__usb_unsupported(const char *chip, const char *what, char *why, size_t cap) {
  snprintf(why, cap, "%s: %s not supported", chip, what);
  return DFNET_STATUS_INVALID_ARGUMENT;
}

dfnet_status_t serial__usb_check_frame(const char *chip, const dfnet_hw_serial_Config *c, char *why,
                                       size_t cap) {
  if (c->data_bits < 5 || c->data_bits > 8)
    return serial__usb_unsupported(chip, "data bits other than 5..8", why, cap);
  if (c->stop_bits > 2)
    return serial__usb_unsupported(chip, "stop bits other than 1 or 2", why, cap);
  return DFNET_STATUS_OK;
}

/* ": " when a reason follows (`message` neither NULL nor empty), else "". */
static const char *colon(const char *message) {
  return message != NULL && message[0] != '\0' ? ": " : "";
}

/* `message`, "" for NULL. */
static const char *text(const char *message) { return message != NULL ? message : ""; }

/* Fail the port while opening (the step and the reason). */
static void open_failed(serial_t *s, const char *step, dfnet_status_t status, const char *why) {
  char failure[512];
  snprintf(failure, sizeof failure, "%.100s: %s: %s%s%.200s", s->name, step,
           dfnet_status_str(status), colon(why), text(why));
  serial__port_failed(s, failure); /* the chain of steps stops here */
}

/* The InterfaceInfo an answer to GetInterface or Claim carries (calloc'd: the caller frees
 * it), or NULL once open_failed said why (`step`: what was being done). */
static dfnet_hw_usb_InterfaceInfo *answer_info(serial_t *s, const char *step, dfnet_status_t status,
                                               const char *message, const uint8_t *data,
                                               size_t len) {
  if (status != DFNET_STATUS_OK) {
    open_failed(s, step, status, message);
    return NULL;
  }
  dfnet_hw_usb_InterfaceInfo *info = calloc(1, sizeof *info);
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (info == NULL || !pb_decode(&is, dfnet_hw_usb_InterfaceInfo_fields, info)) {
    open_failed(s, step, DFNET_STATUS_INTERNAL,
                info == NULL ? "out of memory" : "a malformed answer");
    free(info);
    return NULL;
  }
  return info;
}

/* The on_done of every call to Interface: hand its end to the usb_answer_t in `arg`, unless
 * the port is closing (prepare_stop, stop: the calls end CANCELLED and touch nothing). */
static void answered(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t call,
                     dfnet_status_t status, const char *message, const uint8_t *data, size_t len,
                     void *arg) {
  (void)driver;
  (void)call;
  serial_t *s = ctx;
  usb_port_t *u = s->port;
  const usb_answer_t *answer = arg;
  if (u == NULL || u->closing)
    return;
  if (answer->info == NULL) {
    answer->fn(s, u, status, message, data, len);
    return;
  }
  dfnet_hw_usb_InterfaceInfo *info = answer_info(s, answer->step, status, message, data, len);
  if (info != NULL)
    answer->info(s, u, info);
  free(info);
}

/* Encode and start a unary call to Interface, whose end goes to `answer`. False (why set)
 * when the call could not start. */
static bool usb_call(usb_port_t *u, const char *method, const pb_msgdesc_t *fields, const void *msg,
                     const usb_answer_t *answer, char *why, size_t cap) {
  const dfnet_driver_client_call_args_t args = {
      .method = method,
      .deadline_ms = USB_CALL_MS + SERIAL_WRITE_MAX_MS,
      .on_done = answered,
      .arg = (void *)answer,
  };
  dfnet_status_t st = drvkit__call_encoded(u->client, &args, fields, msg, NULL);
  if (st != DFNET_STATUS_OK)
    snprintf(why, cap, "%.128s: cannot call %s: %s", u->s->name, method, dfnet_status_str(st));
  return st == DFNET_STATUS_OK;
}

/* ---- control requests in a row ------------------------------------------------------------ */

static void run_step(serial_t *s, usb_port_t *u);

static void step_done(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *message,
                      const uint8_t *data, size_t len) {
  (void)data;
  (void)len;
  if (status != DFNET_STATUS_OK) {
    char why[300];
    const serial_usb_ctrl_t *c = &u->steps[u->step];
    snprintf(why, sizeof why, "request 0x%02x (bmRequestType 0x%02x): %s", c->request,
             c->request_type, text(message));
    u->then(s, u, status, why);
    return;
  }
  u->step++;
  run_step(s, u);
}

static const usb_answer_t step_answer = {.fn = step_done};

static void run_step(serial_t *s, usb_port_t *u) {
  if (u->step == u->count) {
    u->then(s, u, DFNET_STATUS_OK, NULL);
    return;
  }
  const serial_usb_ctrl_t *c = &u->steps[u->step];
  dfnet_hw_usb_ControlTransferRequest *req = calloc(1, sizeof *req);
  char why[256] = "out of memory";
  bool ok = req != NULL;
  if (ok) {
    req->request_type = c->request_type;
    req->request = c->request;
    req->value = c->value;
    req->index = c->index;
    memcpy(req->data.bytes, c->data, c->len);
    req->data.size = c->len;
    ok = usb_call(u, "ControlTransfer", dfnet_hw_usb_ControlTransferRequest_fields, req,
                  &step_answer, why, sizeof why);
  }
  free(req);
  if (!ok)
    u->then(s, u, DFNET_STATUS_UNAVAILABLE, why);
}

/* Run the chip's requests for `want` (defaults filled in) (after `init` of them, when the
 * port opens), then `then`. False (why set) when the chip refuses the settings. */
static bool apply(serial_t *s, usb_port_t *u, const dfnet_hw_serial_Config *want, bool init,
                  usb_next_fn then, dfnet_status_t *st, char *why, size_t cap) {
  serial__config_defaults(want, &u->applying);
  size_t n = init ? u->chip->init(&u->p, u->steps) : 0, more = 0;
  *st = u->chip->configure(&u->p, &u->applying, u->steps + n, &more, why, cap);
  if (*st != DFNET_STATUS_OK)
    return false;
  u->count = n + more;
  u->step = 0;
  u->then = then;
  run_step(s, u);
  return true;
}

/* ---- reading ------------------------------------------------------------------------------ */

static void stream_item(dfnet_driver_t *driver, void *ctx, dfnet_driver_call_id_t call,
                        const uint8_t *data, size_t len, void *arg) {
  (void)driver;
  (void)arg;
  serial_t *s = ctx;
  usb_port_t *u = s->port;
  if (u == NULL || u->closing)
    return;
  dfnet_hw_usb_TransferReply *item = calloc(1, sizeof *item);
  pb_istream_t is = pb_istream_from_buffer(data, len);
  if (item != NULL && pb_decode(&is, dfnet_hw_usb_TransferReply_fields, item)) {
    size_t n = item->data.size;
    if (u->chip->rx != NULL)
      n = u->chip->rx(&u->p, item->data.bytes, n);
    if (n > 0)
      serial__deliver(s, item->data.bytes, n, NULL);
  } else {
    dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_WARN, "%s: a ReadStream item is malformed",
                     s->name);
  }
  free(item);
  (void)dfnet_driver_client_credit(u->client, call, 1);
}

static void stream_done(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *message,
                        const uint8_t *data, size_t len) {
  (void)data;
  (void)len;
  char why[512];
  snprintf(why, sizeof why, "%.100s: reading endpoint 0x%02x ended: %s%s%.200s", s->name,
           u->p.ep_in, dfnet_status_str(status), colon(message), text(message));
  serial__port_failed(s, why);
}

static const usb_answer_t stream_answer = {.fn = stream_done};

/* The port is set up: read it, and let the jobs in. */
static void opened(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *why) {
  if (status != DFNET_STATUS_OK) {
    open_failed(s, "setting the chip up", status, why);
    return;
  }
  uint32_t length = u->p.in_packet;
  while (length * 2 <= USB_READ_MAX)
    length *= 2;
  dfnet_hw_usb_ReadStreamRequest req = {.endpoint = u->p.ep_in, .length = length};
  const dfnet_driver_client_call_args_t args = {
      .method = "ReadStream",
      .credit = USB_CREDIT,
      .on_item = stream_item,
      .on_done = answered,
      .arg = (void *)&stream_answer,
  };
  dfnet_status_t st = drvkit__call_encoded(u->client, &args, dfnet_hw_usb_ReadStreamRequest_fields,
                                           &req, &u->stream);
  if (st != DFNET_STATUS_OK) {
    open_failed(s, "starting to read", st, NULL);
    return;
  }
  dfnet_driver_log(s->driver, DFNET_DRIVER_LOG_INFO,
                   "%s: %s, bulk IN 0x%02x (%u-byte packets), OUT 0x%02x; 115200 8N1", s->name,
                   u->chip->name, u->p.ep_in, u->p.in_packet, u->p.ep_out);
  serial__port_ready(s);
}

/* ---- opening: the interface, the claims ------------------------------------------------ */

/* The bulk endpoints of interface `ifc` in info into u->p. False when it lacks one. */
static bool find_endpoints(usb_port_t *u, const dfnet_hw_usb_InterfaceInfo *info, uint32_t ifc) {
  u->p.ep_in = u->p.ep_out = 0;
  for (pb_size_t i = 0; i < info->endpoints_count; i++) {
    const dfnet_hw_usb_Endpoint *e = &info->endpoints[i];
    if (e->interface_number != ifc || (e->attributes & 3) != 2)
      continue;
    if ((e->address & 0x80) != 0 && u->p.ep_in == 0) {
      u->p.ep_in = (uint8_t)e->address;
      u->p.in_packet = (uint16_t)(e->max_packet_size & 0x7ff);
    } else if ((e->address & 0x80) == 0 && u->p.ep_out == 0) {
      u->p.ep_out = (uint8_t)e->address;
    }
  }
  return u->p.ep_in != 0 && u->p.ep_out != 0 && u->p.in_packet > 0;
}

static const usb_answer_t claim_answer;

/* Claim interface ifc, taken from its kernel driver (cdc_acm, ftdi_sio, ...); the answer
 * goes to `claimed`. A call that cannot start fails the port at `step`. */
static void claim(serial_t *s, usb_port_t *u, uint32_t ifc, const char *step) {
  char why[sizeof s->name + 64]; /* the port's name, the method, a status */
  dfnet_hw_usb_ClaimRequest req = {.interface_number = ifc, .detach_kernel_driver = true};
  if (!usb_call(u, "Claim", dfnet_hw_usb_ClaimRequest_fields, &req, &claim_answer, why, sizeof why))
    open_failed(s, step, DFNET_STATUS_UNAVAILABLE, why);
}

/* A Claim's answer, the interfaces now the node's: find the endpoints and set the chip up
 * (or claim the chip's extra interface first). */
static void claimed(serial_t *s, usb_port_t *u, const dfnet_hw_usb_InterfaceInfo *info) {
  char why[256];
  if (u->extra >= 0 && u->p.data_ifc < 0) {
    /* the chip's other interface, beside this one */
    u->p.data_ifc = u->extra;
    claim(s, u, (uint32_t)u->extra, "claiming the data interface");
  } else if (!find_endpoints(u, info, u->p.data_ifc >= 0 ? (uint32_t)u->p.data_ifc : u->p.ifc)) {
    snprintf(why, sizeof why, "interface %d has no bulk IN and OUT endpoints",
             u->p.data_ifc >= 0 ? u->p.data_ifc : u->p.ifc);
    open_failed(s, "finding the endpoints", DFNET_STATUS_FAILED_PRECONDITION, why);
  } else {
    dfnet_hw_serial_Config defaults = dfnet_hw_serial_Config_init_zero;
    dfnet_status_t st;
    if (!apply(s, u, &defaults, true, opened, &st, why, sizeof why))
      open_failed(s, "setting the chip up", st, why);
  }
}

static const usb_answer_t claim_answer = {.info = claimed, .step = "claiming the interface"};

/* GetInterface's answer: claim the node's interface. */
static void got_interface(serial_t *s, usb_port_t *u, const dfnet_hw_usb_InterfaceInfo *info) {
  u->p.ifc = (uint8_t)info->interface_number;
  u->p.vendor_id = (uint16_t)info->vendor_id;
  u->p.product_id = (uint16_t)info->product_id;
  u->extra = u->chip->extra_interface != NULL ? u->chip->extra_interface(info) : -1;
  claim(s, u, info->interface_number, "claiming the interface");
}

static const usb_answer_t interface_answer = {.info = got_interface,
                                              .step = "reading the interface"};

/* The chip the node's properties name; NULL when none. */
static const serial_usb_chip_t *which_chip(const dfnet_driver_t *driver) {
  uint32_t cls = 0, sub = 0, vid = 0, pid = 0;
  (void)drvkit__prop_uint(driver, DFNET_BIND_USB_CLASS, NULL, &cls);
  (void)drvkit__prop_uint(driver, DFNET_BIND_USB_SUBCLASS, NULL, &sub);
  (void)drvkit__prop_uint(driver, DFNET_BIND_USB_VID, NULL, &vid);
  (void)drvkit__prop_uint(driver, DFNET_BIND_USB_PID, NULL, &pid);
  for (size_t i = 0; i < sizeof chips / sizeof chips[0]; i++)
    if (chips[i]->match(cls, sub, vid, pid))
      return chips[i];
  return NULL;
}

static dfnet_status_t usb_open(serial_t *s, char *why, size_t cap) {
  const serial_usb_chip_t *chip = which_chip(s->driver);
  snprintf(s->name, sizeof s->name, "USB serial %s", dfnet_driver_node_moniker(s->driver));
  if (chip == NULL) {
    snprintf(why, cap,
             "%s: not a USB serial interface this driver knows (CDC-ACM, FTDI, CP210x, CH340)",
             s->name);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  usb_port_t *u = calloc(1, sizeof *u);
  if (u == NULL) {
    snprintf(why, cap, "out of memory");
    return DFNET_STATUS_RESOURCE_EXHAUSTED;
  }
  *u = (usb_port_t){.s = s, .chip = chip, .extra = -1, .p = {.data_ifc = -1}};
  dfnet_status_t st = dfnet_driver_connect(s->driver, USB_SERVICE, NULL, &u->client);
  if (st != DFNET_STATUS_OK) {
    snprintf(why, cap,
             "%s: cannot connect to the %s offered to the node: %s (is it a child of "
             "usb-device?)",
             s->name, USB_SERVICE, dfnet_status_str(st));
    free(u);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  s->port = u;
  dfnet_hw_usb_GetInterfaceRequest req = dfnet_hw_usb_GetInterfaceRequest_init_zero;
  if (!usb_call(u, "GetInterface", dfnet_hw_usb_GetInterfaceRequest_fields, &req, &interface_answer,
                why, cap)) {
    dfnet_driver_client_close(u->client);
    free(u);
    s->port = NULL;
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK; /* opening: serial__port_ready or serial__port_failed later */
}

/* ---- jobs ------------------------------------------------------------------------------- */

static void configured(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *why) {
  serial__job_done(s, status, why, status == DFNET_STATUS_OK ? &u->applying : NULL);
}

static void written(serial_t *s, usb_port_t *u, dfnet_status_t status, const char *message,
                    const uint8_t *data, size_t len) {
  (void)u;
  serial_job_t *j = s->jobs;
  if (j == NULL || !j->started || j->configure)
    return;
  dfnet_hw_usb_TransferReply *r = calloc(1, sizeof *r);
  pb_istream_t is = pb_istream_from_buffer(data, len);
  char why[300];
  if (status == DFNET_STATUS_OK && r != NULL &&
      pb_decode(&is, dfnet_hw_usb_TransferReply_fields, r)) {
    j->done = r->transferred;
    serial__job_done(s, DFNET_STATUS_OK, NULL, NULL);
  } else {
    snprintf(why, sizeof why, "writing: %s%s%s", dfnet_status_str(status), colon(message),
             text(message));
    serial__job_done(s, status != DFNET_STATUS_OK ? status : DFNET_STATUS_INTERNAL, why, NULL);
  }
  free(r);
}

static const usb_answer_t written_answer = {.fn = written};

static void usb_run(serial_t *s, serial_job_t *j) {
  usb_port_t *u = s->port;
  char why[256];
  dfnet_status_t st = DFNET_STATUS_UNAVAILABLE;
  if (j->configure) {
    if (!apply(s, u, &j->config, false, configured, &st, why, sizeof why))
      serial__job_done(s, st, why, NULL);
    return;
  }
  uint64_t now = drvkit__now_ms();
  dfnet_hw_usb_TransferRequest *req = calloc(1, sizeof *req);
  if (req == NULL) {
    serial__job_done(s, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    return;
  }
  req->endpoint = u->p.ep_out;
  req->timeout_ms = j->give_up_ms > now ? (uint32_t)(j->give_up_ms - now) : 1;
  memcpy(req->data.bytes, j->data, j->len);
  req->data.size = (pb_size_t)j->len;
  if (!usb_call(u, "BulkTransfer", dfnet_hw_usb_TransferRequest_fields, req, &written_answer, why,
                sizeof why))
    serial__job_done(s, DFNET_STATUS_UNAVAILABLE, why, NULL);
  free(req);
}

static void usb_prepare_stop(serial_t *s) {
  usb_port_t *u = s->port;
  if (u == NULL || u->client == NULL)
    return;
  u->closing = true;
  dfnet_driver_client_close(u->client);
  u->client = NULL;
}

const serial_port_ops_t serial__usb_ops = {
    .name = "usb",
    .open = usb_open,
    .run = usb_run,
    .prepare_stop = usb_prepare_stop, /* closes the client: nothing else to close */
};
