#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian 12 machine (root). Quick when all present.
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t want < <(grep -v '^\s*#' scripts/test-packages.txt | awk 'NF{print $1}')
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# hooks other scripts may add (container rootfs cache, services, ...)
for s in scripts/test-setup.d/*.sh; do
  [ -e "$s" ] && bash "$s"
done
exit 0
