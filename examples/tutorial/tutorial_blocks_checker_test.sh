#!/usr/bin/env bash
# Checks the checker: tutorial_blocks_test.sh ($1) must pass on the real
# docs/tutorial.md ($2) and fail on copies where a program, an expected
# output or a marker drifted, or where a step is not shown at all.
set -uo pipefail
checker=$(realpath "$1")
md=$2
ws="${TEST_TMPDIR:-$(mktemp -d)}/ws"
failed=0

reset() {
  rm -rf "$ws"
  mkdir -p "$ws/docs" "$ws/examples/tutorial"
  cp "$md" "$ws/docs/tutorial.md"
  cp examples/tutorial/*.cc examples/tutorial/*.h examples/tutorial/*.out "$ws/examples/tutorial/"
  chmod -R u+w "$ws"
}
expect() {  # expect pass|fail DESCRIPTION
  (cd "$ws" && bash "$checker" docs/tutorial.md >/dev/null 2>&1)
  local status=$?
  if [[ $1 == pass && $status -ne 0 ]] || [[ $1 == fail && $status -eq 0 ]]; then
    echo "FAIL: expected the checker to $1 when $2 (exit $status)" >&2
    failed=1
  else
    echo "ok: checker $([[ $1 == pass ]] && echo passes || echo fails) when $2"
  fi
}

reset
expect pass "nothing changed"

reset
sed -i 's/int polls_ = 0;/int polls_ = 1;/' "$ws/examples/tutorial/step1_poll.cc"
expect fail "a shown line of step1_poll.cc changed"

reset
sed -i 's/^add_delayed() returned 42$/add_delayed() returned 43/' "$ws/docs/tutorial.md"
expect fail "an output block no longer matches its .out file"

reset
sed -i '0,/^<!-- code: /{/^<!-- code: /d}' "$ws/docs/tutorial.md"
expect fail "a cpp block lost its marker"

reset
echo 'int main() { return 0; }' >"$ws/examples/tutorial/step9_new.cc"
expect fail "a step's program is shown by no block"

exit $failed
