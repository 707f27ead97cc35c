#!/usr/bin/env bash
# "Command 1": builds Chorus (Release, in build-release/) and runs the main job:
# an nccl-tests-style AllReduce sweep from 8 B to 128 MiB, one process per
# rank, launched by chorusrun (one rank per core, at least 2).
#
#   bash scripts/run_main.sh            the main job with its default arguments
#   bash scripts/run_main.sh ARGS...    all_reduce_perf with ARGS instead
#
# CHORUS_RANKS sets the number of ranks; CHORUS_BUILD_DIR picks another build
# folder; CHORUS_SKIP_DEPS=1 skips the dependency check.
set -euo pipefail

MAIN_JOB=(perf/all_reduce_perf -b 8 -e 128M -f 2)
LAUNCHER=perf/chorusrun

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly BUILD_DIR="${CHORUS_BUILD_DIR:-build-release}"
program="${MAIN_JOB[0]}"
target="$(basename "$program")"
if [[ $# -gt 0 ]]; then
  args=("$@")
else
  args=("${MAIN_JOB[@]:1}")
fi

bash scripts/install_deps.sh

# A folder configured earlier with another generator cannot be reused as is.
if [[ -f "$BUILD_DIR/CMakeCache.txt" ]] &&
   ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$BUILD_DIR/CMakeCache.txt"; then
  echo "run_main.sh: $BUILD_DIR was configured with another generator; reconfiguring it for Ninja"
  rm -rf "$BUILD_DIR/CMakeCache.txt" "$BUILD_DIR/CMakeFiles"
fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCHORUS_SANITIZE=OFF >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc 2>/dev/null || echo 2)" --target "$target" \
  "$(basename "$LAUNCHER")"

cores="$(nproc 2>/dev/null || echo 2)"
ranks="${CHORUS_RANKS:-$(( cores > 2 ? cores : 2 ))}"
echo "run_main.sh: $BUILD_DIR/$LAUNCHER -n $ranks $BUILD_DIR/$program ${args[*]}"
exec "$BUILD_DIR/$LAUNCHER" -n "$ranks" --timeout 1800 "$BUILD_DIR/$program" "${args[@]}"
