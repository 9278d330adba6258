#!/usr/bin/env bash
# dfnet quick start: build dfnet, start a manager and a host agent on this machine's real
# hardware, let binding settle, and show the fleet and a call to a driver.
#
#   scripts/quickstart.sh                 run, show, stop everything
#   scripts/quickstart.sh --keep-running  leave the manager and the agent running and print
#                                         the environment for `dfnet` against them
#
# State (CA, certificates, logs, package cache) lives in .run/ (git-ignored). Everything
# this script starts is stopped on exit, error or Ctrl-C. Exits non-zero if a step fails.
# Drivers run sandboxed (docs/architecture.md "Confinement"): the system user dfnet-driver
# that driver hosts run as under a root agent is created when missing (with sudo when not
# root, as scripts/deps.sh installs packages).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
keep_running=0
for arg in "$@"; do
  case "$arg" in
    --keep-running) keep_running=1 ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "quickstart: unknown option '$arg' (try --help)" >&2; exit 2 ;;
  esac
done

listen=127.0.0.1:7443
manager_url=wss://localhost:7443
build="$root/build/release"
run="$root/.run"
state="$run/state"
certs="$run/certs"
logs="$run/logs"
pids=()

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
fail() { printf 'quickstart: %s\n' "$*" >&2; exit 1; }

cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [ $keep_running = 1 ] && [ $rc = 0 ]; then return; fi
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  [ $rc = 0 ] || echo "quickstart: failed (exit $rc); logs are in $logs" >&2
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Wait until FILE has a line matching REGEX (by watching the file, up to SECONDS).
wait_for_line() {
  local file=$1 regex=$2 seconds=$3 pid=$4
  local deadline=$((SECONDS + seconds))
  while ! grep -qE "$regex" "$file" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { tail -20 "$file" >&2; fail "$(basename "$file" .log) exited"; }
    [ $SECONDS -lt $deadline ] || { tail -20 "$file" >&2; fail "timed out waiting for '$regex' in $file"; }
    inotifywait -qq -t 1 -e modify "$file" 2>/dev/null || sleep 0.1
  done
}

step "Dependencies (scripts/deps.sh)"
bash "$root/scripts/deps.sh"

step "Build (Release) in build/release"
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release >/dev/null
# Only what runs: the programs and the driver packages (the tests are scripts/test.sh).
cmake --build "$build" -j"$(nproc)" --target dfnet-manager dfnet-host dfnet-driver-host dfnet \
  dfnet_drivers >"$build.log" 2>&1 || { tail -40 "$build.log"; fail "build failed"; }
manager="$build/manager/dfnet-manager"
agent="$build/host/agent/dfnet-host"
dfnet="$build/clients/dfnet"
for b in "$manager" "$agent" "$dfnet"; do [ -x "$b" ] || fail "missing $b after the build"; done

step "Driver user dfnet-driver (driver hosts run as it, sandboxed)"
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if id -u dfnet-driver >/dev/null 2>&1; then
  echo "dfnet-driver exists (uid $(id -u dfnet-driver))"
else
  $sudo useradd --system --no-create-home --shell /usr/sbin/nologin dfnet-driver
  echo "created dfnet-driver (uid $(id -u dfnet-driver))"
fi

step "State directory .run/ (CA and certificates)"
mkdir -p "$state" "$certs" "$logs" "$run/cache"
"$manager" init --state-dir "$state"
host_name=$(hostname | tr -c 'A-Za-z0-9._\n-' '-' | cut -c1-64)
[ -n "$host_name" ] || host_name=localhost
if [ ! -f "$certs/host/$host_name.pem" ]; then
  "$manager" issue --state-dir "$state" --role host --name "$host_name" --out "$certs/host"
fi
if [ ! -f "$certs/admin/quickstart-admin.pem" ]; then
  "$manager" issue --state-dir "$state" --role admin --name quickstart-admin --out "$certs/admin"
fi
export DFNET_MANAGER="$manager_url"
export DFNET_CERT="$certs/admin/quickstart-admin.crt"
export DFNET_KEY="$certs/admin/quickstart-admin.key"
export DFNET_CA="$certs/admin/ca.crt"

step "Manager on $listen (drivers from build/release/drivers)"
: >"$logs/manager.log"
"$manager" --listen "$listen" --state-dir "$state" --drivers "$build/drivers" \
  >>"$logs/manager.log" 2>&1 &
pids+=($!)
wait_for_line "$logs/manager.log" "listening on" 15 "${pids[-1]}"
grep -m1 "listening on" "$logs/manager.log"

# With a USB bus, usb-device binds its devices: it asks for the right "usb" (its manifest),
# which the agent must allow.
usb_flag=--no-usb
if [ -d /dev/bus/usb ] && [ -n "$(ls -A /dev/bus/usb 2>/dev/null)" ]; then
  usb_flag="--allow-right usb"
fi

# Watch the fleet from before the agent starts, so no event is missed.
: >"$logs/watch.log"
"$dfnet" watch >>"$logs/watch.log" 2>&1 &
pids+=($!)
watch_pid=${pids[-1]}

usb_note="no USB bus here: --no-usb"
[ "$usb_flag" = --no-usb ] || usb_note="USB drivers get the right usb"
step "Host agent '$host_name' on this machine's /sys, drivers sandboxed ($usb_note)"
: >"$logs/host.log"
"$agent" --manager "$manager_url" --cert "$certs/host/$host_name.crt" \
  --key "$certs/host/$host_name.key" --ca "$certs/host/ca.crt" --name "$host_name" \
  --sysfs-root /sys --cache-dir "$run/cache" $usb_flag >>"$logs/host.log" 2>&1 &
pids+=($!)
agent_pid=${pids[-1]}

step "Waiting for binding to settle (watching events)"
# Settled: at least one node is bound and the event stream has been quiet for 2 seconds
# (every driver start answered). At most 60 seconds. A node is bound when the watch saw
# NODE_BOUND, or, should the watch have subscribed only after the first binds (it starts
# beside the agent), when the fleet's node list says so.
bound_nodes() { "$dfnet" node list --json 2>/dev/null | grep -cE '"state":[[:space:]]*"bound"' || true; }
deadline=$((SECONDS + 60))
last_size=-1; quiet_since=$SECONDS
while :; do
  kill -0 "$agent_pid" 2>/dev/null || { tail -20 "$logs/host.log" >&2; fail "the host agent exited"; }
  kill -0 "$watch_pid" 2>/dev/null || { tail -20 "$logs/watch.log" >&2; fail "dfnet watch exited"; }
  size=$(stat -c %s "$logs/watch.log")
  if [ "$size" != "$last_size" ]; then last_size=$size; quiet_since=$SECONDS; fi
  if [ $((SECONDS - quiet_since)) -ge 2 ] &&
     { grep -q "NODE_BOUND" "$logs/watch.log" || [ "$(bound_nodes)" -gt 0 ]; }; then break; fi
  [ $SECONDS -lt $deadline ] || { cat "$logs/watch.log" >&2; fail "binding did not settle within 60 s"; }
  inotifywait -qq -t 1 -e modify "$logs/watch.log" 2>/dev/null || sleep 0.2
done
echo "settled: $(bound_nodes) node(s) bound"

step "dfnet host list"
"$dfnet" host list
step "dfnet node list -v"
"$dfnet" node list -v
step "dfnet driver list --loaded"
"$dfnet" driver list --loaded

if "$dfnet" node list --json | grep -Eq '"class_path":[[:space:]]*"class/rng/000"'; then
  step "dfnet rng read class/rng/000 32 --hex  (this machine's hardware RNG, through the fabric)"
  "$dfnet" rng read class/rng/000 32 --hex
else
  echo "This machine has no hardware RNG that virtio-rng could bind (no class/rng/000)."
  step "dfnet call class/pci/000 /dfnet.hw.pci.Config/Read  (the first 16 bytes of PCI config space instead)"
  # dfnet.hw.pci.ReadRequest{offset: 0, length: 16}
  "$dfnet" call class/pci/000 /dfnet.hw.pci.Config/Read --data-hex 08001010
fi

if [ $keep_running = 1 ]; then
  step "Still running (manager pid ${pids[0]}, host agent pid $agent_pid). Use dfnet with:"
  kill "$watch_pid" 2>/dev/null || true
  cat <<ENV
export DFNET_MANAGER=$DFNET_MANAGER
export DFNET_CERT=$DFNET_CERT
export DFNET_KEY=$DFNET_KEY
export DFNET_CA=$DFNET_CA
# stop them with: kill ${pids[0]} $agent_pid
ENV
fi
step "Done"
