/* dfnet CLI: how the trust commands (trust.h) query the manager through libdfnet-client's
 * query path: a listing kept whole, one answer kept. */
#include <stdlib.h>
#include <string.h>

#include "clients/cli/trust.h"

dfnet_status_t cli__trust_list(dfnet_client_t *c, pb_size_t request_tag, client_kept_t *k,
                               dfnet_client_error_t *err) {
  dfnet_envelope_t *req = client__envelope_new(request_tag, err);
  dfnet_status_t st = req != NULL ? client__query(c, req, true, 0, client__keep_item, k, err)
                                  : DFNET_STATUS_RESOURCE_EXHAUSTED;
  free(req);
  return st;
}

dfnet_status_t cli__keep_answer(void *ctx, const dfnet_envelope_t *env) {
  const cli_answer_t *a = ctx;
  if (env->pb.which_msg != a->tag)
    return DFNET_STATUS_INTERNAL;
  memcpy(a->dest, &env->pb.msg, a->size); /* every member of the union starts there */
  return DFNET_STATUS_OK;
}
