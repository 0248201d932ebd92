#!/usr/bin/env bash
# Installs the Debian packages Lanterna builds and tests with, or the
# packages named as arguments. Idempotent: does nothing when every package
# is already present.
set -euo pipefail
pkgs=(build-essential pkg-config libevent-dev libprotobuf-c-dev protobuf-c-compiler
      libjansson-dev libsqlite3-dev libzstd-dev liblz4-dev zlib1g-dev libssl-dev libcmocka-dev
      clang libclang-rt-14-dev llvm python3-venv curl)
[ $# -gt 0 ] && pkgs=("$@")
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "deps: installing ${missing[*]}" >&2
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
