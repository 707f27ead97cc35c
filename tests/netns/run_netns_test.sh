#!/usr/bin/env bash
# Multi-host test on one machine: three "hosts", each a network namespace
# with its own host name (UTS namespace) and a veth pair into a bridge in a
# fourth namespace. One rank runs in each; they meet through NCCL_COMM_ID and
# use NCCL_SOCKET_IFNAME to pick the veth interface. The addresses are the
# test hosts' own (10.213.0.0/24 inside the namespaces); nothing leaves them.
#
# Needs root and `ip netns`; otherwise it says why and exits 77 (skipped).
#   run_netns_test.sh PATH/TO/chorus_netns_rank
set -u
rank_program=$1
nranks=3
tag="chorus$$"
bridge_ns="${tag}sw"

skip() {
  echo "SKIPPED: $*"
  exit 77
}

[ "$(id -u)" = 0 ] || skip "needs root to create network namespaces"
command -v ip > /dev/null || skip "needs iproute2 (ip)"
command -v unshare > /dev/null || skip "needs unshare (util-linux)"

cleanup() {
  for i in $(seq 0 $((nranks - 1))); do ip netns del "${tag}h$i" 2> /dev/null; done
  ip netns del "$bridge_ns" 2> /dev/null
}
trap cleanup EXIT

ip netns add "$bridge_ns" 2> /dev/null || skip "ip netns add is not permitted here"
ip -n "$bridge_ns" link add br0 type bridge || skip "cannot create a bridge"
ip -n "$bridge_ns" link set br0 up
for i in $(seq 0 $((nranks - 1))); do
  ns="${tag}h$i"
  ip netns add "$ns" || skip "ip netns add is not permitted here"
  ip link add "${tag}v$i" type veth peer name "${tag}b$i" || skip "cannot create veth pairs"
  ip link set "${tag}v$i" netns "$ns"
  ip link set "${tag}b$i" netns "$bridge_ns"
  ip -n "$bridge_ns" link set "${tag}b$i" master br0 up
  ip -n "$ns" link set lo up
  ip -n "$ns" link set "${tag}v$i" name veth0
  ip -n "$ns" addr add "10.213.0.$((i + 1))/24" dev veth0
  ip -n "$ns" link set veth0 up
done

port=$((20000 + $$ % 20000))
pids=()
for i in $(seq 0 $((nranks - 1))); do
  ns="${tag}h$i"
  # A host name of its own, so that ranks see three hosts and use sockets.
  NCCL_COMM_ID="10.213.0.1:$port" NCCL_SOCKET_IFNAME="=veth0" CHORUS_DEVICE=host \
    CHORUS_TIMEOUT=60 ip netns exec "$ns" unshare --uts sh -c \
    "hostname ${tag}-host$i && exec '$rank_program' $i $nranks" &
  pids+=($!)
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if [ $status = 0 ]; then echo "netns test passed: $nranks hosts"; else echo "netns test FAILED"; fi
exit $status
