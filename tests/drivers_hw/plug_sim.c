/* plug_sim: see plug_sim.h. A plain-socket HTTP/1.1 server: it reads a request's head,
 * answers with Connection: close and closes, as the plugs' small web servers do. */
#include "plug_sim.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define PLUG_RELAYS 8
#define PLUG_LOG_MAX 8192

struct plug_sim {
  int listen_fd;
  uint16_t port;
  pthread_t thread;
  int stop_pipe[2];
  pthread_mutex_t mu;
  plug_mode_t mode;
  bool relay[PLUG_RELAYS];
  char log[PLUG_LOG_MAX];
  size_t log_len;
  plug_change_fn on_change;
  void *arg;
};

static void log_target(plug_sim_t *p, const char *target) {
  size_t n = strlen(target);
  if (p->log_len + n + 2 < sizeof p->log) {
    memcpy(p->log + p->log_len, target, n);
    p->log_len += n;
    p->log[p->log_len++] = '\n';
    p->log[p->log_len] = '\0';
  }
}

/* Switch relay r to on (under mu); the change callback runs after the lock is dropped. */
static bool set_relay(plug_sim_t *p, unsigned r, bool on) {
  if (p->mode == PLUG_STUCK || p->relay[r] == on)
    return false;
  p->relay[r] = on;
  return true;
}

/* The answer's body for `target` (under mu). *changed: relay *relay switched. Returns the
 * HTTP status. */
static int route(plug_sim_t *p, const char *target, char *body, size_t cap, unsigned *relay,
                 bool *changed) {
  unsigned r = 0;
  char rest[64] = "";
  *changed = false;
  if (sscanf(target, "/cm?cmnd=Power%u%63s", &r, rest) >= 1 && r < PLUG_RELAYS) {
    if (strcmp(rest, "%20On") == 0)
      *changed = set_relay(p, r, true);
    else if (strcmp(rest, "%20Off") == 0)
      *changed = set_relay(p, r, false);
    else if (rest[0] != '\0')
      return 400;
    snprintf(body, cap, "{\"POWER%u\":\"%s\"}", r, p->relay[r] ? "ON" : "OFF");
  } else if (sscanf(target, "/relay/%u%63s", &r, rest) >= 1 && r < PLUG_RELAYS) {
    if (strcmp(rest, "?turn=on") == 0)
      *changed = set_relay(p, r, true);
    else if (strcmp(rest, "?turn=off") == 0)
      *changed = set_relay(p, r, false);
    else if (rest[0] != '\0')
      return 400;
    snprintf(body, cap, "{\"ison\":%s,\"has_timer\":false,\"source\":\"http\"}",
             p->relay[r] ? "true" : "false");
  } else if (sscanf(target, "/rpc/Switch.Set?id=%u&on=%63s", &r, rest) == 2 && r < PLUG_RELAYS) {
    bool was = p->relay[r];
    *changed = set_relay(p, r, strcmp(rest, "true") == 0);
    snprintf(body, cap, "{\"was_on\":%s}", was ? "true" : "false");
  } else if (sscanf(target, "/rpc/Switch.GetStatus?id=%u", &r) == 1 && r < PLUG_RELAYS) {
    snprintf(body, cap, "{\"id\":%u,\"source\":\"http\",\"output\":%s,\"apower\":0.0}", r,
             p->relay[r] ? "true" : "false");
  } else {
    snprintf(body, cap, "not found");
    return 404;
  }
  *relay = r;
  return 200;
}

static void serve_one(plug_sim_t *p, int fd) {
  char req[2048];
  size_t len = 0;
  while (len + 1 < sizeof req) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    if (poll(&pf, 1, 2000) <= 0)
      return;
    ssize_t n = read(fd, req + len, sizeof req - 1 - len);
    if (n <= 0)
      return;
    len += (size_t)n;
    req[len] = '\0';
    if (strstr(req, "\r\n\r\n") != NULL)
      break;
  }
  char target[512] = "";
  if (sscanf(req, "GET %511s HTTP/1.", target) != 1)
    return;
  char body[256];
  unsigned relay = 0;
  bool changed = false;
  pthread_mutex_lock(&p->mu);
  log_target(p, target);
  plug_mode_t mode = p->mode;
  int status = mode == PLUG_SILENT || mode == PLUG_ERROR_500
                   ? 0
                   : route(p, target, body, sizeof body, &relay, &changed);
  bool now_on = p->relay[relay];
  pthread_mutex_unlock(&p->mu);
  if (changed && p->on_change != NULL)
    p->on_change(p->arg, relay, now_on);
  if (mode == PLUG_SILENT) { /* hold the connection until the client gives up */
    struct pollfd pf[2] = {{.fd = fd, .events = POLLIN}, {.fd = p->stop_pipe[0], .events = POLLIN}};
    (void)poll(pf, 2, 10000);
    return;
  }
  if (mode == PLUG_ERROR_500) {
    status = 500;
    snprintf(body, sizeof body, "internal error");
  } else if (mode == PLUG_GARBAGE) {
    snprintf(body, sizeof body, "<html>Tasmota</html>");
  }
  char head[256];
  int hn = snprintf(head, sizeof head,
                    "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                    "Connection: close\r\n\r\n",
                    status, status == 200 ? "OK" : "Error", strlen(body));
  if (write(fd, head, (size_t)hn) != hn || write(fd, body, strlen(body)) < 0)
    return;
}

static void *plug_main(void *arg) {
  plug_sim_t *p = arg;
  for (;;) {
    struct pollfd pf[2] = {{.fd = p->listen_fd, .events = POLLIN},
                           {.fd = p->stop_pipe[0], .events = POLLIN}};
    if (poll(pf, 2, -1) < 0 && errno != EINTR)
      break;
    if (pf[1].revents != 0)
      break;
    if (!(pf[0].revents & POLLIN))
      continue;
    int fd = accept(p->listen_fd, NULL, NULL);
    if (fd < 0)
      continue;
    serve_one(p, fd);
    close(fd);
  }
  return NULL;
}

plug_sim_t *plug_sim_start(plug_change_fn on_change, void *arg) {
  return plug_sim_start_at("127.0.0.1", on_change, arg);
}

plug_sim_t *plug_sim_start_at(const char *addr, plug_change_fn on_change, void *arg) {
  plug_sim_t *p = calloc(1, sizeof *p);
  if (p == NULL)
    return NULL;
  p->on_change = on_change;
  p->arg = arg;
  pthread_mutex_init(&p->mu, NULL);
  p->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in a = {.sin_family = AF_INET};
  socklen_t alen = sizeof a;
  if (p->listen_fd < 0 || inet_pton(AF_INET, addr, &a.sin_addr) != 1 ||
      bind(p->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(p->listen_fd, 16) != 0 ||
      getsockname(p->listen_fd, (struct sockaddr *)&a, &alen) != 0 || pipe(p->stop_pipe) != 0) {
    if (p->listen_fd >= 0)
      close(p->listen_fd);
    free(p);
    return NULL;
  }
  p->port = ntohs(a.sin_port);
  if (pthread_create(&p->thread, NULL, plug_main, p) != 0) {
    close(p->listen_fd);
    close(p->stop_pipe[0]);
    close(p->stop_pipe[1]);
    free(p);
    return NULL;
  }
  return p;
}

uint16_t plug_sim_port(const plug_sim_t *p) { return p->port; }

void plug_sim_set_mode(plug_sim_t *p, plug_mode_t mode) {
  pthread_mutex_lock(&p->mu);
  p->mode = mode;
  pthread_mutex_unlock(&p->mu);
}

bool plug_sim_relay(plug_sim_t *p, unsigned relay) {
  pthread_mutex_lock(&p->mu);
  bool on = relay < PLUG_RELAYS && p->relay[relay];
  pthread_mutex_unlock(&p->mu);
  return on;
}

void plug_sim_set_relay(plug_sim_t *p, unsigned relay, bool on) {
  pthread_mutex_lock(&p->mu);
  if (relay < PLUG_RELAYS)
    p->relay[relay] = on;
  pthread_mutex_unlock(&p->mu);
}

char *plug_sim_take_log(plug_sim_t *p) {
  pthread_mutex_lock(&p->mu);
  char *s = strdup(p->log);
  p->log_len = 0;
  p->log[0] = '\0';
  pthread_mutex_unlock(&p->mu);
  return s;
}

void plug_sim_stop(plug_sim_t *p) {
  if (p == NULL)
    return;
  if (write(p->stop_pipe[1], "x", 1) != 1)
    (void)0;
  pthread_join(p->thread, NULL);
  close(p->listen_fd);
  close(p->stop_pipe[0]);
  close(p->stop_pipe[1]);
  pthread_mutex_destroy(&p->mu);
  free(p);
}
