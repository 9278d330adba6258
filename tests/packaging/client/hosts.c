/* A client of libdfnet-client built against the installed prefix (tests/packaging/): with
 * DFNET_URL, DFNET_CERT, DFNET_KEY and DFNET_CA it lists the fleet's hosts; without, it
 * connects with files that do not exist and prints the status the library returns. */
#include <dfnet/client.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char *url = getenv("DFNET_URL");
  dfnet_client_options_t o = {.url = url ? url : "wss://127.0.0.1:7443",
                              .cert_file = url ? getenv("DFNET_CERT") : "/nonexistent.crt",
                              .key_file = url ? getenv("DFNET_KEY") : "/nonexistent.key",
                              .ca_file = url ? getenv("DFNET_CA") : "/nonexistent-ca.crt",
                              .connect_timeout_ms = 2000};
  dfnet_client_t *c = NULL;
  dfnet_client_error_t err;
  dfnet_status_t st = dfnet_client_connect(&o, &c, &err);
  printf("connect: %s\n", dfnet_status_str(st));
  if (st != DFNET_STATUS_OK)
    return st == DFNET_STATUS_NOT_FOUND && url == NULL ? 0 : 1;
  dfnet_client_host_list_t *hosts = NULL;
  st = dfnet_client_list_hosts(c, NULL, &hosts, &err);
  if (st == DFNET_STATUS_OK) {
    printf("%zu hosts\n", hosts->count);
    dfnet_client_host_list_free(hosts);
  }
  dfnet_client_close(c);
  return st == DFNET_STATUS_OK ? 0 : 1;
}
