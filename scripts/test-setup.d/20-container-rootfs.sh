#!/usr/bin/env bash
# Cached Debian 12 (bookworm) rootfs for the systemd service tests (systemd-nspawn --boot).
# Idempotent: does nothing when the cache is complete. About 2.5 minutes the first time.
# The mirror is the one this machine's apt already uses (no other host is contacted).
set -euo pipefail

DEST="${TSALT_ROOTFS:-/var/cache/tsalt-test/bookworm-rootfs}"
STAMP="$DEST/.tsalt-complete"
[ -e "$STAMP" ] && exit 0

command -v debootstrap >/dev/null || { echo "20-container-rootfs: debootstrap missing" >&2; exit 1; }

# First Debian archive serving bookworm (not -security/-updates) from apt's configuration:
# deb822 .sources files first, then one-line sources.list entries.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -e "$f" ] || continue
    awk '
      /^[[:space:]]*$/ { if (uri != "" && ok) { print uri; done=1; exit } uri=""; ok=0; next }
      tolower($1) == "uris:" { uri=$2 }
      tolower($1) == "suites:" { for (i=2; i<=NF; i++) if ($i == "bookworm") ok=1 }
      END { if (!done && uri != "" && ok) print uri }
    ' "$f"
  done
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -e "$f" ] || continue
    # drop `[arch=... signed-by=...]` options first, then: deb URI SUITE COMPONENTS...
    awk '$1 == "deb" { sub(/\[[^]]*\]/, ""); $0 = $0; if ($3 == "bookworm") print $2 }' "$f"
  done
}
# awk 'NR==1' reads all input: head would close the pipe early and pipefail would abort
MIRROR="$(mirror | awk 'NR==1')"
[ -n "$MIRROR" ] || { echo "20-container-rootfs: no bookworm mirror in /etc/apt/sources.list(.d)" >&2; exit 1; }

# Build in a temp dir next to the cache and rename: an interrupted run never looks complete.
mkdir -p "$(dirname "$DEST")"
exec 9>"$(dirname "$DEST")/.rootfs.lock"
flock 9
[ -e "$STAMP" ] && exit 0
TMP="$DEST.tmp"
rm -rf "$TMP" "$DEST"
echo "20-container-rootfs: debootstrap bookworm from $MIRROR into $DEST"
debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus bookworm "$TMP" "$MIRROR" >/dev/null
# No getty/console noise, no network waits: the tests only need systemd and a unit.
chroot "$TMP" systemctl mask console-getty.service getty@tty1.service systemd-networkd-wait-online.service >/dev/null 2>&1 || true
: >"$TMP/etc/machine-id"
rm -rf "$TMP"/var/cache/apt/archives/*.deb "$TMP"/var/lib/apt/lists/*
touch "$TMP/.tsalt-complete"
mv "$TMP" "$DEST"
