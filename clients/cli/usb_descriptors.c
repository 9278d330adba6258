/* dfnet CLI: a USB device's descriptors as `lsusb -v` prints them (usbutils' lsusb.c: its
 * field names, widths, hex and indentation) and as one JSON document (clients/cli/JSON.md
 * "usb descriptors"). The bytes are the device descriptor and each configuration's
 * wTotalLength bytes as the usb-device driver returned them (proto/dfnet/hw/usb.proto); the
 * walk below is USB 2.0 chapter 9: a configuration descriptor, then interface descriptors
 * (one per alternate setting), each followed by its endpoints; any other descriptor belongs
 * to the one before it, as libusb's `extra`.
 *
 * Names: the USB-IF class codes lsusb takes from usb.ids, for the classes a lab meets; an
 * unknown code prints no name, as lsusb does. Vendor and product names come from no
 * database (lsusb's hwdb): the header line shows the device's own strings instead, which is
 * lsusb's fallback. Class-specific descriptors decoded: HID and interface association;
 * others are printed as lsusb prints what it does not know, "** UNRECOGNIZED:" and hex. */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/cli.h"

enum {
  DT_DEVICE = 1,
  DT_CONFIG = 2,
  DT_INTERFACE = 4,
  DT_ENDPOINT = 5,
  DT_IAD = 11,
  DT_HID = 33,
};

/* ---- names (usb.ids "C" lines) ------------------------------------------------------- */

typedef struct class_name {
  int cls, sub, proto; /* -1: the level does not apply */
  const char *name;
} class_name_t;

static const class_name_t class_names[] = {
    {0x00, -1, -1, "(Defined at Interface level)"},
    {0x01, -1, -1, "Audio"},
    {0x01, 0x01, -1, "Control Device"},
    {0x01, 0x02, -1, "Streaming"},
    {0x01, 0x03, -1, "MIDI Streaming"},
    {0x02, -1, -1, "Communications"},
    {0x02, 0x02, -1, "Abstract (modem)"},
    {0x02, 0x02, 0x00, "None"},
    {0x02, 0x02, 0x01, "AT-commands (v.25ter)"},
    {0x02, 0x06, -1, "Ethernet Networking"},
    {0x02, 0x0c, -1, "Ethernet Emulation"},
    {0x03, -1, -1, "Human Interface Device"},
    {0x03, 0x00, -1, "No Subclass"},
    {0x03, 0x00, 0x00, "None"},
    {0x03, 0x00, 0x01, "Keyboard"},
    {0x03, 0x00, 0x02, "Mouse"},
    {0x03, 0x01, -1, "Boot Interface Subclass"},
    {0x03, 0x01, 0x00, "None"},
    {0x03, 0x01, 0x01, "Keyboard"},
    {0x03, 0x01, 0x02, "Mouse"},
    {0x05, -1, -1, "Physical Interface Device"},
    {0x06, -1, -1, "Imaging"},
    {0x06, 0x01, -1, "Still Image Capture"},
    {0x06, 0x01, 0x01, "Picture Transfer Protocol (PIMA 15470)"},
    {0x07, -1, -1, "Printer"},
    {0x07, 0x01, -1, "Printer"},
    {0x07, 0x01, 0x01, "Unidirectional"},
    {0x07, 0x01, 0x02, "Bidirectional"},
    {0x07, 0x01, 0x03, "IEEE 1284.4 compatible bidirectional"},
    {0x08, -1, -1, "Mass Storage"},
    {0x08, 0x01, -1, "RBC (typically Flash)"},
    {0x08, 0x02, -1, "SFF-8020i, MMC-2 (ATAPI)"},
    {0x08, 0x03, -1, "QIC-157"},
    {0x08, 0x04, -1, "Floppy (UFI)"},
    {0x08, 0x05, -1, "SFF-8070i"},
    {0x08, 0x06, -1, "SCSI"},
    {0x08, 0x06, 0x50, "Bulk-Only"},
    {0x09, -1, -1, "Hub"},
    {0x09, 0x00, -1, "Unused"},
    {0x09, 0x00, 0x00, "Full speed (or root) hub"},
    {0x09, 0x00, 0x01, "Single TT"},
    {0x09, 0x00, 0x02, "TT per port"},
    {0x0a, -1, -1, "CDC Data"},
    {0x0a, 0x00, -1, "Unused"},
    {0x0b, -1, -1, "Chip/SmartCard"},
    {0x0d, -1, -1, "Content Security"},
    {0x0e, -1, -1, "Video"},
    {0x0e, 0x01, -1, "Video Control"},
    {0x0e, 0x02, -1, "Video Streaming"},
    {0x0e, 0x03, -1, "Video Interface Collection"},
    {0x0f, -1, -1, "Personal Healthcare"},
    {0x10, -1, -1, "Audio/Video"},
    {0x11, -1, -1, "Billboard"},
    {0x12, -1, -1, "Type-C Bridge"},
    {0xdc, -1, -1, "Diagnostic"},
    {0xe0, -1, -1, "Wireless"},
    {0xe0, 0x01, -1, "Radio Frequency"},
    {0xe0, 0x01, 0x01, "Bluetooth"},
    {0xef, -1, -1, "Miscellaneous Device"},
    {0xef, 0x02, -1, "?"},
    {0xef, 0x02, 0x01, "Interface Association"},
    {0xfe, -1, -1, "Application Specific Interface"},
    {0xfe, 0x01, -1, "Device Firmware Update"},
    {0xff, -1, -1, "Vendor Specific Class"},
    {0xff, 0xff, -1, "Vendor Specific Subclass"},
    {0xff, 0xff, 0xff, "Vendor Specific Protocol"},
};

/* The name of class cls (sub -1), subclass sub (proto -1) or protocol proto; "" if none. */
static const char *class_name(int cls, int sub, int proto) {
  for (size_t i = 0; i < sizeof class_names / sizeof class_names[0]; i++) {
    const class_name_t *c = &class_names[i];
    if (c->cls == cls && c->sub == sub && c->proto == proto)
      return c->name;
  }
  return "";
}

/* ---- the walk ------------------------------------------------------------------------ */

static unsigned le16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }

/* The string of index i, or "" (not read, or index 0). */
static const char *str_of(const cli_usb_device_t *d, unsigned i) {
  return i != 0 && d->strings[i] != NULL ? d->strings[i] : "";
}

/* The next descriptor of a configuration's bytes at *off: its start and length, or NULL at
 * the end (cli__usb_check has made sure every bLength fits). */
static const uint8_t *next_desc(const cli_usb_config_t *c, size_t *off, size_t *len) {
  if (*off + 2 > c->len || c->raw[*off] < 2 || *off + c->raw[*off] > c->len)
    return NULL;
  const uint8_t *p = c->raw + *off;
  *len = p[0];
  *off += p[0];
  return p;
}

int cli__usb_check(const cli_usb_device_t *d, char *why, size_t cap) {
  if (d->raw[0] != 18 || d->raw[1] != DT_DEVICE) {
    snprintf(why, cap, "the device descriptor is not one (bLength %u, bDescriptorType %u)",
             d->raw[0], d->raw[1]);
    return -1;
  }
  for (size_t i = 0; i < d->config_count; i++) {
    const cli_usb_config_t *c = &d->configs[i];
    if (c->len < 9 || c->raw[0] < 9 || c->raw[1] != DT_CONFIG) {
      snprintf(why, cap, "configuration %zu does not start with a configuration descriptor", i);
      return -1;
    }
    for (size_t off = 0; off < c->len;) {
      if (c->len - off < 2 || c->raw[off] < 2 || c->raw[off] > c->len - off) {
        snprintf(why, cap, "configuration %zu: a descriptor at byte %zu overruns its %zu bytes", i,
                 off, c->len);
        return -1;
      }
      uint8_t type = c->raw[off + 1], n = c->raw[off];
      if ((type == DT_INTERFACE && n < 9) || (type == DT_ENDPOINT && n < 7) ||
          (type == DT_IAD && n < 8) || (type == DT_HID && n < 6)) {
        snprintf(why, cap, "configuration %zu: descriptor type %u at byte %zu is %u bytes long", i,
                 type, off, n);
        return -1;
      }
      off += n;
    }
  }
  return 0;
}

static void add_index(uint8_t *out, size_t *n, unsigned i) {
  if (i == 0)
    return;
  for (size_t k = 0; k < *n; k++)
    if (out[k] == i)
      return;
  out[(*n)++] = (uint8_t)i;
}

size_t cli__usb_string_indices(const cli_usb_device_t *d, uint8_t *out) {
  size_t n = 0;
  add_index(out, &n, d->raw[14]);
  add_index(out, &n, d->raw[15]);
  add_index(out, &n, d->raw[16]);
  for (size_t i = 0; i < d->config_count; i++) {
    const cli_usb_config_t *c = &d->configs[i];
    size_t off = 0, len;
    const uint8_t *p;
    while ((p = next_desc(c, &off, &len)) != NULL) {
      if (p[1] == DT_CONFIG)
        add_index(out, &n, p[6]);
      else if (p[1] == DT_INTERFACE)
        add_index(out, &n, p[8]);
      else if (p[1] == DT_IAD)
        add_index(out, &n, p[7]);
    }
  }
  return n;
}

/* ---- lsusb -v ------------------------------------------------------------------------ */

static void print_hex_line(FILE *f, const char *indent, const uint8_t *p, size_t len) {
  fprintf(f, "%s** UNRECOGNIZED: ", indent);
  for (size_t i = 0; i < len; i++)
    fprintf(f, " %02x", p[i]);
  fputc('\n', f);
}

static void print_device(FILE *f, const cli_usb_device_t *d) {
  const uint8_t *r = d->raw;
  fprintf(f,
          "Device Descriptor:\n"
          "  bLength             %5u\n"
          "  bDescriptorType     %5u\n"
          "  bcdUSB              %2x.%02x\n"
          "  bDeviceClass        %5u %s\n"
          "  bDeviceSubClass     %5u %s\n"
          "  bDeviceProtocol     %5u %s\n"
          "  bMaxPacketSize0     %5u\n"
          "  idVendor           0x%04x \n"
          "  idProduct          0x%04x \n"
          "  bcdDevice           %2x.%02x\n"
          "  iManufacturer       %5u %s\n"
          "  iProduct            %5u %s\n"
          "  iSerial             %5u %s\n"
          "  bNumConfigurations  %5u\n",
          r[0], r[1], r[3], r[2], r[4], class_name(r[4], -1, -1), r[5], class_name(r[4], r[5], -1),
          r[6], class_name(r[4], r[5], r[6]), r[7], le16(r + 8), le16(r + 10), r[13], r[12], r[14],
          str_of(d, r[14]), r[15], str_of(d, r[15]), r[16], str_of(d, r[16]), r[17]);
}

static void print_config(FILE *f, const cli_usb_device_t *d, const uint8_t *p) {
  unsigned attr = p[7];
  fprintf(f,
          "  Configuration Descriptor:\n"
          "    bLength             %5u\n"
          "    bDescriptorType     %5u\n"
          "    wTotalLength       0x%04x\n"
          "    bNumInterfaces      %5u\n"
          "    bConfigurationValue %5u\n"
          "    iConfiguration      %5u %s\n"
          "    bmAttributes         0x%02x\n",
          p[0], p[1], le16(p + 2), p[4], p[5], p[6], str_of(d, p[6]), attr);
  if (!(attr & 0x80))
    fprintf(f, "      (Missing must-be-set bit!)\n");
  fprintf(f, "      %s\n", attr & 0x40 ? "Self Powered" : "(Bus Powered)");
  if (attr & 0x20)
    fprintf(f, "      Remote Wakeup\n");
  if (attr & 0x10)
    fprintf(f, "      Battery Powered\n");
  /* MaxPower counts 2 mA units (8 mA for SuperSpeed, bcdUSB 3.0 and later) */
  fprintf(f, "    MaxPower            %5umA\n", p[8] * (le16(d->raw + 2) >= 0x0300 ? 8u : 2u));
}

static void print_iad(FILE *f, const cli_usb_device_t *d, const uint8_t *p) {
  fprintf(f,
          "    Interface Association:\n"
          "      bLength             %5u\n"
          "      bDescriptorType     %5u\n"
          "      bFirstInterface     %5u\n"
          "      bInterfaceCount     %5u\n"
          "      bFunctionClass      %5u %s\n"
          "      bFunctionSubClass   %5u %s\n"
          "      bFunctionProtocol   %5u %s\n"
          "      iFunction           %5u %s\n",
          p[0], p[1], p[2], p[3], p[4], class_name(p[4], -1, -1), p[5], class_name(p[4], p[5], -1),
          p[6], class_name(p[4], p[5], p[6]), p[7], str_of(d, p[7]));
}

static void print_interface(FILE *f, const cli_usb_device_t *d, const uint8_t *p) {
  fprintf(f,
          "    Interface Descriptor:\n"
          "      bLength             %5u\n"
          "      bDescriptorType     %5u\n"
          "      bInterfaceNumber    %5u\n"
          "      bAlternateSetting   %5u\n"
          "      bNumEndpoints       %5u\n"
          "      bInterfaceClass     %5u %s\n"
          "      bInterfaceSubClass  %5u %s\n"
          "      bInterfaceProtocol  %5u %s\n"
          "      iInterface          %5u %s\n",
          p[0], p[1], p[2], p[3], p[4], p[5], class_name(p[5], -1, -1), p[6],
          class_name(p[5], p[6], -1), p[7], class_name(p[5], p[6], p[7]), p[8], str_of(d, p[8]));
}

/* HID 1.11 6.2.1's country codes, as lsusb names them. */
static const char *const hid_countries[] = {
    "Not supported",
    "Arabic",
    "Belgian",
    "Canadian-Bilingual",
    "Canadian-French",
    "Czech Republic",
    "Danish",
    "Finnish",
    "French",
    "German",
    "Greek",
    "Hebrew",
    "Hungary",
    "International (ISO)",
    "Italian",
    "Japan (Katakana)",
    "Korean",
    "Latin American",
    "Netherlands/Dutch",
    "Norwegian",
    "Persian (Farsi)",
    "Poland",
    "Portuguese",
    "Russia",
    "Slovakia",
    "Spanish",
    "Swedish",
    "Swiss/French",
    "Swiss/German",
    "Switzerland",
    "Taiwan",
    "Turkish-Q",
    "UK",
    "US",
    "Yugoslavia",
    "Turkish-F",
};

/* The HID class descriptor (HID 1.11 6.2.1); the report descriptor itself needs a request
 * to the interface, which lsusb makes only when it can: it then says UNAVAILABLE. */
static void print_hid(FILE *f, const uint8_t *p, size_t len) {
  fprintf(f,
          "        HID Device Descriptor:\n"
          "          bLength             %5u\n"
          "          bDescriptorType     %5u\n"
          "          bcdHID              %2x.%02x\n"
          "          bCountryCode        %5u %s\n"
          "          bNumDescriptors     %5u\n",
          p[0], p[1], p[3], p[2], p[4],
          p[4] < sizeof hid_countries / sizeof hid_countries[0] ? hid_countries[p[4]] : "", p[5]);
  for (size_t i = 0; i < p[5] && 6 + 3 * i + 3 <= len; i++) {
    const uint8_t *e = p + 6 + 3 * i;
    fprintf(f,
            "          bDescriptorType     %5u %s\n"
            "          wDescriptorLength   %5u\n",
            e[0],
            e[0] == 0x22   ? "Report"
            : e[0] == 0x23 ? "Physical"
                           : "",
            le16(e + 1));
  }
  fprintf(f, "         Report Descriptors: \n           ** UNAVAILABLE **\n");
}

static void print_endpoint(FILE *f, const uint8_t *p) {
  static const char *const type[] = {"Control", "Isochronous", "Bulk", "Interrupt"};
  static const char *const sync[] = {"None", "Asynchronous", "Adaptive", "Synchronous"};
  static const char *const usage[] = {"Data", "Feedback", "Implicit feedback Data", "(reserved)"};
  static const char *const hb[] = {"1x", "2x", "3x", "(?\?)"};
  unsigned wmax = le16(p + 4);
  fprintf(f,
          "      Endpoint Descriptor:\n"
          "        bLength             %5u\n"
          "        bDescriptorType     %5u\n"
          "        bEndpointAddress     0x%02x  EP %u %s\n"
          "        bmAttributes        %5u\n"
          "          Transfer Type            %s\n"
          "          Synch Type               %s\n"
          "          Usage Type               %s\n"
          "        wMaxPacketSize     0x%04x  %s %u bytes\n"
          "        bInterval           %5u\n",
          p[0], p[1], p[2], p[2] & 0x0fu, (p[2] & 0x80) ? "IN" : "OUT", p[3], type[p[3] & 3],
          sync[(p[3] >> 2) & 3], usage[(p[3] >> 4) & 3], wmax, hb[(wmax >> 11) & 3], wmax & 0x7ffu,
          p[6]);
  if (p[0] >= 9) /* audio endpoints */
    fprintf(f,
            "        bRefresh            %5u\n"
            "        bSynchAddress       %5u\n",
            p[7], p[8]);
}

static void print_configuration(FILE *f, const cli_usb_device_t *d, const cli_usb_config_t *c) {
  size_t off = 0, len;
  const uint8_t *p;
  int level = 0;         /* what the last descriptor opened: 0 config, 1 interface, 2 endpoint */
  uint8_t ifc_class = 0; /* the current interface's class */
  while ((p = next_desc(c, &off, &len)) != NULL) {
    switch (p[1]) {
    case DT_CONFIG:
      print_config(f, d, p);
      level = 0;
      break;
    case DT_IAD:
      print_iad(f, d, p);
      break;
    case DT_INTERFACE:
      print_interface(f, d, p);
      ifc_class = p[5];
      level = 1;
      break;
    case DT_ENDPOINT:
      print_endpoint(f, p);
      level = 2;
      break;
    case DT_HID:
      if (level == 1 && ifc_class == 3) {
        print_hid(f, p, len);
        break;
      }
      /* fall through */
    default:
      print_hex_line(f, level == 0 ? "    " : level == 1 ? "      " : "        ", p, len);
      break;
    }
  }
}

void cli__usb_print(FILE *f, const cli_usb_device_t *d) {
  const uint8_t *r = d->raw;
  const char *mfg = str_of(d, r[14]), *prod = str_of(d, r[15]);
  fprintf(f, "Bus %03u Device %03u: ID %04x:%04x%s%s%s%s\n", d->bus, d->address, le16(r + 8),
          le16(r + 10), mfg[0] ? " " : "", mfg, prod[0] ? " " : "", prod);
  print_device(f, d);
  for (size_t i = 0; i < d->config_count; i++)
    print_configuration(f, d, &d->configs[i]);
}

/* ---- JSON ---------------------------------------------------------------------------- */

static void add_num(cJSON *o, const char *name, unsigned v) { cJSON_AddNumberToObject(o, name, v); }

static void add_str(cJSON *o, const char *name, const cli_usb_device_t *d, unsigned index) {
  if (index != 0 && d->strings[index] != NULL)
    cJSON_AddStringToObject(o, name, d->strings[index]);
  else
    cJSON_AddNullToObject(o, name);
}

static cJSON *hex_json(const uint8_t *p, size_t len) {
  char *h = cli__hex(p, len);
  cJSON *s = h ? cJSON_CreateString(h) : NULL;
  free(h);
  return s;
}

static cJSON *device_json(const cli_usb_device_t *d) {
  const uint8_t *r = d->raw;
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  add_num(o, "bLength", r[0]);
  add_num(o, "bDescriptorType", r[1]);
  add_num(o, "bcdUSB", le16(r + 2));
  add_num(o, "bDeviceClass", r[4]);
  add_num(o, "bDeviceSubClass", r[5]);
  add_num(o, "bDeviceProtocol", r[6]);
  add_num(o, "bMaxPacketSize0", r[7]);
  add_num(o, "idVendor", le16(r + 8));
  add_num(o, "idProduct", le16(r + 10));
  add_num(o, "bcdDevice", le16(r + 12));
  add_num(o, "iManufacturer", r[14]);
  add_num(o, "iProduct", r[15]);
  add_num(o, "iSerial", r[16]);
  add_num(o, "bNumConfigurations", r[17]);
  add_str(o, "manufacturer", d, r[14]);
  add_str(o, "product", d, r[15]);
  add_str(o, "serial", d, r[16]);
  cJSON_AddItemToObject(o, "raw_hex", hex_json(r, 18));
  return o;
}

static cJSON *interface_json(const cli_usb_device_t *d, const uint8_t *p) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  add_num(o, "bLength", p[0]);
  add_num(o, "bDescriptorType", p[1]);
  add_num(o, "bInterfaceNumber", p[2]);
  add_num(o, "bAlternateSetting", p[3]);
  add_num(o, "bNumEndpoints", p[4]);
  add_num(o, "bInterfaceClass", p[5]);
  add_num(o, "bInterfaceSubClass", p[6]);
  add_num(o, "bInterfaceProtocol", p[7]);
  add_num(o, "iInterface", p[8]);
  add_str(o, "interface", d, p[8]);
  cJSON_AddArrayToObject(o, "extra");
  cJSON_AddArrayToObject(o, "endpoints");
  return o;
}

static cJSON *endpoint_json(const uint8_t *p) {
  static const char *const type[] = {"control", "isochronous", "bulk", "interrupt"};
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  add_num(o, "bLength", p[0]);
  add_num(o, "bDescriptorType", p[1]);
  add_num(o, "bEndpointAddress", p[2]);
  cJSON_AddStringToObject(o, "direction", (p[2] & 0x80) ? "in" : "out");
  add_num(o, "bmAttributes", p[3]);
  cJSON_AddStringToObject(o, "transfer_type", type[p[3] & 3]);
  add_num(o, "wMaxPacketSize", le16(p + 4));
  add_num(o, "bInterval", p[6]);
  if (p[0] >= 9) {
    add_num(o, "bRefresh", p[7]);
    add_num(o, "bSynchAddress", p[8]);
  }
  cJSON_AddArrayToObject(o, "extra");
  return o;
}

static cJSON *config_json(const cli_usb_device_t *d, const cli_usb_config_t *c) {
  cJSON *o = cJSON_CreateObject();
  if (o == NULL)
    return NULL;
  cJSON *interfaces = cJSON_CreateArray(), *owner_extra = NULL;
  cJSON *ifc = NULL;
  size_t off = 0, len;
  const uint8_t *p;
  for (bool first = true; (p = next_desc(c, &off, &len)) != NULL; first = false) {
    if (first) { /* the configuration descriptor (cli__usb_check) */
      add_num(o, "bLength", p[0]);
      add_num(o, "bDescriptorType", p[1]);
      add_num(o, "wTotalLength", le16(p + 2));
      add_num(o, "bNumInterfaces", p[4]);
      add_num(o, "bConfigurationValue", p[5]);
      add_num(o, "iConfiguration", p[6]);
      add_str(o, "configuration", d, p[6]);
      add_num(o, "bmAttributes", p[7]);
      add_num(o, "MaxPower_mA", p[8] * (le16(d->raw + 2) >= 0x0300 ? 8u : 2u));
      cJSON_AddBoolToObject(o, "active", c->active);
      cJSON_AddItemToObject(o, "raw_hex", hex_json(c->raw, c->len));
      owner_extra = cJSON_AddArrayToObject(o, "extra");
    } else if (p[1] == DT_INTERFACE) {
      ifc = interface_json(d, p);
      cJSON_AddItemToArray(interfaces, ifc);
      owner_extra = cJSON_GetObjectItem(ifc, "extra");
    } else if (p[1] == DT_ENDPOINT && ifc != NULL) {
      cJSON *ep = endpoint_json(p);
      cJSON_AddItemToArray(cJSON_GetObjectItem(ifc, "endpoints"), ep);
      owner_extra = cJSON_GetObjectItem(ep, "extra");
    } else if (owner_extra != NULL) {
      cJSON_AddItemToArray(owner_extra, hex_json(p, len));
    }
  }
  cJSON_AddItemToObject(o, "interfaces", interfaces);
  return o;
}

cJSON *cli__usb_json(const cli_usb_device_t *d, const char *target) {
  cJSON *doc = cJSON_CreateObject();
  if (doc == NULL)
    return NULL;
  cJSON_AddStringToObject(doc, "target", target);
  add_num(doc, "bus", d->bus);
  add_num(doc, "address", d->address);
  cJSON_AddStringToObject(doc, "port_path", d->port_path);
  cJSON_AddItemToObject(doc, "device", device_json(d));
  cJSON *configs = cJSON_AddArrayToObject(doc, "configurations");
  for (size_t i = 0; configs != NULL && i < d->config_count; i++)
    cJSON_AddItemToArray(configs, config_json(d, &d->configs[i]));
  return doc;
}

void cli__usb_device_free(cli_usb_device_t *d) {
  for (size_t i = 0; i < d->config_count; i++)
    free(d->configs[i].raw);
  for (size_t i = 0; i < 256; i++)
    free(d->strings[i]);
}
