#!/bin/sh
# verify_units.sh BUILD_DIR (ctest packaging_units, label "packaging"): the systemd files
# of packaging/systemd/ as `cmake --install` lays them out (components manager and host,
# into a temporary DESTDIR):
#   systemd-analyze verify    the two units (their ExecStart pointed into the DESTDIR,
#                             their man pages found there through MANPATH)
#   systemd-sysusers --root   sysusers.d makes the users dfnet and dfnet-driver
#   systemd-tmpfiles --root   tmpfiles.d makes the directories, with their modes
# Exit 77 (skipped) when systemd-analyze is missing (apt-get install systemd).
set -eu
build=$1
command -v systemd-analyze >/dev/null 2>&1 ||
  { echo "SKIP: no systemd-analyze (apt-get install systemd)"; exit 77; }
tmp=$(mktemp -d /tmp/dfnet-pkg-units.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
root=$tmp/root
for c in manager host; do
  DESTDIR=$root cmake --install "$build" --component $c >/dev/null
done
P=$root$prefix
mkdir -p "$tmp/units"
for u in dfnet-manager dfnet-host; do
  sed "s|^ExecStart=$prefix/|ExecStart=$P/|" "$P/lib/systemd/system/$u.service" >"$tmp/units/$u.service"
  grep -q "^ExecStart=$P/bin/$u " "$tmp/units/$u.service" || fail "$u.service: ExecStart"
done
echo "--- systemd-analyze verify dfnet-manager.service dfnet-host.service"
MANPATH=$P/share/man systemd-analyze verify "$tmp/units/dfnet-manager.service" \
  "$tmp/units/dfnet-host.service" >"$tmp/verify.log" 2>&1 || { cat "$tmp/verify.log"; fail "systemd-analyze verify"; }
if [ -s "$tmp/verify.log" ]; then cat "$tmp/verify.log"; fail "systemd-analyze verify printed warnings"; fi
echo "--- systemd-analyze security (exposure of the hardened units, for the log)"
for u in dfnet-manager dfnet-host; do
  systemd-analyze security --offline=yes "$tmp/units/$u.service" 2>/dev/null | tail -1 || true
done

echo "--- systemd-sysusers and systemd-tmpfiles into a scratch root"
sys=$tmp/sysroot
mkdir -p "$sys/etc"
systemd-sysusers --root="$sys" "$P/lib/sysusers.d/dfnet-manager.conf" \
  "$P/lib/sysusers.d/dfnet-host.conf" || fail "systemd-sysusers"
grep -q '^dfnet:.*:/usr/sbin/nologin$' "$sys/etc/passwd" || fail "no user dfnet"
grep -q '^dfnet-driver:' "$sys/etc/passwd" || fail "no user dfnet-driver"
grep -q '^dfnet-driver:' "$sys/etc/group" || fail "no group dfnet-driver"
systemd-tmpfiles --root="$sys" --create "$P/lib/tmpfiles.d/dfnet-manager.conf" \
  "$P/lib/tmpfiles.d/dfnet-host.conf" || fail "systemd-tmpfiles"
[ "$(stat -c %a "$sys/var/lib/dfnet/manager")" = 700 ] || fail "/var/lib/dfnet/manager mode"
[ "$(stat -c %a "$sys/var/lib/dfnet/host")" = 700 ] || fail "/var/lib/dfnet/host mode"
[ "$(stat -c %a "$sys/var/cache/dfnet/host")" = 711 ] || fail "/var/cache/dfnet/host mode"
uid=$(sed -n 's/^dfnet:[^:]*:\([0-9]*\):.*/\1/p' "$sys/etc/passwd")
[ "$(stat -c %u "$sys/var/lib/dfnet/manager")" = "$uid" ] || fail "/var/lib/dfnet/manager owner"
echo "packaging_units: OK"
