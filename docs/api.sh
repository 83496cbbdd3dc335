#!/usr/bin/env bash
# docs/api.sh: builds pollux's API reference (HTML) from the public headers'
# comments with Debian's Doxygen into docs/api/html (git-ignored), installing
# doxygen first when it is missing, as ./bazelw installs its packages.
#
# Fails (exit 1, the warnings printed) on every Doxygen warning except an
# undocumented *member* that is not a type: a class, struct, union or enum
# (nested ones too) or a namespace-scope type alias without a comment is an
# error, and so is a comment Doxygen cannot read; an undocumented function,
# variable, macro or member alias (`using Output = T;`) is only counted, and
# listed in docs/api/warnings.log. Usage: docs/api.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/debian_packages.sh
ensure_debian_packages docs/api.sh doxygen python3

rm -rf docs/api
mkdir -p docs/api
# QUIET: doxygen prints nothing but trouble (an error, a filter that failed).
if ! doxygen docs/Doxyfile > docs/api/doxygen.log 2>&1 || [[ -s docs/api/doxygen.log ]]; then
  cat docs/api/doxygen.log >&2
  echo "docs/api.sh: doxygen failed (above)" >&2
  exit 1
fi

# Doxygen's own lines (file:line: warning: ...), paths relative to the repo.
warnings=$(sed -n "s|^$PWD/||; /: warning: /p; /: error: /p; /^error: /p" docs/api/warnings.log)
member_only='warning: Member .* \((function|variable|macro definition|friend)\) of |warning: Member .* \(typedef\) of (class|struct|union) '
errors=$(grep -Ev "$member_only" <<<"$warnings" || true)
members=$(grep -Ec "$member_only" <<<"$warnings" || true)

echo "docs/api.sh: ${members} undocumented functions, variables and member aliases (not errors; docs/api/warnings.log)" >&2
if [[ -n "$errors" ]]; then
  echo "$errors" >&2
  echo "docs/api.sh: $(wc -l <<<"$errors") error(s): undocumented public types or unreadable comments (above)" >&2
  exit 1
fi
echo "docs/api.sh: docs/api/html/index.html"
