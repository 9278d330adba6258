/* A raw websocket client for tests (raw_ws.h). */
#include "raw_ws.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls_fixture.h"

struct raw_ws {
  fixture_tls_t *tls;
  uint8_t buf[65536]; /* bytes read and not used yet */
  size_t have, off;
};

static int fill(raw_ws_t *w) {
  if (w->off > 0) {
    memmove(w->buf, w->buf + w->off, w->have - w->off);
    w->have -= w->off;
    w->off = 0;
  }
  if (w->have == sizeof w->buf)
    return -1;
  int n = fixture_tls_read(w->tls, w->buf + w->have, sizeof w->buf - w->have);
  if (n <= 0)
    return n == -2 ? -2 : -1;
  w->have += (size_t)n;
  return 0;
}

/* Make sure n bytes are buffered at w->off. */
static int need(raw_ws_t *w, size_t n) {
  while (w->have - w->off < n) {
    int rc = fill(w);
    if (rc != 0)
      return rc;
  }
  return 0;
}

raw_ws_t *raw_ws_open(uint16_t port, const char *ca, const char *cert, const char *key,
                      const char *subprotocol, unsigned timeout_ms, int *http) {
  if (http)
    *http = 0;
  int err = 0;
  raw_ws_t *w = calloc(1, sizeof *w);
  if (w == NULL || (w->tls = fixture_tls_connect(port, ca, cert, key, 3, &err)) == NULL) {
    free(w);
    return NULL;
  }
  fixture_tls_set_timeout(w->tls, timeout_ms);
  char req[512];
  snprintf(req, sizeof req,
           "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: %s\r\n\r\n",
           subprotocol);
  if (fixture_tls_write(w->tls, req, strlen(req)) != 0)
    goto fail;
  char *end = NULL;
  while (end == NULL) {
    if (fill(w) != 0)
      goto fail;
    w->buf[w->have < sizeof w->buf ? w->have : sizeof w->buf - 1] = '\0';
    end = strstr((char *)w->buf, "\r\n\r\n");
  }
  int status = 0;
  sscanf((char *)w->buf, "HTTP/1.1 %d", &status);
  if (http)
    *http = status;
  w->off = (size_t)(end + 4 - (char *)w->buf);
  if (status != 101)
    goto fail;
  return w;
fail:
  raw_ws_close(w);
  return NULL;
}

int raw_ws_send_frame(raw_ws_t *w, int opcode, const void *data, size_t len, bool masked, int rsv) {
  uint8_t *f = malloc(len + 14);
  if (f == NULL)
    return -1;
  size_t h = 0;
  f[h++] = (uint8_t)(0x80 | (rsv & 7) << 4 | (opcode & 0x0f));
  uint8_t m = masked ? 0x80 : 0;
  if (len < 126) {
    f[h++] = (uint8_t)(m | len);
  } else if (len < 65536) {
    f[h++] = m | 126;
    f[h++] = (uint8_t)(len >> 8);
    f[h++] = (uint8_t)len;
  } else {
    f[h++] = m | 127;
    for (int i = 7; i >= 0; i--)
      f[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
  if (masked) {
    memcpy(f + h, key, 4);
    h += 4;
  }
  for (size_t i = 0; i < len; i++)
    f[h + i] = ((const uint8_t *)data)[i] ^ (masked ? key[i & 3] : 0);
  int rc = fixture_tls_write(w->tls, f, h + len);
  free(f);
  return rc;
}

int raw_ws_send_env(raw_ws_t *w, dfnet_envelope_t *env) {
  size_t cap = 0, len = 0;
  const char *err = NULL;
  if (dfnet_envelope_encoded_size(env, &cap, &err) != DFNET_STATUS_OK)
    return -1;
  uint8_t *buf = malloc(cap ? cap : 1);
  if (buf == NULL || dfnet_envelope_encode(env, buf, cap, &len, &err) != DFNET_STATUS_OK) {
    free(buf);
    return -1;
  }
  int rc = raw_ws_send_frame(w, 2, buf, len, true, 0);
  free(buf);
  return rc;
}

int raw_ws_read_frame(raw_ws_t *w, uint8_t **data, size_t *len) {
  *data = NULL;
  *len = 0;
  int rc = need(w, 2);
  if (rc != 0)
    return rc;
  const uint8_t *p = w->buf + w->off;
  int opcode = p[0] & 0x0f;
  bool masked = p[1] & 0x80;
  uint64_t n = p[1] & 0x7f;
  size_t h = 2;
  if (n == 126 || n == 127) {
    size_t ext = n == 126 ? 2 : 8;
    if ((rc = need(w, 2 + ext)) != 0)
      return rc;
    p = w->buf + w->off;
    n = 0;
    for (size_t i = 0; i < ext; i++)
      n = n << 8 | p[2 + i];
    h += ext;
  }
  if (masked)
    h += 4;
  if (n > sizeof w->buf - h || (rc = need(w, h + (size_t)n)) != 0)
    return rc ? rc : -1;
  p = w->buf + w->off;
  if (n > 0) {
    *data = malloc((size_t)n);
    if (*data == NULL)
      return -1;
    for (size_t i = 0; i < n; i++)
      (*data)[i] = p[h + i] ^ (masked ? p[h - 4 + (i & 3)] : 0);
  }
  *len = (size_t)n;
  w->off += h + (size_t)n;
  return opcode;
}

int raw_ws_read_env(raw_ws_t *w, dfnet_envelope_t *env, int *close_code) {
  if (close_code)
    *close_code = 0;
  for (;;) {
    uint8_t *data;
    size_t len;
    int op = raw_ws_read_frame(w, &data, &len);
    if (op < 0)
      return op;
    if (op == 9) { /* ping: pong with the same bytes */
      raw_ws_send_frame(w, 10, data, len, true, 0);
      free(data);
      continue;
    }
    if (op == 10) {
      free(data);
      continue;
    }
    if (op == 8) {
      if (close_code && len >= 2)
        *close_code = data[0] << 8 | data[1];
      free(data);
      return -1;
    }
    const char *err = NULL;
    dfnet_status_t st = dfnet_envelope_decode(data, len, 4u << 20, env, &err);
    free(data);
    return st == DFNET_STATUS_OK ? 0 : -3;
  }
}

void raw_ws_close(raw_ws_t *w) {
  if (w == NULL)
    return;
  fixture_tls_close(w->tls);
  free(w);
}
