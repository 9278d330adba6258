/* dfnet-manager: `dfnet-manager issue` records what it issued (manager/cert.h; issue 23 item
 * 4): the new certificate's serial, name, role and not-after go into the state directory's
 * store, marked issued, so that `dfnet cert list` shows it before it is ever used. */
#include <stdio.h>

#include "lib/fileio.h"
#include "lib/pki.h"
#include "manager/cert.h"
#include "manager/store.h"

dfnet_status_t cert__record_issued(const char *state_dir, const char *crt_path, char *err,
                                   size_t err_size) {
  dfnet_pki_cert_t *cert = NULL;
  dfnet_pki_cert_info_t info;
  dfnet_status_t st = dfnet_pki_cert_load(crt_path, &cert);
  if (st == DFNET_STATUS_OK)
    st = dfnet_pki_cert_info(cert, &info);
  dfnet_pki_cert_free(cert);
  if (st != DFNET_STATUS_OK) {
    dfnet_why_set(err, err_size, "%s: %s (see the log)", crt_path, dfnet_status_str(st));
    return st;
  }
  store_t *store = NULL;
  if ((st = store__open(state_dir, &store, err, err_size)) != DFNET_STATUS_OK)
    return st;
  store_cert_t c = {.serial = info.serial_hex,
                    .name = info.cn,
                    .role = dfnet_pki_role_str(info.role),
                    .not_after_ms = (uint64_t)(info.not_after > 0 ? info.not_after : 0) * 1000u};
  st = store__cert_issued(store, &c, err, err_size);
  store__close(store);
  return st;
}
