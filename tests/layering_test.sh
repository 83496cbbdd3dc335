#!/usr/bin/env bash
# The include graph's rules that a grep can check (DESIGN §1):
# - only reactor/uring/ (and bench/'s hand-written baselines) include
#   <liburing.h>;
# - net/ and fs/ name no io_uring type or header: they speak only the
#   backend-neutral operations, so one binary runs on either backend.
# It reads the real source tree: the runfiles link to it, and BUILD.bazel at
# the root is the link it follows.
set -euo pipefail

link="${TEST_SRCDIR}/${TEST_WORKSPACE:-pollux}/BUILD.bazel"
root="$(dirname "$(readlink -f "$link")")"
if [[ ! -f "$root/WORKSPACE" ]]; then
  echo "layering_test: cannot find the source tree through $link" >&2
  exit 1
fi
cd "$root"

failed=0
# grep -r does not follow the bazel-* symlinks at the root.
includes=$(grep -rlE '#include[[:space:]]*<liburing' --include='*.h' --include='*.cc' . |
  grep -vE '^\./(reactor/uring|bench)/' || true)
if [[ -n "$includes" ]]; then
  echo "FAIL: <liburing.h> included outside reactor/uring/ and bench/:" >&2
  echo "$includes" >&2
  failed=1
fi
names=$(grep -rnE 'IoUring|reactor/uring|io_uring_[a-z]|uring::' --include='*.h' --include='*.cc' net fs || true)
if [[ -n "$names" ]]; then
  echo "FAIL: net/ or fs/ names an io_uring type or header:" >&2
  echo "$names" >&2
  failed=1
fi
if ((failed == 0)); then
  count=$(grep -rlE '#include[[:space:]]*<liburing' --include='*.h' --include='*.cc' . | wc -l)
  echo "ok: <liburing.h> appears in ${count} files, all under reactor/uring/ or bench/; net/ and fs/ are backend-neutral"
fi
exit "$failed"
