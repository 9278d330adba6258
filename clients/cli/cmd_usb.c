/* dfnet CLI: USB devices (proto/dfnet/hw/usb.proto, served by drivers/usb-device) —
 * `usb descriptors` (lsusb -v), `usb control`, `usb bulk-in|bulk-out`,
 * `usb interrupt-in|interrupt-out`. Each is one or more unary calls made as `rng read`
 * makes its own: the request built with cli__pb_*, dfnet_client_call, the reply's fields
 * picked out with cli__pb_find_*; errors print `dfnet: <STATUS>: message` and exit 1, bad
 * usage exits 2 before anything is sent. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "lib/cmdline.h"

#define M_DEVICE "/dfnet.hw.usb.Device/GetDeviceDescriptor"
#define M_CONFIG "/dfnet.hw.usb.Device/GetConfigDescriptor"
#define M_STRING "/dfnet.hw.usb.Device/GetStringDescriptor"
#define M_CONTROL "/dfnet.hw.usb.Device/ControlTransfer"
#define M_BULK "/dfnet.hw.usb.Device/BulkTransfer"
#define M_INTERRUPT "/dfnet.hw.usb.Device/InterruptTransfer"

#define USB_CONTROL_MAX 4096u   /* ControlTransferRequest.data, IN length */
#define USB_TRANSFER_MAX 16384u /* TransferRequest.data, IN length */
#define USB_TIMEOUT_MAX 60000u  /* a transfer's timeout_ms */
#define USB_TIMEOUT_DEFAULT 1000u
#define CALL_SLACK_MS 10000u /* a transfer call's deadline: its timeout + this */
#define DESCRIPTOR_DEADLINE 10000u

/* ---- usb descriptors ------------------------------------------------------------------- */

/* The device descriptor and every configuration (at most CLI_USB_CONFIGS_MAX). Returns
 * the exit code (a failure printed). */
static int read_descriptors(dfnet_client_t *c, const char *target, cli_pb_t *pb,
                            cli_usb_device_t *d) {
  uint8_t *reply = NULL;
  size_t n = 0;
  dfnet_client_error_t err;
  cli__pb_reset(pb);
  if (cli__pb_call(c, target, M_DEVICE, pb, DESCRIPTOR_DEADLINE, &reply, &n, &err) !=
      DFNET_STATUS_OK)
    return cli__fail_err(&err);
  const uint8_t *raw = NULL;
  size_t raw_len = 0;
  uint64_t bus = 0, address = 0;
  const uint8_t *port = NULL;
  size_t port_len = 0;
  int rc = CLI_EXIT_OK;
  if (cli__pb_find_bytes(reply, n, 1, &raw, &raw_len) != 1 || raw_len != 18 ||
      cli__pb_find_varint(reply, n, 14, &bus) < 0 ||
      cli__pb_find_varint(reply, n, 15, &address) < 0 ||
      cli__pb_find_bytes(reply, n, 16, &port, &port_len) < 0) {
    rc = cli__fail(DFNET_STATUS_DATA_LOSS, "%s: malformed DeviceDescriptor (%zu bytes)", target, n);
    goto done;
  }
  memcpy(d->raw, raw, 18);
  d->bus = (uint32_t)bus;
  d->address = (uint32_t)address;
  snprintf(d->port_path, sizeof d->port_path, "%.*s", (int)(port_len < 31 ? port_len : 31),
           port ? (const char *)port : "");
  size_t configs = d->raw[17] < CLI_USB_CONFIGS_MAX ? d->raw[17] : CLI_USB_CONFIGS_MAX;
  for (size_t i = 0; i < configs; i++) {
    free(reply);
    reply = NULL;
    cli__pb_reset(pb);
    cli__pb_varint(pb, 1, i); /* GetConfigDescriptorRequest.index */
    if (cli__pb_call(c, target, M_CONFIG, pb, DESCRIPTOR_DEADLINE, &reply, &n, &err) !=
        DFNET_STATUS_OK) {
      rc = cli__fail_err(&err);
      goto done;
    }
    uint64_t active = 0;
    if (cli__pb_find_bytes(reply, n, 1, &raw, &raw_len) != 1 ||
        cli__pb_find_varint(reply, n, 4, &active) < 0) {
      rc = cli__fail(DFNET_STATUS_DATA_LOSS, "%s: malformed ConfigDescriptor %zu", target, i);
      goto done;
    }
    cli_usb_config_t *cfg = &d->configs[d->config_count];
    if ((cfg->raw = malloc(raw_len ? raw_len : 1)) == NULL) {
      rc = cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
      goto done;
    }
    memcpy(cfg->raw, raw, raw_len);
    cfg->len = raw_len;
    cfg->active = active != 0;
    d->config_count++;
  }
  char why[200];
  if (cli__usb_check(d, why, sizeof why) != 0)
    rc = cli__fail(DFNET_STATUS_DATA_LOSS, "%s: %s", target, why);
done:
  free(reply);
  return rc;
}

/* The string descriptors the descriptors name, in the device's first language. Reading
 * them is bus traffic the device may not answer (a busy or odd device, no permission to
 * open it): the first failure ends the reading with a warning, and the strings are left
 * out, as lsusb leaves them out when it cannot open the device. */
static void read_strings(dfnet_client_t *c, const char *target, cli_pb_t *pb, cli_usb_device_t *d) {
  uint8_t idx[255];
  size_t count = cli__usb_string_indices(d, idx);
  for (size_t i = 0; i < count; i++) {
    cli__pb_reset(pb);
    cli__pb_varint(pb, 1, idx[i]); /* GetStringDescriptorRequest.index */
    uint8_t *reply = NULL;
    size_t n = 0;
    dfnet_client_error_t err;
    if (cli__pb_call(c, target, M_STRING, pb, DESCRIPTOR_DEADLINE, &reply, &n, &err) !=
        DFNET_STATUS_OK) {
      fprintf(stderr, "dfnet: warning: string descriptors not read: %s: %s\n",
              dfnet_status_str(err.code), err.message);
      return;
    }
    const uint8_t *text = NULL;
    size_t len = 0;
    if (cli__pb_find_bytes(reply, n, 1, &text, &len) >= 0) { /* StringDescriptor.text */
      d->strings[idx[i]] = malloc(len + 1);
      if (d->strings[idx[i]] != NULL) {
        if (len > 0)
          memcpy(d->strings[idx[i]], text, len);
        d->strings[idx[i]][len] = '\0';
      }
    }
    free(reply);
  }
}

typedef struct usb_descriptors {
  bool json, no_strings;
  cli_usb_device_t *device;
  cli_pb_t *pb;
} usb_descriptors_t;

static int usb_descriptors_request(cli_run_t *run) {
  usb_descriptors_t *s = run->ctx;
  s->device = calloc(1, sizeof *s->device);
  s->pb = calloc(1, sizeof *s->pb);
  if (s->device == NULL || s->pb == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  int rc = read_descriptors(run->client, run->args[0], s->pb, s->device);
  if (rc == CLI_EXIT_OK && !s->no_strings)
    read_strings(run->client, run->args[0], s->pb, s->device);
  return rc;
}

static cJSON *usb_descriptors_json(cli_run_t *run) {
  const usb_descriptors_t *s = run->ctx;
  return cli__usb_json(s->device, run->args[0]);
}

static int usb_descriptors_print(cli_run_t *run) {
  const usb_descriptors_t *s = run->ctx;
  cli__usb_print(stdout, s->device);
  return CLI_EXIT_OK;
}

static void usb_descriptors_release(cli_run_t *run) {
  usb_descriptors_t *s = run->ctx;
  if (s->device != NULL)
    cli__usb_device_free(s->device);
  free(s->device);
  free(s->pb);
}

int cmd_usb_descriptors(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, usb_descriptors_request, usb_descriptors_json,
                                        usb_descriptors_print, usb_descriptors_release};
  usb_descriptors_t s = {0};
  const cli_option_t opts[] = {CLI_OPT_JSON(&s.json),
                               {"no-strings", 0, CLI_OPT_FLAG, &s.no_strings, 0, 0, NULL,
                                "do not read string descriptors (no bus traffic)"},
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "usb descriptors TARGET [--json] [--no-strings]",
      .about =
          "Print a USB device's descriptors as `lsusb -v` does (role operator): the device, "
          "each configuration, its interfaces (one per alternate setting) and their "
          "endpoints, with the string descriptors they name (read from the device: "
          "--no-strings skips them).",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help =
          "  TARGET   the device's node moniker (dev.<host>.usb.<BBB>_<DDD>) or "
          "class/usb-device/<NNN>\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- transfers --------------------------------------------------------------------------- */

/* Bulk and interrupt transfers: one verb per type and direction. */
typedef struct endpoint_verb {
  const char *name; /* "bulk-in" */
  const char *kind; /* "bulk" */
  const char *method;
  bool in;
} endpoint_verb_t;

/* One transfer: a control transfer, or a bulk or interrupt one (verb set). */
typedef struct usb_transfer {
  cli_unary_t call;            /* first: cli__unary_request */
  const endpoint_verb_t *verb; /* NULL: a control transfer */
  const char *usage;           /* the command's, for the messages */
  bool in;                     /* device to host */
  cli_payload_t payload;       /* OUT: --data-hex / --data-file */
  cli_bytes_out_t out;         /* IN: how the bytes read are shown; --json */
  uint64_t length, timeout;
  bool detach;
  uint64_t request_type, request, value, index; /* control */
  const char *length_s;                         /* control: --length as given */
  uint8_t ep;                                   /* bulk, interrupt: the endpoint */
} usb_transfer_t;

/* The call's deadline for a transfer with timeout_ms (0: the driver's default). */
static uint32_t transfer_deadline(uint64_t timeout_ms) {
  return (uint32_t)(timeout_ms ? timeout_ms : USB_TIMEOUT_DEFAULT) + CALL_SLACK_MS;
}

/* --length of a control transfer: "not given" differs from 0. */
static int control_length(usb_transfer_t *s) {
  if (s->length_s == NULL)
    return CLI_EXIT_OK;
  if (!dfnet_cmdline_uint(s->length_s, 0, 0, USB_CONTROL_MAX, &s->length))
    return cli__usage("--length wants a number in 0..%u, not '%s'", USB_CONTROL_MAX, s->length_s);
  return CLI_EXIT_OK;
}

/* What a control transfer's options say, checked against its direction. */
static int control_check(usb_transfer_t *s, const char *const *args) {
  (void)args;
  if (s->request_type > 255 || s->request > 255)
    return cli__usage("--request-type and --request are required (dfnet %s)", s->usage);
  s->in = (s->request_type & 0x80) != 0;
  int rc = control_length(s);
  if (rc != CLI_EXIT_OK)
    return rc;
  bool has_length = s->length_s != NULL;
  unsigned long long type = (unsigned long long)s->request_type;
  if (s->in && (s->payload.hex != NULL || s->payload.file != NULL))
    return cli__usage("request type 0x%02llx is IN (bit 7 set): it takes --length, not data", type);
  if (s->in && !has_length)
    return cli__usage("request type 0x%02llx is IN (bit 7 set): --length N says how much to read",
                      type);
  if (!s->in && has_length)
    return cli__usage(
        "request type 0x%02llx is OUT (bit 7 clear): it takes --data-hex or "
        "--data-file, not --length",
        type);
  if (!s->in && s->out.out_file != NULL)
    return cli__usage("--out is for IN transfers");
  if (s->out.json && s->out.out_file != NULL)
    return cli__usage("--out and --json exclude each other");
  return CLI_EXIT_OK;
}

/* ControlTransferRequest */
static void control_request(const usb_transfer_t *s, cli_pb_t *pb) {
  cli__pb_varint(pb, 1, s->request_type);
  cli__pb_varint(pb, 2, s->request);
  cli__pb_varint(pb, 3, s->value);
  cli__pb_varint(pb, 4, s->index);
  cli__pb_bytes(pb, 5, s->payload.data, s->payload.len);
  cli__pb_varint(pb, 6, s->length);
  cli__pb_varint(pb, 7, s->timeout);
  cli__pb_varint(pb, 8, s->detach);
}

/* EP as an endpoint address of the verb's direction; exit code (usage printed). */
static int parse_endpoint(const endpoint_verb_t *v, const char *text, uint8_t *ep) {
  uint64_t e = 0;
  if (!dfnet_cmdline_uint(text, 0, 0, 0xff, &e) || (e & 0x0f) == 0 || (e & 0x70) != 0 ||
      ((e & 0x80) != 0) != v->in)
    return cli__usage(
        "EP '%s': %s wants the address of an %s endpoint, %s (lsusb's "
        "bEndpointAddress)",
        text, v->name, v->in ? "IN" : "OUT", v->in ? "0x81..0x8f" : "0x01..0x0f");
  *ep = (uint8_t)e;
  return CLI_EXIT_OK;
}

static int endpoint_check(usb_transfer_t *s, const char *const *args) {
  const endpoint_verb_t *v = s->verb;
  int rc = parse_endpoint(v, args[1], &s->ep);
  if (rc != CLI_EXIT_OK)
    return rc;
  if (v->in && s->length == 0)
    return cli__usage("--length N says how many bytes to read (dfnet %s)", s->usage);
  if (v->in && (s->out.hex ? 1 : 0) + (s->out.out_file ? 1 : 0) + (s->out.json ? 1 : 0) > 1)
    return cli__usage("--hex, --out and --json exclude each other");
  if (!v->in && s->payload.hex == NULL && s->payload.file == NULL)
    return cli__usage("%s sends --data-hex H or --data-file F (dfnet %s)", v->name, s->usage);
  return CLI_EXIT_OK;
}

/* TransferRequest */
static void endpoint_request(const usb_transfer_t *s, cli_pb_t *pb) {
  cli__pb_varint(pb, 1, s->ep);
  cli__pb_bytes(pb, 2, s->payload.data, s->payload.len);
  cli__pb_varint(pb, 3, s->length);
  cli__pb_varint(pb, 4, s->timeout);
  cli__pb_varint(pb, 5, s->detach);
}

/* A transfer's prepare hook: the kind's checks, the OUT data (at most max bytes), the
 * request built by the kind's function. */
static int transfer_prepare(cli_run_t *run, int (*check)(usb_transfer_t *, const char *const *),
                            size_t max, void (*build)(const usb_transfer_t *, cli_pb_t *)) {
  usb_transfer_t *s = run->ctx;
  int rc = check(s, run->args);
  if (rc == CLI_EXIT_OK)
    rc = cli__payload_load(&s->payload, max, "more bytes than one transfer takes");
  if (rc == CLI_EXIT_OK)
    rc = cli__unary_new(&s->call);
  if (rc != CLI_EXIT_OK)
    return rc;
  build(s, s->call.pb);
  s->call.deadline_ms = transfer_deadline(s->timeout);
  return CLI_EXIT_OK;
}

static int control_prepare(cli_run_t *run) {
  return transfer_prepare(run, control_check, USB_CONTROL_MAX, control_request);
}

static int endpoint_prepare(cli_run_t *run) {
  return transfer_prepare(run, endpoint_check, USB_TRANSFER_MAX, endpoint_request);
}

/* The --json document of a transfer, before what it moved is added. */
static cJSON *transfer_doc(const usb_transfer_t *s, const char *target) {
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "target", target);
  if (s->verb != NULL) {
    cJSON_AddNumberToObject(doc, "endpoint", s->ep);
    return doc;
  }
  cJSON_AddNumberToObject(doc, "request_type", (double)s->request_type);
  cJSON_AddNumberToObject(doc, "request", (double)s->request);
  cJSON_AddNumberToObject(doc, "value", (double)s->value);
  cJSON_AddNumberToObject(doc, "index", (double)s->index);
  cJSON_AddStringToObject(doc, "direction", s->in ? "in" : "out");
  return doc;
}

/* The TransferReply: what an IN transfer read, or how much an OUT transfer wrote. */
static int transfer_print(cli_run_t *run) {
  const usb_transfer_t *s = run->ctx;
  const uint8_t *reply = s->call.reply, *got = NULL;
  size_t n = s->call.reply_len, got_len = 0;
  uint64_t transferred = 0;
  if (cli__pb_find_bytes(reply, n, 1, &got, &got_len) < 0 ||
      cli__pb_find_varint(reply, n, 2, &transferred) < 0)
    return cli__fail(DFNET_STATUS_DATA_LOSS, "%s: malformed TransferReply (%zu bytes)",
                     run->args[0], n);
  cJSON *doc = NULL;
  if (s->out.json) {
    doc = transfer_doc(s, run->args[0]);
    cJSON_AddNumberToObject(doc, "transferred", (double)transferred);
  }
  if (s->in)
    return cli__bytes_print(&s->out, got, got_len, doc);
  if (s->out.json)
    return cli__json_print(doc);
  printf("Wrote %llu byte(s).\n", (unsigned long long)transferred);
  return CLI_EXIT_OK;
}

static void transfer_release(cli_run_t *run) {
  usb_transfer_t *s = run->ctx;
  cli__unary_release(run);
  free(s->payload.data);
}

static const cli_command_ops_t control_ops = {control_prepare, cli__unary_request, NULL,
                                              transfer_print, transfer_release};
static const cli_command_ops_t endpoint_ops = {endpoint_prepare, cli__unary_request, NULL,
                                               transfer_print, transfer_release};

#define USB_TARGET_HELP CLI_TARGET_HELP("the device's", "usb-device")
#define USB_OPT_TIMEOUT(dest)                                       \
  {                                                                 \
    "timeout", 't', CLI_OPT_UINT, (dest), 1, USB_TIMEOUT_MAX, "MS", \
        "the transfer's timeout (default 1000)"                     \
  }

int cmd_usb_control(int argc, char **argv) {
  usb_transfer_t s = {.call.method = M_CONTROL, .request_type = 256, .request = 256};
  /* --length is parsed as a string so that "not given" differs from 0 */
  const cli_option_t opts[] = {
      {"request-type", 0, CLI_OPT_UINT, &s.request_type, 0, 255, "N",
       "bmRequestType; bit 7 set: IN (device to host)"},
      {"request", 0, CLI_OPT_UINT, &s.request, 0, 255, "N", "bRequest"},
      {"value", 0, CLI_OPT_UINT, &s.value, 0, 65535, "N", "wValue (default 0)"},
      {"index", 0, CLI_OPT_UINT, &s.index, 0, 65535, "N", "wIndex (default 0)"},
      {"length", 0, CLI_OPT_STRING, &s.length_s, 0, 0, "N", "IN: bytes to read, wLength (0..4096)"},
      CLI_OPT_DATA(&s.payload, "OUT: the data stage"),
      USB_OPT_TIMEOUT(&s.timeout),
      {"detach-kernel-driver", 0, CLI_OPT_FLAG, &s.detach, 0, 0, NULL,
       "an interface request: take the interface (wIndex) from its kernel driver meanwhile"},
      {"out", 'o', CLI_OPT_STRING, &s.out.out_file, 0, 0, "FILE",
       "IN: write the bytes read to FILE"},
      CLI_OPT_JSON(&s.out.json),
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage =
          "usb control TARGET --request-type N --request N [--value N] [--index N] "
          "(--length N | --data-hex H | --data-file F) [--timeout MS] [--out FILE | --json]",
      .about =
          "A control transfer on endpoint 0 (role operator). IN (bit 7 of --request-type "
          "set) reads --length bytes and prints them in hex; OUT sends the data stage (none "
          "when neither --data-hex nor --data-file is given) and prints the count written.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = USB_TARGET_HELP};
  s.usage = syn.usage;
  return cli__run(argc, argv, &syn, &control_ops, &s);
}

static int endpoint_transfer(int argc, char **argv, const endpoint_verb_t *v) {
  usb_transfer_t s = {.call.method = v->method, .verb = v, .in = v->in, .out.raw_when_piped = true};
  const cli_option_t in_opts[] = {
      {"length", 0, CLI_OPT_UINT, &s.length, 1, USB_TRANSFER_MAX, "N", "bytes to read"},
      USB_OPT_TIMEOUT(&s.timeout),
      {"detach-kernel-driver", 0, CLI_OPT_FLAG, &s.detach, 0, 0, NULL,
       "take the endpoint's interface from its kernel driver for the transfer"},
      {"hex", 0, CLI_OPT_FLAG, &s.out.hex, 0, 0, NULL, "print the bytes as hex"},
      {"out", 'o', CLI_OPT_STRING, &s.out.out_file, 0, 0, "FILE", "write the raw bytes to FILE"},
      CLI_OPT_JSON(&s.out.json),
      CLI_OPT_END};
  const cli_option_t out_opts[] = {
      CLI_OPT_DATA(&s.payload, "the bytes to send"),
      USB_OPT_TIMEOUT(&s.timeout),
      {"detach-kernel-driver", 0, CLI_OPT_FLAG, &s.detach, 0, 0, NULL,
       "take the endpoint's interface from its kernel driver for the transfer"},
      CLI_OPT_JSON(&s.out.json),
      CLI_OPT_END};
  char usage[200], about[400];
  snprintf(usage, sizeof usage,
           v->in ? "usb %s TARGET EP --length N [--timeout MS] [--hex | --out FILE | --json]"
                 : "usb %s TARGET EP (--data-hex H | --data-file F) [--timeout MS] [--json]",
           v->name);
  snprintf(about, sizeof about,
           v->in ? "Read up to N bytes from IN endpoint EP with one %s transfer (role operator). "
                   "Output: --hex prints hex, --out writes raw bytes to FILE; otherwise raw "
                   "bytes when stdout is not a terminal, hex when it is."
                 : "Send bytes to OUT endpoint EP with one %s transfer (role operator) and "
                   "print how many were written.",
           v->kind);
  const cli_syntax_t syn = {.usage = usage,
                            .about = about,
                            .options = v->in ? in_opts : out_opts,
                            .min_args = 2,
                            .max_args = 2,
                            .args_help = USB_TARGET_HELP
                            "  EP       the endpoint's address (bEndpointAddress): 0x81 "
                            "is EP 1 IN, 0x02 EP 2 OUT\n"};
  s.usage = usage;
  return cli__run(argc, argv, &syn, &endpoint_ops, &s);
}

static const endpoint_verb_t bulk_in = {"bulk-in", "bulk", M_BULK, true};
static const endpoint_verb_t bulk_out = {"bulk-out", "bulk", M_BULK, false};
static const endpoint_verb_t interrupt_in = {"interrupt-in", "interrupt", M_INTERRUPT, true};
static const endpoint_verb_t interrupt_out = {"interrupt-out", "interrupt", M_INTERRUPT, false};

int cmd_usb_bulk_in(int argc, char **argv) { return endpoint_transfer(argc, argv, &bulk_in); }
int cmd_usb_bulk_out(int argc, char **argv) { return endpoint_transfer(argc, argv, &bulk_out); }
int cmd_usb_interrupt_in(int argc, char **argv) {
  return endpoint_transfer(argc, argv, &interrupt_in);
}
int cmd_usb_interrupt_out(int argc, char **argv) {
  return endpoint_transfer(argc, argv, &interrupt_out);
}
