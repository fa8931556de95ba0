#!/usr/bin/env bash
# Installs every Debian package nibble's build, tests and benchmarks need.
# Idempotent; run as root (or with sudo available) on Debian 12.
set -euo pipefail

PKGS=(
  build-essential cmake ninja-build ccache pkg-config git
  libhwy-dev libdnnl-dev libfmt-dev libcli11-dev nlohmann-json3-dev libpcre2-dev libsentencepiece-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libopenmpi-dev openmpi-bin
  clang-14 libclang-rt-14-dev
  python3 python3-venv
  strace   # the reliability suite checks fsyncs with it
)

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "setup: all ${#PKGS[@]} packages already installed"
  exit 0
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done"
