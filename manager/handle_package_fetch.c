/* dfnet-manager: PackageFetch from a host agent: one PackageChunk of a stored package, its
 * bytes in bulk (docs/architecture.md "Host session protocol" 4). NOT_FOUND for an unknown
 * digest, OUT_OF_RANGE for an offset past the end. */
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "manager/manager.h"

void handle__package_fetch(mgr_t *m, mgr_session_t *s, const dfnet_envelope_t *env) {
  const dfnet_v1_PackageFetch *f = &env->pb.msg.package_fetch;
  uint64_t id = env->pb.id;
  size_t max = f->max_bytes == 0 || f->max_bytes > MGR_CHUNK_MAX ? MGR_CHUNK_MAX : f->max_bytes;
  uint8_t *buf = malloc(max);
  if (buf == NULL) {
    sessions__reply_status(m, s->id, id, DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  size_t got = 0;
  uint64_t total = 0;
  dfnet_status_t st = package_store__read(m, f->digest, f->offset, buf, max, &got, &total);
  if (st != DFNET_STATUS_OK) {
    char hex[DFNET_PACKAGE_DIGEST_HEX_SIZE];
    dfnet_package_digest_hex(f->digest, hex);
    sessions__reply_status(m, s->id, id, st, "package %s: %s", hex,
                           st == DFNET_STATUS_NOT_FOUND ? "not in the store"
                                                        : "offset past the end or unreadable");
    goto free_buf;
  }
  dfnet_envelope_t *env_out = mgr__env(m);
  env_out->pb.id = id;
  env_out->pb.which_msg = dfnet_v1_Envelope_package_chunk_tag;
  dfnet_v1_PackageChunk *c = &env_out->pb.msg.package_chunk;
  memcpy(c->digest, f->digest, sizeof c->digest);
  c->offset = f->offset;
  c->total_size = total;
  c->last = f->offset + got >= total;
  env_out->bulk.data = buf;
  env_out->bulk.size = got;
  st = dfnet_transport_send(m->transport, s->id, env_out, 0);
  if (st != DFNET_STATUS_OK)
    sessions__reply_status(m, s->id, id, st, "chunk not sent");
free_buf:
  free(buf);
}
