#!/usr/bin/env bash
# What the benchmarks need beyond the test suite: Ansible (the comparison) and GNU time
# (peak RSS of a whole process). Idempotent; quick when all present. Run as root.
set -euo pipefail
want=(ansible-core python3-apt time)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "bench setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null || {
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  }
fi
