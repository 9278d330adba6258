/* dfnet-host: renewing this host's certificate over its session (agent.h
 * agent__renew_schedule; issue 23 item 3; docs/architecture.md "Transport and trust"): the
 * renewer of lib/renewer.h on the agent's client endpoint and its --cert and --key files.
 */
#include "host/agent/agent.h"
#include "lib/log.h"
#include "lib/renewer.h"

void agent__renew_schedule(agent_t *a) {
  if (a->renewer == NULL) {
    dfnet_renewer_config_t cfg = {.t = a->t,
                                  .endpoint = a->endpoint,
                                  .cert_file = a->opt.cert_file,
                                  .key_file = a->opt.key_file,
                                  .subject = a->host_name};
    dfnet_status_t st = dfnet_renewer_new(&cfg, &a->renewer);
    if (st != DFNET_STATUS_OK) {
      DFNET_LOGW(AGENT_SUBSYS, a->host_name, "no certificate renewal: %s", dfnet_status_str(st));
      return;
    }
  }
  dfnet_renewer_welcomed(a->renewer, a->session);
}
