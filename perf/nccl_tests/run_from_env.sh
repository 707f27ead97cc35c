#!/usr/bin/env bash
# Runs a benchmark as N processes launched the way torchrun (or chorusrun)
# does: RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT in the
# environment. Rank 0's output goes through check_perf_run.sh; every other
# rank must exit 0 too.
#
#   run_from_env.sh N program [arguments...]
set -u
n="$1"; shift
here="$(cd "$(dirname "$0")" && pwd)"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
       echo $((20000 + RANDOM % 20000)))
export WORLD_SIZE="$n" MASTER_ADDR=127.0.0.1 MASTER_PORT="$port" LOCAL_WORLD_SIZE="$n"
unset NCCL_COMM_ID
pids=()
logs=()
for ((r = 1; r < n; ++r)); do
  log=$(mktemp)
  logs+=("$log")
  RANK=$r LOCAL_RANK=$r "$@" >"$log" 2>&1 &
  pids+=($!)
done
RANK=0 LOCAL_RANK=0 "$here/check_perf_run.sh" --text "launched by environment (RANK/WORLD_SIZE)" -- "$@"
rc=$?
for i in "${!pids[@]}"; do
  if ! wait "${pids[$i]}"; then
    echo "rank $((i + 1)) failed:"; cat "${logs[$i]}"; rc=1
  fi
  rm -f "${logs[$i]}"
done
exit $rc
