#!/usr/bin/env bash
# Runs an example binary ($1) and passes when it exits 0 and its last line
# is "OK" (the examples check their own results and say so).
set -euo pipefail
out=$("$1" 2>&1) || { echo "$out"; echo "exit status $?"; exit 1; }
echo "$out"
[[ $(echo "$out" | tail -n 1) == "OK" ]]
