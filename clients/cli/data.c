/* dfnet CLI: a command's bytes on the command line — the request's from --data-hex or
 * --data-file (call, usb control, usb bulk-out ...), and how bytes read from a device are
 * shown (rng read, usb control IN, usb bulk-in ...): --out FILE, raw bytes when stdout is a
 * pipe, hex on a terminal or with --hex, or in the --json document. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"

int cli__payload_check(const cli_payload_t *p) {
  if (p->hex != NULL && p->file != NULL)
    return cli__usage("--data-hex and --data-file exclude each other");
  return CLI_EXIT_OK;
}

int cli__payload_load(cli_payload_t *p, size_t max, const char *too_big) {
  int rc = cli__payload_check(p);
  if (rc != CLI_EXIT_OK)
    return rc;
  if (p->hex != NULL && cli__unhex(p->hex, &p->data, &p->len) != 0)
    return cli__usage("--data-hex: '%s' is not an even number of hex digits", p->hex);
  if (p->file != NULL && cli__read_file(p->file, max, &p->data, &p->len) != 0)
    return cli__usage("--data-file %s: %s", p->file,
                      errno == EFBIG && too_big != NULL ? too_big : strerror(errno));
  if (p->len > max) {
    free(p->data);
    p->data = NULL;
    return cli__usage("%zu bytes of data: one transfer takes at most %zu", p->len, max);
  }
  return CLI_EXIT_OK;
}

/* The raw bytes into a new file (truncated). */
static int write_out_file(const char *path, const uint8_t *data, size_t len) {
  int rc = CLI_EXIT_OK;
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0 || cli__write_all(fd, data, len) != 0)
    rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "%s: %s", path, strerror(errno));
  if (fd >= 0 && close(fd) != 0 && rc == CLI_EXIT_OK)
    rc = cli__fail(DFNET_STATUS_UNAVAILABLE, "%s: %s", path, strerror(errno));
  return rc;
}

int cli__bytes_print(const cli_bytes_out_t *o, const uint8_t *data, size_t len, cJSON *doc) {
  if (o->out_file != NULL) {
    cJSON_Delete(doc);
    return write_out_file(o->out_file, data, len);
  }
  if (!o->json && !o->hex && o->raw_when_piped && !isatty(STDOUT_FILENO)) {
    cJSON_Delete(doc);
    if (cli__write_all(STDOUT_FILENO, data, len) != 0)
      return cli__fail(DFNET_STATUS_UNAVAILABLE, "stdout: %s", strerror(errno));
    return CLI_EXIT_OK;
  }
  char *h = cli__hex(data ? data : (const uint8_t *)"", len);
  if (h == NULL) {
    cJSON_Delete(doc);
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  }
  int rc = CLI_EXIT_OK;
  if (o->json) {
    cJSON_AddStringToObject(doc, "hex", h);
    rc = cli__json_print(doc);
  } else {
    cJSON_Delete(doc);
    printf("%s\n", h);
  }
  free(h);
  return rc;
}
