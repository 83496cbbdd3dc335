#!/usr/bin/env bash
# Runs a tutorial step ($1) and passes when it exits 0 and its stdout is
# exactly the expected file ($2), so the tutorial's programs and the output
# it shows cannot drift apart.
set -uo pipefail
bin=$1
expected=$2
out="${TEST_TMPDIR:-/tmp}/actual.out"
timeout 60 "$bin" >"$out"
status=$?
if [[ $status -ne 0 ]]; then
  echo "FAIL: $bin exited $status" >&2
  cat "$out" >&2
  exit 1
fi
if ! diff -u "$expected" "$out"; then
  echo "FAIL: $bin printed something else than $expected (diff above: - expected, + actual)" >&2
  exit 1
fi
echo "OK: $bin printed $expected exactly"
