#!/usr/bin/env bash
# pollux's sync/ against tokio's, side by side (issue 14): the same
# uncontended one-task operations (bench/sync_bench.cc, bench/tokio_sync),
# ROUNDS interleaved rounds (tokio, pollux, tokio, pollux, ...), both pinned
# to CPU 0; prints the median ns per op of each and the median of the paired
# pollux/tokio ratios (lower is better; the issue's target is <= 0.5).
#
#   bash bench/sync_compare.sh            # ROUNDS=7
#
# tokio comes from Debian (librust-tokio-dev, installed here when missing)
# and builds offline against /usr/share/cargo/registry.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-7}
CPU=${CPU:-0}

if ! dpkg-query -W -f='${Status}' librust-tokio-dev 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""; if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q librust-tokio-dev >&2
fi
(cd bench/tokio_sync && cargo build --release --offline -q)
./bazelw build -c opt //bench:sync_bench 2>/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp bazel-bin/bench/sync_bench "$work/"
cp bench/tokio_sync/target/release/tokio_sync_bench "$work/"

for ((r = 0; r < ROUNDS; r++)); do
  taskset -c "$CPU" "$work/tokio_sync_bench" >> "$work/tokio.txt"
  taskset -c "$CPU" "$work/sync_bench" --benchmark_min_time=0.5 2>/dev/null |
    awk '/^BM_/ {print $1, $2}' >> "$work/pollux.txt"
  echo "round $((r + 1))/$ROUNDS done" >&2
done

python3 - "$work/tokio.txt" "$work/pollux.txt" "$ROUNDS" <<'PY'
import sys, statistics
tokio = [l.split() for l in open(sys.argv[1])]
pol = [l.split() for l in open(sys.argv[2])]
rounds = int(sys.argv[3])
pairs = [("mpsc_bounded_send_recv", "BM_MpscBoundedSendRecv"),
         ("mpsc_unbounded_send_recv", "BM_MpscUnboundedSendRecv"),
         ("oneshot_create_send_recv", "BM_OneshotCreateSendRecv"),
         ("mutex_lock_unlock", "BM_MutexLockUnlock"),
         ("semaphore_acquire_release", "BM_SemaphoreAcquireRelease"),
         ("notify_one_then_notified", "BM_NotifyOneThenNotified")]
def series(rows, name):
    return [float(v) for k, v in rows if k == name]
print(f"{'operation':28} {'tokio ns':>9} {'pollux ns':>10} {'ratio':>7} {'paired':>7}")
for t, p in pairs:
    ts, ps = series(tokio, t), series(pol, p)
    paired = statistics.median(b / a for a, b in zip(ts, ps))
    print(f"{t:28} {statistics.median(ts):9.1f} {statistics.median(ps):10.1f} "
          f"{statistics.median(ps) / statistics.median(ts):7.2f} {paired:7.2f}")
print(f"({rounds} interleaved rounds on CPU, medians; ratio = pollux / tokio)")
PY
