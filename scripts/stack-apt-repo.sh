#!/usr/bin/env bash
# A local, flat apt repository with the given Debian packages and every dependency they need
# on the cached container rootfs (scripts/test-setup.d/20-container-rootfs.sh), without their
# Recommends: what `npm run test:stack`'s containers install, with no network of their own.
# Downloaded once through this machine's apt (its configured mirror), then cached; a
# different package list makes a new repository.
#   usage: stack-apt-repo.sh DEST PACKAGE...      (prints the repository's directory)
set -euo pipefail
DEST="$1"; shift
ROOTFS="${TSALT_ROOTFS:-/var/cache/tsalt-test/bookworm-rootfs}"
[ -e "$ROOTFS/.tsalt-complete" ] || { echo "stack-apt-repo: no rootfs at $ROOTFS" >&2; exit 1; }
key="$(printf '%s\n' "$@" | sort -u | sha256sum | cut -c1-16)"
REPO="$DEST/$key"
if [ -e "$REPO/.complete" ]; then echo "$REPO"; exit 0; fi
mkdir -p "$DEST"
exec 9>"$DEST/.lock"
flock 9
if [ -e "$REPO/.complete" ]; then echo "$REPO"; exit 0; fi
tmp="$REPO.tmp"
rm -rf "$tmp"
mkdir -p "$tmp/partial"
# resolve against the container's dpkg database (not this machine's), download only
apt_opts=(-o "Dir::State::status=$ROOTFS/var/lib/dpkg/status" -o "Dir::Cache::archives=$tmp" -o Debug::NoLocking=1)
if ! apt-get "${apt_opts[@]}" install -y -qq --download-only --no-install-recommends "$@" >&2; then
  apt-get update -qq >&2
  apt-get "${apt_opts[@]}" install -y -qq --download-only --no-install-recommends "$@" >&2
fi
rmdir "$tmp/partial"; rm -f "$tmp/lock"
(cd "$tmp" && dpkg-scanpackages -m . 2>/dev/null > Packages)
printf '%s\n' "$@" > "$tmp/.packages"
touch "$tmp/.complete"
mv "$tmp" "$REPO"
echo "$REPO"
