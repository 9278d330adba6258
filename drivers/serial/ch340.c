/* WCH CH340 (usb_chip.h): 1a86:7523. Vendor requests addressed to the device, the CH341
 * register protocol as Linux's ch341 driver writes it: SERIAL_INIT, then WRITE_REG of the
 * baud rate's prescaler and divisor (registers 0x12, 0x13), of the line control (0x18,
 * 0x25) and of the RTS/CTS flow control (0x27), and MODEM_CTRL (DTR and RTS, active low).
 * The bytes move on the bulk endpoints as they are.
 */
#include <stdio.h>

#include "drivers/serial/usb_chip.h"

#define CH340_VID 0x1a86
#define CH340_PID 0x7523
#define CH340_OUT 0x40 /* vendor, device, host to device */
#define CH340_WRITE_REG 0x9a
#define CH340_SERIAL_INIT 0xa1
#define CH340_MODEM_CTRL 0xa4
#define CH340_REG_PRESCALER_DIVISOR 0x1312
#define CH340_REG_LCR 0x2518
#define CH340_REG_FLOW 0x2727
#define CH340_LCR_ENABLE_RX 0x80
#define CH340_LCR_ENABLE_TX 0x40
#define CH340_LCR_PAR_EVEN 0x10
#define CH340_LCR_ENABLE_PAR 0x08
#define CH340_LCR_STOP_BITS_2 0x04
#define CH340_BIT_RTS 0x40
#define CH340_BIT_DTR 0x20
#define CH340_CLOCK 48000000u
#define CH340_MIN_BPS 46u      /* CH340_CLOCK / (4096 * 256), rounded up */
#define CH340_MAX_BPS 3000000u /* CH340_CLOCK / (8 * 2) */

static bool ch340_match(uint32_t ifc_class, uint32_t ifc_subclass, uint32_t vid, uint32_t pid) {
  (void)ifc_class;
  (void)ifc_subclass;
  return vid == CH340_VID && pid == CH340_PID;
}

/* The clock divider of prescaler ps and factor fact: 1 << (12 - 3 ps - fact). */
static uint32_t clk_div(int ps, uint32_t fact) { return 1u << (12 - 3 * ps - (int)fact); }

/* The prescaler/divisor register value for `baud` (Linux ch341_get_divisor): the highest
 * base clock whose divisor stays under 512, the divisor rounded to the nearer rate, and the
 * lower base clock when the divisor is even. 0 when the rate cannot be made. */
static uint16_t ch340_divisor(uint32_t baud) {
  uint32_t fact = 1;
  int ps;
  for (ps = 3; ps >= 0; ps--)
    if (baud > CH340_CLOCK / (clk_div(ps, 1) * 512))
      break;
  if (ps < 0)
    return 0;
  uint32_t cd = clk_div(ps, fact), div = CH340_CLOCK / (cd * baud);
  if (div < 9 || div > 255) {
    div /= 2;
    cd *= 2;
    fact = 0;
  }
  if (div < 2)
    return 0;
  if (16 * CH340_CLOCK / (cd * div) - 16 * baud >= 16 * baud - 16 * CH340_CLOCK / (cd * (div + 1)))
    div++;
  if (fact == 1 && div % 2 == 0) {
    div /= 2;
    fact = 0;
  }
  return (uint16_t)((0x100 - div) << 8 | fact << 2 | (uint32_t)ps);
}

static size_t ch340_init(const serial_usb_port_t *p, serial_usb_ctrl_t *steps) {
  (void)p;
  steps[0] = serial__ctrl(CH340_OUT, CH340_SERIAL_INIT, 0, 0);
  /* DTR and RTS on: the bits are active low */
  steps[1] =
      serial__ctrl(CH340_OUT, CH340_MODEM_CTRL, (uint16_t) ~(CH340_BIT_DTR | CH340_BIT_RTS), 0);
  return 2;
}

static dfnet_status_t ch340_configure(const serial_usb_port_t *p, const dfnet_hw_serial_Config *c,
                                      serial_usb_ctrl_t *steps, size_t *n, char *why, size_t cap) {
  (void)p;
  uint16_t divisor = c->baud_rate >= CH340_MIN_BPS && c->baud_rate <= CH340_MAX_BPS
                         ? ch340_divisor(c->baud_rate)
                         : 0;
  if (divisor == 0) {
    snprintf(why, cap, "CH340: baud rate %u: the chip takes %u .. %u", c->baud_rate, CH340_MIN_BPS,
             CH340_MAX_BPS);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = serial__usb_check_frame("CH340", c, why, cap);
  if (st != DFNET_STATUS_OK)
    return st;
  if (c->flow_control == dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF)
    return serial__usb_unsupported("CH340", "XON/XOFF flow control", why, cap);
  /* bit 7: send what arrived at once rather than after a full 32-byte packet */
  steps[0] = serial__ctrl(CH340_OUT, CH340_WRITE_REG, CH340_REG_PRESCALER_DIVISOR,
                          (uint16_t)(divisor | 0x80));
  uint16_t lcr = CH340_LCR_ENABLE_RX | CH340_LCR_ENABLE_TX | (uint16_t)(c->data_bits - 5);
  if (c->parity != dfnet_hw_serial_Parity_PARITY_NONE)
    lcr |= CH340_LCR_ENABLE_PAR |
           (c->parity == dfnet_hw_serial_Parity_PARITY_EVEN ? CH340_LCR_PAR_EVEN : 0);
  if (c->stop_bits == 2)
    lcr |= CH340_LCR_STOP_BITS_2;
  steps[1] = serial__ctrl(CH340_OUT, CH340_WRITE_REG, CH340_REG_LCR, lcr);
  bool rts_cts = c->flow_control == dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS;
  steps[2] = serial__ctrl(CH340_OUT, CH340_WRITE_REG, CH340_REG_FLOW, rts_cts ? 0x0101 : 0);
  *n = 3;
  return DFNET_STATUS_OK;
}

const serial_usb_chip_t serial__ch340 = {
    .name = "CH340",
    .match = ch340_match,
    .init = ch340_init,
    .configure = ch340_configure,
};
