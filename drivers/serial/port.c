/* The serial driver's tty side: finding it, raw mode, termios (port.h). */
#include "drivers/serial/port.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "bind/dfnet_platform.h"
#include "drivers/common/drvkit.h"

/* ---- finding the tty --------------------------------------------------------------- */

dfnet_status_t serial__find_tty(const dfnet_driver_t *driver, char *out, size_t cap, int *fd,
                                char *why, size_t why_cap) {
  const char *tty = drvkit__prop_string(driver, BIND_DFNET_PLATFORM_TTY);
  if (tty == NULL) {
    snprintf(why, why_cap, "the node has no \"dfnet.platform.TTY\" (a board-file serial port)");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (tty[0] != '/' || strlen(tty) >= cap) {
    snprintf(why, why_cap, "dfnet.platform.TTY \"%.200s\" is not an absolute path", tty);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  memcpy(out, tty, strlen(tty) + 1);
  if ((*fd = dfnet_driver_resource_fd(driver, "tty")) < 0) {
    snprintf(why, why_cap,
             "%s was not handed to the driver (no resource \"tty\": dfnet-host hands it for a "
             "node of its board file)",
             tty);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

/* ---- termios --------------------------------------------------------------------------- */

static const struct {
  uint32_t rate;
  speed_t speed;
} rates[] = {
    {50, B50},           {75, B75},           {110, B110},         {134, B134},
    {150, B150},         {200, B200},         {300, B300},         {600, B600},
    {1200, B1200},       {1800, B1800},       {2400, B2400},       {4800, B4800},
    {9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},
    {115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
    {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
    {1500000, B1500000}, {2000000, B2000000}, {2500000, B2500000}, {3000000, B3000000},
    {3500000, B3500000}, {4000000, B4000000},
};

/* Raw mode as cfmakeraw(3) has it, but keeping the line settings in c_cflag. */
static void make_raw(struct termios *t) {
  t->c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL);
  t->c_oflag &= ~(tcflag_t)OPOST;
  t->c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
  t->c_cflag |= CLOCAL | CREAD;
  t->c_cc[VMIN] = 1;
  t->c_cc[VTIME] = 0;
}

dfnet_status_t serial__make_raw(int fd, const char *tty, char *why, size_t cap) {
  struct termios t;
  if (tcgetattr(fd, &t) != 0) {
    snprintf(why, cap, "%s is not a terminal: %s", tty, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  make_raw(&t);
  if (tcsetattr(fd, TCSANOW, &t) != 0) {
    snprintf(why, cap, "cannot put %s in raw mode: %s", tty, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}

dfnet_status_t serial__configure(int fd, const dfnet_hw_serial_Config *want,
                                 dfnet_hw_serial_Config *got, char *why, size_t cap) {
  uint32_t rate = want->baud_rate != 0 ? want->baud_rate : 115200;
  uint32_t data_bits = want->data_bits != 0 ? want->data_bits : 8;
  uint32_t stop_bits = want->stop_bits != 0 ? want->stop_bits : 1;
  speed_t speed = B0;
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
    if (rates[i].rate == rate)
      speed = rates[i].speed;
  if (speed == B0) {
    snprintf(why, cap, "baud rate %u is not one of termios' rates (50 .. 4000000)", rate);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  static const tcflag_t sizes[] = {CS5, CS6, CS7, CS8};
  if (data_bits < 5 || data_bits > 8) {
    snprintf(why, cap, "data bits %u: must be 5..8", data_bits);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if (stop_bits > 2) {
    snprintf(why, cap, "stop bits %u: must be 1 or 2", stop_bits);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  if ((unsigned)want->parity > (unsigned)dfnet_hw_serial_Parity_PARITY_EVEN ||
      (unsigned)want->flow_control > (unsigned)dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF) {
    snprintf(why, cap, "unknown parity %d or flow control %d", (int)want->parity,
             (int)want->flow_control);
    return DFNET_STATUS_INVALID_ARGUMENT;
  }
  struct termios t;
  if (tcgetattr(fd, &t) != 0) {
    snprintf(why, cap, "tcgetattr: %s", strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
  }
  make_raw(&t);
  t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS);
  t.c_cflag |= sizes[data_bits - 5];
  if (want->parity != dfnet_hw_serial_Parity_PARITY_NONE)
    t.c_cflag |= PARENB | (want->parity == dfnet_hw_serial_Parity_PARITY_ODD ? PARODD : 0);
  if (stop_bits == 2)
    t.c_cflag |= CSTOPB;
  t.c_iflag &= ~(tcflag_t)(IXON | IXOFF | IXANY | INPCK);
  if (want->parity != dfnet_hw_serial_Parity_PARITY_NONE)
    t.c_iflag |= INPCK;
  if (want->flow_control == dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS)
    t.c_cflag |= CRTSCTS;
  else if (want->flow_control == dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF)
    t.c_iflag |= IXON | IXOFF;
  if (cfsetispeed(&t, speed) != 0 || cfsetospeed(&t, speed) != 0 ||
      tcsetattr(fd, TCSANOW, &t) != 0 || tcgetattr(fd, &t) != 0) {
    snprintf(why, cap, "tcsetattr: %s", strerror(errno));
    return DFNET_STATUS_UNAVAILABLE;
  }
  /* Report what the kernel kept (a driver may refuse a rate or a setting silently). */
  memset(got, 0, sizeof *got);
  speed_t now = cfgetospeed(&t);
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
    if (rates[i].speed == now)
      got->baud_rate = rates[i].rate;
  for (uint32_t i = 0; i < 4; i++)
    if ((t.c_cflag & CSIZE) == sizes[i])
      got->data_bits = i + 5;
  got->parity = !(t.c_cflag & PARENB)  ? dfnet_hw_serial_Parity_PARITY_NONE
                : (t.c_cflag & PARODD) ? dfnet_hw_serial_Parity_PARITY_ODD
                                       : dfnet_hw_serial_Parity_PARITY_EVEN;
  got->stop_bits = (t.c_cflag & CSTOPB) ? 2 : 1;
  got->flow_control = (t.c_cflag & CRTSCTS) ? dfnet_hw_serial_FlowControl_FLOW_CONTROL_RTS_CTS
                      : (t.c_iflag & IXON)  ? dfnet_hw_serial_FlowControl_FLOW_CONTROL_XON_XOFF
                                            : dfnet_hw_serial_FlowControl_FLOW_CONTROL_NONE;
  return DFNET_STATUS_OK;
}
