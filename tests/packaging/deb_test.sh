#!/bin/sh
# deb_test.sh BUILD_DIR (ctest packaging_deb, label "packaging"; slow: builds five .deb):
#  1. cpack -G DEB of the build into a temporary directory: dfnet-manager, dfnet-host,
#     dfnet-tools, libdfnet-client1, libdfnet-dev;
#  2. dpkg-deb -c / -f: the files and Depends each must have;
#  3. lintian: no error (its warnings are printed);
#  4. on a machine where it is safe (root, dpkg free, no dfnet package or /usr/bin/dfnet-*
#     there, DFNET_TEST_NO_DPKG unset): dpkg -i of the five, /usr/bin/dfnet-manager
#     --version, systemd-analyze verify of the installed units, then dpkg --purge in the
#     cleanup (and the users and directories the packages made, when they were not there
#     before), one build tree at a time (flock). Otherwise that step is skipped with the
#     reason.
# $pkgs and $debs are word lists, split on purpose where they are expanded
# shellcheck disable=SC2086
set -eu
build=$1
for t in cpack dpkg-deb lintian; do
  command -v $t >/dev/null 2>&1 || { echo "SKIP: no $t (apt-get install lintian)"; exit 77; }
done
# Debian packages install under /usr: a build configured for another prefix (an old cache
# from before /usr became the default) cannot make them
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
[ "$prefix" = /usr ] || { echo "SKIP: $build is configured with CMAKE_INSTALL_PREFIX=$prefix, the packages need /usr (cmake -DCMAKE_INSTALL_PREFIX=/usr $build)"; exit 77; }
tmp=$(mktemp -d /tmp/dfnet-pkg-deb.XXXXXX)
installed=
pkgs="dfnet-manager dfnet-host dfnet-tools libdfnet-client1 libdfnet-dev"
had_dfnet=$(getent passwd dfnet >/dev/null && echo 1 || echo 0)
had_driver=$(getent passwd dfnet-driver >/dev/null && echo 1 || echo 0)
had_dirs=$( [ -e /var/lib/dfnet ] || [ -e /var/cache/dfnet ] || [ -e /etc/dfnet ] && echo 1 || echo 0)
cleanup() {
  if [ -n "$installed" ]; then
    echo "--- dpkg --purge $pkgs"
    # shellcheck disable=SC2086
    dpkg --purge $pkgs >"$tmp/purge.log" 2>&1 || cat "$tmp/purge.log"
    [ "$had_dfnet" = 1 ] || userdel dfnet 2>/dev/null || true
    [ "$had_driver" = 1 ] || userdel dfnet-driver 2>/dev/null || true
    if [ "$had_dirs" = 0 ]; then
      rm -rf /var/lib/dfnet /var/cache/dfnet
      rmdir /etc/dfnet 2>/dev/null || true
    fi
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
export TMPDIR="$tmp" # every tool's temporary files (cpack, dpkg-deb, lintian) go with $tmp
fail() { echo "FAIL: $*" >&2; exit 1; }

echo "--- cpack -G DEB"
(cd "$tmp" && cpack -G DEB --config "$build/CPackConfig.cmake" -B "$tmp/out") >"$tmp/cpack.log" 2>&1 ||
  { cat "$tmp/cpack.log"; fail "cpack -G DEB"; }
arch=$(dpkg --print-architecture)
version=$(sed -n 's/^set(CPACK_PACKAGE_VERSION "\(.*\)")$/\1/p' "$build/CPackConfig.cmake")-1
debs=
for p in $pkgs; do
  f=$tmp/out/${p}_${version}_$arch.deb
  [ -f "$f" ] || { ls "$tmp/out"; fail "no ${p}_${version}_$arch.deb"; }
  debs="$debs $f"
done
deb() { echo "$tmp/out/${1}_${version}_$arch.deb"; }
has() { # has PACKAGE PATH...: the package holds each path
  p=$1; shift
  dpkg-deb -c "$(deb "$p")" | awk '{print $6}' | sed 's|^\.||; s| ->.*||' >"$tmp/$p.files"
  for f in "$@"; do grep -qx "$f" "$tmp/$p.files" || fail "$p lacks $f"; done
}
depends() { # depends PACKAGE REGEX...: its Depends field matches each
  p=$1; shift
  d=$(dpkg-deb -f "$(deb "$p")" Depends)
  for r in "$@"; do echo "$d" | grep -Eq "$r" || fail "$p: Depends '$d' lacks $r"; done
}

echo "--- dpkg-deb -c / -f"
has dfnet-manager /usr/bin/dfnet-manager /usr/lib/systemd/system/dfnet-manager.service \
  /usr/lib/sysusers.d/dfnet-manager.conf /usr/lib/tmpfiles.d/dfnet-manager.conf \
  /etc/dfnet/manager.env /etc/dfnet/manager.conf /usr/share/doc/dfnet-manager/copyright \
  /usr/share/doc/dfnet-manager/changelog.Debian.gz /usr/share/man/man1/dfnet-manager.1.gz
has dfnet-host /usr/bin/dfnet-host /usr/lib/dfnet/dfnet-host /usr/lib/dfnet/dfnet-driver-host \
  /usr/lib/dfnet/drivers/pci-config/driver/pci-config.so \
  /usr/lib/dfnet/drivers/pci-config/meta/pci-config.json \
  /usr/lib/dfnet/drivers/pci-config/meta/bind/pci-config.bindbc \
  /usr/lib/systemd/system/dfnet-host.service /usr/lib/sysusers.d/dfnet-host.conf \
  /usr/lib/tmpfiles.d/dfnet-host.conf /usr/lib/udev/rules.d/70-dfnet-host.rules \
  /etc/dfnet/host.env /etc/dfnet/host.conf /usr/share/doc/dfnet-host/copyright
has dfnet-tools /usr/bin/dfnet /usr/bin/dfnet-bindc /usr/share/dfnet/bind/fuchsia.pci.bind \
  /usr/share/bash-completion/completions/dfnet /usr/share/doc/dfnet-tools/copyright
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
# the real file: libdfnet-client.so.<DFNET_CLIENT_ABI_VERSION> (clients/CMakeLists.txt)
real=$(readlink "$build/clients/libdfnet-client.so.1")
has libdfnet-client1 "/usr/$libdir/libdfnet-client.so.1" "/usr/$libdir/$real"
has libdfnet-dev "/usr/$libdir/libdfnet-client.so" "/usr/$libdir/pkgconfig/dfnet-client.pc" \
  "/usr/$libdir/cmake/dfnet/dfnetConfig.cmake" "/usr/$libdir/libdfnet-driver.a" \
  /usr/include/dfnet/client.h /usr/include/dfnet/driver.h
depends dfnet-manager 'libc6' 'libsqlite3' 'libmbedtls'
depends dfnet-host 'libc6' 'libseccomp2' 'libusb-1.0-0' 'libsystemd0'
depends dfnet-tools 'libc6' 'libcjson1'
depends libdfnet-client1 'libc6' 'libmbedtls'
depends libdfnet-dev "libdfnet-client1 \\(= $version\\)" "dfnet-tools \\(= $version\\)"
# dpkg-deb -I extracts the control members into a temporary directory it removes when it is
# done: its output is read whole (grep -q on the pipe could kill it first with SIGPIPE)
for p in libdfnet-client1 dfnet-manager dfnet-host; do
  dpkg-deb -I "$(deb $p)" >"$tmp/$p.info" || fail "dpkg-deb -I $(deb $p) failed"
done
grep -q ' shlibs' "$tmp/libdfnet-client1.info" || fail "libdfnet-client1 has no shlibs file"
grep -q ' triggers' "$tmp/libdfnet-client1.info" || fail "libdfnet-client1 has no ldconfig trigger"
for p in dfnet-manager dfnet-host; do
  for s in postinst prerm postrm conffiles; do
    grep -q " $s" "$tmp/$p.info" || fail "$p has no $s"
  done
done

echo "--- lintian"
# shellcheck disable=SC2086
lintian --tag-display-limit 0 $debs >"$tmp/lintian.log" 2>&1 || true
cat "$tmp/lintian.log"
if grep -q '^E: ' "$tmp/lintian.log"; then fail "lintian reports errors"; fi
echo "lintian: $(grep -c '^W: ' "$tmp/lintian.log" || true) warnings, no error"

why=
# one packaging_deb of any build tree at a time installs: the lock is held until the
# cleanup has purged (descriptor 9 closes when the script exits, after the trap)
if [ "$(id -u)" = 0 ] && command -v flock >/dev/null 2>&1; then
  exec 9>/tmp/dfnet-packaging-dpkg.lock
  flock -w 900 9 || why="another packaging_deb holds /tmp/dfnet-packaging-dpkg.lock"
fi
if [ -n "$why" ]; then :
elif [ "$(id -u)" != 0 ]; then why="not root"
elif [ -n "${DFNET_TEST_NO_DPKG:-}" ]; then why="DFNET_TEST_NO_DPKG is set"
elif dpkg-query -W -f='${Status}\n' $pkgs 2>/dev/null | grep -q ' installed$'; then why="dfnet packages are installed already"
elif [ -e /usr/bin/dfnet-manager ] || [ -e /usr/bin/dfnet-host ] || [ -e /usr/bin/dfnet ]; then why="/usr/bin/dfnet* exist"
elif command -v fuser >/dev/null 2>&1 && fuser /var/lib/dpkg/lock-frontend >/dev/null 2>&1; then why="dpkg is busy"
fi
if [ -n "$why" ]; then
  echo "--- dpkg -i skipped: $why"
  echo "packaging_deb: OK (without dpkg -i)"
  exit 0
fi
echo "--- dpkg -i"
installed=1
# shellcheck disable=SC2086
dpkg -i $debs >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log"; fail "dpkg -i"; }
/usr/bin/dfnet-manager --version || fail "/usr/bin/dfnet-manager --version"
getent passwd dfnet >/dev/null || fail "the postinst made no user dfnet"
getent passwd dfnet-driver >/dev/null || fail "the postinst made no user dfnet-driver"
[ "$(stat -c %U:%a /var/lib/dfnet/manager)" = dfnet:700 ] || fail "/var/lib/dfnet/manager: $(stat -c %U:%a /var/lib/dfnet/manager)"
systemd-analyze verify /usr/lib/systemd/system/dfnet-manager.service \
  /usr/lib/systemd/system/dfnet-host.service >"$tmp/verify.log" 2>&1 ||
  { cat "$tmp/verify.log"; fail "systemd-analyze verify of the installed units"; }
if [ -s "$tmp/verify.log" ]; then cat "$tmp/verify.log"; fail "systemd-analyze verify printed warnings"; fi
echo "packaging_deb: OK (installed, verified, purged)"
