/* FTDI USB UARTs (usb_chip.h): FT232R (0403:6001), FT2232C/D/H (0403:6010, one node per
 * port), FT232H (0403:6014). Vendor requests addressed to the device with the port in
 * wIndex (1 for A, 2 for B on the two-port chips; 0 on the one-port ones), as FTDI's
 * application notes, libftdi and Linux's ftdi_sio send them: RESET, SET_MODEM_CTRL,
 * SET_FLOW_CTRL, SET_BAUD_RATE (a divisor of 3 MHz, or 12 MHz on the hi-speed "H" chips, in
 * eighths), SET_DATA. Every packet the chip sends starts with two status bytes (modem and
 * line status), stripped here.
 */
#include <stdio.h>

#include "drivers/serial/usb_chip.h"

#define FTDI_VID 0x0403
#define FTDI_FT232R 0x6001
#define FTDI_FT2232 0x6010
#define FTDI_FT232H 0x6014
#define FTDI_OUT 0x40 /* vendor, device, host to device */
#define FTDI_RESET 0x00
#define FTDI_SET_MODEM_CTRL 0x01
#define FTDI_SET_FLOW_CTRL 0x02
#define FTDI_SET_BAUD_RATE 0x03
#define FTDI_SET_DATA 0x04
#define FTDI_STATUS_BYTES 2u

static bool ftdi_match(uint32_t ifc_class, uint32_t ifc_subclass, uint32_t vid, uint32_t pid) {
  (void)ifc_class;
  (void)ifc_subclass;
  return vid == FTDI_VID && (pid == FTDI_FT232R || pid == FTDI_FT2232 || pid == FTDI_FT232H);
}

/* The port number the requests carry: the two-port chip's A/B, else 0. */
static uint16_t ftdi_port(const serial_usb_port_t *p) {
  return p->product_id == FTDI_FT2232 ? (uint16_t)(p->ifc + 1) : 0;
}

/* A hi-speed chip (120 MHz clock): the FT232H, and the FT2232H (a high-speed device: its
 * bulk packets are 512 bytes; the FT2232C/D's are 64). */
static bool ftdi_hispeed(const serial_usb_port_t *p) {
  return p->product_id == FTDI_FT232H || (p->product_id == FTDI_FT2232 && p->in_packet >= 512);
}

/* The divisor's fraction in eighths, as the chips encode it. */
static const uint8_t divfrac[8] = {0, 3, 2, 4, 1, 5, 6, 7};

static uint32_t encode_divisor(uint32_t eighths) {
  uint32_t d = (eighths >> 3) | (uint32_t)divfrac[eighths & 7] << 14;
  if (d == 1)
    return 0; /* divisor 1 (the base rate) is written 0 */
  if (d == 0x4001)
    return 1; /* divisor 1.5 is written 1 */
  return d;
}

/* 3 MHz base: 48 MHz / 16, rounded to the nearest eighth (FT232B and later). */
static uint32_t divisor_3mhz(uint32_t baud) {
  return encode_divisor((48000000u + baud) / (2u * baud));
}

/* 12 MHz base of the H chips: 120 MHz / 10 in eighths, with bit 17 ("no divide by 2.5"). */
static uint32_t divisor_12mhz(uint32_t baud) {
  return encode_divisor((8u * 120000000u + 5u * baud) / (10u * baud)) | 0x20000u;
}

static size_t ftdi_init(const serial_usb_port_t *p, serial_usb_ctrl_t *steps) {
  uint16_t port = ftdi_port(p);
  steps[0] = serial__ctrl(FTDI_OUT, FTDI_RESET, 0, port);
  /* DTR and RTS on (value: the mask in the high byte, the levels in the low one) */
  steps[1] = serial__ctrl(FTDI_OUT, FTDI_SET_MODEM_CTRL, 0x0303, port);
  return 2;
}

static dfnet_status_t ftdi_configure(const serial_usb_port_t *p, const dfnet_hw_serial_Config *c,
                                     serial_usb_ctrl_t *steps, size_t *n, char *why, size_t cap) {
  bool hi = ftdi_hispeed(p);
  uint32_t max = hi ? 12000000u : 3000000u;
  /* the divisor has 14 bits and 3 of fraction: 3 MHz / 16383.875 is 183.1 */
  if (c->baud_rate < 184 || c->baud_rate > max) {
    snprintf(why, cap, "FTDI: baud rate %u: this chip takes 184 .. %u", c->baud_rate, max);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (c->data_bits != 7 && c->data_bits != 8)
    return serial__usb_unsupported("FTDI", "data bits other than 7 or 8", why, cap);
  if (c->stop_bits > 2)
    return serial__usb_unsupported("FTDI", "stop bits other than 1 or 2", why, cap);
  uint16_t port = ftdi_port(p);
  uint32_t d =
      hi && c->baud_rate >= 1200 ? divisor_12mhz(c->baud_rate) : divisor_3mhz(c->baud_rate);
  /* The divisor's bits 16 and up go in wIndex: its high byte on the two-port and H chips,
   * whose low byte is the port. */
  uint16_t index = (uint16_t)(d >> 16);
  if (hi || p->product_id == FTDI_FT2232)
    index = (uint16_t)(index << 8 | port);
  steps[0] = serial__ctrl(FTDI_OUT, FTDI_SET_BAUD_RATE, (uint16_t)d, index);
  uint16_t data =
      (uint16_t)(c->data_bits | (uint32_t)c->parity << 8 | (c->stop_bits == 2 ? 2u : 0u) << 11);
  steps[1] = serial__ctrl(FTDI_OUT, FTDI_SET_DATA, data, port);
  switch (c->flow_control) {
  case dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS:
    steps[2] = serial__ctrl(FTDI_OUT, FTDI_SET_FLOW_CTRL, 0, (uint16_t)(0x0100 | port));
    break;
  case dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF:
    /* XOFF 0x13 in the high byte, XON 0x11 in the low one */
    steps[2] = serial__ctrl(FTDI_OUT, FTDI_SET_FLOW_CTRL, 0x1311, (uint16_t)(0x0400 | port));
    break;
  default:
    steps[2] = serial__ctrl(FTDI_OUT, FTDI_SET_FLOW_CTRL, 0, port);
    break;
  }
  *n = 3;
  return DFNET_STATUS_OK;
}

/* Strip the two status bytes that lead every packet. */
static size_t ftdi_rx(const serial_usb_port_t *p, uint8_t *data, size_t n) {
  size_t packet = p->in_packet > FTDI_STATUS_BYTES ? p->in_packet : 64, out = 0;
  for (size_t at = 0; at < n; at += packet) {
    size_t len = n - at < packet ? n - at : packet;
    for (size_t i = FTDI_STATUS_BYTES; i < len; i++)
      data[out++] = data[at + i];
  }
  return out;
}

const serial_usb_chip_t serial__ftdi = {
    .name = "FTDI",
    .match = ftdi_match,
    .init = ftdi_init,
    .configure = ftdi_configure,
    .rx = ftdi_rx,
};
