#!/usr/bin/env bash
# GPU check: builds Chorus with CUDA (or reuses a build folder), shows the GPU,
# runs the GPU tests and the device benchmark. For a machine with an NVIDIA GPU,
# the CUDA toolkit (13), CMake and ninja; it needs no internet and installs
# nothing.
#
#   bash scripts/gpu_check.sh              # configure and build in build-gpu/
#   bash scripts/gpu_check.sh BUILD_DIR    # use BUILD_DIR; when it was configured
#                                          # from another checkout or machine, its
#                                          # programs are run as they are
#
# Environment:
#   CHORUS_GPU_BUILD_DIR      build folder when none is given (default build-gpu)
#   CHORUS_CUDA_ARCHS         CMAKE_CUDA_ARCHITECTURES for a fresh configure
#                             (default: the project's, "80;90"; "native" works too)
#   CHORUS_BENCH_ARGS         extra device_reduce_bench arguments
#                             (e.g. "--benchmark_min_time=0.2s")
#
# Without GoogleTest the build is configured with -DCHORUS_TESTS=OFF and the
# test step is skipped with a message; without Google Benchmark, the benchmark
# step is. A GPU test that skips itself here (no usable device) is a failure.
#
# Adding a step (perf programs on GPU buffers, ...): write a function step_NAME
# and add a `run_step` line at the bottom; it may use $BUILD, $FOREIGN_BUILD
# and have_program. Exits non-zero when any step fails; the summary names it.

# The step functions are called through run_step, which shellcheck cannot
# follow (SC2317, "unreachable").
# shellcheck disable=SC2317
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly SOURCE_DIR="$PWD"
BUILD="${1:-${CHORUS_GPU_BUILD_DIR:-build-gpu}}"
BUILD="$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)"
readonly BUILD
JOBS="$(nproc 2>/dev/null || echo 4)"
readonly JOBS
# 1 when BUILD was configured from another source folder: no cmake, no ctest
# (their files hold the other folder's paths); the programs run directly.
FOREIGN_BUILD=0

failed=()
summary=()

say() { printf '\n==== gpu_check.sh: %s\n' "$*"; }

# run_step NAME FUNCTION: runs one step and records its outcome.
run_step() {
  local name="$1" begin=$SECONDS status=0
  shift
  say "$name"
  "$@" || status=$?
  local took=$((SECONDS - begin)) outcome=ok
  if [[ $status -ne 0 ]]; then
    outcome="FAILED (exit $status)"
    failed+=("$name")
  fi
  summary+=("$(printf '%-18s %5ds  %s' "$name" "$took" "$outcome")")
  return "$status"
}

finish() {
  say "summary"
  printf '  %s\n' "${summary[@]}"
  if [[ ${#failed[@]} -eq 0 ]]; then
    echo "gpu_check.sh: PASSED"
    exit 0
  fi
  local IFS=,
  echo "gpu_check.sh: FAILED (${failed[*]})"
  exit 1
}

# The path of a built program under BUILD, or nothing.
have_program() {
  local path="$BUILD/$1"
  [[ -x "$path" ]] && echo "$path"
}

cache_value() {  # cache_value NAME: a value from BUILD's CMakeCache.txt
  sed -n "s/^$1:[A-Z]*=//p" "$BUILD/CMakeCache.txt" 2>/dev/null
}

configure() {
  local args=(-S "$SOURCE_DIR" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHORUS_CUDA=ON)
  [[ -n "${CHORUS_CUDA_ARCHS:-}" ]] && args+=("-DCMAKE_CUDA_ARCHITECTURES=$CHORUS_CUDA_ARCHS")
  local log="$BUILD/gpu_check_configure.log"
  if cmake "${args[@]}" -DCHORUS_TESTS=ON >"$log" 2>&1; then
    cat "$log"
    return 0
  fi
  if grep -q 'GTest' "$log"; then
    echo "gpu_check.sh: GoogleTest not found; configuring with -DCHORUS_TESTS=OFF (the GPU tests will not run)"
    cmake "${args[@]}" -DCHORUS_TESTS=OFF
    return
  fi
  cat "$log"
  return 1
}

step_build() {
  for tool in cmake ninja; do
    command -v "$tool" >/dev/null || { echo "gpu_check.sh: $tool not found"; return 1; }
  done
  if [[ -f "$BUILD/CMakeCache.txt" && "$(cache_value CMAKE_HOME_DIRECTORY)" != "$SOURCE_DIR" ]]; then
    FOREIGN_BUILD=1
    echo "gpu_check.sh: $BUILD was configured from $(cache_value CMAKE_HOME_DIRECTORY);"
    echo "  not rebuilding it, running its programs as they are"
    return 0
  fi
  # (set -e does not apply inside a step: run_step tests its status.)
  [[ -f "$BUILD/CMakeCache.txt" ]] || configure || return 1
  if [[ "$(cache_value CHORUS_CUDA)" == OFF ]] || ! grep -q 'CHORUS_HAVE_CUDA=1' "$BUILD/build.ninja"; then
    echo "gpu_check.sh: $BUILD is built without the CUDA path (is nvcc at /usr/local/cuda/bin?)"
    return 1
  fi
  # Only what the steps below run (the targets that this configuration has).
  local targets=(nccl) all
  all="$(ninja -C "$BUILD" -t targets all 2>/dev/null)"
  for t in chorus_gpu_tests device_reduce_bench; do
    grep -q "^$t:" <<<"$all" && targets+=("$t")
  done
  cmake --build "$BUILD" -j "$JOBS" --target "${targets[@]}"
}

step_gpu_info() {
  command -v nvidia-smi >/dev/null || { echo "gpu_check.sh: nvidia-smi not found (no NVIDIA driver?)"; return 1; }
  nvidia-smi
}

step_gpu_tests() {
  local exe
  if ! exe="$(have_program tests/chorus_gpu_tests)"; then
    echo "gpu_check.sh: SKIPPED: no tests/chorus_gpu_tests in $BUILD (built without GoogleTest or tests)"
    return 0
  fi
  local log status=0
  log="$(mktemp)"
  if [[ $FOREIGN_BUILD == 1 ]]; then
    "$exe" 2>&1 | tee "$log" || status=$?
  else
    ctest --test-dir "$BUILD" -L gpu --output-on-failure --no-tests=error 2>&1 | tee "$log" || status=$?
  fi
  # A GPU test skips itself only when no device is usable: here, that is a failure.
  if grep -qE '\(Skipped\)|\[  SKIPPED \]' "$log"; then
    echo "gpu_check.sh: GPU tests were skipped: no usable CUDA device"
    status=1
  fi
  rm -f "$log"
  return "$status"
}

step_device_bench() {
  local exe
  if ! exe="$(have_program perf/device_reduce_bench)"; then
    echo "gpu_check.sh: SKIPPED: no perf/device_reduce_bench in $BUILD (built without Google Benchmark)"
    return 0
  fi
  local missing
  missing="$(ldd "$exe" 2>/dev/null | grep 'not found' || true)"
  if [[ -n "$missing" ]]; then  # a build folder carried from a machine with Google Benchmark
    echo "gpu_check.sh: SKIPPED: perf/device_reduce_bench cannot load its libraries here:"
    echo "$missing"
    return 0
  fi
  local args=() log status=0
  [[ -n "${CHORUS_BENCH_ARGS:-}" ]] && read -r -a args <<<"$CHORUS_BENCH_ARGS"
  log="$(mktemp)"
  "$exe" "${args[@]}" 2>&1 | tee "$log" || status=$?
  if grep -q 'no CUDA device' "$log"; then
    echo "gpu_check.sh: device_reduce_bench found no usable CUDA device"
    status=1
  fi
  rm -f "$log"
  return "$status"
}

run_step "build" step_build || finish
run_step "gpu info" step_gpu_info || true
run_step "gpu tests" step_gpu_tests || true
run_step "device bench" step_device_bench || true
finish
