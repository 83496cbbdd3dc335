#!/usr/bin/env bash
# Macro benchmark: pollux's example servers against the hand-written
# liburing baselines, driven by bench/loadgen (issue 7).
#
#   bash bench/compare.sh                  # REPS=3 DURATION=5, both modes, both servers
#   REPS=1 DURATION=2 SERVERS=raw bash bench/compare.sh
#
# For each mode (echo, http) and repetition, runs each server in turn
# (raw, pollux, raw, pollux, ... so slow drift hits both alike): the server
# pinned to SERVER_CPU (taskset), loadgen pinned to CLIENT_CPU, CONNS
# connections, SIZE-byte echo messages, WARMUP s warmup + DURATION s measured.
#
# Columns (medians over the repetitions):
#   msgs/s, p50/p99 us  loadgen's measured window (after warmup)
#   cpu us/msg          server CPU time (utime+stime from /proc/PID/stat) across
#                       the whole loadgen run, divided by every response loadgen
#                       verified in that run (loadgen's total_msgs: warmup,
#                       window and drain alike), so both sides of the division
#                       cover the same interval
#   busy %              that CPU time / the loadgen run's wall time
#   loadgen busy %      loadgen's own CPU time / its run time (near 100: the
#                       client, not the server, limits msgs/s)
#   ratio rows          pollux / raw of msgs/s and of cpu us/msg: of the
#                       medians, and ("paired") the median of each
#                       repetition's pollux/raw ratio (adjacent runs share
#                       the machine's drift)
#
# Env: REPS (3), DURATION (5), WARMUP (1), CONNS (50), SIZE (64), DEPTH (1),
# MODES ("echo http"), SERVERS ("raw pollux"), SERVER_CPU (0), CLIENT_CPU (1).
# SERVERS may also name "base": pollux's servers built elsewhere (an older
# commit's worktree), found in BASE_BIN_DIR (its bazel-bin/examples), to
# measure a change against the commit before it: SERVERS="base pollux".
# The ratio rows are the second server over the first.
# Exits non-zero when any run failed (loadgen errors, server died, no port).
set -euo pipefail
cd "$(dirname "$0")/.."

REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-50}
SIZE=${SIZE:-64}
DEPTH=${DEPTH:-1}
MODES=${MODES:-"echo http"}
SERVERS=${SERVERS:-"raw pollux"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}

targets=(//bench:loadgen)
for server in $SERVERS; do
  case $server in
    raw) targets+=(//bench:raw_echo_server //bench:raw_http_server) ;;
    pollux) targets+=(//examples:echo_server //examples:http_hello) ;;
    base)
      if [[ ! -x ${BASE_BIN_DIR:-}/echo_server ]]; then
        echo "compare.sh: SERVERS has 'base' but BASE_BIN_DIR/echo_server is missing" >&2; exit 2
      fi ;;
    *) echo "compare.sh: unknown server '$server' in SERVERS (raw, pollux, base)" >&2; exit 2 ;;
  esac
done
./bazelw build -c opt "${targets[@]}"

# Copy the binaries out: bazel-bin may be re-pointed by someone else's build.
work=$(mktemp -d)
server_pid=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
bin_dir=$(./bazelw info -c opt bazel-bin 2>/dev/null)
for t in "${targets[@]}"; do
  rel=${t#//}
  cp "$bin_dir/${rel%%:*}/${rel##*:}" "$work/"
done
if [[ " $SERVERS " == *" base "* ]]; then
  cp "$BASE_BIN_DIR/echo_server" "$work/base_echo_server"
  cp "$BASE_BIN_DIR/http_hello" "$work/base_http_hello"
fi

server_binary() {  # server mode -> binary path
  case $1:$2 in
    raw:echo) echo "$work/raw_echo_server" ;;
    raw:http) echo "$work/raw_http_server" ;;
    pollux:echo) echo "$work/echo_server" ;;
    pollux:http) echo "$work/http_hello" ;;
    base:echo) echo "$work/base_echo_server" ;;
    base:http) echo "$work/base_http_hello" ;;
  esac
}

cpu_ticks() {  # pid -> "utime stime" in clock ticks (fields 14, 15; comm may hold spaces)
  sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12, $13 }'
}

now_ns() { date +%s%N; }

ticks_per_sec=$(getconf CLK_TCK)
results=$work/results.txt
: >"$results"
failed=0

run_one() {  # mode server rep
  local mode=$1 server=$2 rep=$3 out=$work/server.out port= i
  : >"$out"  # exists before the background server's redirection does
  taskset -c "$SERVER_CPU" "$(server_binary "$server" "$mode")" --port=0 --threads=1 \
    --addr=127.0.0.1 >"$out" 2>"$work/server.err" &
  server_pid=$!
  for ((i = 0; i < 100; i++)); do  # up to 10 s for the startup line
    port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out")
    [[ -n $port ]] && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  if [[ -z $port ]]; then
    echo "FAILED: $server $mode server printed no 'listening on' line:" >&2
    cat "$out" "$work/server.err" >&2
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=
    failed=1
    return
  fi

  local ticks0 t0 ticks1 t1 rc=0 u0 s0 u1 s1
  read -r u0 s0 < <(cpu_ticks "$server_pid")
  t0=$(now_ns)
  "$work/loadgen" --port="$port" --mode="$mode" --conns="$CONNS" --size="$SIZE" --depth="$DEPTH" \
    --duration="$DURATION" --warmup="$WARMUP" --cpu="$CLIENT_CPU" >"$work/loadgen.out" \
    2>"$work/loadgen.err" || rc=$?
  t1=$(now_ns)
  if ! ticks1=$(cpu_ticks "$server_pid" 2>/dev/null); then
    echo "FAILED: $server $mode server died during the run" >&2
    rc=1
    ticks1="$u0 $s0"
  fi
  read -r u1 s1 <<<"$ticks1"
  kill "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=

  local result
  result=$(grep '^RESULT ' "$work/loadgen.out" || true)
  if [[ $rc -ne 0 || -z $result ]]; then
    echo "FAILED: $server $mode rep $rep (loadgen exit $rc):" >&2
    cat "$work/loadgen.out" "$work/loadgen.err" >&2
    failed=1
  fi
  [[ -z $result ]] && return
  echo "$mode $server rep $rep: ${result#RESULT }"
  echo "$mode $server $((u1 - u0)) $((s1 - s0)) $((t1 - t0)) ${result#RESULT }" >>"$results"
}

for mode in $MODES; do
  for ((rep = 1; rep <= REPS; rep++)); do
    for server in $SERVERS; do
      run_one "$mode" "$server" "$rep"
    done
  done
done

echo
echo "$(nproc) CPUs, kernel $(uname -r); server on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU;" \
  "$CONNS conns x depth $DEPTH, $SIZE B echo messages, ${WARMUP} s warmup + ${DURATION} s; medians of $REPS"
python3 - "$results" "$ticks_per_sec" "$MODES" "$SERVERS" <<'EOF'
import statistics, sys

path, ticks_per_sec, modes, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
runs = {}
for line in open(path):
    mode, server, uticks, sticks, wall_ns, *kv = line.split()
    r = dict(f.split("=", 1) for f in kv)
    user_s, sys_s = int(uticks) / ticks_per_sec, int(sticks) / ticks_per_sec
    cpu_s = user_s + sys_s
    total = int(r["total_msgs"])
    per = lambda secs: secs * 1e6 / total if total else float("nan")
    runs.setdefault((mode, server), []).append({
        "rate": float(r["msgs_per_sec"]),
        "p50": float(r["p50_us"]),
        "p99": float(r["p99_us"]),
        "cpu_us": per(cpu_s),
        "user_us": per(user_s),
        "sys_us": per(sys_s),
        "busy": 100 * cpu_s / (int(wall_ns) / 1e9),
        "client_busy": 100 * float(r["client_cpu_secs"]) / float(r["total_secs"]),
        "errors": int(r["errors"]),
    })

def med(rows, key):
    return statistics.median(row[key] for row in rows)

print("| mode | server | msgs/s | p50 us | p99 us | server cpu us/msg | user us/msg "
      "| sys us/msg | server busy % | loadgen busy % | errors |")
print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
for mode in modes:
    for server in servers:
        rows = runs.get((mode, server))
        if not rows:
            print(f"| {mode} | {server} | (no successful run) | | | | | | |")
            continue
        print(f"| {mode} | {server} | {med(rows, 'rate'):.0f} | {med(rows, 'p50'):.1f} | "
              f"{med(rows, 'p99'):.1f} | {med(rows, 'cpu_us'):.2f} | {med(rows, 'user_us'):.3f} | "
              f"{med(rows, 'sys_us'):.2f} | {med(rows, 'busy'):.0f} | "
              f"{med(rows, 'client_busy'):.0f} | {sum(r['errors'] for r in rows)} |")
    if len(servers) < 2:
        continue
    first, second = servers[0], servers[1]
    a, b = runs.get((mode, first)), runs.get((mode, second))
    if a and b:
        name = f"{second}/{first}"
        print(f"| {mode} | {name} | {med(b, 'rate') / med(a, 'rate'):.2f}x | | | "
              f"{med(b, 'cpu_us') / med(a, 'cpu_us'):.2f}x | "
              f"{med(b, 'user_us') / med(a, 'user_us'):.2f}x | "
              f"{med(b, 'sys_us') / med(a, 'sys_us'):.2f}x | | | |")
        # Each repetition's second run against the first run just before it:
        # the machine's speed drifts between repetitions (up to 2x here), and
        # a pair of adjacent runs shares the drift, so the median of the
        # paired ratios is the steadier figure.
        if len(a) == len(b):
            paired = lambda k: statistics.median(y[k] / x[k] for x, y in zip(a, b))
            print(f"| {mode} | {name}, paired | {paired('rate'):.2f}x | | | "
                  f"{paired('cpu_us'):.2f}x | {paired('user_us'):.2f}x | "
                  f"{paired('sys_us'):.2f}x | | | |")
EOF

if [[ $failed -ne 0 ]]; then
  echo "compare.sh: some runs FAILED (see above)" >&2
  exit 1
fi
