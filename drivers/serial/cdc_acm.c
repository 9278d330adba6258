/* USB CDC ACM (usb_chip.h): USB Class Definitions for Communication Devices 1.2 and its
 * PSTN subclass 1.2 (Abstract Control Model). The driver binds the communication interface
 * (class 0x02, subclass 0x02) as Linux's cdc-acm does; its Union functional descriptor
 * names the data interface, claimed beside it, whose bulk endpoints carry the bytes.
 * Line settings: SET_LINE_CODING; DTR and RTS: SET_CONTROL_LINE_STATE; both class requests
 * to the communication interface. ACM has no flow control request.
 */
#include <stdio.h>

#include "drivers/serial/usb_chip.h"

#define CDC_CLASS_COMM 0x02
#define CDC_SUBCLASS_ACM 0x02
#define CDC_CS_INTERFACE 0x24
#define CDC_UNION 0x06
#define CDC_SET_LINE_CODING 0x20
#define CDC_SET_CONTROL_LINE_STATE 0x22
#define CDC_OUT 0x21 /* class, interface, host to device */

static bool cdc_match(uint32_t ifc_class, uint32_t ifc_subclass, uint32_t vid, uint32_t pid) {
  (void)vid;
  (void)pid;
  return ifc_class == CDC_CLASS_COMM && ifc_subclass == CDC_SUBCLASS_ACM;
}

/* The Union functional descriptor's first subordinate interface (CDC 1.2 table 16); else
 * the next interface, as devices without one have it (Linux cdc-acm's NO_UNION_NORMAL). */
static int cdc_data_interface(const dfnet_hw_usb_InterfaceInfo *info) {
  const uint8_t *d = info->descriptors.bytes;
  size_t n = info->descriptors.size;
  for (size_t at = 0; at + 2 <= n && d[at] >= 2 && at + d[at] <= n; at += d[at]) {
    if (d[at + 1] == CDC_CS_INTERFACE && d[at] >= 5 && d[at + 2] == CDC_UNION &&
        d[at + 3] == info->interface_number)
      return d[at + 4];
  }
  return (int)info->interface_number + 1;
}

static size_t cdc_init(const serial_usb_port_t *p, serial_usb_ctrl_t *steps) {
  /* DTR and RTS on: the device knows a terminal is there */
  steps[0] = serial__ctrl(CDC_OUT, CDC_SET_CONTROL_LINE_STATE, 0x0003, p->ifc);
  return 1;
}

static dfnet_status_t cdc_configure(const serial_usb_port_t *p, const dfnet_hw_serial_Config *c,
                                    serial_usb_ctrl_t *steps, size_t *n, char *why, size_t cap) {
  dfnet_status_t st = serial__usb_check_frame("CDC-ACM", c, why, cap);
  if (st != DFNET_STATUS_OK)
    return st;
  if (c->flow_control != dfnet_hw_serial_FlowControl_FLOW_CONTROL_NONE)
    return serial__usb_unsupported("CDC-ACM", "flow control (ACM has no request for it)", why, cap);
  if (c->baud_rate > 16000000)
    return serial__usb_unsupported("CDC-ACM", "rates over 16000000", why, cap);
  serial_usb_ctrl_t *s = &steps[0];
  *s = serial__ctrl(CDC_OUT, CDC_SET_LINE_CODING, 0, p->ifc);
  /* dwDTERate, bCharFormat (0: 1 stop bit, 2: 2), bParityType (0 none, 1 odd, 2 even),
   * bDataBits */
  s->data[0] = (uint8_t)c->baud_rate;
  s->data[1] = (uint8_t)(c->baud_rate >> 8);
  s->data[2] = (uint8_t)(c->baud_rate >> 16);
  s->data[3] = (uint8_t)(c->baud_rate >> 24);
  s->data[4] = c->stop_bits == 2 ? 2 : 0;
  s->data[5] = (uint8_t)c->parity;
  s->data[6] = (uint8_t)c->data_bits;
  s->len = 7;
  *n = 1;
  return DFNET_STATUS_OK;
}

const serial_usb_chip_t serial__cdc_acm = {
    .name = "CDC-ACM",
    .match = cdc_match,
    .extra_interface = cdc_data_interface,
    .init = cdc_init,
    .configure = cdc_configure,
};
