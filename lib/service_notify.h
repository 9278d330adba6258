/* Telling systemd how a daemon is doing (sd_notify(3), the Type=notify protocol of
 * systemd.service(5)): dfnet-manager and dfnet-host say READY=1 once they serve, STOPPING=1
 * when they begin to stop, and a STATUS= line that `systemctl status` shows.
 *
 * Source: libsystemd's sd_notify(3); the units in packaging/systemd/.
 *
 * Outside systemd (no $NOTIFY_SOCKET in the environment: a run by hand, the tests) every
 * function does nothing and returns at once. $NOTIFY_SOCKET is left in the environment, so
 * later calls still reach systemd; the processes a daemon starts (driver hosts) inherit it,
 * and systemd ignores them under the default NotifyAccess=main.
 *
 * Errors: a message systemd cannot be sent is dropped without a word (a notification is
 * advice; the service manager's timeouts cover a lost READY=1). Nothing is returned.
 *
 * Threads: any thread; no shared state but the environment, which is only read.
 */
#ifndef DFNET_LIB_SERVICE_NOTIFY_H
#define DFNET_LIB_SERVICE_NOTIFY_H

#ifdef __cplusplus
extern "C" {
#endif

/* The status text of every function below: fmt and its arguments as printf(3) formats
 * them, one line (a newline in it ends the line there), at most 255 bytes (the rest is
 * cut); fmt NULL: no STATUS= line. The text is copied before the function returns. */

/* READY=1 and STATUS=<text> ("listening on 0.0.0.0:7443"): start-up is complete and the
 * daemon serves. */
void dfnet_service_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1 and STATUS=<text>: the daemon has begun to stop (a signal came). */
void dfnet_service_notify_stopping(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STATUS=<text> alone: what the daemon is doing now ("connected to wss://m:7443"). */
void dfnet_service_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#ifdef __cplusplus
}
#endif

#endif /* DFNET_LIB_SERVICE_NOTIFY_H */
