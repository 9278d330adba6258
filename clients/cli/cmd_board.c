/* dfnet CLI: lab boards — `board add|list|show|cycle`. A board is a DFv2 composite node whose
 * parents are a power switch and a serial console, on any hosts: the children the power and
 * serial drivers offer their services to ("outlet", "port": drivers/common/drvkit.h
 * drvkit__offer_child), taken by a composite node spec that presents them as
 * dfnet.lab.ROLE "power" and "console" to the board driver (drivers/board), which serves
 * dfnet.lab.Board (proto/dfnet/lab/board.proto).
 *
 * board.json (role admin): {"name": "rpi4-01", "power": "<the switch's node moniker>",
 *                           "console": "<the serial port's node moniker>"}
 * where the monikers are the device nodes `node list` shows ("dev.lab-a.platform.dut-power").
 * The board node appears below its power parent, named after the board, with class board. */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clients/cli/cli.h"

#define BOARD_DRIVER "/board#meta/board.json" /* a board node's driver URL ends so */
#define M_CYCLE "/dfnet.lab.Board/CycleAndWait"
#define M_STATE "/dfnet.lab.Board/State"
#define BOARD_TARGET_HELP "  NAME     the board's name (`dfnet board list`)\n"

/* ---- board add ----------------------------------------------------------------------- */

typedef struct board_add {
  char name[129], power[128], console[128];
} board_add_t;

/* A string member of the file into out (1..cap-1 bytes). */
static bool member(const cJSON *doc, const char *file, const char *key, char *out, size_t cap,
                   int *rc) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
  if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= cap) {
    *rc = cli__usage("%s: %s: expected a string of 1..%zu bytes", file, key, cap - 1);
    return false;
  }
  snprintf(out, cap, "%s", v->valuestring);
  return true;
}

static int board_add_prepare(cli_run_t *run) {
  board_add_t *s = run->ctx;
  const char *file = run->args[0];
  uint8_t *text = NULL;
  size_t len = 0;
  if (cli__read_file(file, 65536, &text, &len) != 0)
    return cli__fail(DFNET_STATUS_NOT_FOUND, "%s: %s", file, strerror(errno));
  cJSON *doc = cJSON_ParseWithLength((const char *)text, len);
  free(text);
  int rc = CLI_EXIT_OK;
  if (!cJSON_IsObject(doc)) {
    rc = cli__usage("%s: not a JSON object", file);
  } else {
    const cJSON *m;
    cJSON_ArrayForEach(m, doc) {
      if (strcmp(m->string, "name") != 0 && strcmp(m->string, "power") != 0 &&
          strcmp(m->string, "console") != 0 && strcmp(m->string, "comment") != 0) {
        rc = cli__usage("%s: %s: unknown field (a board has: name, power, console, comment)", file,
                        m->string);
        break;
      }
    }
    if (rc == CLI_EXIT_OK && member(doc, file, "name", s->name, sizeof s->name, &rc) &&
        member(doc, file, "power", s->power, sizeof s->power, &rc) &&
        member(doc, file, "console", s->console, sizeof s->console, &rc) &&
        strchr(s->name, '.') != NULL)
      rc = cli__usage("%s: name: \"%s\" may not contain '.'", file, s->name);
  }
  cJSON_Delete(doc);
  return rc;
}

/* One parent of a board's spec: the child that offers protocol's service (its
 * "<protocol>.DriverTransport" offer), of the device named dfnet.lab.PART = part; the
 * composite sees it as dfnet.lab.ROLE = role. spec points into p. */
typedef struct board_parent {
  char offer_name[64];
  dfnet_client_property_t offer, part, role;
  dfnet_client_bind_rule_t rules[2];
} board_parent_t;

static void board_parent(board_parent_t *p, const char *protocol, const char *part,
                         const char *role, dfnet_client_parent_spec_t *spec) {
  snprintf(p->offer_name, sizeof p->offer_name, "%s.DriverTransport", protocol);
  p->offer =
      (dfnet_client_property_t){.type = DFNET_CLIENT_VALUE_STRING, .str_value = p->offer_name};
  p->part = (dfnet_client_property_t){.type = DFNET_CLIENT_VALUE_STRING, .str_value = part};
  p->role = (dfnet_client_property_t){
      .str_key = "dfnet.lab.ROLE", .type = DFNET_CLIENT_VALUE_STRING, .str_value = role};
  p->rules[0] = (dfnet_client_bind_rule_t){
      .str_key = protocol, .condition = DFNET_CLIENT_ACCEPT, .value_count = 1, .values = &p->offer};
  p->rules[1] = (dfnet_client_bind_rule_t){.str_key = "dfnet.lab.PART",
                                           .condition = DFNET_CLIENT_ACCEPT,
                                           .value_count = 1,
                                           .values = &p->part};
  *spec = (dfnet_client_parent_spec_t){
      .rule_count = 2, .rules = p->rules, .property_count = 1, .properties = &p->role};
}

static int board_add_request(cli_run_t *run) {
  const board_add_t *s = run->ctx;
  /* each parent: the child that offers the service, of that very device */
  board_parent_t power, console;
  dfnet_client_parent_spec_t parents[2];
  board_parent(&power, "dfnet.hw.power.Power", s->power, "power", &parents[0]);
  board_parent(&console, "dfnet.hw.serial.Serial", s->console, "console", &parents[1]);
  dfnet_client_error_t err;
  return cli__status(dfnet_client_add_composite_node_spec(run->client, s->name, parents, 2, &err),
                     &err);
}

static int board_add_print(cli_run_t *run) {
  const board_add_t *s = run->ctx;
  printf("board %s: power %s, console %s (it appears once both are up: dfnet board list)\n",
         s->name, s->power, s->console);
  return CLI_EXIT_OK;
}

int cmd_board_add(int argc, char **argv) {
  static const cli_command_ops_t ops = {board_add_prepare, board_add_request, NULL, board_add_print,
                                        NULL};
  board_add_t s = {0};
  const cli_syntax_t syn = {
      .usage = "board add BOARD.json",
      .about =
          "Define a lab board (role admin): a composite node whose parents are a power "
          "switch and a serial console, on any hosts. BOARD.json: {\"name\": \"rpi4-01\", "
          "\"power\": \"<the switch's node moniker>\", \"console\": \"<the serial port's "
          "node moniker>\"}.",
      .min_args = 1,
      .max_args = 1,
      .args_help = "  BOARD.json  the board: name, power, console\n"};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- finding a board ----------------------------------------------------------------- */

static bool is_board(const dfnet_client_node_t *n) {
  size_t ul = strlen(n->driver_url), bl = strlen(BOARD_DRIVER);
  return ul >= bl && strcmp(n->driver_url + ul - bl, BOARD_DRIVER) == 0;
}

/* Board `name`: its node's moniker into moniker[mcap] and, when port is not NULL, the node
 * of its serial port (the device its console parent, "<device>.port", hangs from) into
 * port[pcap]. CLI_EXIT_OK, or the failure printed (NOT_FOUND: no such board is up). */
static int board_lookup(dfnet_client_t *c, const char *name, char *moniker, size_t mcap, char *port,
                        size_t pcap) {
  dfnet_client_node_list_t *l = NULL;
  dfnet_client_error_t err;
  if (dfnet_client_list_nodes(c, NULL, false, port != NULL, NULL, &l, &err) != DFNET_STATUS_OK)
    return cli__fail_err(&err);
  moniker[0] = '\0';
  for (size_t i = 0; i < l->count && moniker[0] == '\0'; i++) {
    const dfnet_client_node_t *n = &l->items[i];
    if (strcmp(n->name, name) != 0 || !is_board(n) || (port != NULL && n->parent_count < 2))
      continue;
    snprintf(moniker, mcap, "%s", n->moniker);
    if (port != NULL) {
      const char *p = n->parents[1], *dot = strrchr(p, '.');
      snprintf(port, pcap, "%.*s", (int)(dot != NULL ? dot - p : (ptrdiff_t)strlen(p)), p);
    }
  }
  dfnet_client_node_list_free(l);
  if (moniker[0] == '\0')
    return cli__fail(DFNET_STATUS_NOT_FOUND,
                     "no board %s is up (dfnet board list; dfnet composite list shows the "
                     "boards whose parents are not all there)",
                     name);
  return CLI_EXIT_OK;
}

static int board_find(dfnet_client_t *c, const char *name, char *out, size_t cap) {
  return board_lookup(c, name, out, cap, NULL, 0);
}

int cli__board_console(dfnet_client_t *c, const char *name, char *out, size_t cap) {
  char moniker[400];
  return board_lookup(c, name, moniker, sizeof moniker, out, cap);
}

/* ---- board list ---------------------------------------------------------------------- */

typedef struct board_list {
  dfnet_client_node_list_t *nodes;
} board_list_t;

static int board_list_request(cli_run_t *run) {
  board_list_t *s = run->ctx;
  dfnet_client_error_t err;
  return cli__status(dfnet_client_list_nodes(run->client, NULL, false, true, NULL, &s->nodes, &err),
                     &err);
}

cJSON *cli__boards_json(const dfnet_client_node_list_t *nodes) {
  cJSON *doc = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(doc, "boards");
  for (size_t i = 0; i < nodes->count; i++) {
    const dfnet_client_node_t *n = &nodes->items[i];
    if (!is_board(n))
      continue;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", n->name);
    cJSON_AddStringToObject(o, "moniker", n->moniker);
    cJSON_AddItemToObject(o, "parents", cli__json_strings(n->parents, n->parent_count));
    cJSON_AddItemToObject(o, "lease_holder", cli__json_string_or_null(n->lease_holder));
    cJSON_AddItemToArray(arr, o);
  }
  return doc;
}

static cJSON *board_list_json(cli_run_t *run) {
  const board_list_t *s = run->ctx;
  return cli__boards_json(s->nodes);
}

static int board_list_print(cli_run_t *run) {
  const board_list_t *s = run->ctx;
  size_t shown = 0;
  for (size_t i = 0; i < s->nodes->count; i++) {
    const dfnet_client_node_t *n = &s->nodes->items[i];
    if (!is_board(n))
      continue;
    printf("%-16s %s%s%s\n", n->name, n->moniker, n->lease_holder[0] ? "  leased by " : "",
           n->lease_holder);
    for (size_t p = 0; p < n->parent_count; p++)
      printf("  %s %s\n", p == 0 ? "power  " : "console", n->parents[p]);
    shown++;
  }
  if (shown == 0)
    printf("no board is up (dfnet composite list shows those waiting for a parent)\n");
  return CLI_EXIT_OK;
}

int cmd_board_list(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, board_list_request, board_list_json, board_list_print,
                                        cli__release_nodes};
  board_list_t s = {0};
  bool json = false;
  const cli_option_t opts[] = {CLI_OPT_JSON(&json), CLI_OPT_END};
  const cli_syntax_t syn = {.usage = "board list [--json]",
                            .about = "The lab boards that are up: name, node, parents, lease.",
                            .options = opts,
                            .max_args = 0};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- board show ---------------------------------------------------------------------- */

typedef struct board_show {
  cli_unary_t call; /* first: its reply, freed by cli__unary_release */
  char moniker[400];
} board_show_t;

static int board_show_request(cli_run_t *run) {
  board_show_t *s = run->ctx;
  int rc = board_find(run->client, run->args[0], s->moniker, sizeof s->moniker);
  if (rc != CLI_EXIT_OK)
    return rc;
  cli_pb_t pb;
  cli__pb_reset(&pb);
  dfnet_client_error_t err;
  return cli__status(cli__pb_call(run->client, s->moniker, M_STATE, &pb, 30000, &s->call.reply,
                                  &s->call.reply_len, &err),
                     &err);
}

/* BoardState: power (1), power_error (2), last_line (3), console_error (4). */
static void state_field(const board_show_t *s, uint32_t field, char *out, size_t cap) {
  const uint8_t *d = NULL;
  size_t n = 0;
  out[0] = '\0';
  if (cli__pb_find_bytes(s->call.reply, s->call.reply_len, field, &d, &n) > 0)
    snprintf(out, cap, "%.*s", (int)n, (const char *)d);
}

static int board_show_print(cli_run_t *run) {
  const board_show_t *s = run->ctx;
  static const char *const states[] = {"unknown", "on", "off"};
  uint64_t power = 0;
  char power_error[300], last[300], console_error[300];
  (void)cli__pb_find_varint(s->call.reply, s->call.reply_len, 1, &power);
  state_field(s, 2, power_error, sizeof power_error);
  state_field(s, 3, last, sizeof last);
  state_field(s, 4, console_error, sizeof console_error);
  printf("board %s (%s)\n", run->args[0], s->moniker);
  printf("  power:   %s%s%s\n", power_error[0] ? "?" : states[power < 3 ? power : 0],
         power_error[0] ? "  " : "", power_error);
  printf("  console: %s%s%s\n", console_error[0] ? "?" : last, console_error[0] ? "  " : "",
         console_error);
  return CLI_EXIT_OK;
}

int cmd_board_show(int argc, char **argv) {
  static const cli_command_ops_t ops = {NULL, board_show_request, NULL, board_show_print,
                                        cli__unary_release};
  board_show_t s = {0};
  const cli_syntax_t syn = {
      .usage = "board show NAME",
      .about = "A board's state: its power (read from the switch) and its console's last line.",
      .min_args = 1,
      .max_args = 1,
      .args_help = BOARD_TARGET_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}

/* ---- board cycle --------------------------------------------------------------------- */

typedef struct board_cycle {
  cli_stream_wait_t wait; /* first: the call's user serves cli__stream_wait_done */
  const char *expect;
  const char *timeout; /* a duration: 120s */
  uint64_t off_ms;
  uint64_t timeout_ms;
  bool matched;
} board_cycle_t;

static void cycle_item(void *user, dfnet_client_call_id_t id, const uint8_t *msg, size_t len) {
  board_cycle_t *s = user;
  (void)id;
  const uint8_t *data = NULL;
  size_t n = 0;
  uint64_t matched = 0, tail = 0;
  /* the tail item repeats the last 4 KiB, already printed as they came */
  if (cli__pb_find_varint(msg, len, 3, &tail) >= 0 && !tail && /* CycleProgress.tail */
      cli__pb_find_bytes(msg, len, 1, &data, &n) > 0)          /* .console */
    (void)cli__write_all(STDOUT_FILENO, data, n);
  if (cli__pb_find_varint(msg, len, 2, &matched) > 0 && matched) /* .matched */
    s->matched = true;
}

static int cycle_prepare(cli_run_t *run) {
  board_cycle_t *s = run->ctx;
  if (s->timeout != NULL && !cli__duration_parse(s->timeout, 3600000, &s->timeout_ms))
    return cli__usage("--timeout: '%s' is not a duration of at most 1h (120s, 5m)", s->timeout);
  if (strlen(s->expect) == 0 || strlen(s->expect) > 128)
    return cli__usage("--expect: 1..128 bytes");
  return cli__stream_wait_open(&s->wait);
}

static int cycle_request(cli_run_t *run) {
  board_cycle_t *s = run->ctx;
  char moniker[400];
  int rc = board_find(run->client, run->args[0], moniker, sizeof moniker);
  if (rc != CLI_EXIT_OK)
    return rc;
  cli_pb_t pb;
  cli__pb_reset(&pb);
  cli__pb_bytes(&pb, 1, s->expect, strlen(s->expect)); /* CycleAndWaitRequest.pattern */
  cli__pb_varint(&pb, 2, s->timeout_ms);               /* .timeout_ms */
  if (s->off_ms != 0)
    cli__pb_varint(&pb, 3, s->off_ms); /* .off_ms */
  dfnet_status_t st =
      cli__stream_run(&s->wait, run->client, moniker, M_CYCLE, pb.buf, pb.len, cycle_item);
  if (st != DFNET_STATUS_OK)
    return cli__fail(st, "cannot cycle %s", run->args[0]);
  return CLI_EXIT_OK; /* closing the client ends the call */
}

static int cycle_print(cli_run_t *run) {
  const board_cycle_t *s = run->ctx;
  if (cli__stop_signal())
    return CLI_EXIT_FAILED;
  if (s->wait.status != DFNET_STATUS_OK || !s->matched)
    return cli__fail(s->wait.status != DFNET_STATUS_OK ? s->wait.status : DFNET_STATUS_INTERNAL,
                     "board %s: %s", run->args[0],
                     s->wait.message[0] ? s->wait.message : "ended without the pattern");
  fprintf(stderr, "\n[dfnet: board %s: \"%s\" seen]\n", run->args[0], s->expect);
  return CLI_EXIT_OK;
}

static void cycle_release(cli_run_t *run) {
  board_cycle_t *s = run->ctx;
  cli__stream_wait_close(&s->wait);
}

int cmd_board_cycle(int argc, char **argv) {
  static const cli_command_ops_t ops = {cycle_prepare, cycle_request, NULL, cycle_print,
                                        cycle_release};
  board_cycle_t s = {.wait = {.pipe = {-1, -1}}, .expect = "login:"};
  const cli_option_t opts[] = {
      {"expect", 'e', CLI_OPT_STRING, &s.expect, 0, 0, "TEXT",
       "what the console prints once booted (default \"login:\")"},
      {"timeout", 't', CLI_OPT_STRING, &s.timeout, 0, 0, "DURATION",
       "how long to wait for it after power-on (default 120s)"},
      {"off", 0, CLI_OPT_UINT, &s.off_ms, 1, 600000, "MS", "how long the power stays off (2000)"},
      CLI_OPT_END};
  const cli_syntax_t syn = {
      .usage = "board cycle NAME [--expect TEXT] [--timeout DURATION] [--off MS]",
      .about =
          "Power-cycle a board and print its console live until TEXT appears: exit 0 then; "
          "exit 1 with DEADLINE_EXCEEDED when it did not within the timeout.",
      .options = opts,
      .min_args = 1,
      .max_args = 1,
      .args_help = BOARD_TARGET_HELP};
  return cli__run(argc, argv, &syn, &ops, &s);
}
