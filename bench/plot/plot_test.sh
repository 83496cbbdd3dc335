#!/usr/bin/env bash
# bench/plot's smoke test (issue 18):
# - `plot.py all` on the committed sample data writes the six PNGs
#   BENCHMARKS.md shows, each a non-empty 800x450 PNG;
# - bench/compare.sh's summary (its python3 heredoc, run on made-up runs:
#   no servers) prints the same table with RESULTS_TSV set as without, and
#   the TSV it writes has one run row per run and draws with plot.py servers,
#   in one-thread and in threads mode.
# Skips (exit 0, saying so) when Debian's python3-matplotlib is missing:
# bench/plot/regenerate.sh installs it; the build itself does not need it.
#   plot_test.sh PLOT_PY COMPARE_SH DATA_DIR
set -euo pipefail

plot=$1 compare=$2 data=$(dirname "$1")/$3
tmp=${TEST_TMPDIR:-$(mktemp -d)}
# Debian's interpreter: python3-matplotlib installs for it (see regenerate.sh).
py=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! "$py" -c 'import matplotlib' 2>/dev/null; then
  echo "SKIPPED: python3-matplotlib is not installed (bench/plot/regenerate.sh installs it)"
  exit 0
fi
export MPLCONFIGDIR=$tmp/mpl  # matplotlib's cache; HOME may be read-only here

check_png() {  # path -> fails unless a non-empty 800x450 PNG
  [[ -s $1 ]] || fail "$1 is missing or empty"
  # The signature, then IHDR's width and height (bytes 16..23, big-endian).
  [[ $(od -An -tx1 -N8 "$1" | tr -d ' \n') == 89504e470d0a1a0a ]] || fail "$1 is not a PNG"
  local wh
  wh=$(od -An -tu1 -j16 -N8 "$1" | awk '{ print $1*16777216+$2*65536+$3*256+$4 "x" $5*16777216+$6*65536+$7*256+$8 }')
  [[ $wh == 800x450 ]] || fail "$1 is $wh, not 800x450"
}

"$py" "$plot" all --data "$data" --out "$tmp/charts"
for png in one_thread_epoll threads2 seams_echo sync_vs_tokio seams_micro demo_latency; do
  check_png "$tmp/charts/$png.png"
done
echo "plot.py all: 6 charts"

# compare.sh's summary, cut out of the script as it is: the lines between
# its heredoc's <<'EOF' and EOF.
sed -n "/<<'EOF'$/,/^EOF$/p" "$compare" | sed '1d;$d' >"$tmp/summary.py"
[[ -s $tmp/summary.py ]] || fail "no python heredoc found in $compare"

fake_runs() {  # threads -> made-up results.txt lines in compare.sh's format
  local threads=$1 mode server rep servers
  if ((threads > 1)); then servers="raw pollux_mt pollux_tpc"; else servers="raw pollux raw_epoll pollux_epoll"; fi
  for mode in echo http; do
    for rep in 1 2 3 4 5 6 7; do
      for server in $servers; do
        [[ $mode == http && $server == *epoll ]] && continue
        # mode server utime_ticks stime_ticks wall_ns RESULT's fields rep=
        echo "$mode $server $((10 + rep)) $((300 + 7 * rep)) 7000000000 msgs_per_sec=$((150000 + 1000 * rep))" \
          "p50_us=3$rep.5 p99_us=7$rep.0 errors=0 total_msgs=$((800000 + 5000 * rep)) total_secs=7.0" \
          "client_cpu_secs=6.9 port_msgs=$((400 + rep)),500 rep=$rep"
      done
    done
  done
}

for threads in 1 2; do
  if ((threads > 1)); then servers="raw pollux_mt pollux_tpc"; else servers="raw pollux raw_epoll pollux_epoll"; fi
  fake_runs "$threads" >"$tmp/results$threads.txt"
  args=("$tmp/results$threads.txt" 100 "echo http" "$servers" "$threads")
  RESULTS_TSV='' "$py" "$tmp/summary.py" "${args[@]}" >"$tmp/plain$threads.out"
  RESULTS_TSV=$tmp/r$threads.tsv SETUP_LINE="made up" "$py" "$tmp/summary.py" "${args[@]}" \
    >"$tmp/tsv$threads.out"
  cmp -s "$tmp/plain$threads.out" "$tmp/tsv$threads.out" ||
    fail "threads=$threads: RESULTS_TSV changed the printed table"
  runs=$(grep -c $'^run\t' "$tmp/r$threads.tsv" || true)
  want=$(wc -l <"$tmp/results$threads.txt")
  ((runs == want)) || fail "threads=$threads: $runs run rows in the TSV, $want runs"
  grep -q $'^paired\techo\t' "$tmp/r$threads.tsv" || fail "threads=$threads: no paired echo row"
  "$py" "$plot" servers "$tmp/r$threads.tsv" "$tmp/servers$threads.png" --title "threads=$threads"
  check_png "$tmp/servers$threads.png"
done
echo "compare.sh RESULTS_TSV: printed output unchanged, TSV drawn, both modes"
echo PASS
