#!/usr/bin/env bash
# Bakes tsalt into a stack VM (Rocky/Alma 9): Node.js 20, tsalt built from the synced
# repository (/vagrant), its config, and the master or agent service. Safe to run again
# (`vagrant provision`). Environment, from the Vagrantfile:
#   TSALT_ROLE   master | agent
#   TSALT_ID     the agent id (= VM name)
#   TSALT_MASTER the master's address
#   TSALT_ROLES  comma-separated roles for /etc/tsalt/grains (agents)
set -euo pipefail
: "${TSALT_ROLE:?}" "${TSALT_ID:?}" "${TSALT_MASTER:?}"
PREFIX=/opt/tsalt
SRC=/vagrant

log() { printf '[bootstrap %s] %s\n' "$TSALT_ID" "$*"; }

# --- Node.js 20: the AppStream module stream (no third-party repository) ----------------
if ! node --version 2>/dev/null | grep -q '^v20\.'; then
  log "installing Node.js 20"
  dnf -y -q module reset nodejs
  dnf -y -q module enable nodejs:20
  dnf -y -q install nodejs npm
fi
# better-sqlite3 builds from source when no prebuilt binary matches
dnf -y -q install gcc-c++ make python3 tar

# --- tsalt itself, rebuilt when the synced sources changed ------------------------------
stamp=$(cd "$SRC" && find package.json package-lock.json tsconfig.json bin protocol agent master cli scripts -type f -newer "$PREFIX/.built" 2>/dev/null | head -1 || true)
if [ ! -f "$PREFIX/.built" ] || [ -n "$stamp" ]; then
  log "building tsalt in $PREFIX"
  mkdir -p "$PREFIX"
  tar -C "$SRC" --exclude=./node_modules --exclude=./dist --exclude=./.git --exclude=./vagrant/.vagrant -cf - \
    package.json package-lock.json tsconfig.json bin protocol agent master cli scripts examples | tar -C "$PREFIX" -xf -
  (cd "$PREFIX" && npm ci --no-audit --no-fund --loglevel=error && npm run -s build && npm prune --omit=dev --no-audit --no-fund --loglevel=error)
  touch "$PREFIX/.built"
fi
# the shipped units (packaging/*.service) run /usr/bin/tsalt
ln -sf "$PREFIX/bin/tsalt.js" /usr/bin/tsalt
ln -sf "$PREFIX/bin/tsalt.js" /usr/local/bin/tsalt
chmod 0755 "$PREFIX/bin/tsalt.js"

install -d -m 0755 /etc/tsalt

# A unit file shipped in the repository wins; otherwise a minimal one.
write_unit() { # name, description, exec args
  local name=$1 desc=$2 args=$3 shipped
  for shipped in "$SRC/packaging/$name.service" "$SRC/dist-files/$name.service"; do
    if [ -f "$shipped" ]; then install -m 0644 "$shipped" "/etc/systemd/system/$name.service"; return; fi
  done
  cat > "/etc/systemd/system/$name.service" <<UNIT
[Unit]
Description=$desc
After=network-online.target
Wants=network-online.target

[Service]
ExecStart=/usr/bin/node $PREFIX/bin/tsalt.js $args
Restart=always
RestartSec=3

[Install]
WantedBy=multi-user.target
UNIT
}

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
  write_unit tsalt-master 'tsalt master' 'master --config /etc/tsalt/master.yaml'
  systemctl daemon-reload
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
  write_unit tsalt-agent 'tsalt agent' 'agent --config /etc/tsalt/agent.yaml'
  systemctl daemon-reload
  systemctl enable --now tsalt-agent
  systemctl restart tsalt-agent
  log "agent $TSALT_ID (roles: $TSALT_ROLES) connecting to $TSALT_MASTER"
fi
