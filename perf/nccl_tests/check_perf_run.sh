#!/usr/bin/env bash
# Runs one benchmark and checks what it printed, for ctest.
#
#   check_perf_run.sh [checks...] -- program [arguments...]
#
# By default: exit code 0, at least one result row, every #wrong column 0 or
# N/A, and "Out of bounds values : 0 OK". Checks that change this:
#   --exit N        expect exit code N instead of 0
#   --wrong         expect some #wrong > 0 and "FAILED" (the checker's own test)
#   --no-rows       expect no result rows (e.g. hypercube on 3 ranks)
#   --text TEXT     expect TEXT somewhere in stdout or stderr (repeatable)
#   --json FILE     expect FILE (removed first) to be valid JSON with one result per
#                   row and the summary's verdict (needs python3)
set -u

expect_exit=0 expect_wrong=0 expect_rows=1 json=""
texts=()
while [[ $# -gt 0 && "$1" != "--" ]]; do
  case "$1" in
    --exit) expect_exit="$2"; shift 2 ;;
    --wrong) expect_wrong=1; shift ;;
    --no-rows) expect_rows=0; shift ;;
    --text) texts+=("$2"); shift 2 ;;
    --json) json="$2"; shift 2 ;;
    *) echo "check_perf_run.sh: unknown check '$1'" >&2; exit 2 ;;
  esac
done
[[ "${1:-}" == "--" ]] || { echo "usage: check_perf_run.sh [checks] -- program [args]" >&2; exit 2; }
shift

out=$(mktemp)
trap 'rm -f "$out"' EXIT
[[ -n "$json" ]] && rm -f "$json"  # what a run leaves, not an older one
"$@" >"$out" 2>&1
rc=$?
cat "$out"

fail() { echo "CHECK FAILED: $*" >&2; exit 1; }

[[ $rc -eq $expect_exit ]] || fail "exit code $rc, expected $expect_exit"

# Result rows: not comments, 13 columns, the first a size.
rows=$(awk '!/^#/ && NF == 13 && $1 ~ /^[0-9]+$/' "$out" | wc -l)
bad=$(awk '!/^#/ && NF == 13 && $1 ~ /^[0-9]+$/ && (($9 != "0" && $9 != "N/A") || ($13 != "0" && $13 != "N/A"))' "$out" | wc -l)
if [[ $expect_rows -eq 1 && $rows -eq 0 && $expect_exit -eq 0 ]]; then fail "no result rows"; fi
if [[ $expect_rows -eq 0 && $rows -ne 0 ]]; then fail "$rows result rows, expected none"; fi
if [[ $expect_wrong -eq 1 ]]; then
  [[ $bad -gt 0 ]] || fail "expected rows with wrong elements"
  grep -q "^# Out of bounds values : [1-9][0-9]* FAILED" "$out" || fail "expected a FAILED summary"
elif [[ $expect_exit -eq 0 ]]; then
  [[ $bad -eq 0 ]] || fail "$bad rows with wrong elements"
  grep -q "^# Out of bounds values : 0 OK" "$out" || fail "no '0 OK' summary"
fi
for t in "${texts[@]+"${texts[@]}"}"; do
  grep -qF -- "$t" "$out" || fail "expected the text: $t"
done
if [[ -n "$json" ]]; then
  command -v python3 >/dev/null || { echo "python3 not found: JSON not checked"; exit 0; }
  python3 - "$json" "$rows" "$expect_wrong" <<'EOF' || fail "bad JSON file $json"
import json, sys
doc = json.load(open(sys.argv[1]))
rows = int(sys.argv[2])
assert len(doc["results"]) == rows, (len(doc["results"]), rows)
for r in doc["results"]:
    for key in ("size", "count", "type", "redop", "root", "out_of_place", "in_place"):
        assert key in r, key
assert doc["out_of_bounds"]["okay"] is (sys.argv[3] == "0")
assert doc["config"]["nranks"] == len(doc["config"]["devices"])
EOF
fi
echo "CHECK OK: exit $rc, $rows rows, $bad with wrong elements"
