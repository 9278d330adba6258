/* sd_notify(3) for dfnet's daemons (service_notify.h). */
#include "lib/service_notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>

/* head ("READY=1", "STOPPING=1" or "") and, with fmt, "STATUS=<text>" to systemd; nothing
 * when there is no service manager to tell. */
static void notify(const char *head, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
static void notify(const char *head, const char *fmt, va_list ap) {
  const char *sock = getenv("NOTIFY_SOCKET");
  if (sock == NULL || sock[0] == '\0')
    return;
  if (fmt == NULL) {
    if (head[0] != '\0')
      (void)sd_notify(0, head);
    return;
  }
  char text[256];
  if (vsnprintf(text, sizeof text, fmt, ap) < 0)
    text[0] = '\0';
  text[strcspn(text, "\n")] = '\0';
  char msg[320];
  snprintf(msg, sizeof msg, "%s%sSTATUS=%s", head, head[0] != '\0' ? "\n" : "", text);
  (void)sd_notify(0, msg);
}

void dfnet_service_notify_ready(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  notify("READY=1", fmt, ap);
  va_end(ap);
}

void dfnet_service_notify_stopping(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  notify("STOPPING=1", fmt, ap);
  va_end(ap);
}

void dfnet_service_notify_status(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  notify("", fmt, ap);
  va_end(ap);
}
