#!/usr/bin/env bash
# The raw baselines' thread modes and loadgen's spreading, end to end on
# 127.0.0.1 (what bench/compare.sh --threads N relies on), counting replies,
# never timing them:
# - --threads=2 --port_per_thread: two "listening on" lines, two ports, and
#   loadgen --ports --threads=2 gets replies on both (port_msgs);
#   --cpu_affinity puts the two loop threads on CPUs 0 and 1 of the mask;
# - --threads=2 alone: one line, both listeners share it (SO_REUSEPORT);
# - --threads=1: the one-ring server;
# - raw_echo_server --multishot (compare.sh's raw_ms): echo round trips
#   verified by loadgen (which fails on a wrong or missing reply) at depth 1
#   and 8, over two threads, and with a ring of 2 buffers of 64 B (so the
#   multishot recv runs dry, -ENOBUFS, and 1000 B messages arrive in pieces
#   that queue behind the send in flight); afterwards the server holds no
#   client socket (every connection was closed);
# - bad values exit 2.
# Also catches a flag defined twice (absl aborts such a binary at startup).
#   raw_servers_test.sh RAW_ECHO_SERVER RAW_HTTP_SERVER LOADGEN
set -euo pipefail

echo_bin=$1 http_bin=$2 loadgen=$3
tmp=${TEST_TMPDIR:-$(mktemp -d)}
server_pid=
cleanup() { if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

start_server() {  # want_lines binary args... -> sets server_pid, ports ("P0,P1")
  local want=$1 i lines=0
  shift
  : >"$tmp/out"
  "$@" >"$tmp/out" 2>"$tmp/err" &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do  # up to 10 s
    ports=$(sed -n 's/^listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' "$tmp/out" | paste -sd, -)
    lines=$(tr , '\n' <<<"$ports" | grep -c . || true)
    ((lines >= want)) && break
    kill -0 "$server_pid" 2>/dev/null || fail "$* exited: $(cat "$tmp/err")"
    sleep 0.1
  done
  sleep 0.2  # a line too many would be out by now
  [[ $(grep -c '^listening on ' "$tmp/out" || true) -eq $want ]] ||
    fail "$* printed $(grep -c '^listening on ' "$tmp/out" || true) 'listening on' lines, not $want"
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

run_loadgen() {  # loadgen args... -> prints the RESULT line; fails on errors
  timeout -k 5 30 "$loadgen" --conns=8 --warmup=0 --duration=0.3 "$@" >"$tmp/lg" 2>&1 ||
    fail "loadgen $* failed: $(cat "$tmp/lg")"
  grep '^RESULT ' "$tmp/lg"
}

ncpu=$(nproc)
for mode in echo http; do
  bin=$echo_bin
  [[ $mode == http ]] && bin=$http_bin

  affinity=()
  ((ncpu >= 2)) && affinity=(--cpu_affinity)
  start_server 2 "$bin" --port=0 --threads=2 --port_per_thread "${affinity[@]}"
  [[ $ports =~ ^[0-9]+,[0-9]+$ && ${ports%,*} != "${ports#*,}" ]] || fail "ports '$ports'"
  if ((ncpu >= 2)); then
    # The two loop threads (the ones with a ring) run on the mask's first two CPUs.
    cpus=$(for t in /proc/"$server_pid"/task/*; do
      sed -n 's/^Cpus_allowed_list:[[:space:]]*//p' "$t/status"; done | sort -u | paste -sd' ' -)
    first_two=$(taskset -pc $$ | sed 's/.*: //' | tr ',' '\n' | head -2 | paste -sd' ' -)
    [[ $cpus == "$first_two" || $first_two == *-* ]] ||
      fail "--cpu_affinity: threads allowed on '$cpus', expected '$first_two'"
  fi
  result=$(run_loadgen --mode="$mode" --ports="$ports" --threads=2)
  [[ $result =~ port_msgs=([0-9]+),([0-9]+) ]] || fail "no port_msgs in: $result"
  ((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0)) || fail "a port got no replies: $result"
  stop_server

  start_server 1 "$bin" --port=0 --threads=2
  run_loadgen --mode="$mode" --port="$ports" >/dev/null
  stop_server

  start_server 1 "$bin" --port=0 --threads=1
  run_loadgen --mode="$mode" --port="$ports" --cpu=0 >/dev/null
  stop_server
done

fd_count() { find /proc/"$server_pid"/fd -mindepth 1 -maxdepth 1 | wc -l; }
expect_no_client_fds() {  # fds_before: every connection loadgen made is closed
  local i n
  for ((i = 0; i < 50; i++)); do  # up to 5 s
    n=$(fd_count)
    ((n == $1)) && return
    sleep 0.1
  done
  fail "--multishot: the server has $n fds after loadgen, $1 before (connections left open)"
}
start_server 1 "$echo_bin" --port=0 --multishot
fds=$(fd_count)
run_loadgen --mode=echo --port="$ports" >/dev/null
run_loadgen --mode=echo --port="$ports" --depth=8 --size=200 >/dev/null
expect_no_client_fds "$fds"
stop_server
start_server 2 "$echo_bin" --port=0 --multishot --threads=2 --port_per_thread
result=$(run_loadgen --mode=echo --ports="$ports" --threads=2)
[[ $result =~ port_msgs=([0-9]+),([0-9]+) ]] || fail "no port_msgs in: $result"
((BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0)) || fail "--multishot: a port got no replies: $result"
stop_server
start_server 1 "$echo_bin" --port=0 --multishot --multishot_buffers=2 --multishot_buffer_bytes=64
fds=$(fd_count)
run_loadgen --mode=echo --port="$ports" --depth=4 --size=1000 >/dev/null
expect_no_client_fds "$fds"
stop_server

for bad in --threads=0 --threads=2000 --port=70000 "--multishot --multishot_buffers=3" \
  "--multishot --multishot_buffer_bytes=0"; do
  rc=0
  # shellcheck disable=SC2086  # $bad may be two flags
  timeout 10 "$echo_bin" --port=0 $bad >/dev/null 2>&1 || rc=$?
  [[ $rc -eq 2 ]] || fail "raw_echo_server $bad exited $rc, not 2"
done
rc=0
timeout 10 "$loadgen" --ports=1,2 --threads=2 --cpu=0 >/dev/null 2>&1 || rc=$?
[[ $rc -eq 2 ]] || fail "loadgen with one --cpu for two threads exited $rc, not 2"
echo PASS
