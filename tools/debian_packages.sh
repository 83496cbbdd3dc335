# tools/debian_packages.sh: sourced by ./bazelw and docs/api.sh (not run).
# ensure_debian_packages PKG...: installs, with apt-get, each Debian package
# that dpkg does not list as installed, running `apt-get update` once first and
# using sudo when not root; does nothing when every one is installed. The
# caller's name (the script that sourced this file) prefixes its message.
ensure_debian_packages() {
  local p missing=()
  for p in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
      missing+=("$p")
    fi
  done
  ((${#missing[@]})) || return 0
  echo "$(basename "$0"): installing missing Debian packages: ${missing[*]}" >&2
  local sudo=""
  if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $sudo apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q "${missing[@]}" >&2
}
