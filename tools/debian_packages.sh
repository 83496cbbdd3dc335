# tools/debian_packages.sh: sourced (not run) by the scripts that need Debian
# packages on a fresh Debian 12 machine: ./bazelw for the build, and
# bench/plot/regenerate.sh for python3-matplotlib, docs/api.sh for doxygen.
#
#   source tools/debian_packages.sh
#   ensure_debian_packages WHO PACKAGE...
#
# Installs every PACKAGE that dpkg does not report as installed, running
# `apt-get update` once first, with sudo unless already root; WHO names the
# caller in the one line it prints to stderr. Installs nothing and prints
# nothing when all are present, so callers may run it every time. apt-get's
# own output goes to stderr: stdout stays the caller's. Returns non-zero (the
# callers run under `set -e`) when apt-get fails.
# Shared so that the check, the sudo rule and the non-interactive settings
# live in one place rather than in a copy per script.

ensure_debian_packages() {
  local who=$1 p sudo=""
  shift
  local missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  echo "$who: installing missing Debian packages: ${missing[*]}" >&2
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  # env, not an exported variable: sudo resets the environment.
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2
}
