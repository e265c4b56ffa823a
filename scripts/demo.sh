#!/usr/bin/env bash
# Sets up tsalt from a fresh clone and runs the main job on the embedded default:
# the example tree applied to this machine under a scratch root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund >/dev/null
fi
npm run build --silent
root=${TSALT_DEMO_ROOT:-/tmp/tsalt-demo}
mkdir -p "$root"
node bin/tsalt.js local apply --states examples/states --pillar examples/pillar \
  --grains-file examples/grains --id web1 --root "$root" "$@"
