#!/bin/sh
# Checks the dynamic symbols of Chorus's libnccl.so.2.
#
#   exports_match.sh self   OURS            what our library exports, alone
#   exports_match.sh nvidia OURS NVIDIA     the same names as NVIDIA's library
#
# self:   the SONAME is libnccl.so.2; every exported name starts with nccl or
#         pnccl; every ncclX is a weak function (W) whose twin pncclX is a
#         strong one (T) at the same address; ncclResetDebugInitInternal,
#         which NVIDIA exports alone and strong, is the one exception.
# nvidia: every nccl*/pnccl* name NVIDIA's library exports is exported by
#         ours, with the same binding (W or T). Names only we export are
#         listed but do not fail. Exits 77 (ctest: skipped) when NVIDIA's
#         library is not there.
set -eu

mode=${1:-}
ours=${2:-}
theirs=${3:-}

fail=0
failure() { echo "FAIL: $*"; fail=1; }

for tool in nm readelf; do
  command -v "$tool" >/dev/null 2>&1 || { echo "SKIPPED: $tool is not installed"; exit 77; }
done
[ -f "$ours" ] || { echo "FAIL: our library '$ours' does not exist"; exit 1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# "name type address" for every defined dynamic symbol, version suffixes cut.
exports() {
  nm -D --defined-only "$1" | awk '{ sub(/@.*/, "", $3); print $3, $2, $1 }' | sort
}

case "$mode" in
self)
  exports "$ours" > "$tmp/ours"

  soname=$(readelf -d "$ours" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
  [ "$soname" = "libnccl.so.2" ] || failure "SONAME is '$soname', expected libnccl.so.2"

  awk '$1 !~ /^p?nccl/ { print $1 }' "$tmp/ours" > "$tmp/foreign"
  if [ -s "$tmp/foreign" ]; then
    failure "exported names that are not nccl*/pnccl*:"
    sed 's/^/  /' "$tmp/foreign"
  fi

  # Each ncclX: weak, with a strong pncclX at the same address.
  awk '
    { type[$1] = $2; addr[$1] = $3 }
    END {
      for (name in type) {
        if (name ~ /^nccl/) {
          if (name == "ncclResetDebugInitInternal") {
            if (type[name] != "T") print name " is " type[name] ", expected T (strong)"
            continue
          }
          twin = "p" name
          if (type[name] != "W") print name " is " type[name] ", expected W (weak)"
          if (!(twin in type)) print name " has no " twin
          else if (addr[twin] != addr[name]) print name " and " twin " are different functions"
        } else if (name ~ /^pnccl/) {
          if (type[name] != "T") print name " is " type[name] ", expected T (strong)"
          if (!(substr(name, 2) in type)) print name " has no " substr(name, 2)
        }
      }
    }' "$tmp/ours" | sort > "$tmp/problems"
  if [ -s "$tmp/problems" ]; then
    failure "weak/strong pairs:"
    sed 's/^/  /' "$tmp/problems"
  fi

  count=$(grep -cE '^p?nccl' "$tmp/ours" || true)
  echo "checked $count exported names of $ours"
  ;;

nvidia)
  if [ -z "$theirs" ] || [ ! -f "$theirs" ]; then
    echo "SKIPPED: NVIDIA's libnccl.so.2 not found ('$theirs'); nothing to compare with"
    exit 77
  fi
  exports "$ours" | awk '$1 ~ /^p?nccl/ { print $1, $2 }' > "$tmp/ours"
  exports "$theirs" | awk '$1 ~ /^p?nccl/ { print $1, $2 }' > "$tmp/theirs"

  # Names NVIDIA exports that we lack, or export with another binding.
  awk 'NR == FNR { ours[$1] = $2; next }
       !($1 in ours) { print "missing: " $1 " (NVIDIA: " $2 ")"; next }
       ours[$1] != $2 { print "binding of " $1 ": " ours[$1] " (NVIDIA: " $2 ")" }' \
    "$tmp/ours" "$tmp/theirs" > "$tmp/problems"
  if [ -s "$tmp/problems" ]; then
    failure "differences from $theirs:"
    sed 's/^/  /' "$tmp/problems"
  fi

  awk 'NR == FNR { theirs[$1] = 1; next } !($1 in theirs) { print "  " $1 }' \
    "$tmp/theirs" "$tmp/ours" > "$tmp/extra"
  if [ -s "$tmp/extra" ]; then
    echo "note: exported by Chorus only:"
    cat "$tmp/extra"
  fi

  echo "compared $(wc -l < "$tmp/theirs") names exported by $theirs"
  ;;

*)
  echo "usage: $0 self OURS | nvidia OURS NVIDIA" >&2
  exit 2
  ;;
esac

[ "$fail" -eq 0 ] && echo "PASS"
exit "$fail"
