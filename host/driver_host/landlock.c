/* Landlock for a driver host (host/driver_host/sandbox.h step 3; Documentation/userspace-api/
 * landlock.rst): a ruleset that handles every file system right of the best ABI the kernel
 * has (and TCP bind and connect from ABI 4 for a driver without "inet"; signals and abstract
 * UNIX sockets to the outside from ABI 6), with read access beneath
 *   - the --read-only directories (the drivers' packages) and the handed directories of the
 *     start (a PCI function's "sysfs", as its O_PATH descriptor);
 *   - the system's libraries and what the C library reads (k_paths), /proc/self;
 * and what the rights add: "exec" read and execute on /usr, /bin, /sbin, /etc; "usb" read
 * on /sys and /run/udev, read-write on /dev/bus/usb and beneath $UMOCKDEV_DIR, where sockets
 * may be made too (the USB tests run under umockdev, whose preload redirects /sys and /dev
 * there and binds its emulated netlink socket there); "inet" the resolver's files. Descriptors
 * opened before (the handed resources, the link, stderr) keep their access: Landlock checks a file
 * when it is opened.
 *
 * Raw system calls: glibc has no wrappers. The installed <linux/landlock.h> may predate the
 * running kernel, so the rights of later ABIs are defined here.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "host/driver_host/sandbox.h"
#include "lib/log.h"

#define LL_SUBSYS "driver-host"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14) /* ABI 3 */
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15) /* ABI 5 */
#endif
#ifndef LANDLOCK_ACCESS_NET_BIND_TCP
#define LANDLOCK_ACCESS_NET_BIND_TCP (1ULL << 0) /* ABI 4 */
#define LANDLOCK_ACCESS_NET_CONNECT_TCP (1ULL << 1)
#endif
#ifndef LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET
#define LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0) /* ABI 6 */
#define LANDLOCK_SCOPE_SIGNAL (1ULL << 1)
#endif

/* struct landlock_ruleset_attr as of ABI 6; the kernel is told the size its ABI knows. */
typedef struct ll_ruleset_attr {
  uint64_t handled_access_fs;
  uint64_t handled_access_net; /* ABI 4 */
  uint64_t scoped;             /* ABI 6 */
} ll_ruleset_attr_t;

#define LL_RO (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define LL_RX (LL_RO | LANDLOCK_ACCESS_FS_EXECUTE)
#define LL_RW                                                            \
  (LL_RO | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE | \
   LANDLOCK_ACCESS_FS_IOCTL_DEV)
/* Read-write beneath a directory where sockets are made and removed too (umockdev's testbed:
 * its preload binds the socket of its netlink emulation there). */
#define LL_RW_MAKE (LL_RW | LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE)
/* The rights a rule on a file (not a directory) may carry. */
#define LL_FILE_RIGHTS                                                                         \
  (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE | \
   LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* The paths every driver host, or a driver with one right (0: every driver), may use. */
static const struct {
  const char *path;
  uint64_t access;
  uint32_t right;
} k_paths[] = {
    /* dlopen of the driver's shared libraries; the time zone */
    {"/usr/lib", LL_RO, 0},
    {"/lib", LL_RO, 0},
    {"/lib64", LL_RO, 0},
    {"/usr/lib64", LL_RO, 0},
    {"/etc/ld.so.cache", LL_RO, 0},
    {"/usr/share/zoneinfo", LL_RO, 0},
    /* the process's own files (its command line, its maps); glibc's count of CPUs */
    {"/proc/self", LL_RO, 0},
    {"/sys/devices/system/cpu", LL_RO, 0},
    /* what a program opens without thinking (posix_spawn's stdin, random bytes) */
    {"/dev/null", LL_RW, 0},
    {"/dev/zero", LL_RO, 0},
    {"/dev/urandom", LL_RO, 0},
    {"/dev/random", LL_RO, 0},
    /* "inet": the resolver's files (getaddrinfo) */
    {"/etc/hosts", LL_RO, DFNET_RIGHT_INET},
    {"/etc/host.conf", LL_RO, DFNET_RIGHT_INET},
    {"/etc/resolv.conf", LL_RO, DFNET_RIGHT_INET},
    {"/etc/nsswitch.conf", LL_RO, DFNET_RIGHT_INET},
    {"/etc/gai.conf", LL_RO, DFNET_RIGHT_INET},
    {"/etc/services", LL_RO, DFNET_RIGHT_INET},
    {"/etc/protocols", LL_RO, DFNET_RIGHT_INET},
    /* "exec": programs, and what they read */
    {"/usr", LL_RX, DFNET_RIGHT_EXEC},
    {"/bin", LL_RX, DFNET_RIGHT_EXEC},
    {"/sbin", LL_RX, DFNET_RIGHT_EXEC},
    {"/etc", LL_RX, DFNET_RIGHT_EXEC},
    /* "usb": libusb's device files and sysfs, libudev's database */
    {"/sys", LL_RO, DFNET_RIGHT_USB},
    {"/run/udev", LL_RO, DFNET_RIGHT_USB},
    {"/dev/bus/usb", LL_RW, DFNET_RIGHT_USB},
};

/* /proc/self stays open: its rule holds while the directory's dentry (and inode) does. */
static int g_proc_self = -1;

/* The file system rights Landlock ABI `abi` knows. */
static uint64_t fs_rights(int abi) {
  uint64_t r = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1: EXECUTE .. MAKE_SYM */
  if (abi >= 2)
    r |= LANDLOCK_ACCESS_FS_REFER;
  if (abi >= 3)
    r |= LANDLOCK_ACCESS_FS_TRUNCATE;
  if (abi >= 5)
    r |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
  return r;
}

/* Allow `access` (within `handled`) beneath the directory, or on the file, fd. Returns 0, or
 * -1 with errno set. */
static int add_rule(int ruleset, int fd, uint64_t access, uint64_t handled) {
  struct stat st;
  if (fstat(fd, &st) != 0)
    return -1;
  if (!S_ISDIR(st.st_mode))
    access &= LL_FILE_RIGHTS;
  struct landlock_path_beneath_attr rule = {.allowed_access = access & handled, .parent_fd = fd};
  if (rule.allowed_access == 0)
    return 0;
  return syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &rule, 0) == 0 ? 0
                                                                                            : -1;
}

/* The same for a path: one that does not exist is skipped; one that cannot be added is
 * logged and skipped (the driver only loses that access). The path is opened with the raw
 * system call: a preload that wraps open(2) (umockdev's, which redirects /sys and /dev into
 * its testbed and emulates device nodes) must not move the rules or fail the open. */
static void add_path_rule(int ruleset, const char *path, uint64_t access, uint64_t handled) {
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, O_PATH | O_CLOEXEC);
  if (fd < 0) {
    if (errno != ENOENT && errno != ENOTDIR)
      DFNET_LOGW(LL_SUBSYS, NULL, "Landlock: %s left out: %s", path, strerror(errno));
    return;
  }
  if (add_rule(ruleset, fd, access, handled) != 0)
    DFNET_LOGW(LL_SUBSYS, NULL, "Landlock: %s left out: %s", path, strerror(errno));
  if (strcmp(path, "/proc/self") == 0 && g_proc_self < 0)
    g_proc_self = fd;
  else
    close(fd);
}

/* The rules of the top of this file into `ruleset`. FAILED_PRECONDITION with why when the
 * driver's own directories cannot be added. */
static dfnet_status_t add_rules(int ruleset, uint64_t handled, const dh_sandbox_t *sb,
                                uint32_t rights, const int *fds, size_t nfds, char *why,
                                size_t cap) {
  for (size_t i = 0; i < sb->read_only_count; i++) {
    if (add_rule(ruleset, sb->read_only[i].fd, LL_RO, handled) != 0) {
      snprintf(why, cap, "Landlock rule for %s: %s", sb->read_only[i].path, strerror(errno));
      return DFNET_STATUS_FAILED_PRECONDITION;
    }
  }
  for (size_t i = 0; i < nfds; i++) {
    struct stat st;
    if (fstat(fds[i], &st) != 0 || !S_ISDIR(st.st_mode))
      continue; /* a device or a file: already open, Landlock does not look at it again */
    if (add_rule(ruleset, fds[i], LL_RO, handled) != 0) {
      snprintf(why, cap, "Landlock rule for handed directory %zu: %s", i, strerror(errno));
      return DFNET_STATUS_FAILED_PRECONDITION;
    }
  }
  for (size_t i = 0; i < sizeof k_paths / sizeof k_paths[0]; i++)
    if (k_paths[i].right == 0 || (rights & k_paths[i].right) != 0)
      add_path_rule(ruleset, k_paths[i].path, k_paths[i].access, handled);
  const char *umockdev = getenv("UMOCKDEV_DIR");
  if ((rights & DFNET_RIGHT_USB) != 0 && umockdev != NULL && umockdev[0] == '/')
    add_path_rule(ruleset, umockdev, LL_RW_MAKE, handled);
  return DFNET_STATUS_OK;
}

dfnet_status_t dh__landlock_apply(const dh_sandbox_t *sb, uint32_t rights, const int *fds,
                                  size_t nfds, int *abi_out, char *why, size_t cap) {
  long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
  if (abi < 0) {
    snprintf(why, cap, "Landlock is not available: %s%s", strerror(errno),
             errno == EOPNOTSUPP ? " (disabled: boot with lsm=...,landlock)"
             : errno == ENOSYS   ? " (a kernel before 5.13, or built without it)"
                                 : "");
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  ll_ruleset_attr_t attr = {.handled_access_fs = fs_rights((int)abi)};
  size_t size = sizeof attr.handled_access_fs;
  if (abi >= 4) {
    size += sizeof attr.handled_access_net;
    if ((rights & DFNET_RIGHT_INET) == 0)
      attr.handled_access_net = LANDLOCK_ACCESS_NET_BIND_TCP | LANDLOCK_ACCESS_NET_CONNECT_TCP;
  }
  if (abi >= 6) {
    size += sizeof attr.scoped;
    attr.scoped = LANDLOCK_SCOPE_ABSTRACT_UNIX_SOCKET | LANDLOCK_SCOPE_SIGNAL;
  }
  int ruleset = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
  if (ruleset < 0) {
    snprintf(why, cap, "Landlock ruleset (ABI %ld): %s", abi, strerror(errno));
    return DFNET_STATUS_FAILED_PRECONDITION;
  }
  dfnet_status_t st = add_rules(ruleset, attr.handled_access_fs, sb, rights, fds, nfds, why, cap);
  if (st == DFNET_STATUS_OK && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    snprintf(why, cap, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    st = DFNET_STATUS_FAILED_PRECONDITION;
  }
  if (st == DFNET_STATUS_OK && syscall(SYS_landlock_restrict_self, ruleset, 0) != 0) {
    snprintf(why, cap, "Landlock restrict_self: %s", strerror(errno));
    st = DFNET_STATUS_FAILED_PRECONDITION;
  }
  close(ruleset);
  if (st == DFNET_STATUS_OK && abi_out != NULL)
    *abi_out = (int)abi;
  return st;
}
