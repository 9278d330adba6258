/* usb_serial_sim: a test driver that plays a USB serial adapter's interface the way
 * usb-device serves it: dfnet.hw.usb.Interface on its node for the driver of its child
 * "<node>.ifc-000" (anyone else is PERMISSION_DENIED), so the serial driver's USB backend can
 * be tested without the hardware (no recording of a USB serial adapter exists). The chip is
 * program.config "chip": "ftdi" (0403:6001), "cdc-acm" (2e8a:000a: a communication interface 0
 * whose Union descriptor names data interface 1), "cp210x" (10c4:ea60) or "ch340" (1a86:7523);
 * "fail_claim": "true" refuses Claim as a kernel driver holding the interface would.
 *
 *   GetInterface, Claim   the chip's interface (and, once claimed, CDC's data interface)
 *   ControlTransfer       logged: "ctrl <bmRequestType> <bRequest> <wValue> <wIndex> <data>"
 *   BulkTransfer OUT      logged ("out <hex>") and looped back: what the adapter "receives"
 *                         is what was written (FTDI: each packet led by its 2 status bytes)
 *   ReadStream            the looped-back bytes, one item per write
 * and dfnet.test.UsbSim/Log: the log, one line each ("claim N", "ctrl ...", "out ...",
 * "stream 0xEP LEN").
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>
#include <pb_decode.h>
#include <pb_encode.h>

#include "dfnet/driver.h"
#include "dfnet/hw/usb.pb.h"

#define LOG_MAX 16384u

typedef struct chip {
  const char *name;
  uint16_t vid, pid;
  uint8_t cls, subclass;
  uint8_t ep_in, ep_out;
  uint16_t packet;
  bool status_bytes; /* FTDI */
  bool cdc;          /* data on interface 1 */
} chip_t;

static const chip_t chips[] = {
    {"ftdi", 0x0403, 0x6001, 0xff, 0xff, 0x81, 0x02, 64, true, false},
    {"cdc-acm", 0x2e8a, 0x000a, 0x02, 0x02, 0x81, 0x02, 64, false, true},
    {"cp210x", 0x10c4, 0xea60, 0xff, 0x00, 0x81, 0x01, 64, false, false},
    {"ch340", 0x1a86, 0x7523, 0xff, 0x01, 0x82, 0x02, 32, false, false},
};

typedef struct sim {
  dfnet_driver_t *driver;
  const chip_t *chip;
  char child[600];
  bool claimed[2];
  bool fail_claim; /* program.config "fail_claim": "true": Claim is refused */
  char log[LOG_MAX];
  size_t log_len;
  dfnet_call_t *stream; /* the ReadStream */
} sim_t;

static void logf_(sim_t *m, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void logf_(sim_t *m, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(m->log + m->log_len, LOG_MAX - m->log_len - 1, fmt, ap);
  va_end(ap);
  if (n > 0 && m->log_len + (size_t)n < LOG_MAX - 2) {
    m->log_len += (size_t)n;
    m->log[m->log_len++] = '\n';
    m->log[m->log_len] = '\0';
  }
}

static void hex(char *out, const uint8_t *d, size_t n) {
  for (size_t i = 0; i < n; i++)
    sprintf(out + 2 * i, "%02x", d[i]);
  out[2 * n] = '\0';
}

static bool decode(dfnet_call_t *call, const pb_msgdesc_t *fields, void *msg, const uint8_t *req,
                   size_t len) {
  pb_istream_t is = pb_istream_from_buffer(req, len);
  if (pb_decode(&is, fields, msg))
    return true;
  (void)dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, PB_GET_ERROR(&is), NULL, 0);
  return false;
}

static void reply(dfnet_call_t *call, const pb_msgdesc_t *fields, const void *msg) {
  static uint8_t buf[32768];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  if (pb_encode(&os, fields, msg))
    (void)dfnet_call_reply(call, DFNET_STATUS_OK, NULL, buf, os.bytes_written);
  else
    (void)dfnet_call_reply(call, DFNET_STATUS_INTERNAL, PB_GET_ERROR(&os), NULL, 0);
}

/* Only the child's driver may call, as usb-device has it. */
static bool from_child(sim_t *m, dfnet_call_t *call) {
  if (strcmp(dfnet_call_caller(call), m->child) == 0 && dfnet_call_caller_driver_url(call)[0])
    return true;
  (void)dfnet_call_reply(call, DFNET_STATUS_PERMISSION_DENIED, "not the child's driver", NULL, 0);
  return false;
}

static void add_endpoint(dfnet_hw_usb_InterfaceInfo *r, uint32_t address, uint32_t type,
                         uint32_t packet, uint32_t ifc) {
  r->endpoints[r->endpoints_count++] = (dfnet_hw_usb_Endpoint){
      .address = address, .attributes = type, .max_packet_size = packet, .interface_number = ifc};
}

static void info(sim_t *m, dfnet_call_t *call) {
  const chip_t *c = m->chip;
  dfnet_hw_usb_InterfaceInfo *r = calloc(1, sizeof *r);
  r->vendor_id = c->vid;
  r->product_id = c->pid;
  r->configuration_value = 1;
  r->interface_class = c->cls;
  r->interface_subclass = c->subclass;
  r->claimed = m->claimed[0];
  /* the interface descriptor, then (CDC) its functional descriptors: Header, Union 0 -> 1 */
  const uint8_t ifc[] = {9, 4, 0, 0, c->cdc ? 1 : 2, c->cls, c->subclass, 0, 0};
  const uint8_t cdc[] = {5, 0x24, 0x00, 0x10, 0x01, 5, 0x24, 0x06, 0, 1};
  memcpy(r->descriptors.bytes, ifc, sizeof ifc);
  r->descriptors.size = sizeof ifc;
  if (c->cdc) {
    memcpy(r->descriptors.bytes + r->descriptors.size, cdc, sizeof cdc);
    r->descriptors.size += sizeof cdc;
    add_endpoint(r, 0x83, 3, 16, 0);
    if (m->claimed[1]) {
      r->claimed_interfaces[r->claimed_interfaces_count++] = 1;
      add_endpoint(r, c->ep_in, 2, c->packet, 1);
      add_endpoint(r, c->ep_out, 2, c->packet, 1);
    }
  } else {
    add_endpoint(r, c->ep_in, 2, c->packet, 0);
    add_endpoint(r, c->ep_out, 2, c->packet, 0);
  }
  reply(call, dfnet_hw_usb_InterfaceInfo_fields, r);
  free(r);
}

static void get_interface(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)req, (void)len;
  if (from_child(ctx, call))
    info(ctx, call);
}

static void claim(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  sim_t *m = ctx;
  dfnet_hw_usb_ClaimRequest r = dfnet_hw_usb_ClaimRequest_init_zero;
  if (!from_child(m, call) || !decode(call, dfnet_hw_usb_ClaimRequest_fields, &r, req, len))
    return;
  if (r.interface_number > (m->chip->cdc ? 1u : 0u)) {
    (void)dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, "no such interface", NULL, 0);
    return;
  }
  if (m->fail_claim) {
    (void)dfnet_call_reply(call, DFNET_STATUS_FAILED_PRECONDITION,
                           "interface 0 is held by kernel driver ftdi_sio", NULL, 0);
    return;
  }
  m->claimed[r.interface_number] = true;
  logf_(m, "claim %u%s", r.interface_number, r.detach_kernel_driver ? " detach" : "");
  info(m, call);
}

static void control(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  sim_t *m = ctx;
  dfnet_hw_usb_ControlTransferRequest *r = calloc(1, sizeof *r);
  if (from_child(m, call) &&
      decode(call, dfnet_hw_usb_ControlTransferRequest_fields, r, req, len)) {
    char data[2 * 4096 + 1];
    hex(data, r->data.bytes, r->data.size);
    logf_(m, "ctrl %02x %02x %04x %04x %s", r->request_type, r->request, r->value, r->index, data);
    dfnet_hw_usb_TransferReply out = {.transferred = r->data.size};
    reply(call, dfnet_hw_usb_TransferReply_fields, &out);
  }
  free(r);
}

/* Loop bytes back to the ReadStream as one item (FTDI: packets led by 2 status bytes). */
static void loop_back(sim_t *m, const uint8_t *d, size_t n) {
  if (m->stream == NULL)
    return;
  dfnet_hw_usb_TransferReply *item = calloc(1, sizeof *item);
  size_t out = 0, per = m->chip->status_bytes ? m->chip->packet - 2u : n;
  for (size_t at = 0; at < n; at += per) {
    if (m->chip->status_bytes) {
      item->data.bytes[out++] = 0x01; /* modem status: CTS ... */
      item->data.bytes[out++] = 0x60; /* line status: THRE, TEMT */
    }
    size_t len = n - at < per ? n - at : per;
    memcpy(item->data.bytes + out, d + at, len);
    out += len;
  }
  item->data.size = (pb_size_t)out;
  item->transferred = (uint32_t)out;
  static uint8_t buf[20000];
  pb_ostream_t os = pb_ostream_from_buffer(buf, sizeof buf);
  if (pb_encode(&os, dfnet_hw_usb_TransferReply_fields, item))
    (void)dfnet_call_send(m->stream, buf, os.bytes_written);
  free(item);
}

static void bulk(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  sim_t *m = ctx;
  dfnet_hw_usb_TransferRequest *r = calloc(1, sizeof *r);
  if (from_child(m, call) && decode(call, dfnet_hw_usb_TransferRequest_fields, r, req, len)) {
    if (r->endpoint != m->chip->ep_out) {
      (void)dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, "not the OUT endpoint", NULL, 0);
    } else {
      char data[2 * 16384 + 1];
      hex(data, r->data.bytes, r->data.size > 64 ? 64 : r->data.size);
      logf_(m, "out %s%s", data, r->data.size > 64 ? "..." : "");
      dfnet_hw_usb_TransferReply out = {.transferred = r->data.size};
      reply(call, dfnet_hw_usb_TransferReply_fields, &out);
      loop_back(m, r->data.bytes, r->data.size);
    }
  }
  free(r);
}

static void stream_cancelled(void *ctx, dfnet_call_t *call, dfnet_status_t why, void *arg) {
  (void)arg;
  sim_t *m = ctx;
  if (m->stream == call)
    m->stream = NULL;
  (void)dfnet_call_reply(call, why, NULL, NULL, 0);
}

static void read_stream(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  sim_t *m = ctx;
  dfnet_hw_usb_ReadStreamRequest r = dfnet_hw_usb_ReadStreamRequest_init_zero;
  if (!from_child(m, call) || !decode(call, dfnet_hw_usb_ReadStreamRequest_fields, &r, req, len))
    return;
  if (r.endpoint != m->chip->ep_in || m->stream != NULL) {
    (void)dfnet_call_reply(call, DFNET_STATUS_INVALID_ARGUMENT, "not the IN endpoint", NULL, 0);
    return;
  }
  logf_(m, "stream 0x%02x %u", r.endpoint, r.length);
  m->stream = call;
  (void)dfnet_call_on_cancel(call, stream_cancelled, NULL);
}

static void get_log(void *ctx, dfnet_call_t *call, const uint8_t *req, size_t len) {
  (void)req, (void)len;
  sim_t *m = ctx;
  (void)dfnet_call_reply(call, DFNET_STATUS_OK, NULL, (const uint8_t *)m->log, m->log_len);
}

static dfnet_status_t sim_start(dfnet_driver_t *driver, void *ctx) {
  sim_t *m = ctx;
  m->driver = driver;
  snprintf(m->child, sizeof m->child, "%s.ifc-000", dfnet_driver_node_moniker(driver));
  cJSON *program = cJSON_Parse(dfnet_driver_program_json(driver));
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(program, "config");
  const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "chip"));
  const char *fail = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "fail_claim"));
  m->fail_claim = fail != NULL && strcmp(fail, "true") == 0;
  for (size_t i = 0; name != NULL && i < sizeof chips / sizeof chips[0]; i++)
    if (strcmp(chips[i].name, name) == 0)
      m->chip = &chips[i];
  cJSON_Delete(program);
  if (m->chip == NULL)
    return DFNET_STATUS_INVALID_ARGUMENT;
  static const dfnet_method_t usb[] = {
      {.name = "GetInterface", .handler = get_interface},
      {.name = "Claim", .handler = claim},
      {.name = "ControlTransfer", .handler = control},
      {.name = "BulkTransfer", .handler = bulk},
      {.name = "ReadStream", .handler = read_stream, .server_streaming = true},
  };
  static const dfnet_method_t test[] = {{.name = "Log", .handler = get_log}};
  dfnet_status_t st = dfnet_driver_serve(driver, "dfnet.hw.usb.Interface", usb, 5);
  return st == DFNET_STATUS_OK ? dfnet_driver_serve(driver, "dfnet.test.UsbSim", test, 1) : st;
}

static void sim_stop(dfnet_driver_t *driver, void *ctx) {
  (void)driver;
  sim_t *m = ctx;
  if (m->stream != NULL)
    (void)dfnet_call_reply(m->stream, DFNET_STATUS_UNAVAILABLE, "stopped", NULL, 0);
}

DFNET_DRIVER("usb-serial-sim", sim_t, .start = sim_start, .stop = sim_stop);
