#!/usr/bin/env bash
# npm cache holding the stack app's MySQL driver (pillar app:mysql2_version) and its
# dependencies, so the tests install it with `npm install --offline`: the test hosts (and the
# stack's containers) have no registry. Idempotent: nothing to do when the cache has that version.
set -euo pipefail
cd "$(dirname "$0")/../.."
CACHE="${TSALT_NPM_CACHE:-/var/cache/tsalt-test/npm}"
VERSION="$(awk '$1 == "mysql2_version:" {print $2}' pillar/app.sls)"
[ -n "$VERSION" ] || { echo "30-stack-npm-cache: no app:mysql2_version in pillar/app.sls" >&2; exit 1; }
STAMP="$CACHE/.mysql2-$VERSION"
[ -e "$STAMP" ] && exit 0
mkdir -p "$CACHE"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
echo "30-stack-npm-cache: caching mysql2@$VERSION in $CACHE"
npm install --prefix "$tmp" --cache "$CACHE" --no-audit --no-fund --loglevel=error "mysql2@$VERSION" >/dev/null
# proof that it installs from the cache alone
rm -rf "$tmp/node_modules" "$tmp/package-lock.json"
npm install --prefix "$tmp" --cache "$CACHE" --offline --no-audit --no-fund --loglevel=error "mysql2@$VERSION" >/dev/null
touch "$STAMP"
