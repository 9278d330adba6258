/* The seccomp filter of a driver host (host/driver_host/sandbox.h step 4; seccomp(2),
 * libseccomp). Everything is allowed but:
 *   - killed (SECCOMP_RET_TRAP: SIGSYS, whose handler says which call on the report pipe,
 *     then dies of it): running programs (execve, execveat) without the right "exec",
 *     looking into other processes (ptrace, process_vm_*), the mount table and namespaces,
 *     the kernel's modules, kexec, BPF, perf, reboot, swap, open_by_handle_at;
 *   - refused EACCES: sockets of AF_INET and AF_INET6 without "inet", AF_PACKET, and
 *     SOCK_RAW sockets of every family but AF_UNIX and AF_NETLINK (where SOCK_RAW is the
 *     ordinary type: libudev's device monitor, which libusb uses, is one); refused EPERM:
 *     io_uring (its operations would bypass this filter);
 *   - another architecture's system calls (int 0x80, x32) kill the process.
 * The filter is loaded on every thread (TSYNC) and inherited by every thread and child
 * started after. The handler cannot use libseccomp (seccomp_syscall_resolve_num_arch is not
 * async-signal-safe): the trapped calls' numbers are resolved into a table before the filter
 * is loaded.
 */
#include <errno.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host/driver_host/sandbox.h"

/* The calls that kill the driver host ("exec": the first two are allowed then). */
static const char *const k_trapped[] = {
    "execve",
    "execveat",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "setns",
    "unshare",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "init_module",
    "finit_module",
    "delete_module",
    "perf_event_open",
    "reboot",
    "swapon",
    "swapoff",
    "open_by_handle_at",
    "fsopen",
    "fsmount",
    "move_mount",
    "open_tree",
};
#define TRAPPED_COUNT (sizeof k_trapped / sizeof k_trapped[0])
#define EXEC_CALLS 2 /* k_trapped[0 .. EXEC_CALLS): what "exec" allows */

/* Under AddressSanitizer, LeakSanitizer stops the process's threads with ptrace at exit:
 * ptrace stays allowed there (Landlock still refuses it towards any process outside the
 * driver host's domain, and the driver user has no capability). */
#define TRAP_PTRACE (!DH_UNDER_ASAN)

/* The table the SIGSYS handler reads: number -> name of each trapped call (-1: none). */
static int g_trapped_nr[TRAPPED_COUNT];
static int g_report_fd = -1;

/* Append s to buf[*len .. cap) (async-signal-safe). */
static void put(char *buf, size_t *len, size_t cap, const char *s) {
  while (*s != '\0' && *len + 1 < cap)
    buf[(*len)++] = *s++;
}

/* SIGSYS from the filter: say which call on the report pipe and stderr, then die of
 * SIGSYS (the default action, re-raised). Async-signal-safe calls only. */
static void on_sigsys(int sig, siginfo_t *info, void *uctx) {
  (void)uctx;
  const char *name = NULL;
  for (size_t i = 0; i < TRAPPED_COUNT && name == NULL; i++)
    if (g_trapped_nr[i] >= 0 && g_trapped_nr[i] == info->si_syscall)
      name = k_trapped[i];
  char line[DH_REPORT_LINE_MAX];
  size_t len = 0;
  put(line, &len, sizeof line, "killed by seccomp: ");
  if (name != NULL) {
    put(line, &len, sizeof line, name);
  } else { /* not ours: a number */
    char digits[16];
    size_t n = 0;
    unsigned v = (unsigned)info->si_syscall;
    do
      digits[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0 && n < sizeof digits);
    put(line, &len, sizeof line, "system call ");
    while (n > 0 && len + 1 < sizeof line)
      line[len++] = digits[--n];
  }
  line[len++] = '\n';
  ssize_t ignored = g_report_fd >= 0 ? write(g_report_fd, line, len) : 0;
  ignored = write(STDERR_FILENO, "dfnet-driver-host: ", 19);
  ignored = write(STDERR_FILENO, line, len);
  (void)ignored;
  struct sigaction dfl;
  memset(&dfl, 0, sizeof dfl);
  dfl.sa_handler = SIG_DFL;
  sigaction(sig, &dfl, NULL);
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  sigprocmask(SIG_UNBLOCK, &set, NULL);
  raise(sig);
}

/* SOCK_RAW (the type without SOCK_NONBLOCK and SOCK_CLOEXEC) refused for every family but
 * AF_UNIX (1) and AF_NETLINK (16). A rule compares an argument once: the families between
 * are one rule each, those above one rule (a domain with bits above its int refused too). */
static int add_raw_rules(scmp_filter_ctx ctx) {
  const struct scmp_arg_cmp raw = SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW);
  int rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 2,
                            SCMP_A0(SCMP_CMP_GT, AF_NETLINK, 0), raw);
  for (scmp_datum_t family = AF_UNIX + 1; family < AF_NETLINK && rc == 0; family++)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 2,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, 0xffffffffu, family), raw);
  return rc;
}

/* The rules of the top of this file into ctx. Returns libseccomp's first error (-errno). */
static int add_rules(scmp_filter_ctx ctx, uint32_t rights) {
  int rc = 0;
  for (size_t i = 0; i < TRAPPED_COUNT && rc == 0; i++) {
    if (i < EXEC_CALLS && (rights & DFNET_RIGHT_EXEC) != 0)
      continue;
    if (!TRAP_PTRACE && strcmp(k_trapped[i], "ptrace") == 0)
      continue;
    if (g_trapped_nr[i] >= 0)
      rc = seccomp_rule_add(ctx, SCMP_ACT_TRAP, g_trapped_nr[i], 0);
  }
  /* socket(2)'s domain and type are ints: only their low 32 bits count */
  const scmp_datum_t low = 0xffffffffu;
  if (rc == 0 && (rights & DFNET_RIGHT_INET) == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, low, AF_INET));
  if (rc == 0 && (rights & DFNET_RIGHT_INET) == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, low, AF_INET6));
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                          SCMP_A0(SCMP_CMP_MASKED_EQ, low, AF_PACKET));
  if (rc == 0)
    rc = add_raw_rules(ctx);
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_setup), 0);
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_enter), 0);
  if (rc == 0)
    rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(io_uring_register), 0);
  return rc;
}

dfnet_status_t dh__seccomp_apply(int report_fd, uint32_t rights, char *why, size_t cap) {
  for (size_t i = 0; i < TRAPPED_COUNT; i++) {
    int nr = seccomp_syscall_resolve_name(k_trapped[i]);
    g_trapped_nr[i] = nr == __NR_SCMP_ERROR ? -1 : nr;
  }
  g_report_fd = report_fd;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_sigsys;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGSYS, &sa, NULL) != 0) {
    snprintf(why, cap, "SIGSYS handler: %s", strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == NULL) {
    snprintf(why, cap, "seccomp_init failed (out of memory)");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  int rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
  if (rc == 0)
    rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
  if (rc == 0)
    rc = add_rules(ctx, rights);
  const char *step = rc == 0 ? "seccomp_load" : "building the seccomp filter";
  if (rc == 0)
    rc = seccomp_load(ctx);
  seccomp_release(ctx);
  if (rc != 0) {
    snprintf(why, cap, "%s: %s", step, strerror(-rc));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  return DFNET_STATUS_OK;
}
