#!/usr/bin/env bash
# Capture the PCI part of a machine's sysfs into a folder, as tests/fixtures/sysfs-virtio-vm
# was made, for `dfnet-host --sysfs-root` and the tests (tests/fixtures/README.md).
#
#   scripts/capture-sysfs.sh [--sysfs ROOT] OUT_DIR
#
# Copies, for every entry of ROOT/bus/pci/devices (ROOT defaults to /sys):
#   - the entry itself, as a symbolic link with the kernel's relative target;
#   - the function's directory under ROOT/devices/: the attributes dfnet and its tests read
#     (class config device enable irq modalias numa_node revision subsystem_device
#     subsystem_vendor uevent vendor), `config` cut to its first 256 bytes (the standard
#     header; reading more needs root anyway), and its `driver` link;
#   - its virtio* children (device features modalias status uevent vendor, and `driver`),
#     where the kernel has them.
# Links stay links with their relative targets; a target outside the capture (a driver
# folder) dangles, which is what readers of `driver` expect. Nothing is followed out of
# the function's own directory. OUT_DIR must not exist or be empty.
set -euo pipefail

usage() { echo "usage: $0 [--sysfs ROOT] OUT_DIR" >&2; exit 2; }
src=/sys
case "${1:-}" in
  -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --sysfs) [ $# -ge 3 ] || usage; src=$2; shift 2 ;;
esac
[ $# = 1 ] || usage
out=$1
[ -d "$src/bus/pci/devices" ] || { echo "capture-sysfs: $src/bus/pci/devices: no such folder" >&2; exit 1; }
if [ -e "$out" ] && [ -n "$(ls -A "$out")" ]; then
  echo "capture-sysfs: $out exists and is not empty" >&2; exit 1
fi
src=$(cd "$src" && pwd -P)
mkdir -p "$out/bus/pci/devices"

function_attrs="class config device enable irq modalias numa_node revision subsystem_device
  subsystem_vendor uevent vendor"
virtio_attrs="device features modalias status uevent vendor"

# copy_attrs FROM TO NAMES: the attribute files NAMES of FROM that exist and can be read,
# and FROM's driver link.
copy_attrs() {
  local from=$1 to=$2 name
  mkdir -p "$to"
  for name in $3; do
    [ -f "$from/$name" ] && [ -r "$from/$name" ] || continue
    if [ "$name" = config ]; then
      head -c 256 "$from/$name" > "$to/$name" 2>/dev/null || rm -f "$to/$name"
    else
      cat "$from/$name" > "$to/$name" 2>/dev/null || rm -f "$to/$name"
    fi
  done
  [ -L "$from/driver" ] && ln -s "$(readlink "$from/driver")" "$to/driver"
  return 0
}

count=0
for entry in "$src"/bus/pci/devices/*; do
  [ -L "$entry" ] || continue
  bdf=${entry##*/}
  ln -s "$(readlink "$entry")" "$out/bus/pci/devices/$bdf"
  fn=$(readlink -f "$entry")
  rel=${fn#"$src"/}
  [ "$rel" != "$fn" ] || { echo "capture-sysfs: $entry leads outside $src" >&2; exit 1; }
  copy_attrs "$fn" "$out/$rel" "$function_attrs"
  for child in "$fn"/virtio*; do
    [ -d "$child" ] && [ ! -L "$child" ] && copy_attrs "$child" "$out/$rel/${child##*/}" "$virtio_attrs"
  done
  count=$((count + 1))
done
echo "capture-sysfs: $count PCI functions from $src into $out"
