#!/usr/bin/env bash
# GPU check: builds Chorus with CUDA (or reuses a build folder), shows the GPU,
# runs the GPU tests, the device benchmark, and every perf program on GPU
# buffers (1, 2 and 4 ranks sharing the GPUs there are, as processes and as
# threads, every result checked; the one-host collectives again on registered
# buffers, -R 1), then measures the numbers docs/performance.md quotes
# (AllReduce, 2 ranks on GPU 0: 8-byte latency, 256 MiB busbw). For a
# machine with an NVIDIA GPU,
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
#   CHORUS_GPU_PERF_ARGS      the perf programs' sweep
#                             (default "-b 8 -e 8M -f 4 -n 5 -w 2 -c 1 -r all")
#   CHORUS_GPU_PERF_TIMEOUT   seconds one perf run may take (default 120); the
#                             step gives up after 3 runs time out
#
# Without GoogleTest the build is configured with -DCHORUS_TESTS=OFF and the
# test step is skipped with a message; without Google Benchmark, the benchmark
# step is. A GPU test that skips itself here (no usable device) is a failure,
# except the DeviceCommTwoGpus tests on a machine with one GPU. So is a perf
# run whose ranks land on host memory. Perf logs and the numbers are kept in
# BUILD/gpu_check_perf/.
#
# Adding a step (another benchmark, ...): write a function step_NAME
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
# The nccl-tests-style programs (perf/nccl_tests/nccl_tests.cmake), in BUILD/perf/.
readonly PERF_PROGRAMS=(all_reduce_perf all_gather_perf broadcast_perf reduce_perf
  reduce_scatter_perf alltoall_perf gather_perf scatter_perf sendrecv_perf hypercube_perf)
PERF_LOGS="$BUILD/gpu_check_perf"

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

gpu_count() {  # GPUs nvidia-smi lists (0 without it)
  { nvidia-smi -L 2>/dev/null || true; } | grep -c '^GPU ' || true
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
  for t in chorus_gpu_tests chorus_abi_two_ranks_gpu device_reduce_bench chorusrun \
    "${PERF_PROGRAMS[@]}"; do
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
    # A C program built with NVIDIA's nccl.h: two ranks on GPU 0 (exit 77: no GPU).
    local abi
    if abi="$(have_program tests/abi/chorus_abi_two_ranks_gpu)"; then
      LD_LIBRARY_PATH="$BUILD${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$abi" 2>&1 | tee -a "$log" ||
        status=$?
    fi
  else
    ctest --test-dir "$BUILD" -L gpu --output-on-failure --no-tests=error 2>&1 | tee "$log" || status=$?
  fi
  # A GPU test skips itself when no device is usable: here, that is a failure.
  # The DeviceCommTwoGpus tests skip on a machine with one GPU, which is fine.
  local skipped
  skipped="$(grep -E '\(Skipped\)|^\[  SKIPPED \] [A-Za-z]' "$log" || true)"
  if [[ "$(gpu_count)" -lt 2 ]]; then
    skipped="$(grep -v 'DeviceCommTwoGpus\.' <<<"$skipped" || true)"
  fi
  if [[ -n "$skipped" ]]; then
    echo "gpu_check.sh: GPU tests were skipped (no usable CUDA device?):"
    sort -u <<<"$skipped" | head -n 20
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

# ---- perf programs on GPU buffers ------------------------------------------

perf_timeouts=0

# Fails, with a message, when this machine cannot put ranks on a GPU.
need_gpu() {
  if [[ "${CHORUS_DEVICE:-}" == host ]]; then
    echo "gpu_check.sh: CHORUS_DEVICE=host is set: the ranks would use host memory; unset it"
    return 1
  fi
  if [[ "$(gpu_count)" -lt 1 ]]; then
    echo "gpu_check.sh: no GPU visible (nvidia-smi -L lists none, or there is no nvidia-smi):"
    echo "  the perf programs would run on host memory; this step needs a GPU"
    return 1
  fi
}

# perf_run LABEL COMMAND...: one perf run, its output kept in
# PERF_LOGS/LABEL.log, one line printed (its tail too when it fails). Fails on
# a non-zero exit (7: wrong results), a timeout, no result rows, a row whose
# #wrong is not 0, no "Out of bounds values : 0 OK", or a rank on host memory.
perf_run() {
  local label="$1" begin=$SECONDS rc=0
  shift
  local log="$PERF_LOGS/${label// /_}.log"
  timeout -k 10 "${CHORUS_GPU_PERF_TIMEOUT:-120}" "$@" >"$log" 2>&1 || rc=$?
  # Result rows: 13 columns, the first a size; #wrong is column 9 (out of
  # place) and 13 (in place), N/A where unchecked.
  local rows wrong devices problem=""
  rows=$(awk '!/^#/ && NF == 13 && $1 ~ /^[0-9]+$/' "$log" | wc -l)
  wrong=$(awk '!/^#/ && NF == 13 && $1 ~ /^[0-9]+$/ &&
               (($9 != "0" && $9 != "N/A") || ($13 != "0" && $13 != "N/A"))' "$log" | wc -l)
  devices=$(sed -nE 's/^#  Rank .* device +([0-9]+|host) .*/\1/p' "$log" | paste -sd, -)
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    problem="timed out after ${CHORUS_GPU_PERF_TIMEOUT:-120} s"
    perf_timeouts=$((perf_timeouts + 1))
  elif [[ $rc -ne 0 ]]; then
    problem="exit $rc$([[ $rc -eq 7 ]] && echo ' (wrong results)')"
  elif [[ $rows -eq 0 ]]; then
    problem="no result rows"
  elif [[ $wrong -ne 0 ]] || grep -q '^# Out of bounds values : [1-9]' "$log"; then
    problem="$wrong rows with #wrong > 0"
  elif ! grep -q '^# Out of bounds values : 0 OK' "$log"; then
    problem="no 'Out of bounds values : 0 OK' line"
  elif [[ -z "$devices" || ",$devices," == *,host,* ]]; then
    problem="ranks not on a GPU (devices: ${devices:-none listed})"
  fi
  printf '  %-4s %-48s %4ds  %2d rows  devices %s%s\n' "$([[ -z $problem ]] && echo ok || echo FAIL)" \
    "$label" $((SECONDS - begin)) "$rows" "${devices:-?}" "${problem:+  -- $problem}"
  if [[ -n "$problem" ]]; then
    echo "    command: $*"
    tail -n 30 "$log" | sed 's/^/    | /'
    return 1
  fi
}

# The programs a perf step needs; prints what is missing.
perf_programs_built() {
  local ok=0 p
  for p in chorusrun "${PERF_PROGRAMS[@]}"; do
    have_program "perf/$p" >/dev/null || { echo "gpu_check.sh: perf/$p is not built in $BUILD"; ok=1; }
  done
  return "$ok"
}

# Every perf program, every result checked, with 1, 2 and 4 ranks: as one
# process each (chorusrun -n N), as threads of one process (-t N), as
# communicators of one thread (-g N), and 2 processes x 2 threads. Ranks take
# GPUs round-robin (perf/nccl_tests/thread_ranks.cc), so with one GPU every
# rank is on GPU 0.
step_gpu_perf() {
  need_gpu && perf_programs_built || return 1
  mkdir -p "$PERF_LOGS"
  local args=() status=0 program exe n
  read -r -a args <<<"${CHORUS_GPU_PERF_ARGS:--b 8 -e 8M -f 4 -n 5 -w 2 -c 1 -r all}"
  local run
  run="$(have_program perf/chorusrun)"
  echo "gpu_check.sh: $(gpu_count) GPU(s), compute mode $(nvidia-smi --query-gpu=compute_mode --format=csv,noheader 2>/dev/null | paste -sd, -);"
  echo "  arguments: ${args[*]}; logs in $PERF_LOGS"
  for program in "${PERF_PROGRAMS[@]}"; do
    exe="$(have_program "perf/$program")"
    perf_run "$program 1 rank" "$exe" "${args[@]}" || status=1
    for n in 2 4; do
      perf_run "$program $n processes" "$run" -n "$n" "$exe" "${args[@]}" || status=1
      perf_run "$program $n threads" "$exe" -t "$n" "${args[@]}" || status=1
      perf_run "$program $n communicators of one thread" "$exe" -g "$n" "${args[@]}" || status=1
    done
    perf_run "$program 2 processes x 2 threads" "$run" -n 2 "$exe" -t 2 "${args[@]}" || status=1
    if [[ $perf_timeouts -ge 3 ]]; then
      echo "gpu_check.sh: giving up: $perf_timeouts runs timed out"
      return 1
    fi
  done
  return "$status"
}

# perf_cell LOG SIZE COLUMN: one column of the result row for SIZE bytes.
perf_cell() {
  awk -v size="$2" -v col="$3" '!/^#/ && NF == 13 && $1 == size { print $col; exit }' "$1"
}

# The numbers docs/performance.md quotes: AllReduce (float, sum) with 2 ranks
# on GPU 0, as processes and as threads; 8-byte latency (time, us) and
# 256 MiB bus bandwidth (GB/s), out of place and in place, results checked.
step_gpu_perf_numbers() {
  need_gpu && perf_programs_built || return 1
  mkdir -p "$PERF_LOGS"
  local exe run status=0 mode
  exe="$(have_program perf/all_reduce_perf)"
  run="$(have_program perf/chorusrun)"
  local small=(-b 8 -e 8 -n 2000 -w 200 -c 1) large=(-b 256M -e 256M -n 20 -w 5 -c 1)
  local -A passed=()  # label -> 1 when its run passed; the others print "FAILED"
  # Both ranks on one GPU however many there are: the first visible one.
  local one="${CUDA_VISIBLE_DEVICES:-0}" size sizeArgs
  one="${one%%,*}"
  for size in "8 B" "256 MiB"; do
    if [[ $size == "8 B" ]]; then sizeArgs=("${small[@]}"); else sizeArgs=("${large[@]}"); fi
    perf_run "numbers $size 2 processes" env CUDA_VISIBLE_DEVICES="$one" "$run" -n 2 "$exe" "${sizeArgs[@]}" \
      && passed["$size processes"]=1 || status=1
    perf_run "numbers $size 2 threads" env CUDA_VISIBLE_DEVICES="$one" "$exe" -t 2 "${sizeArgs[@]}" \
      && passed["$size threads"]=1 || status=1
  done
  local gpu commit table="$PERF_LOGS/numbers.txt"
  # The GPU as rank 0 described it: "#  Rank  0 ... device  0 [0000:65:00] NVIDIA H100 ...".
  gpu="$(sed -nE 's/^#  Rank +0 .* device +[0-9]+ \[[^]]*\] (.*)$/\1/p' "$PERF_LOGS/numbers_8_B_2_threads.log" | head -n 1)"
  commit="$(git -C "$SOURCE_DIR" rev-parse --short HEAD 2>/dev/null || echo '?')"
  {
    echo "AllReduce, float sum, 2 ranks on one GPU (${gpu:-?}), ${NUMBERS_PATH:-proxy and worker kernel}, Chorus $commit$(git -C "$SOURCE_DIR" diff --quiet HEAD 2>/dev/null || echo ' + local changes'), $(date -u '+%Y-%m-%d %H:%M UTC')"
    printf '  %-34s %14s %14s\n' "" "out of place" "in place"
    for mode in processes threads; do
      local log="$PERF_LOGS/numbers_8_B_2_$mode.log"
      if [[ -n "${passed["8 B $mode"]:-}" ]]; then
        printf '  %-34s %11s us %11s us\n' "8 B latency, 2 $mode" \
          "$(perf_cell "$log" 8 6)" "$(perf_cell "$log" 8 10)"
      else
        printf '  %-34s %14s %14s\n' "8 B latency, 2 $mode" FAILED FAILED
      fi
    done
    for mode in processes threads; do
      local log="$PERF_LOGS/numbers_256_MiB_2_$mode.log"
      if [[ -n "${passed["256 MiB $mode"]:-}" ]]; then
        printf '  %-34s %9s GB/s %9s GB/s\n' "256 MiB busbw, 2 $mode" \
          "$(perf_cell "$log" 268435456 8)" "$(perf_cell "$log" 268435456 12)"
      else
        printf '  %-34s %14s %14s\n' "256 MiB busbw, 2 $mode" FAILED FAILED
      fi
    done
  } >"$table"
  say "numbers for docs/performance.md (also in $table)"
  cat "$table"
  return "$status"
}

# The same perf runs and numbers with collectives on the ring kernel
# (CHORUS_DEVICE_RING, exported to every rank), logs in a folder of their own.
with_ring_kernel() {
  local saved="$PERF_LOGS" status=0
  PERF_LOGS="$saved/ring_kernel"
  CHORUS_DEVICE_RING=4 NUMBERS_PATH="ring kernel, 4 channels" "$@" || status=1
  PERF_LOGS="$saved"
  return "$status"
}
step_gpu_perf_ring() { with_ring_kernel step_gpu_perf; }
step_gpu_perf_numbers_ring() { with_ring_kernel step_gpu_perf_numbers; }

# Registered buffers (-R 1, ncclCommRegister): ranks in other processes read
# each other's buffers in place instead of staged copies. The collectives
# that do, with 2 and 4 processes and 2 processes x 2 threads, every result
# checked and the registrations' log lines (NCCL_DEBUG_SUBSYS=REG) checked
# to say the buffers were lent; then AllReduce's 256 MiB busbw with 2
# processes on one GPU, to set beside the staged number of the numbers step.
# On the proxy's direct algorithms (CHORUS_DEVICE_RING unset): the ring
# kernel does not lend.

# perf_run_lent LABEL COMMAND...: perf_run, and the log must show buffers
# lent to peers and none that could not be mapped.
perf_run_lent() {
  local label="$1"
  shift
  perf_run "$label" env -u CHORUS_DEVICE_RING NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=REG "$@" || return 1
  local log="$PERF_LOGS/${label// /_}.log"
  if ! grep -q 'lent to peers' "$log" || grep -q 'stays staged\|staged, not lent' "$log"; then
    echo "    $label: the registered buffers were not lent:"
    grep -E 'lent to peers|stays staged|staged, not lent' "$log" | head -n 5 | sed 's/^/    | /'
    return 1
  fi
}

step_gpu_perf_registered() {
  need_gpu && perf_programs_built || return 1
  local saved="$PERF_LOGS" status=0 args=() program exe run n
  PERF_LOGS="$saved/registered"
  mkdir -p "$PERF_LOGS"
  read -r -a args <<<"${CHORUS_GPU_PERF_ARGS:--b 8 -e 8M -f 4 -n 5 -w 2 -c 1 -r all}"
  run="$(have_program perf/chorusrun)"
  for program in all_reduce_perf all_gather_perf broadcast_perf reduce_perf reduce_scatter_perf; do
    exe="$(have_program "perf/$program")"
    for n in 2 4; do
      perf_run_lent "$program $n processes -R 1" "$run" -n "$n" "$exe" -R 1 "${args[@]}" || status=1
    done
    perf_run_lent "$program 2 processes x 2 threads -R 1" "$run" -n 2 "$exe" -t 2 -R 1 "${args[@]}" ||
      status=1
    if [[ $perf_timeouts -ge 3 ]]; then
      echo "gpu_check.sh: giving up: $perf_timeouts runs timed out"
      PERF_LOGS="$saved"
      return 1
    fi
  done
  local one="${CUDA_VISIBLE_DEVICES:-0}" log="$PERF_LOGS/numbers_256_MiB_2_processes_-R_1.log"
  one="${one%%,*}"
  if perf_run_lent "numbers 256 MiB 2 processes -R 1" env CUDA_VISIBLE_DEVICES="$one" "$run" -n 2 \
    "$(have_program perf/all_reduce_perf)" -R 1 -b 256M -e 256M -n 20 -w 5 -c 1; then
    printf '  %-34s %9s GB/s %9s GB/s  (out of place, in place)\n' \
      "256 MiB busbw, 2 processes, -R 1" "$(perf_cell "$log" 268435456 8)" \
      "$(perf_cell "$log" 268435456 12)" | tee -a "$saved/numbers.txt"
  else
    status=1
  fi
  PERF_LOGS="$saved"
  return "$status"
}

run_step "build" step_build || finish
run_step "gpu info" step_gpu_info || true
run_step "gpu tests" step_gpu_tests || true
run_step "device bench" step_device_bench || true
run_step "gpu perf" step_gpu_perf || true
run_step "gpu perf numbers" step_gpu_perf_numbers || true
run_step "gpu perf, registered" step_gpu_perf_registered || true
run_step "gpu perf, ring kernel" step_gpu_perf_ring || true
run_step "gpu perf numbers, ring kernel" step_gpu_perf_numbers_ring || true
finish
