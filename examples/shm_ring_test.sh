#!/usr/bin/env bash
# Runs examples/shm_ring small: both modes must deliver every record in
# order (exit 0, one "in order" line each); with --skip_record the consumer
# must catch the gap in each mode (exit 1, the gap named on stderr).
set -uo pipefail

bin="${TEST_SRCDIR}/${TEST_WORKSPACE:-pollux}/examples/shm_ring"
out="${TEST_TMPDIR:-/tmp}/shm_ring.out"
err="${TEST_TMPDIR:-/tmp}/shm_ring.err"
failed=0

fail() {
  echo "FAIL: $*" >&2
  echo "--- stdout:" >&2; cat "$out" >&2
  echo "--- stderr:" >&2; cat "$err" >&2
  failed=1
}

# Both modes (the default), every record in order.
timeout 120 "$bin" --records=20000 >"$out" 2>"$err"
status=$?
[[ $status -eq 0 ]] || fail "shm_ring --records=20000 exited $status, expected 0"
for mode in process thread; do
  grep -qE "^shm_ring ${mode}: 20000 records of 64 bytes in order in .* M records/s" "$out" ||
    fail "no '${mode}: 20000 records ... in order' line"
done

# A planted gap: the producer leaves out record 12345; each mode must say so.
for mode in process thread; do
  timeout 120 "$bin" --mode="$mode" --records=20000 --skip_record=12345 >"$out" 2>"$err"
  status=$?
  [[ $status -eq 1 ]] || fail "--mode=$mode --skip_record exited $status, expected 1"
  grep -q "shm_ring ${mode}: FAILED after 12345 of 20000 records: DATA_LOSS: record 12345 has sequence number 12346, expected 12345" "$err" ||
    fail "--mode=$mode --skip_record: the gap is not reported as expected"
done

# A bad flag is a usage error, not a silent pass.
timeout 30 "$bin" --mode=sideways >"$out" 2>"$err"
status=$?
[[ $status -eq 2 ]] || fail "--mode=sideways exited $status, expected 2"

if [[ $failed -eq 0 ]]; then
  echo "shm_ring_test: 4 passed, 0 failed"
fi
exit $failed
