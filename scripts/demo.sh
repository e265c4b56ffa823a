#!/usr/bin/env bash
# Sets up tsalt from a fresh clone and runs the main job on the embedded default:
#  1. masterless: `tsalt local apply` of the example tree on this machine, under a scratch root;
#  2. fleet: `tsalt demo`, a master (SQLite + keys) and one local agent whose key the demo
#     preseeds, applying the same tree through mutual-TLS websockets.
# File paths the tree manages are rebased under scratch roots; nothing in /etc is touched.
# Everything lives in $TSALT_DEMO_ROOT (default /tmp/tsalt-demo), reused by the next run;
# `rm -rf` it when done.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
step() { printf '\n== %s\n' "$*"; }
t0=$SECONDS

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  step "installing dependencies (npm ci: a minute or two on a fresh clone)"
  # npm shows no progress when not on a terminal: count its fetches instead (errors pass through)
  npm ci --no-audit --no-fund --loglevel=http 2>&1 |
    awk '/npm http fetch/ { if (++n % 50 == 0) { printf "  %d packages fetched\n", n; fflush() } } /ERR!/ { print; fflush() }'
  echo "  dependencies installed ($((SECONDS - t0))s)"
fi

# the build is current when nothing it is made from is newer than the bundle
bundle=dist/bundle/tsalt.cjs
if [ -f "$bundle" ] && [ -z "$(find protocol core engine agent master cli scripts/bundle.mjs tsconfig.json package-lock.json -newer "$bundle" -print -quit 2>/dev/null)" ]; then
  echo "== build is current ($bundle)"
else
  step "building (tsc + bundle)"
  t=$SECONDS
  npm run build --silent >/dev/null
  echo "  built in $((SECONDS - t))s"
fi

root=${TSALT_DEMO_ROOT:-/tmp/tsalt-demo}
mkdir -p "$root"
step "1. masterless: tsalt local apply examples/states --root $root/local"
node bin/tsalt.js local apply --states examples/states --pillar examples/pillar \
  --grains-file examples/grains --id web1 --root "$root/local" "$@"

step "2. master + agent: tsalt demo --dir $root/fleet"
node bin/tsalt.js demo --exit --dir "$root/fleet"
echo
echo "Demo files: $root (reused by the next run; rm -rf $root removes them)."
if ! command -v tsalt >/dev/null; then
  echo "tsalt is not on your PATH: the commands above run it as 'node $repo/bin/tsalt.js';"
  echo "'npm link' in $repo (or 'sudo npm link') puts 'tsalt' there."
fi
