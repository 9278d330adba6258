/* power_switch: the backends by name, and a switch read from the node's properties
 * (power_switch.h). */
#include "drivers/power/power_switch.h"

#include <stdio.h>
#include <string.h>

#include "drivers/common/drvkit.h"

const power_backend_t *power_backend_find(const char *name) {
  static const power_backend_t *const all[] = {&power_backend_tasmota, &power_backend_shelly_gen1,
                                               &power_backend_shelly_gen2, &power_backend_command};
  for (size_t i = 0; name != NULL && i < sizeof all / sizeof all[0]; i++)
    if (strcmp(all[i]->name, name) == 0)
      return all[i];
  return NULL;
}

const char *power_state_str(power_state_t state) {
  return state == POWER_ON ? "on" : state == POWER_OFF ? "off" : "unknown";
}

dfnet_status_t power_switch_from_node(const dfnet_driver_t *driver, const atomic_bool *abort,
                                      power_switch_t *sw, char *why, size_t why_size) {
  memset(sw, 0, sizeof *sw);
  sw->abort = abort;
  const char *name = drvkit__prop_string(driver, POWER_PROP_BACKEND);
  if ((sw->backend = power_backend_find(name)) == NULL) {
    snprintf(why, why_size, "%s \"%s\": not one of tasmota, shelly-gen1, shelly-gen2, command",
             POWER_PROP_BACKEND, name != NULL ? name : "(absent)");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (!drvkit__prop_uint(driver, 0, POWER_PROP_INDEX, &sw->index))
    sw->index = sw->backend->default_index;
  if (sw->backend->http) {
    const char *address = drvkit__prop_string(driver, POWER_PROP_ADDRESS);
    if (address == NULL) {
      snprintf(why, why_size, "backend %s needs %s", sw->backend->name, POWER_PROP_ADDRESS);
      return DFNET_STATUS_FAILED_PRECONDITION;
    }
    dfnet_status_t st = http_url_parse(address, &sw->url, why, why_size);
    if (st != DFNET_STATUS_OK)
      return DFNET_STATUS_FAILED_PRECONDITION;
    snprintf(sw->address, sizeof sw->address, "http://%s:%u%s", sw->url.host, sw->url.port,
             sw->url.prefix);
    return DFNET_STATUS_OK;
  }
  sw->cmd_on = drvkit__prop_string(driver, POWER_PROP_ON);
  sw->cmd_off = drvkit__prop_string(driver, POWER_PROP_OFF);
  sw->cmd_get = drvkit__prop_string(driver, POWER_PROP_GET);
  if (sw->cmd_on == NULL || sw->cmd_off == NULL) {
    snprintf(why, why_size, "backend command needs %s and %s", POWER_PROP_ON, POWER_PROP_OFF);
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  snprintf(sw->address, sizeof sw->address, "commands of %s (relay %u)",
           dfnet_driver_node_moniker(driver), sw->index);
  return DFNET_STATUS_OK;
}
