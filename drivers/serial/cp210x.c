/* Silicon Labs CP210x (usb_chip.h): CP2102/CP2104 (10c4:ea60), CP2105 (10c4:ea70, one node
 * per interface). Vendor requests addressed to the interface (Silicon Labs AN571 "CP210x
 * Virtual COM Port Interface"): IFC_ENABLE, SET_MHS (DTR/RTS), SET_BAUDRATE (the rate as a
 * 32-bit number), SET_LINE_CTL (stop bits, parity, data bits), SET_FLOW (the handshake and
 * flow-replace words). The bytes move on the bulk endpoints as they are.
 */
#include <stdio.h>

#include "drivers/serial/usb_chip.h"

#define CP210X_VID 0x10c4
#define CP210X_OUT 0x41 /* vendor, interface, host to device */
#define CP210X_IFC_ENABLE 0x00
#define CP210X_SET_LINE_CTL 0x03
#define CP210X_SET_MHS 0x07
#define CP210X_SET_FLOW 0x13
#define CP210X_SET_BAUDRATE 0x1e
/* SET_FLOW's ulControlHandshake and ulFlowReplace bits (AN571 table 7, 8) */
#define CP210X_DTR_ACTIVE 0x01u
#define CP210X_CTS_HANDSHAKE 0x08u
#define CP210X_RTS_ACTIVE 0x40u
#define CP210X_RTS_FLOW_CONTROL 0x80u

static bool cp210x_match(uint32_t ifc_class, uint32_t ifc_subclass, uint32_t vid, uint32_t pid) {
  (void)ifc_class;
  (void)ifc_subclass;
  return vid == CP210X_VID && (pid == 0xea60 || pid == 0xea70);
}

static size_t cp210x_init(const serial_usb_port_t *p, serial_usb_ctrl_t *steps) {
  steps[0] = serial__ctrl(CP210X_OUT, CP210X_IFC_ENABLE, 1, p->ifc);
  /* DTR and RTS on (bits 0, 1) with their masks (bits 8, 9) */
  steps[1] = serial__ctrl(CP210X_OUT, CP210X_SET_MHS, 0x0303, p->ifc);
  return 2;
}

static void put32(uint8_t *at, uint32_t v) {
  for (int i = 0; i < 4; i++)
    at[i] = (uint8_t)(v >> (8 * i));
}

static dfnet_status_t cp210x_configure(const serial_usb_port_t *p, const dfnet_hw_serial_Config *c,
                                       serial_usb_ctrl_t *steps, size_t *n, char *why, size_t cap) {
  if (c->baud_rate < 300 || c->baud_rate > 3000000) {
    snprintf(why, cap, "CP210x: baud rate %u: the chips take 300 .. 3000000", c->baud_rate);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  dfnet_status_t st = serial__usb_check_frame("CP210x", c, why, cap);
  if (st != DFNET_STATUS_OK)
    return st;
  if (c->flow_control == dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF)
    return serial__usb_unsupported("CP210x", "XON/XOFF flow control", why, cap);
  steps[0] = serial__ctrl(CP210X_OUT, CP210X_SET_BAUDRATE, 0, p->ifc);
  put32(steps[0].data, c->baud_rate);
  steps[0].len = 4;
  /* bits 0-3 stop bits (0: 1, 2: 2), 4-7 parity (0 none, 1 odd, 2 even), 8-15 data bits */
  uint16_t line =
      (uint16_t)((c->stop_bits == 2 ? 2u : 0u) | (uint32_t)c->parity << 4 | c->data_bits << 8);
  steps[1] = serial__ctrl(CP210X_OUT, CP210X_SET_LINE_CTL, line, p->ifc);
  bool rts_cts = c->flow_control == dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS;
  steps[2] = serial__ctrl(CP210X_OUT, CP210X_SET_FLOW, 0, p->ifc);
  put32(steps[2].data, CP210X_DTR_ACTIVE | (rts_cts ? CP210X_CTS_HANDSHAKE : 0));
  put32(steps[2].data + 4, rts_cts ? CP210X_RTS_FLOW_CONTROL : CP210X_RTS_ACTIVE);
  /* ulXonLimit, ulXoffLimit: 0 (no XON/XOFF) */
  steps[2].len = 16;
  *n = 3;
  return DFNET_STATUS_OK;
}

const serial_usb_chip_t serial__cp210x = {
    .name = "CP210x",
    .match = cp210x_match,
    .init = cp210x_init,
    .configure = cp210x_configure,
};
