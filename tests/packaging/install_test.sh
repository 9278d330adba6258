#!/bin/sh
# install_test.sh BUILD_DIR SOURCE_DIR CC (ctest packaging_install, label "packaging"):
# `cmake --install` of the build into a temporary DESTDIR, then
#  1. the layout (cmake/DfnetInstall.cmake): binaries, dfnet-driver-host beside the real
#     dfnet-host, the boot drivers, headers, libdfnet-client.so.1 (its SONAME), the
#     pkg-config file, the CMake package, the units, sysusers.d, tmpfiles.d, udev rules,
#     /etc/dfnet, man pages; no RPATH in any installed ELF file;
#  2. tests/packaging/client/hosts.c built against the installed prefix with
#     `pkg-config dfnet-client` and with find_package(dfnet), and run (the library answers
#     NOT_FOUND for certificate files that do not exist);
#  3. drivers/pci-config copied out of the tree and built against the installed prefix
#     (find_package(dfnet), dfnet_driver_package()) into a driver package: its files, the
#     same bind bytecode as the tree's, its bind tests, only its registration exported,
#     and dfnet-manager --drivers loading it.
set -eu
build=$1 src=$2 cc=$3
tmp=$(mktemp -d /tmp/dfnet-pkg-install.XXXXXX)
mgr_pid=
cleanup() {
  [ -z "$mgr_pid" ] || kill "$mgr_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "--- $*"; }

prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:PATH=//p' "$build/CMakeCache.txt")
libdir=$(sed -n 's/^CMAKE_INSTALL_LIBDIR:PATH=//p' "$build/CMakeCache.txt")
root=$tmp/root
P=$root$prefix
case $prefix in /usr) etc=$root/etc ;; *) etc=$P/etc ;; esac

step "cmake --install $build (DESTDIR=$root, prefix $prefix)"
DESTDIR=$root cmake --install "$build" >"$tmp/install.log" 2>&1 ||
  { cat "$tmp/install.log"; fail "cmake --install"; }

step "layout"
for f in bin/dfnet-manager bin/dfnet bin/dfnet-bindc lib/dfnet/dfnet-host \
  lib/dfnet/dfnet-driver-host \
  lib/dfnet/drivers/pci-config/driver/pci-config.so \
  lib/dfnet/drivers/pci-config/meta/pci-config.json \
  lib/dfnet/drivers/pci-config/meta/bind/pci-config.bindbc \
  lib/dfnet/drivers/virtio-rng/driver/virtio-rng.so \
  include/dfnet/client.h include/dfnet/status.h include/dfnet/driver.h \
  include/dfnet/bind_keys.h include/dfnet/hw/pci.pb.h \
  include/dfnet/drvkit/drivers/common/drvkit.h include/dfnet/drvkit/bind/dfnet_pci.h \
  include/dfnet/drvkit/pb.h "$libdir/libdfnet-driver.a" \
  "$libdir/pkgconfig/dfnet-client.pc" "$libdir/cmake/dfnet/dfnetConfig.cmake" \
  "$libdir/cmake/dfnet/dfnetConfigVersion.cmake" "$libdir/cmake/dfnet/dfnetTargets.cmake" \
  "$libdir/cmake/dfnet/DfnetDriver.cmake" "$libdir/cmake/dfnet/DfnetBind.cmake" \
  lib/systemd/system/dfnet-manager.service lib/systemd/system/dfnet-host.service \
  lib/sysusers.d/dfnet-manager.conf lib/sysusers.d/dfnet-host.conf \
  lib/tmpfiles.d/dfnet-manager.conf lib/tmpfiles.d/dfnet-host.conf \
  lib/udev/rules.d/70-dfnet-host.rules share/dfnet/bind/fuchsia.pci.bind \
  share/man/man1/dfnet-manager.1.gz share/man/man1/dfnet.1.gz \
  share/bash-completion/completions/dfnet; do
  [ -f "$P/$f" ] || fail "$prefix/$f missing"
done
for f in manager.env host.env manager.conf host.conf; do
  [ -f "$etc/dfnet/$f" ] || fail "${etc#"$root"}/dfnet/$f missing"
done
[ "$(readlink "$P/bin/dfnet-host")" = ../lib/dfnet/dfnet-host ] ||
  fail "bin/dfnet-host is not a link to ../lib/dfnet/dfnet-host"
# dfnet-host looks for dfnet-driver-host beside /proc/self/exe, the link's target
[ -x "$(dirname "$(readlink -f "$P/bin/dfnet-host")")/dfnet-driver-host" ] ||
  fail "no dfnet-driver-host beside the real dfnet-host"
[ -L "$P/$libdir/libdfnet-client.so" ] && [ -L "$P/$libdir/libdfnet-client.so.1" ] ||
  fail "libdfnet-client.so and .so.1 links missing"
soname=$(readelf -d "$P/$libdir/libdfnet-client.so.1" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libdfnet-client.so.1 ] || fail "SONAME is '$soname', not libdfnet-client.so.1"
[ ! -e "$P/$libdir/libdfnet-client.a" ] || fail "the static libdfnet-client is installed"
find "$root" -type f | while read -r f; do
  if readelf -h "$f" >/dev/null 2>&1 && readelf -d "$f" 2>/dev/null | grep -Eq 'R(UN)?PATH'; then
    fail "${f#"$root"} has an RPATH/RUNPATH"
  fi
done
grep -q "^ExecStart=$prefix/bin/dfnet-manager " "$P/lib/systemd/system/dfnet-manager.service" ||
  fail "dfnet-manager.service does not start $prefix/bin/dfnet-manager"
"$P/bin/dfnet-bindc" --help | grep -q "$prefix/share/dfnet/bind" ||
  fail "the installed dfnet-bindc's built-in bind libraries are not $prefix/share/dfnet/bind"
"$P/bin/dfnet-manager" --version >/dev/null || fail "dfnet-manager --version"

step "client program with pkg-config dfnet-client"
export PKG_CONFIG_SYSROOT_DIR="$root" PKG_CONFIG_LIBDIR="$P/$libdir/pkgconfig"
flags=$(pkg-config --cflags --libs dfnet-client) || fail "pkg-config dfnet-client"
# shellcheck disable=SC2086
"$cc" -std=c11 -Wall -Werror "$src/tests/packaging/client/hosts.c" $flags -o "$tmp/hosts-pc"
unset PKG_CONFIG_SYSROOT_DIR PKG_CONFIG_LIBDIR
readelf -d "$tmp/hosts-pc" | grep -q 'NEEDED.*\[libdfnet-client.so.1\]' ||
  fail "hosts (pkg-config) does not need libdfnet-client.so.1"
out=$(LD_LIBRARY_PATH="$P/$libdir" "$tmp/hosts-pc") || fail "hosts (pkg-config): $out"
[ "$out" = "connect: NOT_FOUND" ] || fail "hosts (pkg-config) printed '$out'"

step "client program with find_package(dfnet)"
cmake -S "$src/tests/packaging/client" -B "$tmp/client" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_PREFIX_PATH="$P" -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >"$tmp/client.log" 2>&1 &&
  cmake --build "$tmp/client" >>"$tmp/client.log" 2>&1 || { cat "$tmp/client.log"; fail "client build"; }
out=$(LD_LIBRARY_PATH="$P/$libdir" "$tmp/client/hosts") || fail "hosts (cmake): $out"
[ "$out" = "connect: NOT_FOUND" ] || fail "hosts (cmake) printed '$out'"

step "drivers/pci-config built outside the tree"
mkdir -p "$tmp/drv"
cp -R "$src/drivers/pci-config" "$tmp/drv/pci-config"
cp "$src/tests/packaging/driver/CMakeLists.txt" "$tmp/drv/CMakeLists.txt"
cmake -S "$tmp/drv" -B "$tmp/drv-build" -DCMAKE_C_COMPILER="$cc" -DCMAKE_PREFIX_PATH="$P" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF -DCMAKE_INSTALL_PREFIX="$tmp/drv-prefix" \
  >"$tmp/drv.log" 2>&1 && cmake --build "$tmp/drv-build" >>"$tmp/drv.log" 2>&1 ||
  { cat "$tmp/drv.log"; fail "pci-config build"; }
pkg=$tmp/drv-build/drivers/pci-config
for f in driver/pci-config.so meta/pci-config.json meta/bind/pci-config.bindbc; do
  [ -f "$pkg/$f" ] || fail "driver package: $f missing"
done
cmp "$pkg/meta/bind/pci-config.bindbc" "$build/drivers/pci-config/meta/bind/pci-config.bindbc" ||
  fail "the bind bytecode differs from the tree's"
exports=$(nm -D --defined-only "$pkg/driver/pci-config.so" | awk '{print $3}')
[ "$exports" = dfnet_driver_registration ] || fail "pci-config.so exports: $exports"
(cd "$tmp/drv-build" && ctest --output-on-failure >"$tmp/drv-ctest.log" 2>&1) ||
  { cat "$tmp/drv-ctest.log"; fail "the driver's bind tests"; }
cmake --install "$tmp/drv-build" >/dev/null
[ -f "$tmp/drv-prefix/lib/dfnet/drivers/pci-config/driver/pci-config.so" ] ||
  fail "cmake --install of the driver: no lib/dfnet/drivers/pci-config"

step "dfnet-manager --drivers loads it"
"$build/manager/dfnet-manager" --listen 127.0.0.1:0 --state-dir "$tmp/state" \
  --drivers "$tmp/drv-build/drivers" >"$tmp/mgr.out" 2>"$tmp/mgr.err" &
mgr_pid=$!
i=0
until grep -q "listening on" "$tmp/mgr.err" 2>/dev/null; do
  i=$((i + 1))
  [ $i -lt 300 ] && kill -0 "$mgr_pid" 2>/dev/null || { cat "$tmp/mgr.err"; fail "dfnet-manager did not start"; }
  sleep 0.1
done
grep -q "listening on .*, 1 drivers" "$tmp/mgr.err" || { cat "$tmp/mgr.err"; fail "dfnet-manager did not load pci-config"; }
if grep -Eqi "refus|invalid" "$tmp/mgr.err"; then cat "$tmp/mgr.err"; fail "dfnet-manager refused the package"; fi
kill "$mgr_pid"
wait "$mgr_pid" || true
mgr_pid=
echo "packaging_install: OK"
