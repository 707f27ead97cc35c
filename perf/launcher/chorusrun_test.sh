#!/usr/bin/env bash
# chorusrun's tests, one case per ctest entry (see launcher.cmake):
#   chorusrun_test.sh CHORUSRUN PROBE CASE
# Each case runs chorusrun on chorusrun_probe and checks exit code, output,
# timing and that no probe process is left (found by a marker on its command
# line with pgrep -f).
set -u
run=$1
probe=$2
case=$3
marker="chorusrun-test-$case-$$-$RANDOM"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ulimit -c 0  # crashing probes must not spend time writing cores

fail() {
  echo "FAIL [$case]: $*"
  for f in out err; do
    [ -s "$work/$f" ] && { echo "--- $f:"; head -n 40 "$work/$f"; }
  done
  exit 1
}

# launch ARGS...: runs chorusrun; sets $code and $elapsed (seconds).
launch() {
  local t0=$EPOCHREALTIME
  "$run" "$@" >"$work/out" 2>"$work/err"
  code=$?
  elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
}
expect_code() { [ "$code" = "$1" ] || fail "exit code $code, expected $1 (chorusrun ${*:2})"; }
expect_within() {  # MIN MAX seconds
  awk -v e="$elapsed" -v lo="$1" -v hi="$2" 'BEGIN { exit !(e >= lo && e < hi) }' ||
    fail "took ${elapsed} s, expected between $1 and $2 s"
}
expect_err() { grep -qF -- "$1" "$work/err" || fail "stderr lacks '$1'"; }
expect_out() { grep -qF -- "$1" "$work/out" || fail "stdout lacks '$1'"; }
no_survivors() {
  if pgrep -f -- "$marker" >/dev/null; then
    fail "probe processes survive chorusrun: $(pgrep -af -- "$marker")"
  fi
}
# parse_env LINE: the NAME=value words of a probe's "env ..." line into F
# (builtins only: these run many times and forks are slow on a loaded box).
declare -A F
parse_env() {
  local words word
  F=()
  read -ra words <<<"$1"
  for word in "${words[@]}"; do
    [[ "$word" == *=* ]] && F[${word%%=*}]=${word#*=}
  done
}
# wait_ready N: until N ranks have printed their env line (at most 10 s).
wait_ready() {
  for _ in $(seq 200); do
    [ "$(grep -c '^env ' "$work/out")" -ge "$1" ] && return 0
    sleep 0.05
  done
  fail "the ranks did not start"
}

# check_env_lines N ADDR [PORT]: N lines, ranks 0..N-1, one shared port.
check_env_lines() {
  local n=$1 addr=$2 want_port=${3:-} ports="" ranks="" line rank
  [ "$(grep -c '^env ' "$work/out")" = "$n" ] || fail "expected $n env lines"
  while read -r line; do
    parse_env "$line"
    rank=${F[RANK]}
    ranks="$ranks $rank"
    ports="$ports ${F[MASTER_PORT]}"
    [ "${F[LOCAL_RANK]}" = "$rank" ] || fail "LOCAL_RANK != RANK in: $line"
    [ "${F[WORLD_SIZE]}" = "$n" ] || fail "WORLD_SIZE in: $line"
    [ "${F[LOCAL_WORLD_SIZE]}" = "$n" ] || fail "LOCAL_WORLD_SIZE in: $line"
    [ "${F[GROUP_RANK]}" = "0" ] || fail "GROUP_RANK in: $line"
    [ "${F[MASTER_ADDR]}" = "$addr" ] || fail "MASTER_ADDR in: $line"
  done < <(grep '^env ' "$work/out")
  local sorted
  sorted=$(tr ' ' '\n' <<<"$ranks" | sed '/^$/d' | sort -n | tr '\n' ' ')
  [ "$sorted" = "$(seq -s ' ' 0 $((n - 1))) " ] || fail "ranks are '$ranks', expected 0..$((n - 1))"
  local distinct
  distinct=$(tr ' ' '\n' <<<"$ports" | sed '/^$/d' | sort -u)
  [ "$(wc -l <<<"$distinct")" = 1 ] || fail "ranks got different MASTER_PORTs:$ports"
  if ! [[ "$distinct" =~ ^[0-9]+$ ]] || [ "$distinct" -lt 1 ] || [ "$distinct" -gt 65535 ]; then
    fail "MASTER_PORT '$distinct' is not a port"
  fi
  [ -z "$want_port" ] || [ "$distinct" = "$want_port" ] ||
    fail "MASTER_PORT $distinct, not $want_port"
}

case "$case" in
EnvForOneRank)
  launch -n 1 "$probe" --marker "$marker"
  expect_code 0
  check_env_lines 1 127.0.0.1
  [ "$(wc -l <"$work/out")" = 2 ] || fail "expected exactly the probe's 2 lines"
  [ ! -s "$work/err" ] || fail "chorusrun printed on stderr for a clean run"
  ;;
EnvForThreeRanks)
  launch -n 3 "$probe" --marker "$marker"
  expect_code 0
  check_env_lines 3 127.0.0.1
  launch --np=3 --port 23456 --addr localhost "$probe" --marker "$marker"
  expect_code 0
  check_env_lines 3 localhost 23456
  launch -np 3 --addr=::1 -- "$probe" --marker "$marker"  # mpirun's -np; IPv6
  if [ "$code" = 2 ] && grep -q 'cannot find a free port' "$work/err"; then
    echo "note: no IPv6 loopback here; skipped the ::1 run"
  else
    expect_code 0
    check_env_lines 3 ::1
  fi
  no_survivors
  ;;
ExtraEnvAndForeignRankVariables)
  export MASTER_PORT=1 MASTER_ADDR=10.9.9.9 RANK=9 SLURM_PROCID=5 SLURM_NTASKS=7
  export OMPI_COMM_WORLD_RANK=4 PMI_SIZE=4 NCCL_COMM_ID=10.9.9.9:1 KEEP_ME=yes CHORUS_PROBE_A=0
  launch -n 2 -x CHORUS_PROBE_A=1 -x CHORUS_PROBE_A=2 -x CHORUS_PROBE_B=x=y -xCHORUS_PROBE_C= \
    "$probe" --marker "$marker" --show SLURM_PROCID --show SLURM_NTASKS \
    --show OMPI_COMM_WORLD_RANK --show PMI_SIZE --show NCCL_COMM_ID --show KEEP_ME \
    --show CHORUS_PROBE_A --show CHORUS_PROBE_B --show CHORUS_PROBE_C
  expect_code 0
  check_env_lines 2 127.0.0.1
  while read -r line; do
    parse_env "$line"
    [ "${F[MASTER_PORT]}" != 1 ] || fail "inherited MASTER_PORT passed on: $line"
    for name in SLURM_PROCID SLURM_NTASKS OMPI_COMM_WORLD_RANK PMI_SIZE NCCL_COMM_ID; do
      [ "${F[$name]}" = "<unset>" ] || fail "$name passed on: $line"
    done
    [ "${F[KEEP_ME]}" = yes ] || fail "inherited KEEP_ME lost: $line"
    [ "${F[CHORUS_PROBE_A]}" = 2 ] || fail "the last -x should win: $line"
    [ "${F[CHORUS_PROBE_B]}" = "x=y" ] || fail "-x NAME=a=b: $line"
    [[ -v F[CHORUS_PROBE_C] && -z "${F[CHORUS_PROBE_C]}" ]] ||
      fail "-xNAME= should set an empty value: $line"
  done < <(grep '^env ' "$work/out")
  launch -n 1 -x NCCL_COMM_ID=127.0.0.1:5 "$probe" --show NCCL_COMM_ID
  expect_code 0
  expect_out " NCCL_COMM_ID=127.0.0.1:5"
  ;;
PrefixesEveryLine)
  launch -n 2 --prefix "$probe" --marker "$marker" --stderr --partial
  expect_code 0
  [ "$(wc -l <"$work/out")" = 6 ] || fail "expected 6 stdout lines (3 per rank)"
  grep -qv '^\[[01]\] ' "$work/out" && fail "a stdout line has no [rank] prefix"
  for r in 0 1; do
    expect_out "[$r] env RANK=$r "
    expect_out "[$r] second line of rank $r"
    grep -qx "\[$r\] partial line of rank $r" "$work/out" || fail "partial line of rank $r"
    grep -qx "\[$r\] err line of rank $r" "$work/err" || fail "stderr line of rank $r"
  done
  [ "$(wc -l <"$work/err")" = 2 ] || fail "expected only the 2 ranks' lines on stderr"
  grep -q 'err line' "$work/out" && fail "stderr went to stdout"
  # Many lines, read in many pieces: each rank's lines whole, prefixed, in order.
  launch -p -n 2 seq 1 30000
  expect_code 0
  for r in 0 1; do
    sed -n "s/^\[$r\] //p" "$work/out" | cmp -s - <(seq 1 30000) || fail "rank $r's seq mangled"
  done
  [ "$(wc -l <"$work/out")" = 60000 ] || fail "expected 60000 lines"
  ;;
InheritsOutputWithoutPrefix)
  launch -n 2 "$probe" --marker "$marker" --stderr
  expect_code 0
  [ "$(grep -c '^second line of rank' "$work/out")" = 2 ] || fail "unprefixed stdout lines"
  [ "$(grep -c '^err line of rank' "$work/err")" = 2 ] || fail "unprefixed stderr lines"
  grep -q '^\[' "$work/out" && fail "a prefix without --prefix"
  # A stdin that is not a terminal goes to rank 0; the others read /dev/null.
  # shellcheck disable=SC2016  # $RANK and $x are the rank's, not ours
  echo hello | "$run" -n 2 sh -c 'read -r x; echo "$RANK:$x"' >"$work/out" 2>"$work/err"
  code=$?
  expect_code 0
  grep -qx '0:hello' "$work/out" || fail "rank 0 did not read stdin"
  grep -qx '1:' "$work/out" || fail "rank 1 should read nothing"
  ;;
FailingRankStopsTheOthers)
  # The others get 1 s to end by themselves, then SIGTERM.
  launch -n 3 "$probe" --marker "$marker" --exit 1:3 --sleep all:30
  expect_code 3
  expect_within 1 4
  expect_err "chorusrun: rank 1 exited with code 3"
  expect_err "chorusrun: stopping 2 other ranks"
  [ "$(grep -c 'chorusrun: rank' "$work/err")" = 1 ] || fail "only the failing rank is reported"
  no_survivors
  ;;
OthersEndingByThemselvesAreNotStopped)
  # Rank 1 fails; the others end within the second they are given (as a
  # benchmark's rank 0 does after printing its summary): no stop, no SIGTERM.
  launch -n 3 "$probe" --marker "$marker" --exit 1:3 --sleep all:0.1 --exit all:7
  expect_code 3
  expect_within 0.1 3
  expect_err "chorusrun: rank 1 exited with code 3"
  grep -q "stopping" "$work/err" && fail "ranks ending by themselves were stopped"
  no_survivors
  ;;
CrashGives128PlusSignal)
  launch -n 2 "$probe" --marker "$marker" --crash 1:segv --sleep all:30
  expect_code 139
  expect_within 0 3
  expect_err "chorusrun: rank 1 killed by signal 11 (Segmentation fault)"
  no_survivors
  launch -n 2 -p "$probe" --marker "$marker" --crash 0:abort --sleep all:30
  expect_code 134
  expect_within 0 3
  expect_err "chorusrun: rank 0 killed by signal 6 (Aborted)"
  no_survivors
  ;;
StubbornRankIsKilledAfterGrace)
  # Rank 1 ignores SIGTERM: chorusrun sends SIGKILL after its 3 s of grace.
  launch -n 2 "$probe" --marker "$marker" --ignore-term 1 --sleep 0:1 --exit 0:5 --sleep all:30
  expect_code 5
  expect_within 3.5 9
  expect_err "chorusrun: rank 0 exited with code 5"
  expect_err "sending SIGKILL"
  no_survivors
  ;;
TimeoutGives124)
  launch --timeout 1 -n 2 "$probe" --marker "$marker" --sleep all:30
  expect_code 124
  expect_within 0.9 4
  expect_err "chorusrun: --timeout 1 s reached; stopping 2 running ranks"
  no_survivors
  ;;
MissingProgramGives127)
  launch -n 2 /nonexistent/chorusrun-probe
  expect_code 127
  expect_err "chorusrun: cannot execute '/nonexistent/chorusrun-probe': No such file or directory"
  launch -n 2 -p chorusrun-no-such-program-$$
  expect_code 127
  expect_err "(not found in PATH)"
  printf 'not a program\n' >"$work/plain"
  chmod 644 "$work/plain"
  launch -n 2 "$work/plain"
  expect_code 126
  expect_err "Permission denied"
  ;;
BadOptionsGive2)
  bad=(
    ""
    "$probe"
    "-n 0 $probe"
    "-n abc $probe"
    "-n 3x $probe"
    "-n"
    "--np=-1 $probe"
    "-n 2"
    "-n 2 --"
    "--timeout 0 -n 1 $probe"
    "--timeout soon -n 1 $probe"
    "--timeout 1e300 -n 1 $probe"
    "--timeout nan -n 1 $probe"
    "--port 0 -n 1 $probe"
    "--port 70000 -n 1 $probe"
    "--addr= -n 1 $probe"
    "--addr 203.0.113.7 -n 1 $probe"
    "-x NOVALUE -n 1 $probe"
    "-x =v -n 1 $probe"
    "-x RANK=1 -n 1 $probe"
    "-x MASTER_PORT=5 -n 1 $probe"
    "--prefix=yes -n 1 $probe"
    "--frobnicate -n 1 $probe"
    "-q -n 1 $probe"
  )
  for args in "${bad[@]}"; do
    # shellcheck disable=SC2086  # word splitting wanted
    launch $args
    [ "$code" = 2 ] || fail "'chorusrun $args' exited $code, expected 2"
    grep -q '^chorusrun: ' "$work/err" || fail "'chorusrun $args' gave no message"
    grep -q '^env ' "$work/out" && fail "'chorusrun $args' started ranks"
  done
  launch -h
  expect_code 0
  expect_out "usage: chorusrun"
  launch --help
  expect_code 0
  # Options after the program belong to the program.
  launch -n 1 -- "$probe" -n 5 --help
  expect_code 0
  check_env_lines 1 127.0.0.1
  ;;
SigtermIsForwarded | SigintIsForwarded)
  sig=TERM want=143
  if [ "$case" = SigintIsForwarded ]; then
    sig=INT want=130
    set -m  # job control: a background job keeps SIGINT instead of ignoring it
  fi
  "$run" -n 2 "$probe" --marker "$marker" --sleep all:30 >"$work/out" 2>"$work/err" &
  pid=$!
  wait_ready 2
  t0=$EPOCHREALTIME
  kill -$sig $pid
  wait $pid
  code=$?
  elapsed=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
  expect_code $want
  expect_within 0 3
  expect_err "forwarding it to 2 ranks"
  expect_err "killed by signal $((want - 128))"
  no_survivors
  ;;
RanksDieWithKilledLauncher)
  # SIGKILL leaves chorusrun no chance to clean up: PR_SET_PDEATHSIG does.
  "$run" -n 3 "$probe" --marker "$marker" --sleep all:30 >"$work/out" 2>"$work/err" &
  pid=$!
  wait_ready 3
  kill -KILL $pid
  wait $pid 2>/dev/null
  for _ in $(seq 40); do
    pgrep -f -- "$marker" >/dev/null || break
    sleep 0.05
  done
  no_survivors
  ;;
*)
  fail "unknown case"
  ;;
esac
echo "PASS [$case]"
