#!/usr/bin/env bash
# Macro benchmark: pollux's example servers against the hand-written
# baselines, driven by bench/loadgen (issues 7 and 13):
#   pollux on io_uring ("pollux")       against the liburing loop ("raw")
#   pollux on epoll    ("pollux_epoll") against the epoll loop   ("raw_epoll")
# in the same run, so both pairs see the same machine.
#
#   bash bench/compare.sh                  # REPS=3 DURATION=5, both modes, all four servers
#   REPS=11 DURATION=4 MODES=echo bash bench/compare.sh
#   REPS=1 DURATION=2 SERVERS=raw bash bench/compare.sh
#   bash bench/compare.sh --threads 2      # or THREADS=2: see "Threads mode" below
#
# For each mode (echo, http) and repetition, runs each server in turn
# (raw, pollux, raw_epoll, pollux_epoll, ... so slow drift hits all alike;
# every other repetition swaps each adjacent pair, pollux before raw,
# pollux_epoll before raw_epoll, so neither side always runs first): the
# server pinned to SERVER_CPU (taskset), loadgen pinned to CLIENT_CPU, CONNS
# connections, SIZE-byte echo messages, WARMUP s warmup + DURATION s measured.
# pollux* servers run with POLLUX_BACKEND=io_uring, *_epoll ones with
# POLLUX_BACKEND=epoll, and each run checks the server's "backend:" line.
# There is no epoll HTTP baseline: raw_epoll runs in echo mode only (and so
# does pollux_epoll's ratio row).
# "raw_ms" (not in the default SERVERS) is raw_echo_server --multishot, the
# fastest hand-written io_uring echo (bench/raw_multishot_echo_loop.h: one
# multishot recv per connection into provided buffers, replies sent from
# them); echo mode only, like raw_epoll. SERVERS="raw raw_ms" MODES=echo
# measures it against the plain loop; SERVERS="raw_ms pollux" has pollux
# over it.
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
#   ratio rows          pollux / raw (and pollux_epoll / raw_epoll) of msgs/s
#                       and of cpu us/msg: of the medians, and ("paired")
#                       the median of each repetition's ratio with its 95%
#                       interval (adjacent runs share the machine's drift;
#                       the interval as in threads mode below)
#
# Env: REPS (3), DURATION (5), WARMUP (1), CONNS (50), SIZE (64), DEPTH (1),
# MODES ("echo http"), SERVERS ("raw pollux raw_epoll pollux_epoll"), SERVER_CPU (0), CLIENT_CPU (1),
# THREADS (1; see "Threads mode", which has other defaults and CPU settings),
# RESULTS_TSV (unset: print only; see "Machine-readable results" below).
# SERVERS may also name "base": pollux's servers built elsewhere (an older
# commit's worktree), found in BASE_BIN_DIR (its bazel-bin/examples), to
# measure a change against the commit before it: SERVERS="base pollux".
# The ratio rows are the second server over the first (and, when SERVERS
# holds both, pollux_epoll over raw_epoll).
# SERVERS may also name "tokio": tokio's echo and HTTP hello servers
# (bench/tokio_servers: current-thread runtime, one task per connection,
# the same bytes per message as pollux's), built offline with cargo against
# Debian's tokio (librust-tokio-dev, installed here when missing), for
# issue 17: SERVERS="tokio pollux" gives pollux / tokio. One-thread mode only.
#
# Threads mode (--threads N or THREADS=N, N > 1): every server runs N
# threads, `--threads=N --port_per_thread --cpu_affinity` under
# `taskset -c SERVER_CPUS`, so server thread i runs on the i-th CPU of
# SERVER_CPUS; loadgen runs N threads, thread t on the t-th CPU of
# CLIENT_CPUS. Both default to 0..N-1: each core has one server thread and
# one loadgen thread. SERVERS defaults to "raw pollux_mt pollux_tpc":
# pollux_mt and pollux_tpc are pollux's servers with --flavour=multi_thread
# and --flavour=thread_per_core (base_mt and base_tpc likewise for 'base').
# REPS defaults to 12; rounds stay interleaved (raw, mt, tpc, raw, ...).
# The table gives, per server, the median and a 95% interval of msgs/s and
# of server CPU per message (total, user, sys), then for each later server
# its per-round ratio over the first (a round's two runs are adjacent),
# median and 95% interval. The interval is the order-statistic one for a
# median: x(k)..x(n+1-k) of the n sorted values, k the largest with
# P(Binomial(n, 1/2) < k) <= 2.5% (n = 12: k = 3, 96.1% coverage); below
# 6 values none exists and the range (min..max) is shown.
# Busy % there is of one core (200 = two cores busy).
#
# Even split: SO_REUSEPORT's hash does not promise each server thread
# CONNS/N of the connections, so each server thread listens on a port of
# its own (--port_per_thread: one "listening on" line per thread, in thread
# order) and loadgen deals connection i to the (i mod N)-th port (--ports),
# exactly CONNS/N each (CONNS must be a multiple of N); loadgen's port_msgs
# shows what each server thread answered. Chosen over a reuseport steering
# program (SO_ATTACH_REUSEPORT_CBPF): classic BPF keeps no state, so it
# cannot deal connections by count; it can only return the CPU the SYN is
# handled on (on loopback the connecting thread's), which ties the split to
# where loadgen's threads connect from and to the order the server's
# sockets joined the group, and each server would have to attach it.
# Distinct ports need nothing from the kernel and are checked per run.
# pollux's servers take the same two flags as the raw ones; their contract
# is in bench/raw_server_flags.h.
#
# Env in threads mode: REPS (12), SERVERS ("raw pollux_mt pollux_tpc"),
# SERVER_CPUS and CLIENT_CPUS ("0,...,N-1", taskset/--cpu lists; SERVER_CPU
# and CLIENT_CPU are not used), the rest as above.
#
# Machine-readable results (RESULTS_TSV=path, either mode): besides the
# printed output, which stays as it is, the script writes a tab-separated
# file for bench/plot/plot.py. Lines starting with '#' are comments (the
# setup line printed above the table); then a header row and one row per
# kind below, columns
#   kind mode server rep msgs_per_sec cpu_us_per_msg user_us_per_msg
#   sys_us_per_msg p50_us p99_us busy_pct loadgen_busy_pct errors
#   run        one successful run; rep is its repetition (round)
#   median     per mode and server, the medians over its runs; rep is how
#              many runs (the printed table's row)
#   lo, hi     the 95% interval of those medians, as in threads mode (below
#              6 runs, min and max), also in one-thread mode, which does not
#              print it
#   ratio      one-thread mode: server "B/A", the ratio of B's medians to A's
#              (the printed ratio row)
#   paired, paired_lo, paired_hi   server "B/A", the median of each
#              repetition's B/A and its 95% interval (the printed paired
#              row); rep is how many pairs
# for the pairs the printed table has. Empty cells: not measured there (the
# ratio rows leave p50, p99, busy % and errors empty, as the table does).
# The path is taken relative to the directory the script was started in; the
# file is created at the start (so a bad path fails before the runs) and
# written after the last run, also when some runs failed.
#
# Exits non-zero when any run failed (loadgen errors, server died, no port).
set -euo pipefail
if [[ -n ${RESULTS_TSV:-} ]]; then
  # Before the cd below, so a relative path means what the caller meant.
  RESULTS_TSV=$(realpath -m -- "$RESULTS_TSV")
  : >"$RESULTS_TSV"
fi
export RESULTS_TSV=${RESULTS_TSV:-}
cd "$(dirname "$0")/.."

THREADS=${THREADS:-1}
while (($# > 0)); do
  case $1 in
    --threads) THREADS=${2:-}; shift 2 || { echo "compare.sh: --threads needs a value" >&2; exit 2; } ;;
    --threads=*) THREADS=${1#--threads=}; shift ;;
    *) echo "compare.sh: unknown argument '$1' (only --threads N; the rest is env, see the header)" >&2
       exit 2 ;;
  esac
done
if [[ ! $THREADS =~ ^[1-9][0-9]*$ ]]; then
  echo "compare.sh: THREADS=$THREADS is not a positive integer" >&2; exit 2
fi
if ((THREADS > 1)); then
  default_cpus=$(seq -s, 0 $((THREADS - 1)))
  SERVER_CPUS=${SERVER_CPUS:-$default_cpus}
  CLIENT_CPUS=${CLIENT_CPUS:-$default_cpus}
  : "${REPS:=12}" "${SERVERS:=raw pollux_mt pollux_tpc}"
fi

REPS=${REPS:-3}
DURATION=${DURATION:-5}
WARMUP=${WARMUP:-1}
CONNS=${CONNS:-50}
SIZE=${SIZE:-64}
DEPTH=${DEPTH:-1}
MODES=${MODES:-"echo http"}
SERVERS=${SERVERS:-"raw pollux raw_epoll pollux_epoll"}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
if ((THREADS > 1)) && ((CONNS % THREADS != 0)); then
  echo "compare.sh: CONNS=$CONNS is not a multiple of THREADS=$THREADS (no even split)" >&2; exit 2
fi

server_family() {  # server name -> raw, raw_epoll, pollux, base or tokio (which binaries)
  case $1 in
    raw | raw_ms) echo raw ;;
    raw_epoll) echo raw_epoll ;;
    pollux | pollux_mt | pollux_tpc | pollux_epoll) echo pollux ;;
    base | base_mt | base_tpc) echo base ;;
    tokio) echo tokio ;;
    *) return 1 ;;
  esac
}

server_backend() {  # server name -> the POLLUX_BACKEND it runs with (empty: not pollux)
  case $1 in
    *_epoll) [[ $1 == raw_epoll ]] || echo epoll ;;
    pollux* | base*) echo io_uring ;;
  esac
}

server_flavour_args() {  # server name -> its --flavour flag (raw_ms: --multishot), if any
  case $1 in
    raw_ms) echo --multishot ;;
    *_mt) echo --flavour=multi_thread ;;
    *_tpc) echo --flavour=thread_per_core ;;
  esac
}

targets=(//bench:loadgen)
families=" "
for server in $SERVERS; do
  if ! family=$(server_family "$server"); then
    echo "compare.sh: unknown server '$server' in SERVERS (raw, raw_ms, pollux, pollux_mt, pollux_tpc," \
      "raw_epoll, pollux_epoll, base, base_mt, base_tpc, tokio)" >&2
    exit 2
  fi
  [[ $families == *" $family "* ]] && continue
  families+="$family "
  case $family in
    raw) targets+=(//bench:raw_echo_server //bench:raw_http_server) ;;
    raw_epoll) targets+=(//bench:raw_epoll_echo_server) ;;
    pollux) targets+=(//examples:echo_server //examples:http_hello) ;;
    base)
      if [[ ! -x ${BASE_BIN_DIR:-}/echo_server ]]; then
        echo "compare.sh: SERVERS has '$server' but BASE_BIN_DIR/echo_server is missing" >&2; exit 2
      fi ;;
    tokio)
      if ((THREADS > 1)); then
        echo "compare.sh: 'tokio' runs in one-thread mode only (a current-thread runtime)" >&2; exit 2
      fi ;;
  esac
done
./bazelw build -c opt "${targets[@]}"
if [[ $families == *" tokio "* ]]; then
  if ! dpkg-query -W -f='${Status}' librust-tokio-dev 2>/dev/null | grep -q "install ok installed"; then
    SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q librust-tokio-dev >&2
  fi
  (cd bench/tokio_servers && cargo build --release --offline -q)
fi

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
if [[ $families == *" base "* ]]; then
  cp "$BASE_BIN_DIR/echo_server" "$work/base_echo_server"
  cp "$BASE_BIN_DIR/http_hello" "$work/base_http_hello"
fi
if [[ $families == *" tokio "* ]]; then
  cp bench/tokio_servers/target/release/tokio_{echo,http}_server "$work/"
fi

server_binary() {  # server mode -> binary path
  [[ $1 == raw_ms && $2 != echo ]] && return 0  # the multishot loop is echo-only
  case $(server_family "$1"):$2 in
    raw:echo) echo "$work/raw_echo_server" ;;
    raw:http) echo "$work/raw_http_server" ;;
    raw_epoll:echo) echo "$work/raw_epoll_echo_server" ;;
    pollux:echo) echo "$work/echo_server" ;;
    pollux:http) echo "$work/http_hello" ;;
    base:echo) echo "$work/base_echo_server" ;;
    base:http) echo "$work/base_http_hello" ;;
    tokio:echo) echo "$work/tokio_echo_server" ;;
    tokio:http) echo "$work/tokio_http_server" ;;
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

# loadgen stops itself after WARMUP + DURATION + 2 s; this bounds it anyway.
loadgen_limit=$(awk -v w="$WARMUP" -v d="$DURATION" 'BEGIN { print int(w + d + 30) }')

run_one() {  # mode server rep
  local mode=$1 server=$2 rep=$3 out=$work/server.out ports='' i binary backend
  binary=$(server_binary "$server" "$mode")
  [[ -z $binary ]] && return 0  # raw_epoll and raw_ms have no HTTP server
  backend=$(server_backend "$server")
  local server_args=(--port=0 --threads="$THREADS" --addr=127.0.0.1) cpus=$SERVER_CPU
  local want_ports=1 loadgen_args=() flavour
  if ((THREADS > 1)); then
    server_args+=(--port_per_thread --cpu_affinity)
    cpus=$SERVER_CPUS
    want_ports=$THREADS
  fi
  flavour=$(server_flavour_args "$server")
  if [[ -n $flavour ]]; then server_args+=("$flavour"); fi
  : >"$out"  # exists before the background server's redirection does
  POLLUX_BACKEND=$backend taskset -c "$cpus" "$binary" "${server_args[@]}" \
    >"$out" 2>"$work/server.err" &
  server_pid=$!
  local listening=0
  for ((i = 0; i < 100; i++)); do  # up to 10 s for the startup line(s), one per port
    ports=$(sed -n 's/^listening on .*:\([0-9][0-9]*\)$/\1/p' "$out" | paste -sd, -)
    listening=$(tr , '\n' <<<"$ports" | grep -c . || true)
    ((listening >= want_ports)) && break
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  # A base binary from before the epoll backend prints no backend line: it
  # can only be on io_uring.
  if [[ $server == base* ]] && ! grep -q "^backend: " "$out"; then backend=''; fi
  if [[ -n $backend ]] && ! grep -q "^backend: $backend " "$out"; then
    echo "FAILED: $server $mode server is not on $backend:" >&2
    cat "$out" >&2
    failed=1
  fi
  if ((THREADS > 1)); then
    loadgen_args=(--ports="$ports" --threads="$THREADS" --cpu="$CLIENT_CPUS")
  else
    loadgen_args=(--port="$ports" --cpu="$CLIENT_CPU")
  fi
  if ((listening != want_ports)); then
    if ((listening == 0)); then
      echo "FAILED: $server $mode server printed no 'listening on' line:" >&2
    else
      echo "FAILED: $server $mode server printed $listening 'listening on' lines, not" \
        "$want_ports:" >&2
    fi
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
  timeout -k 5 "$loadgen_limit" "$work/loadgen" "${loadgen_args[@]}" --mode="$mode" \
    --conns="$CONNS" --size="$SIZE" --depth="$DEPTH" --duration="$DURATION" --warmup="$WARMUP" \
    >"$work/loadgen.out" 2>"$work/loadgen.err" || rc=$?
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
  echo "$mode $server $((u1 - u0)) $((s1 - s0)) $((t1 - t0)) ${result#RESULT } rep=$rep" >>"$results"
}

read -r -a server_list <<<"$SERVERS"
for mode in $MODES; do
  for ((rep = 1; rep <= REPS; rep++)); do
    order=("${server_list[@]}")
    if ((THREADS == 1 && rep % 2 == 0)); then
      # Every other repetition each adjacent pair swaps (pollux before raw).
      for ((k = 0; k + 1 < ${#order[@]}; k += 2)); do
        tmp=${order[k]}; order[k]=${order[k + 1]}; order[k + 1]=$tmp
      done
    fi
    for server in "${order[@]}"; do
      run_one "$mode" "$server" "$rep"
    done
  done
done

echo
if ((THREADS > 1)); then
  setup_line="$(nproc) CPUs, kernel $(uname -r); $THREADS server threads on CPUs $SERVER_CPUS,\
 $THREADS loadgen threads on CPUs $CLIENT_CPUS; $CONNS conns ($((CONNS / THREADS)) per server\
 thread) x depth $DEPTH, $SIZE B echo messages, ${WARMUP} s warmup + ${DURATION} s;\
 medians [95% intervals] of $REPS rounds"
else
  setup_line="$(nproc) CPUs, kernel $(uname -r); server on CPU $SERVER_CPU, loadgen on CPU $CLIENT_CPU;\
 $CONNS conns x depth $DEPTH, $SIZE B echo messages, ${WARMUP} s warmup + ${DURATION} s; medians of $REPS"
fi
echo "$setup_line"
# The setup line also heads RESULTS_TSV, as a comment.
SETUP_LINE=$setup_line python3 - "$results" "$ticks_per_sec" "$MODES" "$SERVERS" "$THREADS" <<'EOF'
import math, os, statistics, sys

path, ticks_per_sec, modes, servers = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(), sys.argv[4].split()
threads = int(sys.argv[5])
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
        "rep": int(r["rep"]),
        "port_msgs": [int(x) for x in r.get("port_msgs", "").split(",") if x],
    })

def med(rows, key):
    return statistics.median(row[key] for row in rows)

def median_interval(values):
    """(median, lo, hi) with [lo, hi] the order-statistic 95% interval of the
    median: x(k), x(n+1-k) of the sorted values, k the largest with
    P(Binomial(n, 1/2) < k) <= 0.025; below 6 values none exists and
    (min, max) is returned."""
    xs = sorted(values)
    n = len(xs)
    k = 0
    while k + 1 <= n // 2 and sum(math.comb(n, j) for j in range(k + 1)) / 2 ** n <= 0.025:
        k += 1
    k = max(k, 1)
    return statistics.median(xs), xs[k - 1], xs[n - k]

def cell(values, fmt, suffix=""):
    m, lo, hi = median_interval(values)
    return f"{m:{fmt}}{suffix} [{lo:{fmt}}, {hi:{fmt}}]"

def write_tsv(path):
    """RESULTS_TSV (the header's "Machine-readable results"): the runs and
    the figures the table below prints, unrounded. Computed here, apart from
    the printing, so the printed output cannot change with it."""
    metrics = ["rate", "cpu_us", "user_us", "sys_us", "p50", "p99", "busy", "client_busy"]
    cols = ["kind", "mode", "server", "rep", "msgs_per_sec", "cpu_us_per_msg", "user_us_per_msg",
            "sys_us_per_msg", "p50_us", "p99_us", "busy_pct", "loadgen_busy_pct", "errors"]
    num = lambda x: "" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.6g}"
    lines = [f"# {os.environ.get('SETUP_LINE', '')}", "\t".join(cols)]
    emit = lambda kind, mode, server, rep, vals, errors: lines.append("\t".join(
        [kind, mode, server, str(rep)] + [num(vals.get(k)) for k in metrics] + [errors]))
    for mode in modes:
        for server in servers:
            rows = runs.get((mode, server), [])
            for row in rows:
                emit("run", mode, server, row["rep"], row, str(row["errors"]))
            if not rows:
                continue
            stats = {k: median_interval([row[k] for row in rows]) for k in metrics}
            errors = str(sum(row["errors"] for row in rows))
            for i, kind in enumerate(["median", "lo", "hi"]):
                emit(kind, mode, server, len(rows), {k: v[i] for k, v in stats.items()}, errors)
        # The pairs the printed table has ratio rows for.
        if threads > 1:
            pairs = [(servers[0], s) for s in servers[1:]]
        else:
            pairs = [(servers[0], servers[1])] if len(servers) >= 2 else []
            if ("raw_epoll" in servers and "pollux_epoll" in servers and pairs
                    and pairs[0] != ("raw_epoll", "pollux_epoll")):
                pairs.append(("raw_epoll", "pollux_epoll"))
        ratio_keys = ["rate", "cpu_us", "user_us", "sys_us"]
        div = lambda x, y: y / x if x else float("nan")
        for first, second in pairs:
            a, b = runs.get((mode, first), []), runs.get((mode, second), [])
            if not a or not b:
                continue
            name = f"{second}/{first}"
            if threads == 1:
                emit("ratio", mode, name, "", {k: div(med(a, k), med(b, k)) for k in ratio_keys}, "")
            base = {row["rep"]: row for row in a}
            both = [(base[row["rep"]], row) for row in b if row["rep"] in base]
            if not both:
                continue
            stats = {k: median_interval([div(x[k], y[k]) for x, y in both]) for k in ratio_keys}
            for i, kind in enumerate(["paired", "paired_lo", "paired_hi"]):
                emit(kind, mode, name, len(both), {k: v[i] for k, v in stats.items()}, "")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")

if os.environ.get("RESULTS_TSV"):
    write_tsv(os.environ["RESULTS_TSV"])

if threads > 1:
    print(f"| mode | server | runs | msgs/s | p50 us | p99 us | server cpu us/msg | user us/msg "
          f"| sys us/msg | server busy % | loadgen busy % | msgs per server thread % | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for mode in modes:
        for server in servers:
            rows = runs.get((mode, server))
            if not rows:
                print(f"| {mode} | {server} | 0 | (no successful run) | | | | | | | | | |")
                continue
            col = lambda k: [row[k] for row in rows]
            shares = []  # per port: median share of the window's msgs
            for i in range(len(rows[0]["port_msgs"])):
                shares.append(statistics.median(
                    100 * row["port_msgs"][i] / max(1, sum(row["port_msgs"])) for row in rows))
            print(f"| {mode} | {server} | {len(rows)} | {cell(col('rate'), '.0f')} | "
                  f"{med(rows, 'p50'):.1f} | {med(rows, 'p99'):.1f} | "
                  f"{cell(col('cpu_us'), '.2f')} | {cell(col('user_us'), '.3f')} | "
                  f"{cell(col('sys_us'), '.2f')} | {med(rows, 'busy'):.0f} | "
                  f"{med(rows, 'client_busy'):.0f} | {'/'.join(f'{x:.0f}' for x in shares)} | "
                  f"{sum(r['errors'] for r in rows)} |")
        first = servers[0]
        base = {row["rep"]: row for row in runs.get((mode, first), [])}
        for server in servers[1:]:
            # Each round's run over the first server's run of the same round:
            # adjacent runs share the machine's drift.
            pairs = [(base[row["rep"]], row) for row in runs.get((mode, server), [])
                     if row["rep"] in base]
            if not pairs:
                continue
            ratio = lambda k: cell([y[k] / x[k] for x, y in pairs], ".2f", "x")
            print(f"| {mode} | {server}/{first}, paired | {len(pairs)} | {ratio('rate')} | | | "
                  f"{ratio('cpu_us')} | {ratio('user_us')} | {ratio('sys_us')} | | | | |")
    sys.exit(0)

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
    pairs = [(servers[0], servers[1])]
    if "raw_epoll" in servers and "pollux_epoll" in servers and pairs[0] != ("raw_epoll", "pollux_epoll"):
        pairs.append(("raw_epoll", "pollux_epoll"))
    for first, second in pairs:
        a, b = runs.get((mode, first)), runs.get((mode, second))
        if not a or not b:
            continue
        name = f"{second}/{first}"
        ratio = lambda x, y: y / x if x else float("nan")
        print(f"| {mode} | {name} | {ratio(med(a, 'rate'), med(b, 'rate')):.2f}x | | | "
              f"{ratio(med(a, 'cpu_us'), med(b, 'cpu_us')):.2f}x | "
              f"{ratio(med(a, 'user_us'), med(b, 'user_us')):.2f}x | "
              f"{ratio(med(a, 'sys_us'), med(b, 'sys_us')):.2f}x | | | |")
        # Each repetition's run of one against the other's in the same
        # repetition: the machine's speed drifts between repetitions (up to
        # 2x here), and a pair of adjacent runs shares the drift, so the
        # median of the paired ratios, with its 95% interval, is the figure
        # to read.
        base = {row["rep"]: row for row in a}
        both = [(base[row["rep"]], row) for row in b if row["rep"] in base]
        if both:
            paired = lambda k: cell([ratio(x[k], y[k]) for x, y in both], ".3f", "x")
            print(f"| {mode} | {name}, paired of {len(both)} | {paired('rate')} | | | "
                  f"{paired('cpu_us')} | {paired('user_us')} | {paired('sys_us')} | | | |")
EOF

if [[ $failed -ne 0 ]]; then
  echo "compare.sh: some runs FAILED (see above)" >&2
  exit 1
fi
