#!/usr/bin/env bash
# Where a server's user-space instructions per message go (issue 17): runs one
# of the example servers or hand-written baselines under callgrind with
# instrumentation off, drives it with bench/loadgen on 127.0.0.1, turns
# instrumentation on for loadgen's measured window only (callgrind_control, after
# WARMUP s) and dumps at its end, then divides by the messages loadgen
# verified in that window. Prints instructions per message: the total, and
# the functions with the largest self cost (the same method for every
# server, so setup and accepts are out of both). callgrind counts user-space instructions only (the
# kernel's TCP stack is not in it), which is the part a runtime owns; there
# is no PMU on these machines, so this is the instruction-level measure.
#
#   bash bench/callgrind_server.sh echo pollux      # examples:echo_server
#   bash bench/callgrind_server.sh echo raw         # bench:raw_echo_server
#   bash bench/callgrind_server.sh http pollux      # examples:http_hello
#   bash bench/callgrind_server.sh http raw         # bench:raw_http_server
#
# Env: DURATION (10 s of load), CONNS (50), SIZE (64), TOP (25 functions),
# BACKEND (io_uring), KEEP (a path to copy the callgrind file to; unset: it is deleted),
# SERVER_ARGS (extra server flags, e.g. "--idle_timeout=0 --write_timeout=0"),
# BUILD_FLAGS ("-c opt"; e.g. "-c opt --copt=-g --platform_suffix=optg" for
# line-level annotation of the KEEP file with callgrind_annotate --auto=yes),
# SERVER_BIN (a server binary to profile instead of the one built here, e.g.
# a copy saved from the commit before a change, for a before/after pair),
# LOCKED (set: also count the locked instructions per message, which cost
# about 7 ns each and count as one instruction; bench/locked_instructions.py).
# The window's edges are placed by callgrind_control, within about 0.1 s of
# loadgen's (about 1% of a 10 s window either way).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:?usage: callgrind_server.sh echo|http pollux|raw} server=${2:?}
DURATION=${DURATION:-10} WARMUP=${WARMUP:-3} CONNS=${CONNS:-50} SIZE=${SIZE:-64} TOP=${TOP:-25}
BACKEND=${BACKEND:-io_uring}
case "$mode/$server" in
  echo/pollux) target=//examples:echo_server bin=bazel-bin/examples/echo_server ;;
  http/pollux) target=//examples:http_hello bin=bazel-bin/examples/http_hello ;;
  echo/raw) target=//bench:raw_echo_server bin=bazel-bin/bench/raw_echo_server ;;
  http/raw) target=//bench:raw_http_server bin=bazel-bin/bench/raw_http_server ;;
  *) echo "usage: callgrind_server.sh echo|http pollux|raw" >&2; exit 2 ;;
esac
bin=${SERVER_BIN:-$bin}
read -r -a build_flags <<<"${BUILD_FLAGS:--c opt}"
./bazelw build "${build_flags[@]}" "$target" //bench:loadgen >/dev/null 2>&1
work=$(mktemp -d)
server_pid=
cleanup() { [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
# Created before the server starts: the redirection below happens in the
# background job, which a loaded machine may not have run yet when the loop
# first reads the file.
: >"$work/server.out"
cg_flags=()
[[ -n ${LOCKED:-} ]] && cg_flags=(--dump-instr=yes --compress-pos=no --compress-strings=no)
POLLUX_BACKEND=$BACKEND valgrind --tool=callgrind --instr-atstart=no "${cg_flags[@]}" \
  --callgrind-out-file="$work/cg.out" \
  "$bin" --port=0 --addr=127.0.0.1 ${SERVER_ARGS:-} >"$work/server.out" 2>"$work/server.err" &
server_pid=$!
port=
for ((i = 0; i < 300; i++)); do  # valgrind starts slowly: up to 30 s
  port=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$work/server.out" | head -1)
  [[ -n $port ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { echo "no 'listening on' line" >&2; exit 1; }
bazel-bin/bench/loadgen --port="$port" --mode="$mode" --conns="$CONNS" --size="$SIZE" \
  --warmup="$WARMUP" --duration="$DURATION" >"$work/loadgen.out" &
loadgen_pid=$!
sleep "$WARMUP"
callgrind_control --instr=on "$server_pid" >/dev/null 2>&1
sleep "$DURATION"
callgrind_control --dump "$server_pid" >/dev/null 2>&1
callgrind_control --instr=off "$server_pid" >/dev/null 2>&1
wait "$loadgen_pid"
msgs=$(grep -o ' msgs=[0-9]*' "$work/loadgen.out" | cut -d= -f2)
kill -KILL "$server_pid"
wait "$server_pid" 2>/dev/null || true
server_pid=
cg=$(ls "$work"/cg.out.* 2>/dev/null | head -1)
[[ -n $cg && -s $cg ]] || { echo "callgrind wrote no profile" >&2; exit 1; }
[[ ${msgs:-0} -gt 0 ]] || { echo "loadgen verified no messages: $(cat "$work/loadgen.out")" >&2; exit 1; }
[[ -n ${KEEP:-} ]] && cp "$cg" "$KEEP"
callgrind_annotate "$cg" 2>/dev/null | python3 -c '
import re, sys
msgs, top, name = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rows, total = [], None
for line in sys.stdin:
    m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)", line)
    if not m:
        continue
    ir, what = int(m.group(1).replace(",", "")), m.group(2)
    if "PROGRAM TOTALS" in what or "PROGRAM TOTALS" in line:
        total = ir
    else:
        rows.append((ir, re.sub(r"\s*\[[^]]*\]$", "", what)))
print(f"{name}: {msgs} messages, {total / msgs:.0f} user-space instructions per message")
for ir, what in rows[:top]:
    print(f"{ir / msgs:8.1f}  {what[:150]}")
' "$msgs" "$TOP" "$mode/$server"
if [[ -n ${LOCKED:-} ]]; then
  python3 bench/locked_instructions.py "$cg" "$msgs" "$TOP" | sed "1s|^|$mode/$server: |"
fi
