/* libdfnet-client: filling a dfnet_client_error_t, and copying a caller's string into a
 * fixed wire field (the bounds include/dfnet/client.h "Errors" lists). */
#include <stdio.h>
#include <string.h>

#include "clients/lib/client_internal.h"

dfnet_status_t client__fail(dfnet_client_error_t *err, dfnet_status_t code, const char *fmt, ...) {
  if (err != NULL) {
    err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

void client__error_ok(dfnet_client_error_t *err) {
  if (err != NULL) {
    err->code = DFNET_STATUS_OK;
    err->message[0] = '\0';
  }
}

dfnet_status_t client__copy_field(char *dst, size_t cap, const char *src, const char *what,
                                  dfnet_client_error_t *err) {
  if (src == NULL)
    src = "";
  size_t n = strlen(src);
  if (n >= cap)
    return client__fail(err, DFNET_STATUS_INVALID_ARGUMENT, "%s is %zu bytes, at most %zu", what, n,
                        cap - 1);
  memcpy(dst, src, n + 1);
  return DFNET_STATUS_OK;
}
