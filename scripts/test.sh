#!/usr/bin/env bash
# "Command 2": builds Chorus and runs the whole test suite, then builds it
# again with AddressSanitizer + UndefinedBehaviorSanitizer and runs the suite
# under them. This is what CI runs (.ci/run).
#
#   bash scripts/test.sh
#
# Environment:
#   CHORUS_SKIP_SANITIZE=1   skip the sanitizer build and run
#   CHORUS_CTEST_ARGS="..."  extra ctest arguments for both runs
#                            (e.g. "-L unit", "-LE full", "-R Bootstrap")
#   CHORUS_BUILD_DIR         build folder (default build)
#   CHORUS_ASAN_BUILD_DIR    sanitizer build folder (default build-asan)
#   CHORUS_SKIP_DEPS=1       do not check or install dependencies
#
# The sanitizer build is configured with CHORUS_CUDA=OFF: the sanitizers check
# the host code, nvcc does not take -fsanitize, and the CUDA runtime needs
# ASan options of its own. GPU tests skip themselves there as on a machine
# without a GPU.
#
# Exits non-zero when any stage fails; the last line says which.

# The stage functions are called through run_stage, which shellcheck cannot
# follow (SC2317, "unreachable").
# shellcheck disable=SC2317
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
readonly BUILD_DIR="${CHORUS_BUILD_DIR:-build}"
readonly ASAN_BUILD_DIR="${CHORUS_ASAN_BUILD_DIR:-build-asan}"
JOBS="$(nproc 2>/dev/null || echo 2)"
readonly JOBS
ctest_extra=()
if [[ -n "${CHORUS_CTEST_ARGS:-}" ]]; then
  read -r -a ctest_extra <<<"$CHORUS_CTEST_ARGS"
fi

readonly START=$SECONDS
failed=()
timings=()

say() { printf '\n==== test.sh: %s\n' "$*"; }

# run_stage NAME COMMAND...: runs one stage, records its time and outcome.
run_stage() {
  local name="$1"
  shift
  say "$name"
  local begin=$SECONDS status=0
  "$@" || status=$?
  local took=$((SECONDS - begin))
  if [[ $status -eq 0 ]]; then
    timings+=("$(printf '%-22s %5ds  ok' "$name" "$took")")
  else
    timings+=("$(printf '%-22s %5ds  FAILED (exit %d)' "$name" "$took" "$status")")
    failed+=("$name")
  fi
  printf '==== test.sh: %s: %s in %ds\n' "$name" "$([[ $status -eq 0 ]] && echo ok || echo FAILED)" "$took"
  return "$status"
}

finish() {
  say "summary"
  printf '  %s\n' "${timings[@]}"
  local total=$((SECONDS - START))
  if [[ ${#failed[@]} -eq 0 ]]; then
    printf 'test.sh: PASSED (all stages) in %ds\n' "$total"
    exit 0
  fi
  printf 'test.sh: FAILED (%s) in %ds\n' "${failed[*]}" "$total"
  exit 1
}

# A folder configured earlier with another generator cannot be reused as is:
# drop its cache (only the cache; objects are rebuilt anyway).
ensure_ninja_cache() {
  local dir="$1" cache="$1/CMakeCache.txt"
  if [[ -f "$cache" ]] && ! grep -qx 'CMAKE_GENERATOR:INTERNAL=Ninja' "$cache"; then
    echo "test.sh: $dir was configured with another generator; reconfiguring it for Ninja"
    rm -rf "$cache" "$dir/CMakeFiles"
  fi
}

configure() {
  local dir="$1"
  shift
  ensure_ninja_cache "$dir"
  cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCHORUS_TESTS=ON "$@"
}

build() { cmake --build "$1" -j "$JOBS"; }

run_ctest() {
  local dir="$1"
  shift
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 "$@" "${ctest_extra[@]}"
}

run_ctest_sanitized() {
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
    UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    run_ctest "$1" -LE full  # the long matrix runs once, in the plain build
}

run_stage "dependencies" bash scripts/install_deps.sh || finish
run_stage "configure" configure "$BUILD_DIR" -DCHORUS_SANITIZE=OFF || finish
run_stage "build" build "$BUILD_DIR" || finish
run_stage "tests" run_ctest "$BUILD_DIR" || true

if [[ "${CHORUS_SKIP_SANITIZE:-0}" == 1 ]]; then
  say "sanitizer stage skipped (CHORUS_SKIP_SANITIZE=1)"
  timings+=("$(printf '%-22s %5s   skipped' "sanitize" "-")")
else
  if run_stage "configure (asan)" configure "$ASAN_BUILD_DIR" -DCHORUS_SANITIZE=ON -DCHORUS_CUDA=OFF &&
     run_stage "build (asan)" build "$ASAN_BUILD_DIR"; then
    run_stage "tests (asan+ubsan)" run_ctest_sanitized "$ASAN_BUILD_DIR" || true
  fi
fi
finish
