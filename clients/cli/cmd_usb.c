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

/* One unary call; the reply is malloc'd (the caller frees it). */
static dfnet_status_t usb_call(dfnet_client_t *c, const char *target, const char *method,
                               const cli_pb_t *pb, uint32_t deadline_ms, uint8_t **reply,
                               size_t *reply_len, dfnet_client_error_t *err) {
  dfnet_client_call_options_t co = {.deadline_ms = deadline_ms};
  *reply = NULL;
  *reply_len = 0;
  return dfnet_client_call(c, target, method, pb->buf, pb->len, &co, reply, reply_len, err);
}

static cli_pb_t *pb_new(void) { return calloc(1, sizeof(cli_pb_t)); }

static void pb_reset(cli_pb_t *pb) {
  pb->len = 0;
  pb->overflow = false;
}

/* ---- usb descriptors ------------------------------------------------------------------- */

/* The device descriptor and every configuration (at most CLI_USB_CONFIGS_MAX). Returns
 * the exit code (a failure printed). */
static int read_descriptors(dfnet_client_t *c, const char *target, cli_pb_t *pb,
                            cli_usb_device_t *d) {
  uint8_t *reply = NULL;
  size_t n = 0;
  dfnet_client_error_t err;
  pb_reset(pb);
  if (usb_call(c, target, M_DEVICE, pb, DESCRIPTOR_DEADLINE, &reply, &n, &err) != DFNET_STATUS_OK)
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
    pb_reset(pb);
    cli__pb_varint(pb, 1, i); /* GetConfigDescriptorRequest.index */
    if (usb_call(c, target, M_CONFIG, pb, DESCRIPTOR_DEADLINE, &reply, &n, &err) !=
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
    pb_reset(pb);
    cli__pb_varint(pb, 1, idx[i]); /* GetStringDescriptorRequest.index */
    uint8_t *reply = NULL;
    size_t n = 0;
    dfnet_client_error_t err;
    if (usb_call(c, target, M_STRING, pb, DESCRIPTOR_DEADLINE, &reply, &n, &err) !=
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

int cmd_usb_descriptors(int argc, char **argv) {
  bool json = false, no_strings = false;
  const cli_option_t opts[] = {
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {"no-strings", 0, CLI_OPT_FLAG, &no_strings, 0, 0, NULL,
       "do not read string descriptors (no bus traffic)"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "usb descriptors TARGET [--json] [--no-strings]",
      "Print a USB device's descriptors as `lsusb -v` does (role operator): the device, each "
      "configuration, its interfaces (one per alternate setting) and their endpoints, with "
      "the string descriptors they name (read from the device: --no-strings skips them).",
      opts,
      1,
      1,
      "  TARGET   the device's node moniker (dev.<host>.usb.<BBB>_<DDD>) or "
      "class/usb-device/<NNN>\n"};
  const char *args[1];
  size_t nargs;
  dfnet_client_t *c = NULL;
  int rc = cli__begin(argc, argv, &syn, args, &nargs, &c);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  cli_usb_device_t *d = calloc(1, sizeof *d);
  cli_pb_t *pb = pb_new();
  if (d == NULL || pb == NULL) {
    rc = cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  if ((rc = read_descriptors(c, args[0], pb, d)) != CLI_EXIT_OK)
    goto done;
  if (!no_strings)
    read_strings(c, args[0], pb, d);
  if (json)
    rc = cli__json_print(cli__usb_json(d, args[0]));
  else
    cli__usb_print(stdout, d);
done:
  if (d != NULL)
    cli__usb_device_free(d);
  free(d);
  free(pb);
  dfnet_client_close(c);
  return rc;
}

/* ---- transfers --------------------------------------------------------------------------- */

/* How the bytes read are shown. */
typedef struct in_output {
  bool hex, json;
  const char *out_file;
  bool raw_when_piped; /* neither --hex nor --out: raw bytes when stdout is not a terminal */
} in_output_t;

/* Print what an IN transfer read. `doc` (--json) gets "hex" and is printed. */
static int show_in(const in_output_t *o, const uint8_t *data, size_t len, cJSON *doc) {
  int rc = CLI_EXIT_OK;
  if (o->out_file != NULL) {
    int fd = open(o->out_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || cli__write_all(fd, data, len) != 0)
      rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "%s: %s", o->out_file, strerror(errno));
    if (fd >= 0 && close(fd) != 0 && rc == CLI_EXIT_OK)
      rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "%s: %s", o->out_file, strerror(errno));
    cJSON_Delete(doc);
    return rc;
  }
  if (!o->json && !o->hex && o->raw_when_piped && !isatty(STDOUT_FILENO)) {
    cJSON_Delete(doc);
    if (cli__write_all(STDOUT_FILENO, data, len) != 0)
      return cli__fail(DFNET_STATUS_UNAVAILABLE, "stdout: %s", strerror(errno));
    return CLI_EXIT_OK;
  }
  char *h = cli__hex(data ? data : (const uint8_t *)"", len);
  if (h == NULL) {
    cJSON_Delete(doc);
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  if (o->json) {
    cJSON_AddStringToObject(doc, "hex", h);
    rc = cli__json_print(doc);
  } else {
    cJSON_Delete(doc);
    printf("%s\n", h);
  }
  free(h);
  return rc;
}

/* Print what an OUT transfer wrote. */
static int show_out(bool json, uint64_t transferred, cJSON *doc) {
  if (json)
    return cli__json_print(doc);
  cJSON_Delete(doc);
  printf("Wrote %llu byte(s).\n", (unsigned long long)transferred);
  return CLI_EXIT_OK;
}

/* OUT data from --data-hex or --data-file (at most max bytes); exit code (usage printed). */
static int out_data(const char *hex, const char *file, size_t max, uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  if (hex != NULL && file != NULL)
    return cli__usage("--data-hex and --data-file exclude each other");
  if (hex != NULL && cli__unhex(hex, data, len) != 0)
    return cli__usage("--data-hex: '%s' is not an even number of hex digits", hex);
  if (file != NULL && cli__read_file(file, max, data, len) != 0)
    return cli__usage("--data-file %s: %s", file,
                      errno == EFBIG ? "more bytes than one transfer takes" : strerror(errno));
  if (*len > max) {
    free(*data);
    *data = NULL;
    return cli__usage("%zu bytes of data: one transfer takes at most %zu", *len, max);
  }
  return CLI_EXIT_OK;
}

/* The TransferReply's data and count; exit code (a failure printed). */
static int transfer_reply(const char *target, const uint8_t *reply, size_t n, const uint8_t **data,
                          size_t *len, uint64_t *transferred) {
  *data = NULL;
  *len = 0;
  if (cli__pb_find_bytes(reply, n, 1, data, len) < 0 ||
      cli__pb_find_varint(reply, n, 2, transferred) < 0)
    return cli__fail(DFNET_STATUS_DATA_LOSS, "%s: malformed TransferReply (%zu bytes)", target, n);
  return CLI_EXIT_OK;
}

/* The call's deadline for a transfer with timeout_ms (0: the driver's default). */
static uint32_t transfer_deadline(uint64_t timeout_ms) {
  return (uint32_t)(timeout_ms ? timeout_ms : USB_TIMEOUT_DEFAULT) + CALL_SLACK_MS;
}

int cmd_usb_control(int argc, char **argv) {
  uint64_t request_type = 256, request = 256, value = 0, index = 0, length = 0, timeout = 0;
  const char *hex = NULL, *file = NULL, *out_file = NULL;
  bool has_length = false, detach = false, json = false;
  /* --length is parsed as a string so that "not given" differs from 0 */
  const char *length_s = NULL;
  const cli_option_t opts[] = {
      {"request-type", 0, CLI_OPT_UINT, &request_type, 0, 255, "N",
       "bmRequestType; bit 7 set: IN (device to host)"},
      {"request", 0, CLI_OPT_UINT, &request, 0, 255, "N", "bRequest"},
      {"value", 0, CLI_OPT_UINT, &value, 0, 65535, "N", "wValue (default 0)"},
      {"index", 0, CLI_OPT_UINT, &index, 0, 65535, "N", "wIndex (default 0)"},
      {"length", 0, CLI_OPT_STRING, &length_s, 0, 0, "N", "IN: bytes to read, wLength (0..4096)"},
      {"data-hex", 0, CLI_OPT_STRING, &hex, 0, 0, "HEX", "OUT: the data stage, hex"},
      {"data-file", 0, CLI_OPT_STRING, &file, 0, 0, "FILE", "OUT: the data stage, from a file"},
      {"timeout", 't', CLI_OPT_UINT, &timeout, 1, USB_TIMEOUT_MAX, "MS",
       "the transfer's timeout (default 1000)"},
      {"detach-kernel-driver", 0, CLI_OPT_FLAG, &detach, 0, 0, NULL,
       "an interface request: take the interface (wIndex) from its kernel driver meanwhile"},
      {"out", 'o', CLI_OPT_STRING, &out_file, 0, 0, "FILE", "IN: write the bytes read to FILE"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_syntax_t syn = {
      "usb control TARGET --request-type N --request N [--value N] [--index N] "
      "(--length N | --data-hex H | --data-file F) [--timeout MS] [--out FILE | --json]",
      "A control transfer on endpoint 0 (role operator). IN (bit 7 of --request-type set) "
      "reads --length bytes and prints them in hex; OUT sends the data stage (none when "
      "neither --data-hex nor --data-file is given) and prints the count written.",
      opts,
      1,
      1,
      "  TARGET   the device's node moniker or class/usb-device/<NNN>\n"};
  const char *args[1];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  if (request_type > 255 || request > 255)
    return cli__usage("--request-type and --request are required (dfnet %s)", syn.usage);
  bool in = (request_type & 0x80) != 0;
  if (length_s != NULL) {
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(length_s, &end, 0);
    if (length_s[0] == '-' || errno != 0 || end == length_s || *end != '\0' || v > USB_CONTROL_MAX)
      return cli__usage("--length wants a number in 0..%u, not '%s'", USB_CONTROL_MAX, length_s);
    length = v;
    has_length = true;
  }
  if (in && (hex != NULL || file != NULL))
    return cli__usage("request type 0x%02llx is IN (bit 7 set): it takes --length, not data",
                      (unsigned long long)request_type);
  if (in && !has_length)
    return cli__usage("request type 0x%02llx is IN (bit 7 set): --length N says how much to read",
                      (unsigned long long)request_type);
  if (!in && has_length)
    return cli__usage(
        "request type 0x%02llx is OUT (bit 7 clear): it takes --data-hex or "
        "--data-file, not --length",
        (unsigned long long)request_type);
  if (!in && out_file != NULL)
    return cli__usage("--out is for IN transfers");
  if (json && out_file != NULL)
    return cli__usage("--out and --json exclude each other");
  uint8_t *data = NULL;
  size_t data_len = 0;
  if ((rc = out_data(hex, file, USB_CONTROL_MAX, &data, &data_len)) != CLI_EXIT_OK)
    return rc;
  cli_pb_t *pb = pb_new();
  dfnet_client_t *c = NULL;
  uint8_t *reply = NULL;
  size_t n = 0;
  if (pb == NULL) {
    rc = cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  cli__pb_varint(pb, 1, request_type); /* ControlTransferRequest */
  cli__pb_varint(pb, 2, request);
  cli__pb_varint(pb, 3, value);
  cli__pb_varint(pb, 4, index);
  cli__pb_bytes(pb, 5, data, data_len);
  cli__pb_varint(pb, 6, length);
  cli__pb_varint(pb, 7, timeout);
  cli__pb_varint(pb, 8, detach);
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    goto done;
  dfnet_client_error_t err;
  if (usb_call(c, args[0], M_CONTROL, pb, transfer_deadline(timeout), &reply, &n, &err) !=
      DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto done;
  }
  const uint8_t *got = NULL;
  size_t got_len = 0;
  uint64_t transferred = 0;
  if ((rc = transfer_reply(args[0], reply, n, &got, &got_len, &transferred)) != CLI_EXIT_OK)
    goto done;
  cJSON *doc = NULL;
  if (json) {
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "target", args[0]);
    cJSON_AddNumberToObject(doc, "request_type", (double)request_type);
    cJSON_AddNumberToObject(doc, "request", (double)request);
    cJSON_AddNumberToObject(doc, "value", (double)value);
    cJSON_AddNumberToObject(doc, "index", (double)index);
    cJSON_AddStringToObject(doc, "direction", in ? "in" : "out");
    cJSON_AddNumberToObject(doc, "transferred", (double)transferred);
  }
  in_output_t o = {.json = json, .out_file = out_file};
  rc = in ? show_in(&o, got, got_len, doc) : show_out(json, transferred, doc);
done:
  free(reply);
  dfnet_client_close(c);
  free(pb);
  free(data);
  return rc;
}

/* Bulk and interrupt transfers: one verb per type and direction. */
typedef struct endpoint_verb {
  const char *name; /* "bulk-in" */
  const char *kind; /* "bulk" */
  const char *method;
  bool in;
} endpoint_verb_t;

/* EP as an endpoint address of the verb's direction; exit code (usage printed). */
static int parse_endpoint(const endpoint_verb_t *v, const char *text, uint8_t *ep) {
  char *end = NULL;
  errno = 0;
  unsigned long e = strtoul(text, &end, 0);
  bool number = text[0] != '-' && errno == 0 && end != text && *end == '\0' && e <= 0xff;
  if (!number || (e & 0x0f) == 0 || (e & 0x70) != 0 || ((e & 0x80) != 0) != v->in)
    return cli__usage(
        "EP '%s': %s wants the address of an %s endpoint, %s (lsusb's "
        "bEndpointAddress)",
        text, v->name, v->in ? "IN" : "OUT", v->in ? "0x81..0x8f" : "0x01..0x0f");
  *ep = (uint8_t)e;
  return CLI_EXIT_OK;
}

static int endpoint_transfer(int argc, char **argv, const endpoint_verb_t *v) {
  uint64_t length = 0, timeout = 0;
  const char *hex = NULL, *file = NULL, *out_file = NULL;
  bool print_hex = false, json = false, detach = false;
  const cli_option_t in_opts[] = {
      {"length", 0, CLI_OPT_UINT, &length, 1, USB_TRANSFER_MAX, "N", "bytes to read"},
      {"timeout", 't', CLI_OPT_UINT, &timeout, 1, USB_TIMEOUT_MAX, "MS",
       "the transfer's timeout (default 1000)"},
      {"detach-kernel-driver", 0, CLI_OPT_FLAG, &detach, 0, 0, NULL,
       "take the endpoint's interface from its kernel driver for the transfer"},
      {"hex", 0, CLI_OPT_FLAG, &print_hex, 0, 0, NULL, "print the bytes as hex"},
      {"out", 'o', CLI_OPT_STRING, &out_file, 0, 0, "FILE", "write the raw bytes to FILE"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
  const cli_option_t out_opts[] = {
      {"data-hex", 0, CLI_OPT_STRING, &hex, 0, 0, "HEX", "the bytes to send, hex"},
      {"data-file", 0, CLI_OPT_STRING, &file, 0, 0, "FILE", "the bytes to send, from a file"},
      {"timeout", 't', CLI_OPT_UINT, &timeout, 1, USB_TIMEOUT_MAX, "MS",
       "the transfer's timeout (default 1000)"},
      {"detach-kernel-driver", 0, CLI_OPT_FLAG, &detach, 0, 0, NULL,
       "take the endpoint's interface from its kernel driver for the transfer"},
      {"json", 0, CLI_OPT_FLAG, &json, 0, 0, NULL, "print one JSON document"},
      {NULL, 0, 0, NULL, 0, 0, NULL, NULL}};
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
  const cli_syntax_t syn = {usage,
                            about,
                            v->in ? in_opts : out_opts,
                            2,
                            2,
                            "  TARGET   the device's node moniker or class/usb-device/<NNN>\n"
                            "  EP       the endpoint's address (bEndpointAddress): 0x81 is EP 1 "
                            "IN, 0x02 EP 2 OUT\n"};
  const char *args[2];
  size_t nargs;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  uint8_t ep = 0;
  if ((rc = parse_endpoint(v, args[1], &ep)) != CLI_EXIT_OK)
    return rc;
  if (v->in && length == 0)
    return cli__usage("--length N says how many bytes to read (dfnet %s)", syn.usage);
  if (v->in && (print_hex ? 1 : 0) + (out_file ? 1 : 0) + (json ? 1 : 0) > 1)
    return cli__usage("--hex, --out and --json exclude each other");
  if (!v->in && hex == NULL && file == NULL)
    return cli__usage("%s sends --data-hex H or --data-file F (dfnet %s)", v->name, syn.usage);
  uint8_t *data = NULL;
  size_t data_len = 0;
  if ((rc = out_data(hex, file, USB_TRANSFER_MAX, &data, &data_len)) != CLI_EXIT_OK)
    return rc;
  cli_pb_t *pb = pb_new();
  dfnet_client_t *c = NULL;
  uint8_t *reply = NULL;
  size_t n = 0;
  if (pb == NULL) {
    rc = cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  cli__pb_varint(pb, 1, ep); /* TransferRequest */
  cli__pb_bytes(pb, 2, data, data_len);
  cli__pb_varint(pb, 3, length);
  cli__pb_varint(pb, 4, timeout);
  cli__pb_varint(pb, 5, detach);
  if ((rc = cli__connect(&c)) != CLI_EXIT_OK)
    goto done;
  dfnet_client_error_t err;
  if (usb_call(c, args[0], v->method, pb, transfer_deadline(timeout), &reply, &n, &err) !=
      DFNET_STATUS_OK) {
    rc = cli__fail_err(&err);
    goto done;
  }
  const uint8_t *got = NULL;
  size_t got_len = 0;
  uint64_t transferred = 0;
  if ((rc = transfer_reply(args[0], reply, n, &got, &got_len, &transferred)) != CLI_EXIT_OK)
    goto done;
  cJSON *doc = NULL;
  if (json) {
    doc = cJSON_CreateObject();
    cJSON_AddStringToObject(doc, "target", args[0]);
    cJSON_AddNumberToObject(doc, "endpoint", ep);
    cJSON_AddNumberToObject(doc, "transferred", (double)transferred);
  }
  in_output_t o = {.hex = print_hex, .json = json, .out_file = out_file, .raw_when_piped = true};
  rc = v->in ? show_in(&o, got, got_len, doc) : show_out(json, transferred, doc);
done:
  free(reply);
  dfnet_client_close(c);
  free(pb);
  free(data);
  return rc;
}

int cmd_usb_bulk_in(int argc, char **argv) {
  static const endpoint_verb_t v = {"bulk-in", "bulk", M_BULK, true};
  return endpoint_transfer(argc, argv, &v);
}

int cmd_usb_bulk_out(int argc, char **argv) {
  static const endpoint_verb_t v = {"bulk-out", "bulk", M_BULK, false};
  return endpoint_transfer(argc, argv, &v);
}

int cmd_usb_interrupt_in(int argc, char **argv) {
  static const endpoint_verb_t v = {"interrupt-in", "interrupt", M_INTERRUPT, true};
  return endpoint_transfer(argc, argv, &v);
}

int cmd_usb_interrupt_out(int argc, char **argv) {
  static const endpoint_verb_t v = {"interrupt-out", "interrupt", M_INTERRUPT, false};
  return endpoint_transfer(argc, argv, &v);
}
