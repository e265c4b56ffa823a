#!/usr/bin/env bash
# Sets up tsalt from a fresh clone and runs the main job on the embedded default:
#  1. masterless: `tsalt local apply` of the example tree on this machine, under a scratch root;
#  2. fleet: `tsalt demo`, a master (SQLite + keys in a temp dir) and one local agent accepted
#     by the demo, applying the same tree through mutual-TLS websockets.
# File paths the tree manages are rebased under scratch roots; nothing in /etc is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null
fi
npm run build --silent >/dev/null
root=${TSALT_DEMO_ROOT:-/tmp/tsalt-demo}
mkdir -p "$root"
echo "== 1. masterless: tsalt local apply examples/states --root $root"
node bin/tsalt.js local apply --states examples/states --pillar examples/pillar \
  --grains-file examples/grains --id web1 --root "$root" "$@"
echo
echo "== 2. master + agent: tsalt demo"
node bin/tsalt.js demo --exit
