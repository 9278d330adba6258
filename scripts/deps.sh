#!/usr/bin/env bash
# Install everything dfnet needs to build and test, on Debian (bookworm).
# Idempotent: safe to run again; does nothing it has already done.
#
#  1. apt packages (compiler, cmake, nanopb, protoc, mbedTLS, cmocka, libusb, umockdev,
#     cJSON, SQLite, libseccomp for the driver hosts' confinement, iproute2, clang for the
#     fuzzers, clang-format for the layout check; libsystemd for sd_notify, systemd's
#     systemd-analyze, lintian and file for the packaging tests and cpack).
#  2. libwebsockets 4.1.x from Debian's *source* package, built static against mbedTLS
#     (Debian's binary package links OpenSSL, which dfnet does not use), with our patches
#     from scripts/patches/libwebsockets/ applied, into .deps/ (git-ignored).
#     A stamp (version + patch digests + build options) skips the build when unchanged.
#  3. puppeteer-core for the browser test of `dfnet ui` (tests/ui), as tests/ui's
#     package-lock.json pins it, into .deps/node; it drives Debian's chromium (item 1:
#     chromium, nodejs, fonts-dejavu-core) and never downloads a browser.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
deps="$root/.deps"
prefix="$deps/prefix"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive

log() { printf 'deps: %s\n' "$*"; }

packages=(
  build-essential cmake pkg-config git ca-certificates dpkg-dev
  nanopb libnanopb-dev protobuf-compiler python3-protobuf
  libmbedtls-dev libcmocka-dev libusb-1.0-0-dev
  umockdev libumockdev-dev libcjson-dev
  iproute2 procps clang libclang-rt-14-dev llvm clang-format
  libarchive-dev uthash-dev libsqlite3-dev
  inotify-tools openssl libseccomp-dev
  libsystemd-dev systemd lintian file
  nodejs chromium fonts-dejavu-core
  prometheus curl
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

# Source packages: make sure a deb-src entry sits beside the deb one.
have_src() { grep -rqsE '^(Types:.*deb-src|deb-src )' /etc/apt/sources.list /etc/apt/sources.list.d/; }
apt_updated=0
if ! have_src; then
  log "enabling Debian source packages"
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    $sudo sed -i -E 's/^Types:[[:space:]]*deb[[:space:]]*$/Types: deb deb-src/' /etc/apt/sources.list.d/debian.sources
  fi
  if ! have_src && [ -f /etc/apt/sources.list ]; then
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' | $sudo tee -a /etc/apt/sources.list >/dev/null
  fi
  have_src || { log "error: could not enable deb-src entries"; exit 1; }
  $sudo apt-get update -qq; apt_updated=1
fi

if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  [ $apt_updated = 1 ] || { $sudo apt-get update -qq; apt_updated=1; }
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# ---- puppeteer-core for tests/ui --------------------------------------------------------
# `npm ci` from the lock file (exact versions and integrity hashes), install scripts off and
# PUPPETEER_SKIP_DOWNLOAD set: nothing is run and no browser is fetched. A stamp (the
# digest of package.json and the lock file) skips it when unchanged.
command -v npm >/dev/null || {
  log "installing npm"
  [ $apt_updated = 1 ] || { $sudo apt-get update -qq; apt_updated=1; }
  $sudo apt-get install -y -qq --no-install-recommends npm >/dev/null
}
node_dir="$deps/node"
node_want=$(cat "$root/tests/ui/package.json" "$root/tests/ui/package-lock.json" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$node_dir/.dfnet-stamp" 2>/dev/null)" = "$node_want" ] \
   && [ -f "$node_dir/node_modules/puppeteer-core/package.json" ]; then
  log "puppeteer-core (tests/ui) already installed"
else
  log "installing puppeteer-core (tests/ui/package-lock.json) into $node_dir"
  rm -rf "$node_dir"; mkdir -p "$node_dir"
  cp "$root/tests/ui/package.json" "$root/tests/ui/package-lock.json" "$node_dir/"
  ( cd "$node_dir" && PUPPETEER_SKIP_DOWNLOAD=1 npm ci --ignore-scripts --no-audit --no-fund \
      --loglevel=error >/dev/null )
  echo "$node_want" > "$node_dir/.dfnet-stamp"
fi

# ---- nanopb runtime sources ---------------------------------------------------------
# The generator and headers come from Debian's nanopb packages; the runtime (pb_*.c) is
# compiled into our build from Debian's source package of the same version, so that the
# sanitizer and fuzzer builds instrument the decoder too.
nanopb_version=$(dpkg-query -W -f='${Version}' nanopb)
if [ "$(cat "$deps/nanopb/.version" 2>/dev/null)" != "$nanopb_version" ]; then
  log "fetching nanopb $nanopb_version runtime sources"
  rm -rf "$deps/nanopb" "$deps/nanopb-src"; mkdir -p "$deps/nanopb-src" "$deps/nanopb"
  ( cd "$deps/nanopb-src" && apt-get source -qq --download-only "nanopb=$nanopb_version" >/dev/null 2>&1 \
      && dpkg-source --no-check -x ./*.dsc src >/dev/null )
  cp "$deps"/nanopb-src/src/pb*.c "$deps"/nanopb-src/src/pb*.h "$deps/nanopb/"
  rm -rf "$deps/nanopb-src"
  echo "$nanopb_version" > "$deps/nanopb/.version"
fi

# ---- libwebsockets (static, mbedTLS) -------------------------------------------------
# Every feature lws would otherwise pick up from what the machine happens to have installed
# is stated here, so that the same commit builds the same library everywhere: libcap
# (lws detects it by itself and then needs -lcap at every link; dfnet drops no capabilities
# through lws), the event libraries (libuv, libev, libevent, glib), zlib/miniz, SQLite,
# libmount, hubbub, the OS CA store (dfnet trusts only its fleet's CA), plugins.
lws_opts=(
  -DCMAKE_BUILD_TYPE=Release -DCMAKE_POSITION_INDEPENDENT_CODE=ON
  -DLWS_WITH_MBEDTLS=ON -DLWS_WITH_SSL=ON -DLWS_WITHOUT_TESTAPPS=ON
  -DLWS_WITH_SHARED=OFF -DLWS_WITH_STATIC=ON
  -DLWS_WITHOUT_EXTENSIONS=ON -DLWS_WITH_MINIMAL_EXAMPLES=OFF
  -DLWS_IPV6=ON -DLWS_WITH_LIBUV=OFF -DLWS_WITH_LIBEV=OFF -DLWS_WITH_LIBEVENT=OFF
  -DLWS_WITH_GLIB=OFF -DLWS_WITH_EVLIB_PLUGINS=OFF -DLWS_WITH_SYS_SMD=OFF
  -DLWS_WITH_SYS_STATE=OFF -DLWS_WITH_HTTP2=OFF
  -DLWS_HAVE_LIBCAP=0 -DLWS_HAVE_SYS_CAPABILITY_H=0
  -DLWS_WITH_ZLIB=OFF -DLWS_WITH_MINIZ=OFF -DLWS_WITH_SQLITE3=OFF -DLWS_WITH_FSMOUNT=OFF
  -DLWS_WITH_HUBBUB=OFF -DLWS_WITH_PLUGINS=OFF -DLWS_WITH_PLUGINS_API=OFF
  -DLWS_WITH_LWSWS=OFF -DLWS_WITH_SOCKS5=OFF -DLWS_SSL_CLIENT_USE_OS_CA_CERTS=OFF
  -DLWS_WITH_EXPORT_LWSTARGETS=ON
)
patches=$(ls "$root"/scripts/patches/libwebsockets/*.patch 2>/dev/null | sort || true)
src_version=$(apt-cache showsrc libwebsockets 2>/dev/null | awk '/^Version:/ {print $2; exit}')
[ -n "$src_version" ] || { [ $apt_updated = 1 ] || $sudo apt-get update -qq; src_version=$(apt-cache showsrc libwebsockets | awk '/^Version:/ {print $2; exit}'); }
stamp_want=$( { echo "$src_version"; echo "${lws_opts[*]}"; for p in $patches; do sha256sum "$p"; done; } | sha256sum | cut -d' ' -f1)
stamp="$prefix/.dfnet-lws-stamp"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$stamp_want" ] && [ -f "$prefix/lib/libwebsockets.a" ]; then
  log "libwebsockets $src_version (mbedTLS) already built"
  exit 0
fi

# Built into a staging prefix and swapped in at the end with two renames: builds that link
# .deps/prefix never see a half-installed or missing library while this runs.
staging="$deps/prefix.new"
log "building libwebsockets $src_version against mbedTLS into $prefix"
rm -rf "$deps/src" "$deps/build" "$staging"
mkdir -p "$deps/src" "$deps/build"
( cd "$deps/src" && apt-get source -qq --download-only libwebsockets >/dev/null 2>&1 \
    && dpkg-source --no-check -x ./*.dsc lws >/dev/null )
lws_src="$deps/src/lws"
for p in $patches; do
  log "applying $(basename "$p")"
  patch -d "$lws_src" -p1 --forward --quiet < "$p"
done
cmake -S "$lws_src" -B "$deps/build" -DCMAKE_INSTALL_PREFIX="$staging" "${lws_opts[@]}" >"$deps/build.log" 2>&1 \
  || { tail -40 "$deps/build.log"; exit 1; }
cmake --build "$deps/build" -j"$(nproc)" >>"$deps/build.log" 2>&1 || { tail -40 "$deps/build.log"; exit 1; }
cmake --install "$deps/build" >>"$deps/build.log" 2>&1 || { tail -40 "$deps/build.log"; exit 1; }
grep -q '#define LWS_WITH_MBEDTLS' "$staging/include/lws_config.h" \
  || { log "error: built libwebsockets does not have LWS_WITH_MBEDTLS"; exit 1; }
if grep -qE '#define (LWS_HAVE_LIBCAP|LWS_WITH_LIBUV|LWS_WITH_ZLIB|LWS_WITH_SQLITE3)\b' "$staging/include/lws_config.h"; then
  log "error: libwebsockets picked up an optional library from this machine:"
  grep -E '#define (LWS_HAVE_LIBCAP|LWS_WITH_LIBUV|LWS_WITH_ZLIB|LWS_WITH_SQLITE3)\b' "$staging/include/lws_config.h"
  exit 1
fi
echo "$stamp_want" > "$staging/.dfnet-lws-stamp"
rm -rf "$deps/prefix.old"
[ ! -e "$prefix" ] || mv "$prefix" "$deps/prefix.old"
mv "$staging" "$prefix"
rm -rf "$deps/prefix.old"
log "libwebsockets $src_version built (LWS_WITH_MBEDTLS on)"
