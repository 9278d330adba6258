/* dfnet CLI: `power on|off|cycle|get TARGET` — a board's power switch through
 * dfnet.hw.power.Power (proto/dfnet/hw/power.proto; drivers/power), labgrid-client's
 * `power` verb. One skeleton for the four: the method, and Cycle's off time. */
#include <stdio.h>
#include <string.h>

#include "clients/cli/cli.h"

#define POWER_DEADLINE_MS 30000u /* a Cycle waits its off time between two switches */

typedef struct power_cmd {
  cli_unary_t call; /* first: cli__unary_request */
  uint64_t off_ms;  /* cycle: --off */
  bool cycle;
} power_cmd_t;

static int power_prepare(cli_run_t *run) {
  power_cmd_t *s = run->ctx;
  int rc = cli__unary_new(&s->call);
  if (rc == CLI_EXIT_OK && s->cycle && s->off_ms != 0)
    cli__pb_varint(s->call.pb, 1, s->off_ms); /* CycleRequest.off_ms */
  if (s->cycle && s->call.deadline_ms == POWER_DEADLINE_MS && s->off_ms + 10000 > POWER_DEADLINE_MS)
    s->call.deadline_ms = (uint32_t)s->off_ms + 10000; /* the default: two switches after it */
  return rc;
}

/* PowerState: state (1), changed_unix_ms (2), backend (3), address (4). */
typedef struct power_state {
  const char *state;
  uint64_t changed_ms;
  char backend[32], address[200];
} power_state_t;

static int power_decode(const cli_run_t *run, power_state_t *out) {
  const power_cmd_t *s = run->ctx;
  static const char *const states[] = {"unknown", "on", "off"};
  uint64_t state = 0;
  const uint8_t *text;
  size_t len;
  memset(out, 0, sizeof *out);
  if (cli__pb_find_varint(s->call.reply, s->call.reply_len, 1, &state) < 0 || state > 2 ||
      cli__pb_find_varint(s->call.reply, s->call.reply_len, 2, &out->changed_ms) < 0)
    return cli__fail(DFNET_STATUS_DATA_LOSS, "malformed PowerState (%zu bytes)", s->call.reply_len);
  out->state = states[state];
  if (cli__pb_find_bytes(s->call.reply, s->call.reply_len, 3, &text, &len) > 0)
    snprintf(out->backend, sizeof out->backend, "%.*s", (int)len, (const char *)text);
  if (cli__pb_find_bytes(s->call.reply, s->call.reply_len, 4, &text, &len) > 0)
    snprintf(out->address, sizeof out->address, "%.*s", (int)len, (const char *)text);
  return CLI_EXIT_OK;
}

static cJSON *power_json(cli_run_t *run) {
  power_state_t p;
  if (power_decode(run, &p) != CLI_EXIT_OK)
    return NULL;
  cJSON *doc = cJSON_CreateObject();
  cJSON_AddStringToObject(doc, "target", run->args[0]);
  cJSON_AddStringToObject(doc, "state", p.state);
  cJSON_AddItemToObject(doc, "changed", cli__json_time(p.changed_ms));
  cJSON_AddStringToObject(doc, "backend", p.backend);
  cJSON_AddStringToObject(doc, "address", p.address);
  return doc;
}

static int power_print(cli_run_t *run) {
  power_state_t p;
  int rc = power_decode(run, &p);
  if (rc != CLI_EXIT_OK)
    return rc;
  char when[40] = "";
  if (p.changed_ms != 0)
    cli__time_str(p.changed_ms, when, sizeof when);
  printf("%s: %s%s%s (%s %s)\n", run->args[0], p.state, p.changed_ms != 0 ? " since " : "", when,
         p.backend, p.address);
  return CLI_EXIT_OK;
}

/* One verb: its method, usage line and help. */
typedef struct power_verb {
  const char *method, *usage, *about;
  bool cycle;
} power_verb_t;

static const power_verb_t verbs[] = {
    {"/dfnet.hw.power.Power/On", "power on TARGET [--json] [--timeout MS]",
     "Switch a board's power on, then read the state back (/dfnet.hw.power.Power/On).", false},
    {"/dfnet.hw.power.Power/Off", "power off TARGET [--json] [--timeout MS]",
     "Switch a board's power off, then read the state back (/dfnet.hw.power.Power/Off).", false},
    {"/dfnet.hw.power.Power/Cycle", "power cycle TARGET [--off MS] [--json] [--timeout MS]",
     "Switch a board's power off, wait (--off, default 2000 ms), switch it on and read the state "
     "back (/dfnet.hw.power.Power/Cycle).",
     true},
    {"/dfnet.hw.power.Power/Get", "power get TARGET [--json] [--timeout MS]",
     "Read a board's power state and when it last changed (/dfnet.hw.power.Power/Get).", false},
};

static int power_command(int argc, char **argv, const power_verb_t *v) {
  static const cli_command_ops_t ops = {power_prepare, cli__unary_request, power_json, power_print,
                                        cli__unary_release};
  power_cmd_t s = {.call = {.method = v->method, .deadline_ms = POWER_DEADLINE_MS},
                   .cycle = v->cycle};
  bool json = false;
  const cli_option_t cycle_opts[] = {
      {"off", 0, CLI_OPT_UINT, &s.off_ms, 1, 600000, "MS", "how long the power stays off (2000)"},
      {"timeout", 't', CLI_OPT_UINT, &s.call.deadline_ms, 1, 86400000, "MS",
       "the call's deadline (default 30000)"},
      CLI_OPT_JSON(&json),
      CLI_OPT_END};
  const cli_syntax_t syn = {.usage = v->usage,
                            .about = v->about,
                            .options = v->cycle ? cycle_opts : cycle_opts + 1,
                            .min_args = 1,
                            .max_args = 1,
                            .args_help = CLI_TARGET_HELP("the switch's", "power")};
  return cli__run(argc, argv, &syn, &ops, &s);
}

int cmd_power_on(int argc, char **argv) { return power_command(argc, argv, &verbs[0]); }
int cmd_power_off(int argc, char **argv) { return power_command(argc, argv, &verbs[1]); }
int cmd_power_cycle(int argc, char **argv) { return power_command(argc, argv, &verbs[2]); }
int cmd_power_get(int argc, char **argv) { return power_command(argc, argv, &verbs[3]); }
