#!/usr/bin/env bash
# Run every dfnet test: installs dependencies (scripts/deps.sh), then configures, builds
# and runs ctest in a normal build and in an ASan+UBSan build, runs the fuzz targets for a
# bounded time when clang is installed, and checks that no binary links OpenSSL and that no
# test left a process of the build tree running. Exits non-zero on any failure.
#   DFNET_FUZZ_SECONDS   seconds per fuzz target (default 30; 0 skips fuzzing)
#   DFNET_TEST_JOBS      parallel ctest jobs (default: number of cores)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=$(nproc)
ctest_jobs=${DFNET_TEST_JOBS:-$jobs}
fuzz_seconds=${DFNET_FUZZ_SECONDS:-30}
summary=()
failed=0

bash scripts/deps.sh

section() { printf '\n==== %s ====\n' "$*"; }

# leftovers DIR: "pid executable" of every process whose executable lies under DIR.
leftovers() {
  local d e
  for d in /proc/[0-9]*; do
    e=$(readlink "$d/exe" 2>/dev/null) || continue
    case "$e" in "$1"/*) echo "${d#/proc/} $e" ;; esac
  done
}

# build_and_test NAME CMAKE-ARGS...
build_and_test() {
  local name=$1; shift
  local dir="$root/build/$name"
  section "$name: configure and build"
  cmake -S "$root" -B "$dir" "$@" >"$dir.configure.log" 2>&1 || { cat "$dir.configure.log"; return 1; }
  cmake --build "$dir" -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\]|^(gmake|make)\[' || true
  [ "${PIPESTATUS[0]}" = 0 ] || return 1
  section "$name: ctest"
  local out rc=0
  out=$(cd "$dir" && ctest -j"$ctest_jobs" --output-on-failure 2>&1) || rc=$?
  printf '%s\n' "$out"
  summary+=("$name: $(printf '%s\n' "$out" | grep -E 'tests passed|tests failed' | tail -1)")
  # No test may leave a process behind (tests/child.h): name, kill and fail on any.
  local left
  left=$(leftovers "$dir")
  if [ -n "$left" ]; then
    echo "$name: processes left running after ctest:"; printf '  %s\n' "$left"
    printf '%s\n' "$left" | awk '{print $1}' | xargs -r kill -9 2>/dev/null || true
    summary+=("$name: processes left running after ctest (killed)")
    rc=1
  fi
  return $rc
}

section "layout: clang-format (.clang-format)"
unformatted=()
while IFS= read -r f; do
  clang-format --dry-run --Werror "$f" >/dev/null 2>&1 || unformatted+=("$f")
done < <(git ls-files '*.c' '*.h' 2>/dev/null || find . -path ./.deps -prune -o -path ./build -prune -o -name '*.[ch]' -print)
if [ ${#unformatted[@]} -eq 0 ]; then
  echo "ok: every C file is as clang-format lays it out"
else
  echo "not formatted (run clang-format -i on them):"; printf '  %s\n' "${unformatted[@]}"
  summary+=("layout: ${#unformatted[@]} C files not formatted"); failed=1
fi

mkdir -p build
# The quickstart's optimisation (Release, -O3) with debug info: what it builds is what is
# tested, and the warnings -O3 finds (-Werror) fail here rather than in a user's quickstart.
build_and_test normal -DCMAKE_BUILD_TYPE=Release "-DCMAKE_C_FLAGS_RELEASE=-O3 -DNDEBUG -g" ||
  failed=1

# ASan+UBSan: any report fails the test that triggered it.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
build_and_test sanitize -DCMAKE_BUILD_TYPE=Debug -DDFNET_SANITIZE=ON || failed=1

section "no binary links OpenSSL"
bad=0
while IFS= read -r f; do
  if readelf -d "$f" 2>/dev/null | grep -qE 'NEEDED.*(libssl|libcrypto)'; then
    echo "links OpenSSL: $f"; bad=1
  fi
done < <(find build/normal build/sanitize -type f -perm -u+x \( -name 'dfnet*' -o -name 'test_*' -o -name '*_bench' -o -name '*.so' \) 2>/dev/null)
[ $bad = 0 ] && echo "ok: none of our binaries links libssl or libcrypto" || failed=1

if command -v clang >/dev/null 2>&1 && [ "$fuzz_seconds" != 0 ]; then
  section "fuzz targets (${fuzz_seconds}s each)"
  fdir="$root/build/fuzz"
  if CC=clang cmake -S "$root" -B "$fdir" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDFNET_FUZZ=ON \
       -DDFNET_SANITIZE=ON >"$fdir.configure.log" 2>&1 \
     && cmake --build "$fdir" -j"$jobs" >"$fdir.build.log" 2>&1; then
    for target in "$fdir"/tests/fuzz/fuzz_*; do
      [ -x "$target" ] || continue
      name=$(basename "$target")
      corpus="$fdir/corpus/$name"; mkdir -p "$corpus"
      seeds="$root/tests/fuzz/corpus/$name"
      if "$target" -max_total_time="$fuzz_seconds" -print_final_stats=0 \
           -artifact_prefix="$fdir/$name-" "$corpus" \
           $( [ -d "$seeds" ] && echo "$seeds" ) >"$fdir/$name.log" 2>&1; then
        echo "$name: ok ($(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$fdir/$name.log" | tail -1) runs)"
      else
        echo "$name: FAILED"; tail -40 "$fdir/$name.log"; failed=1
      fi
    done
  else
    cat "$fdir.configure.log" "$fdir.build.log" 2>/dev/null | tail -40; failed=1
  fi
else
  section "fuzz targets: skipped (clang not installed or DFNET_FUZZ_SECONDS=0)"
fi

section "summary"
for line in "${summary[@]}"; do echo "$line"; done
if [ $failed = 0 ]; then echo "all test stages passed"; else echo "some test stage FAILED"; fi
exit $failed
