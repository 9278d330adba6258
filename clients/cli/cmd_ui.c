/* `dfnet ui [--listen ADDR:PORT]`: a web page of the fleet (issue 24 item 5; docs/ui.md),
 * served the way `kubectl proxy` serves the API: the CLI connects to the manager with the
 * user's own certificate and settings, as every command does, and answers a browser on a
 * plain HTTP endpoint of loopback. The browser never holds a certificate; it needs the
 * random token printed in the URL (cmd_ui_http.c). Threads and files: cmd_ui.h. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"
#include "clients/cli/cmd_ui.h"
#include "lib/hex.h"
#include "lib/pki.h"

#define UI_LISTEN_DEFAULT "127.0.0.1:8080"

/* "ADDR:PORT" ("[::1]:8080" for IPv6) into addr[cap] and *port (0..65535, 0: any free). */
static int parse_listen(const char *text, char *addr, size_t cap, uint16_t *port) {
  const char *colon = strrchr(text, ':');
  if (colon == NULL || colon == text || colon[1] == '\0')
    return cli__usage("--listen %s: expected ADDR:PORT (127.0.0.1:8080)", text);
  const char *a = text;
  size_t alen = (size_t)(colon - text);
  if (a[0] == '[' && alen >= 2 && a[alen - 1] == ']') { /* [::1] */
    a++;
    alen -= 2;
  }
  if (alen == 0 || alen >= cap)
    return cli__usage("--listen %s: bad address", text);
  memcpy(addr, a, alen);
  addr[alen] = '\0';
  char *end;
  errno = 0;
  unsigned long p = strtoul(colon + 1, &end, 10);
  if (errno != 0 || *end != '\0' || p > 65535 || colon[1] == '-' || colon[1] == '+')
    return cli__usage("--listen %s: the port must be 0..65535", text);
  *port = (uint16_t)p;
  return CLI_EXIT_OK;
}

/* UI_TOKEN_BYTES of dfnet_pki_random (lib/pki.h "Secrets") as lower-case hex into
 * ui->token. */
static int make_token(cli_ui_t *ui) {
  uint8_t raw[UI_TOKEN_BYTES];
  dfnet_status_t st = dfnet_pki_random(raw, sizeof raw);
  if (st != DFNET_STATUS_OK)
    return cli__fail(st, "no random bytes for the token");
  dfnet_hex_encode(raw, sizeof raw, ui->token);
  return CLI_EXIT_OK;
}

static bool is_loopback(const char *addr) {
  return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0 ||
         strcmp(addr, "localhost") == 0;
}

/* The HTTP endpoint on its own transport (its own service thread). */
static int listen_http(cli_ui_t *ui, const char *addr, uint16_t want, uint16_t *port) {
  if (dfnet_transport_create(&ui->transport) != DFNET_STATUS_OK)
    return cli__fail(DFNET_STATUS_INTERNAL, "cannot create the HTTP transport");
  dfnet_http_server_config_t cfg = {.bind_address = addr,
                                    .port = want,
                                    .on_http = ui__on_http,
                                    .on_http_gone = ui__on_http_gone,
                                    .user = ui};
  dfnet_status_t st = dfnet_transport_listen_http(ui->transport, &cfg, NULL, port);
  if (st != DFNET_STATUS_OK)
    return cli__fail(st, "cannot listen on %s:%u (in use, or not an address of this machine)", addr,
                     (unsigned)want);
  const bool v6 = strchr(addr, ':') != NULL;
  snprintf(ui->hosts[0], sizeof ui->hosts[0], "%s%s%s:%u", v6 ? "[" : "", addr, v6 ? "]" : "",
           (unsigned)*port);
  if (is_loopback(addr)) {
    snprintf(ui->hosts[1], sizeof ui->hosts[1], "127.0.0.1:%u", (unsigned)*port);
    snprintf(ui->hosts[2], sizeof ui->hosts[2], "localhost:%u", (unsigned)*port);
    snprintf(ui->hosts[3], sizeof ui->hosts[3], "[::1]:%u", (unsigned)*port);
  }
  if (dfnet_transport_start(ui->transport) != DFNET_STATUS_OK)
    return cli__fail(DFNET_STATUS_INTERNAL, "cannot start the HTTP transport");
  return CLI_EXIT_OK;
}

/* Block until SIGINT, SIGTERM or SIGHUP. */
static int wait_for_signal(void) {
  int wake[2];
  if (pipe(wake) != 0)
    return cli__fail(DFNET_STATUS_INTERNAL, "pipe: %s", strerror(errno));
  cli__stop_on_signals(wake[1]);
  struct pollfd p = {.fd = wake[0], .events = POLLIN};
  while (cli__stop_signal() == 0)
    if (poll(&p, 1, -1) < 0 && errno != EINTR)
      break;
  cli__stop_wake_off();
  close(wake[0]);
  close(wake[1]);
  return CLI_EXIT_OK;
}

/* Serve until a signal. Stops in the order that keeps every thread's peer alive while it
 * may still call it: the worker (it answers through the transport and calls the client),
 * then the client (its close runs the watch's end; nothing writes to a stream after), then
 * the transport (it ends the streams and the requests left). */
static int serve(cli_ui_t *ui, const char *addr, uint16_t want) {
  uint16_t port = 0;
  int rc = make_token(ui);
  if (rc == CLI_EXIT_OK)
    rc = cli__connect(&ui->client);
  ui->manager_url = cli_globals.manager;
  if (rc == CLI_EXIT_OK)
    rc = listen_http(ui, addr, want, &port);
  if (rc == CLI_EXIT_OK)
    rc = ui__worker_start(ui);
  if (rc == CLI_EXIT_OK)
    ui__events_keepalive_start(ui);
  dfnet_client_error_t err;
  if (rc == CLI_EXIT_OK && ui__watch_start(ui, &err) != DFNET_STATUS_OK)
    rc = cli__fail_err(&err);
  if (rc == CLI_EXIT_OK) {
    if (!is_loopback(addr))
      fprintf(stderr,
              "dfnet ui: warning: %s is not loopback: other machines reach the page over plain "
              "HTTP, where the token can be read on the way\n",
              addr);
    const bool v6 = strchr(addr, ':') != NULL;
    printf("dfnet ui: http://%s%s%s:%u/?token=%s\n", v6 ? "[" : "", addr, v6 ? "]" : "",
           (unsigned)port, ui->token);
    fflush(stdout);
    rc = wait_for_signal();
  }
  ui__worker_stop(ui);
  dfnet_client_close(ui->client);
  ui->client = NULL;
  dfnet_transport_destroy(ui->transport);
  ui->transport = NULL;
  ui__events_free(ui);
  return rc;
}

int cmd_ui(int argc, char **argv) {
  const char *listen = UI_LISTEN_DEFAULT;
  const cli_option_t opts[] = {{"listen", 0, CLI_OPT_STRING, &listen, 0, 0, "ADDR:PORT",
                                "where the page is served (default " UI_LISTEN_DEFAULT
                                "; port 0: any free port)"},
                               CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "ui [--listen ADDR:PORT]",
      .about =
          "Serve a web page of the fleet, live: hosts, each host's node tree with bind "
          "state and why a node is unbound, boards, leases and the queue, and the event "
          "feed. The page speaks to the manager through this command, with your own "
          "certificate; the browser needs none, but the random token in the URL printed "
          "on stdout (\"dfnet ui: http://127.0.0.1:8080/?token=...\"). Serves until Ctrl-C. "
          "Security: docs/ui.md.",
      .options = opts};
  const char *args[1];
  size_t nargs = 0;
  int rc = cli__parse(argc, argv, &syn, args, &nargs);
  if (rc != CLI_EXIT_OK)
    return rc < 0 ? CLI_EXIT_OK : rc;
  char addr[64];
  uint16_t port = 0;
  rc = parse_listen(listen, addr, sizeof addr, &port);
  if (rc != CLI_EXIT_OK)
    return rc;
  cli_ui_t *ui = calloc(1, sizeof *ui);
  if (ui == NULL)
    return cli__fail(DFNET_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  pthread_mutex_init(&ui->lock, NULL);
  pthread_cond_init(&ui->wake, NULL);
  rc = serve(ui, addr, port);
  pthread_cond_destroy(&ui->wake);
  pthread_mutex_destroy(&ui->lock);
  free(ui);
  return rc;
}
