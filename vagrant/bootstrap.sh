#!/usr/bin/env bash
# Bakes tsalt into a stack host: Node.js 20 and the tsalt package built on the host by
# `npm run package` (the .rpm on Rocky/Alma/CentOS Stream 9, the .deb on Debian), its config,
# and the master or agent service. The VMs run it (Vagrantfile), and so do the containers of
# `npm run test:stack`: one path. Safe to run again (`vagrant provision`): a newer package
# upgrades in place. Environment:
#   TSALT_ROLE     master | agent
#   TSALT_ID       the agent id (= VM name)
#   TSALT_MASTER   the master's address
#   TSALT_ROLES    comma-separated roles for /etc/tsalt/grains (agents)
#   TSALT_SRC      the repository (default /vagrant, the synced folder)
#   TSALT_PKG_DIR  where the packages are (default $TSALT_SRC/dist/packages)
set -euo pipefail
: "${TSALT_ROLE:?}" "${TSALT_ID:?}" "${TSALT_MASTER:?}"
SRC="${TSALT_SRC:-/vagrant}"
PKG_DIR="${TSALT_PKG_DIR:-$SRC/dist/packages}"

log() { printf '[bootstrap %s] %s\n' "$TSALT_ID" "$*"; }
die() { log "$*" >&2; exit 1; }
# the newest package of one kind in PKG_DIR (version sort: release 10 after release 9)
newest() { find "$PKG_DIR" -maxdepth 1 -name "$1" 2>/dev/null | sort -V | tail -1; }

# --- Node.js 20 ----------------------------------------------------------------------------
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  if command -v dnf >/dev/null; then
    # EL9: the AppStream module stream, no third-party repository
    log "installing Node.js 20"
    dnf -y -q module reset nodejs
    dnf -y -q module enable nodejs:20
    dnf -y -q install nodejs
  else
    die "Node.js >= 20 is needed (Debian 12's nodejs is 18): install it first"
  fi
fi

# --- tsalt, from its package ---------------------------------------------------------------
if command -v dnf >/dev/null; then
  pkg=$(newest 'tsalt-*.x86_64.rpm')
  [ -n "$pkg" ] || die "no tsalt-*.rpm in $PKG_DIR: run \`npm run package\` on the host first"
  log "installing $(basename "$pkg")"
  dnf -y -q install "$pkg"
else
  pkg=$(newest 'tsalt_*_amd64.deb')
  [ -n "$pkg" ] || die "no tsalt_*.deb in $PKG_DIR: run \`npm run package\` on the host first"
  log "installing $(basename "$pkg")"
  # a fresh Debian host has no package lists yet (apt resolves the nodejs dependency from them)
  ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1 || apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$pkg" >/dev/null
fi
install -d -m 0755 /etc/tsalt

if [ "$TSALT_ROLE" = master ]; then
  # the master serves states and pillar straight from the synced repository
  # (after editing them on the host: `vagrant rsync salt`)
  cat > /etc/tsalt/master.yaml <<YAML
interface: 0.0.0.0
port: 4506
state_tree: $SRC/states
pillar_tree: $SRC/pillar
# Prometheus on mon1 scrapes http://<master>:9506/metrics (pillar prometheus:tsalt_master)
metrics: {interface: 0.0.0.0, port: 9506}
YAML
  systemctl enable --now tsalt-master
  systemctl restart tsalt-master
  # agents must reach 4506 and Prometheus 9506; the agents' own ports are opened by the
  # firewall states
  if command -v firewall-cmd >/dev/null && firewall-cmd --state >/dev/null 2>&1; then
    for port in 4506/tcp 9506/tcp; do
      firewall-cmd --query-port=$port >/dev/null || firewall-cmd --add-port=$port
      firewall-cmd --permanent --query-port=$port >/dev/null || firewall-cmd --permanent --add-port=$port
    done
  fi
  log "master up on $TSALT_MASTER:4506; accept the agents with: tsalt keys accept --all"
else
  : "${TSALT_ROLES:?}"
  # Lab setting: trust the first master seen (tofu). In production set master_finger to the
  # master's key fingerprint instead.
  cat > /etc/tsalt/agent.yaml <<YAML
id: $TSALT_ID
master: $TSALT_MASTER
master_port: 4506
tofu: true
YAML
  {
    echo "# Written by vagrant/bootstrap.sh: what this VM is for (top.sls matches on it)."
    echo "roles:"
    IFS=, read -ra roles <<< "$TSALT_ROLES"
    for r in "${roles[@]}"; do echo "  - $r"; done
  } > /etc/tsalt/grains
  systemctl enable --now tsalt-agent
  systemctl restart tsalt-agent
  log "agent $TSALT_ID (roles: $TSALT_ROLES) connecting to $TSALT_MASTER"
fi
