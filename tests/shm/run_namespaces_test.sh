#!/usr/bin/env bash
# Ranks of one machine in containers that share some namespaces and not
# others (hostNetwork pods, `docker run --network=host`): same host name and
# boot id, yet
#  - each rank in its own pid namespace, both with pid 1: they are two
#    processes (they once took each other for one and read each other's
#    pointers: SIGSEGV), and they still meet in the shared /dev/shm, under
#    segment names that do not come from the pid (segments named as pid 1's
#    once were are left there, as a killed run would leave them);
#  - each rank with its own /dev/shm: they cannot open each other's
#    segments, so they connect over sockets instead of failing.
# Every result is checked (all_reduce_perf -c 1, every op, sizes across the
# one-shot, slotted and staged rounds).
#
# Needs root and unshare; otherwise it says why and exits 77 (skipped).
#   run_namespaces_test.sh PATH/TO/chorusrun PATH/TO/all_reduce_perf
set -u
chorusrun=$1
perf=$2

. "$(dirname "$0")/test_lib.sh"
need_root_and_unshare
unshare -pf --mount-proc true 2> /dev/null || skip "unshare -pf --mount-proc is not permitted here"

# run NAME WRAPPER...: two ranks, each started under WRAPPER.
run() {
  local name=$1
  shift
  echo "== $name"
  out=$(timeout 120 "$chorusrun" -n 2 env CHORUS_DEVICE=host CHORUS_TIMEOUT=30 NCCL_DEBUG=INFO \
    NCCL_DEBUG_SUBSYS=INIT "$@" "$perf" -b 8 -e 4M -f 8 -o all -c 1 -w 1 -n 3 2>&1)
  rc=$?
  echo "$out" | grep -v " INFO " | tail -40
  [ $rc != 124 ] || fail "$name: the run hung until the time limit"
  [ $rc = 0 ] || fail "$name: the run failed (exit code $rc)"
  grep -q "Out of bounds values : 0 OK" <<< "$out" || fail "$name: wrong results"
}

stale="/dev/shm/chorus-arena-1-0 /dev/shm/chorus-1-0-r0-c0 /dev/shm/chorus-1-1-r1-c0"
trap 'rm -f $stale' EXIT
for f in $stale; do
  [ -e "$f" ] || : > "$f" || fail "cannot make $f"
done
run "own pid namespaces (both pid 1)" unshare -pf --mount-proc \
  sh -c 'if [ $$ != 1 ]; then echo "not pid 1 but $$"; exit 1; fi; exec "$@"' sh
grep -q "rank 1: direct algorithms on (staged rounds" <<< "$out" ||
  fail "the ranks did not meet in shared memory as two processes"

run "own /dev/shm each" unshare -m sh -c 'mount -t tmpfs -o size=64m tmpfs /dev/shm && exec "$@"' sh
grep -q "rank 0 -> rank 1 via socket" <<< "$out" || fail "the ranks did not connect over sockets"
echo "PASSED"
