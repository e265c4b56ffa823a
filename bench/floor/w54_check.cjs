#!/usr/bin/env node
// Copied unchanged from the W54 workload spec (floor/w54_check.js); .cjs because package.json is "type": "module".
// W54 no-op check floor, in one Node.js process: verifies the 54 states of ../WORKLOAD.md without
// changing anything. fs.stat/readFile + sha256 in-process; child processes: one dpkg-query (all 5
// packages) and one getent, both started first so they run while the file checks are done.
// Exit 0 when all 54 states are converged, 1 otherwise (drift listed on stderr).
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { execFile } = require('child_process');

const R = process.env.W54_ROOT || '/tmp/w54root';
const drift = new Map(); // state -> reasons
const bad = (state, why) => drift.set(state, [...(drift.get(state) || []), why]);
const run = (cmd, args) =>
  new Promise((resolve) => execFile(cmd, args, (err, stdout) => resolve(err && !stdout ? '' : stdout)));

const PKGS = ['coreutils', 'bash', 'tar', 'gzip', 'sed'];
const pkgQuery = run('dpkg-query', ['-W', '-f=${Package}=${db:Status-Abbrev}\n', ...PKGS]);
const userQuery = run('getent', ['passwd', 'w54user']);

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');
const backends = Array.from({ length: 20 }, (_, k) => {
  const nn = String(k + 1).padStart(2, '0');
  return { hostname: `web${nn}`, ip: `10.0.0.${nn}` };
});
const servers = backends.map((b) => `    server ${b.hostname} ${b.ip}:8080 check\n`).join('');

// 5 directories, mode 0755.
for (let d = 1; d <= 5; d++) {
  const p = `${R}/d0${d}`;
  let st;
  try { st = fs.statSync(p); } catch { bad(p, 'missing'); continue; }
  if (!st.isDirectory() || (st.mode & 0o7777) !== 0o755) bad(p, 'not a 0755 directory');
}

// 40 templated files, mode 0644, sha256 of the file vs sha256 of the rendered template.
for (let i = 1; i <= 40; i++) {
  const nn = String(i).padStart(2, '0');
  const p = `${R}/d0${(i % 5) + 1}/conf_${nn}.cfg`;
  const want = sha256(`# file ${nn}\nbackend servers_${nn}\n    balance roundrobin\n${servers}`);
  let st;
  try { st = fs.statSync(p); } catch { bad(p, 'missing'); continue; }
  if (!st.isFile() || (st.mode & 0o7777) !== 0o644) bad(p, 'not a 0644 file');
  if (sha256(fs.readFileSync(p)) !== want) bad(p, 'content differs');
}

// 3 guarded commands: creates= markers present.
for (let k = 1; k <= 3; k++) {
  const p = `${R}/marker_${k}`;
  if (!fs.existsSync(p)) bad(p, 'missing');
}

Promise.all([pkgQuery, userQuery]).then(([pkgOut, pw]) => {
  const installed = new Set(pkgOut.split('\n').filter((l) => /=ii\s*$/.test(l)).map((l) => l.split('=')[0]));
  for (const p of PKGS) if (!installed.has(p)) bad(`package ${p}`, 'not installed');
  const fields = pw.trim().split(':');
  if (fields[0] !== 'w54user' || fields[6] !== '/usr/sbin/nologin') bad('user w54user', 'missing or wrong shell');

  if (drift.size) {
    for (const [k, v] of drift) process.stderr.write(`drift: ${k}: ${v.join(', ')}\n`);
    console.log(`w54 check: ${54 - drift.size} ok, ${drift.size} drifted`);
    process.exitCode = 1;
  } else {
    console.log('w54 check: 54 ok, 0 drifted');
  }
});
