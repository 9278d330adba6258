#!/bin/sh
# notify_test.sh BUILD_DIR (ctest packaging_notify, label "packaging"): the sd_notify
# messages of the Type=notify units (lib/service_notify.h), received on a datagram socket
# given as $NOTIFY_SOCKET as systemd would: dfnet-manager says READY=1 with
# "STATUS=listening on ..." once it listens and STOPPING=1 at SIGTERM; dfnet-host (with a
# certificate the manager issued, --no-sandbox --no-usb) READY=1 once it has started, and
# STOPPING=1 at SIGTERM.
set -eu
build=$1
command -v python3 >/dev/null 2>&1 || { echo "SKIP: no python3"; exit 77; }
tmp=$(mktemp -d /tmp/dfnet-pkg-notify.XXXXXX)
pids=
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; for f in "$tmp"/*.err "$tmp"/*.got; do [ -f "$f" ] && { echo "== $f"; cat "$f"; }; done; exit 1; }
# receive NAME: collect the datagrams sent to $tmp/NAME.sock into $tmp/NAME.got
receive() {
  python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as out:
    for _ in range(2):
        out.write(s.recv(4096).decode().replace("\n", " ") + "\n")
        out.flush()
' "$tmp/$1.sock" "$tmp/$1.got" &
  pids="$pids $!"
  i=0
  until [ -S "$tmp/$1.sock" ]; do i=$((i + 1)); [ $i -lt 100 ] || fail "no socket"; sleep 0.05; done
}
# wait_for FILE TEXT: until FILE holds TEXT (30 s)
wait_for() {
  i=0
  until grep -q "$2" "$1" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 300 ] || fail "no '$2' in $1"; sleep 0.1
  done
}

mgr=$build/manager/dfnet-manager
"$mgr" init --state-dir "$tmp/state" >/dev/null
"$mgr" issue --state-dir "$tmp/state" --role host --name notify-host --out "$tmp/host" >/dev/null

receive manager
NOTIFY_SOCKET=$tmp/manager.sock "$mgr" --listen 127.0.0.1:0 --state-dir "$tmp/state" \
  >"$tmp/manager.out" 2>"$tmp/manager.err" &
mpid=$!
pids="$pids $mpid"
wait_for "$tmp/manager.got" "^READY=1 STATUS=listening on 127.0.0.1:[0-9]"
port=$(sed -n 's/.*listening on 127.0.0.1:\([0-9]*\).*/\1/p' "$tmp/manager.out")
[ -n "$port" ] || fail "no port"

receive host
NOTIFY_SOCKET=$tmp/host.sock "$build/host/agent/dfnet-host" --manager "wss://127.0.0.1:$port" \
  --cert "$tmp/host/notify-host.crt" --key "$tmp/host/notify-host.key" --ca "$tmp/host/ca.crt" \
  --name notify-host --no-usb --no-sandbox --cache-dir "$tmp/cache" --state-dir "$tmp/hs" \
  >"$tmp/host.out" 2>"$tmp/host.err" &
hpid=$!
pids="$pids $hpid"
wait_for "$tmp/host.got" "^READY=1 STATUS=serving; manager wss://127.0.0.1:$port"
kill -TERM "$hpid"
wait_for "$tmp/host.got" "^STOPPING=1"
wait "$hpid" || fail "dfnet-host exited $?"
kill -TERM "$mpid"
wait_for "$tmp/manager.got" "^STOPPING=1 STATUS=stopping (signal 15)"
wait "$mpid" || fail "dfnet-manager exited $?"
cat "$tmp/manager.got" "$tmp/host.got"
echo "packaging_notify: OK"
