#!/usr/bin/env bash
# bench/plot/regenerate.sh: redraws docs/charts/*.png, the charts BENCHMARKS.md
# shows, from the sample data in bench/plot/data/ (plot.py all), installing
# Debian's python3-matplotlib first when it is missing, the way ./bazelw
# installs the build's packages (the same helper, tools/debian_packages.sh).
#
#   bench/plot/regenerate.sh                  # -> docs/charts/
#   bench/plot/regenerate.sh --out /tmp/c     # anywhere else
#   bench/plot/regenerate.sh servers RESULTS.tsv out.png   # any plot.py command
#
# With no arguments or only --data/--out, runs `plot.py all`; otherwise (and
# for --help) passes its arguments to plot.py. Runs Debian's /usr/bin/python3 on
# purpose: python3-matplotlib installs for that interpreter, and a python3
# earlier on PATH (pyenv, a venv) would not see it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
source "$here/../../tools/debian_packages.sh"
ensure_debian_packages regenerate.sh python3-matplotlib
if (($# == 0)) || [[ $1 == --* && $1 != --help ]]; then set -- all "$@"; fi
exec /usr/bin/python3 "$here/plot.py" "$@"
