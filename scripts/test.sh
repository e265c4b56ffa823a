#!/usr/bin/env bash
# The whole test suite, from a fresh clone: system packages, npm deps, build, vitest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-deps.sh
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
npx tsc -p tsconfig.test.json   # the tests are type-checked too
TSALT_SKIP_BUILD=1 npx vitest run "$@"
