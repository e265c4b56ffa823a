#!/usr/bin/env node
/**
 * Writes the W54 workload (../../../shared/bench/WORKLOAD.md) as a tsalt state tree:
 *   <dir>/states/{top.sls, w54.sls, w54/conf.cfg.j2}   <dir>/pillar/{top.sls, w54.sls}
 * Managed paths are real absolute paths under the scratch root R (pillar `w54_root`), so no
 * --root is needed and the floor script (W54_ROOT=R) checks the very same files.
 *
 * `--states N` scales the tree for the scaling curve: packages stay 5 and the user 1; the
 * other N-6 states keep W54's mix of directories, templated files and guarded commands
 * (5:40:3). N=54 is exactly W54 (same paths as the Ansible playbook and the floor script).
 *
 * usage: node bench/w54/gen.mjs --dir DIR --root R [--states 54]
 * Also importable: generate({dir, root, states}).
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

export const PACKAGES = ['coreutils', 'bash', 'tar', 'gzip', 'sed'];
export const USER = 'w54user';

const pad = (n, w = 2) => String(n).padStart(w, '0');

/** The counts of each kind of state for a tree of `total` states. */
export function mix(total) {
  if (!Number.isInteger(total) || total < 54) throw new Error(`--states must be an integer >= 54, got ${total}`);
  const k = (total - 6) / 48;
  const dirs = Math.round(5 * k);
  const cmds = Math.round(3 * k);
  return { dirs, files: total - 6 - dirs - cmds, cmds, pkgs: PACKAGES.length, users: 1 };
}

/**
 * Loops over the pillar's 20 backends. No newline after the last `{% endfor %}`: Salt keeps a
 * template's final newline (Ansible's trim_blocks drops it), and the files must match the
 * floor script's and Ansible's byte for byte.
 */
const TEMPLATE = `# file {{ nn }}
backend servers_{{ nn }}
    balance roundrobin
{% for b in pillar['backends'] %}    server {{ b.hostname }} {{ b.ip }}:8080 check
{% endfor %}`;

function pillarSls(root) {
  const lines = [`w54_root: ${JSON.stringify(root)}`, 'backends:'];
  for (let i = 1; i <= 20; i++) lines.push(`  - {hostname: "web${pad(i)}", ip: "10.0.0.${pad(i)}"}`);
  return lines.join('\n') + '\n';
}

/** One explicit state per item, like the Ansible playbook's 54 tasks; R comes from pillar. */
function statesSls(m) {
  const w = Math.max(2, String(Math.max(m.dirs, m.files, m.cmds)).length);
  const out = ["{% set R = pillar['w54_root'] %}"];
  for (let d = 1; d <= m.dirs; d++) {
    out.push(`d${pad(d, w)}:`, '  file.directory:', `    - name: {{ R }}/d${pad(d, w)}`, "    - mode: '0755'");
  }
  for (let i = 1; i <= m.files; i++) {
    const nn = pad(i, w);
    const d = pad((i % m.dirs) + 1, w);
    out.push(
      `conf_${nn}:`,
      '  file.managed:',
      `    - name: {{ R }}/d${d}/conf_${nn}.cfg`,
      '    - source: salt://w54/conf.cfg.j2',
      '    - template: jinja',
      "    - mode: '0644'",
      '    - context:',
      `        nn: '${nn}'`,
      '    - require:',
      `      - file: d${d}`,
    );
  }
  for (const p of PACKAGES) out.push(`pkg_${p}:`, '  pkg.installed:', `    - name: ${p}`);
  for (let k = 1; k <= m.cmds; k++) {
    out.push(
      `marker_${k}:`,
      '  cmd.run:',
      `    - name: touch {{ R }}/marker_${k}`,
      `    - creates: {{ R }}/marker_${k}`,
    );
  }
  out.push(`${USER}:`, '  user.present:', '    - createhome: False', '    - shell: /usr/sbin/nologin');
  return out.join('\n') + '\n';
}

/** Writes the tree; returns the paths the runners need. */
export function generate({ dir, root, states = 54 }) {
  const m = mix(states);
  dir = path.resolve(dir);
  root = path.resolve(root);
  const st = path.join(dir, 'states');
  const pi = path.join(dir, 'pillar');
  fs.mkdirSync(path.join(st, 'w54'), { recursive: true });
  fs.mkdirSync(pi, { recursive: true });
  // R itself is the given scratch root, not one of the 54 states (Salt's file.directory
  // without makedirs needs its parent, as the workload's directories need R).
  fs.mkdirSync(root, { recursive: true });
  fs.writeFileSync(path.join(st, 'top.sls'), "base:\n  '*':\n    - w54\n");
  fs.writeFileSync(path.join(st, 'w54.sls'), statesSls(m));
  fs.writeFileSync(path.join(st, 'w54', 'conf.cfg.j2'), TEMPLATE);
  fs.writeFileSync(path.join(pi, 'top.sls'), "base:\n  '*':\n    - w54\n");
  fs.writeFileSync(path.join(pi, 'w54.sls'), pillarSls(root));
  return { states: st, pillar: pi, root, mix: m };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values: o } = parseArgs({
    options: { dir: { type: 'string' }, root: { type: 'string' }, states: { type: 'string', default: '54' } },
  });
  if (!o.dir || !o.root) {
    process.stderr.write('usage: node bench/w54/gen.mjs --dir DIR --root R [--states N]\n');
    process.exit(1);
  }
  const r = generate({ dir: o.dir, root: o.root, states: Number(o.states) });
  process.stdout.write(JSON.stringify(r) + '\n');
}
