/* The networked plugs' HTTP APIs (power_switch.h). Each is a table row: the paths that
 * switch relay N on and off and read it, and how to read the state from the JSON answer.
 *
 *  Tasmota (tasmota.github.io/docs/Commands, "Power<x>"; the web API /cm?cmnd=):
 *    /cm?cmnd=Power<N>%20On | %20Off | (nothing: read) -> {"POWER<N>":"ON"}; a device with
 *    one relay answers {"POWER":"ON"}. Relays count from 1.
 *  Shelly Gen1 (shelly-api-docs.shelly.cloud/gen1, "/relay/{index}"):
 *    /relay/<N>?turn=on | off, /relay/<N> -> {"ison":true, ...}. Relays count from 0.
 *  Shelly Gen2+ RPC over HTTP GET (shelly-api-docs.shelly.cloud/gen2, "Switch"):
 *    /rpc/Switch.Set?id=<N>&on=true | false, /rpc/Switch.GetStatus?id=<N>
 *    -> {"id":0, "output":true, ...}. Switches count from 0.
 *
 * A switch is always followed by a read (power.c), so `set` only checks that the plug
 * accepted the command: HTTP 200 and a JSON object.
 */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "drivers/power/power_switch.h"

#define HTTP_BODY_MAX 4096

/* A path with the relay index in the middle: before, the index in decimal, after. */
typedef struct http_path {
  const char *before, *after;
} http_path_t;

/* One plug API. */
typedef struct http_api {
  http_path_t on, off, get;
  /* The state in the answer `doc` for relay `index`; false when it is not there. */
  bool (*parse)(const cJSON *doc, uint32_t index, power_state_t *state);
} http_api_t;

static bool parse_tasmota(const cJSON *doc, uint32_t index, power_state_t *state) {
  char key[24];
  snprintf(key, sizeof key, "POWER%u", index);
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, key);
  if (v == NULL && index == 1)
    v = cJSON_GetObjectItemCaseSensitive(doc, "POWER");
  if (!cJSON_IsString(v))
    return false;
  if (strcmp(v->valuestring, "ON") == 0)
    *state = POWER_ON;
  else if (strcmp(v->valuestring, "OFF") == 0)
    *state = POWER_OFF;
  else
    return false;
  return true;
}

static bool parse_bool_member(const cJSON *doc, const char *member, power_state_t *state) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(doc, member);
  if (!cJSON_IsBool(v))
    return false;
  *state = cJSON_IsTrue(v) ? POWER_ON : POWER_OFF;
  return true;
}

static bool parse_shelly_gen1(const cJSON *doc, uint32_t index, power_state_t *state) {
  (void)index;
  return parse_bool_member(doc, "ison", state);
}

static bool parse_shelly_gen2(const cJSON *doc, uint32_t index, power_state_t *state) {
  (void)index;
  return parse_bool_member(doc, "output", state);
}

static const http_api_t api_tasmota = {{"/cm?cmnd=Power", "%20On"},
                                       {"/cm?cmnd=Power", "%20Off"},
                                       {"/cm?cmnd=Power", ""},
                                       parse_tasmota};
static const http_api_t api_shelly_gen1 = {
    {"/relay/", "?turn=on"}, {"/relay/", "?turn=off"}, {"/relay/", ""}, parse_shelly_gen1};
static const http_api_t api_shelly_gen2 = {{"/rpc/Switch.Set?id=", "&on=true"},
                                           {"/rpc/Switch.Set?id=", "&on=false"},
                                           {"/rpc/Switch.GetStatus?id=", ""},
                                           parse_shelly_gen2};

/* GET `path` for sw's relay and parse the answer as a JSON object into *doc (the caller
 * deletes it). */
static dfnet_status_t request(const power_switch_t *sw, const http_path_t *p, uint32_t timeout_ms,
                              cJSON **doc, char *why, size_t why_size) {
  char path[160], body[HTTP_BODY_MAX];
  snprintf(path, sizeof path, "%s%u%s", p->before, sw->index, p->after);
  int http_status = 0;
  dfnet_status_t st = http_get(&sw->url, path, timeout_ms, sw->abort, body, sizeof body,
                               &http_status, why, why_size);
  if (st != DFNET_STATUS_OK)
    return st == DFNET_STATUS_UNAVAILABLE ? st : DFNET_STATUS_UNAVAILABLE;
  if (http_status != 200) {
    snprintf(why, why_size, "%s%s answered HTTP %d: %.120s", sw->address, path, http_status, body);
    return DFNET_STATUS_UNAVAILABLE;
  }
  *doc = cJSON_Parse(body);
  if (!cJSON_IsObject(*doc)) {
    cJSON_Delete(*doc);
    *doc = NULL;
    snprintf(why, why_size, "%s%s answered what is not a JSON object: %.120s", sw->address, path,
             body);
    return DFNET_STATUS_UNAVAILABLE;
  }
  return DFNET_STATUS_OK;
}

static dfnet_status_t http_set(const power_switch_t *sw, bool on, uint32_t timeout_ms, char *why,
                               size_t why_size) {
  const http_api_t *api = sw->backend->impl;
  cJSON *doc = NULL;
  dfnet_status_t st = request(sw, on ? &api->on : &api->off, timeout_ms, &doc, why, why_size);
  cJSON_Delete(doc);
  return st;
}

static dfnet_status_t http_read(const power_switch_t *sw, power_state_t *state, uint32_t timeout_ms,
                                char *why, size_t why_size) {
  const http_api_t *api = sw->backend->impl;
  cJSON *doc = NULL;
  dfnet_status_t st = request(sw, &api->get, timeout_ms, &doc, why, why_size);
  if (st != DFNET_STATUS_OK)
    return st;
  if (!api->parse(doc, sw->index, state)) {
    char *text = cJSON_PrintUnformatted(doc);
    snprintf(why, why_size, "%s: relay %u's state is not in the answer %.120s", sw->address,
             sw->index, text != NULL ? text : "");
    cJSON_free(text);
    st = DFNET_STATUS_UNAVAILABLE;
  }
  cJSON_Delete(doc);
  return st;
}

const power_backend_t power_backend_tasmota = {"tasmota", 1,         true,
                                               http_set,  http_read, &api_tasmota};
const power_backend_t power_backend_shelly_gen1 = {"shelly-gen1", 0,         true,
                                                   http_set,      http_read, &api_shelly_gen1};
const power_backend_t power_backend_shelly_gen2 = {"shelly-gen2", 0,         true,
                                                   http_set,      http_read, &api_shelly_gen2};
