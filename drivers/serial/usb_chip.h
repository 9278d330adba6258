/* The protocols of USB serial adapters, one file per family behind one table (the USB
 * backend, usb.c, runs them through dfnet.hw.usb.Interface):
 *
 *   cdc_acm.c  USB CDC ACM (USB Class Definitions for Communication Devices 1.2, PSTN 1.2:
 *              SET_LINE_CODING, SET_CONTROL_LINE_STATE); the node is the communication
 *              interface, the data moves on the data interface it claims beside it
 *   ftdi.c     FTDI FT232R, FT2232, FT232H (vendor requests as Linux's ftdi_sio and libftdi
 *              send them; two status bytes lead every packet the chip sends)
 *   cp210x.c   Silicon Labs CP210x (AN571: IFC_ENABLE, SET_BAUDRATE, SET_LINE_CTL, ...)
 *   ch340.c    WCH CH340 (the CH341 register protocol, as Linux's ch341 writes it)
 *
 * A chip says what to claim, the control requests that set it up and that apply line
 * settings, and how to unwrap what it sends. Nothing here does I/O.
 */
#ifndef DFNET_DRIVERS_SERIAL_USB_CHIP_H
#define DFNET_DRIVERS_SERIAL_USB_CHIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dfnet/hw/serial.pb.h"
#include "dfnet/hw/usb.pb.h"
#include "dfnet/status.h"

#define SERIAL_USB_STEPS_MAX 8

/* One control request (its data stage, if any, OUT). */
typedef struct serial_usb_ctrl {
  uint8_t request_type, request;
  uint16_t value, index;
  uint8_t data[16];
  uint16_t len; /* bytes of data */
} serial_usb_ctrl_t;

/* The adapter as the USB backend found it. */
typedef struct serial_usb_port {
  uint16_t vendor_id, product_id;
  uint8_t ifc;           /* the node's interface */
  int data_ifc;          /* the interface claimed beside it (CDC's data interface), else -1 */
  uint8_t ep_in, ep_out; /* the bulk endpoints the data moves on */
  uint16_t in_packet;    /* the IN endpoint's wMaxPacketSize */
} serial_usb_port_t;

typedef struct serial_usb_chip {
  const char *name; /* "CDC-ACM", "FTDI", ... */
  /* Is the node (its interface's class and subclass, the device's VID/PID) this chip's? */
  bool (*match)(uint32_t ifc_class, uint32_t ifc_subclass, uint32_t vid, uint32_t pid);
  /* The interface to claim beside the node's own, from its descriptors; -1: none.
   * Optional (NULL: none). */
  int (*extra_interface)(const dfnet_hw_usb_InterfaceInfo *info);
  /* The requests that set the chip up once claimed, into steps; returns how many. */
  size_t (*init)(const serial_usb_port_t *p, serial_usb_ctrl_t *steps);
  /* The requests that apply *c (defaults filled in), into steps (*n of them). Returns OK, or
   * INVALID_ARGUMENT with the reason in why[cap] when the chip has no such setting. */
  dfnet_status_t (*configure)(const serial_usb_port_t *p, const dfnet_hw_serial_Config *c,
                              serial_usb_ctrl_t *steps, size_t *n, char *why, size_t cap);
  /* Unwrap n received bytes in place; returns how many are the line's. Optional (NULL: the
   * bytes are the line's as they are). */
  size_t (*rx)(const serial_usb_port_t *p, uint8_t *data, size_t n);
} serial_usb_chip_t;

extern const serial_usb_chip_t serial__cdc_acm;
extern const serial_usb_chip_t serial__ftdi;
extern const serial_usb_chip_t serial__cp210x;
extern const serial_usb_chip_t serial__ch340;

/* A request with no data stage. */
static inline serial_usb_ctrl_t serial__ctrl(uint8_t type, uint8_t request, uint16_t value,
                                             uint16_t index) {
  return (serial_usb_ctrl_t){
      .request_type = type, .request = request, .value = value, .index = index};
}

/* The parity, stop bits and data bits a chip refuses, as its configure says them. */
dfnet_status_t serial__usb_unsupported(const char *chip, const char *what, char *why, size_t cap);

/* Refuse, as the configure of chip `chip` ("CH340") says it, a frame of data bits outside
 * 5..8 or of stop bits other than 1 or 2 (*c: defaults filled in; only read). Returns OK, or
 * INVALID_ARGUMENT with the reason (serial__usb_unsupported) in why[cap]. Any thread; does not
 * block. */
dfnet_status_t serial__usb_check_frame(const char *chip, const dfnet_hw_serial_Config *c, char *why,
                                       size_t cap);

#endif /* DFNET_DRIVERS_SERIAL_USB_CHIP_H */
