# Sourced by the shm test scripts: how they skip (exit 77, which ctest
# reports as skipped) and fail, and the checks every one of them needs.
skip() {
  echo "SKIPPED: $*"
  exit 77
}
fail() {
  echo "FAILED: $*"
  exit 1
}
need_root_and_unshare() {
  [ "$(id -u)" = 0 ] || skip "needs root for namespaces"
  command -v unshare > /dev/null || skip "needs unshare (util-linux)"
  unshare -m sh -c 'mount -t tmpfs -o size=1m tmpfs /dev/shm' 2> /dev/null ||
    skip "cannot mount a tmpfs in a mount namespace"
}
