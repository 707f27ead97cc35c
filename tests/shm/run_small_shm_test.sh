#!/usr/bin/env bash
# A /dev/shm too small for the node arena: every rank fails init with a
# message that says so, none dies of SIGBUS or waits for a timeout. Runs in
# a private mount namespace with a 1 MiB tmpfs on /dev/shm (the ring FIFOs,
# NCCL_BUFFSIZE=65536, fit there; the 8 MiB arena does not).
#
# Needs root and unshare; otherwise it says why and exits 77 (skipped).
#   run_small_shm_test.sh PATH/TO/chorusrun PATH/TO/all_reduce_perf
set -u
chorusrun=$1
perf=$2

. "$(dirname "$0")/test_lib.sh"
need_root_and_unshare

# Each rank reports its own exit code: chorusrun would stop the other rank
# as soon as one fails, perhaps before it has said why.
out=$(unshare -m sh -c '
  mount -t tmpfs -o size=1m tmpfs /dev/shm || exit 99
  exec timeout 60 "$0" -n 2 env CHORUS_DEVICE=host CHORUS_TIMEOUT=30 NCCL_BUFFSIZE=65536 \
    sh -c "\"\$@\"; echo \"rank \$RANK exited with \$?\"" sh "$1" -b 8 -e 8' "$chorusrun" "$perf" 2>&1)
rc=$?
[ $rc = 99 ] && skip "cannot mount a tmpfs in a mount namespace"
echo "$out"

[ $rc != 124 ] || fail "the run hung until the time limit"
for r in 0 1; do
  grep -q "rank $r exited with [1-9]" <<< "$out" || fail "rank $r did not fail with a 1 MiB /dev/shm"
done
! grep -q "signal" <<< "$out" || fail "a rank died of a signal"
! grep -qE "exited with (129|1[3-9][0-9]|2[0-9][0-9])" <<< "$out" || fail "a rank died of a signal"
grep -q "rank 0: .*cannot reserve .* /dev/shm too small" <<< "$out" ||
  fail "rank 0 does not say that /dev/shm is too small"
grep -q "rank 1: .*rank 0 could not create the node arena" <<< "$out" ||
  fail "rank 1 does not say that rank 0 could not create the arena"
echo "PASSED"
