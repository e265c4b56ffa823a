#!/usr/bin/env node
// `npm run package`: the tsalt .deb and .rpm, built with Debian's and RPM's own tools
// (dpkg-deb, rpmbuild; both in Debian) from one staged file tree:
//
//   /usr/lib/tsalt/        bin/tsalt.js, dist/bundle (the CLI in one file + its V8 code cache),
//                          the native SQLite addon with its two loader modules, examples/
//   /usr/bin/tsalt         -> ../lib/tsalt/bin/tsalt.js
//   systemd units          tsalt-agent.service, tsalt-master.service (packaging/)
//   /etc/tsalt/            agent.yaml.example, master.yaml.example (conffiles)
//
// Both depend on Node.js >= 20. Neither enables a service: the operator (or
// vagrant/bootstrap.sh) writes /etc/tsalt/agent.yaml first. An upgrade restarts the services
// that run; removal stops and disables them. No script deletes the agent's keys
// (/etc/tsalt/pki), its cache (/var/cache/tsalt) or the master's database (/var/lib/tsalt):
// they are data, not files of the package, and survive an upgrade or a reinstall.
//
// Usage: node packaging/build.mjs [--out DIR] [--release N] [--only deb|rpm]
// Needs a build (`npm run build`) first; `npm run package` does both.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';

const root = path.resolve(import.meta.dirname, '..');
const { values: opts } = parseArgs({
  options: {
    out: { type: 'string', default: path.join(root, 'dist/packages') },
    release: { type: 'string', default: '1' },
    only: { type: 'string' },
  },
});
if (!/^[0-9]+$/.test(opts.release)) throw new Error(`--release must be a number, not '${opts.release}'`);
const pkgJson = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
const version = pkgJson.version;
const release = opts.release;
const summary = 'Configuration manager for Salt-style state trees (master and agent)';
const description = [
  'A master serves versioned Salt SLS trees (YAML + Jinja) over mutual-TLS websockets to',
  'agents, which converge packages, files, users and services idempotently and report every',
  'state result to the master. One program: tsalt master, tsalt agent, tsalt apply.',
];
const nodeMajor = 20;

const bundle = path.join(root, 'dist/bundle/tsalt.cjs');
if (!fs.existsSync(bundle)) throw new Error(`${bundle} missing: run \`npm run build\` first (npm run package does)`);

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-package-'));
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }));
const run = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'] }).toString();

/** The installed file tree, with the units under `unitDir`. */
function stage(dir, unitDir) {
  const lib = path.join(dir, 'usr/lib/tsalt');
  const copy = (from, to = from) => fs.cpSync(path.join(root, from), path.join(lib, to), { recursive: true });
  copy('bin/tsalt.js');
  copy('bin/package.json'); // bin/tsalt.js is CommonJS
  // `tsalt local`'s, the job worker's and the agent daemon's own bundles, and the extras the worker
  // and the daemon require when first needed (scripts/bundle.mjs)
  for (const f of ['tsalt.cjs', 'tsalt.cjs.map', 'local.cjs', 'local.cjs.map', 'job-worker.cjs', 'job-worker.cjs.map', 'agent-daemon.cjs', 'agent-daemon.cjs.map', 'x509.cjs', 'systeminformation.cjs']) if (fs.existsSync(path.join(root, 'dist/bundle', f))) copy(`dist/bundle/${f}`);
  // no code cache: bin/tsalt.js writes one per kind of run where it is installed (not files of
  // the package, so prerm removes them)
  copy('examples');
  // the package's own package.json (bin/package.json makes bin/tsalt.js CommonJS)
  fs.writeFileSync(path.join(lib, 'package.json'), JSON.stringify({ name: 'tsalt', version, private: true, type: 'module' }, null, 2) + '\n');
  // the bundle leaves the native addon outside: it and what loads it, nothing else
  const sqlite = 'node_modules/better-sqlite3';
  for (const f of ['package.json', 'LICENSE', 'lib', 'build/Release/better_sqlite3.node']) copy(`${sqlite}/${f}`);
  for (const m of ['bindings', 'file-uri-to-path']) {
    for (const f of fs.readdirSync(path.join(root, 'node_modules', m))) if (/\.js$|^package\.json$|^LICENSE/.test(f)) copy(`node_modules/${m}/${f}`);
  }
  fs.mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
  fs.symlinkSync('../lib/tsalt/bin/tsalt.js', path.join(dir, 'usr/bin/tsalt'));
  fs.chmodSync(path.join(lib, 'bin/tsalt.js'), 0o755);
  fs.mkdirSync(path.join(dir, unitDir), { recursive: true });
  for (const u of ['tsalt-agent.service', 'tsalt-master.service']) fs.copyFileSync(path.join(root, 'packaging', u), path.join(dir, unitDir, u));
  // pki/ exists from the start: the master unit's sandbox makes only it writable in /etc
  fs.mkdirSync(path.join(dir, 'etc/tsalt/pki'), { recursive: true, mode: 0o700 });
  fs.chmodSync(path.join(dir, 'etc/tsalt/pki'), 0o700);
  for (const c of ['agent.yaml.example', 'master.yaml.example']) fs.copyFileSync(path.join(root, 'packaging', c), path.join(dir, 'etc/tsalt', c));
  const doc = path.join(dir, 'usr/share/doc/tsalt');
  fs.mkdirSync(doc, { recursive: true });
  fs.copyFileSync(path.join(root, 'README.md'), path.join(doc, 'README.md'));
}

// Maintainer scripts: one shell body for both formats, told what happens by an action word.
const scripts = {
  // after unpacking: new unit files; on an upgrade, the running services restart into it
  postinst: (upgrade) => `if [ -d /run/systemd/system ]; then
  systemctl daemon-reload >/dev/null 2>&1 || :
  if ${upgrade}; then systemctl try-restart tsalt-agent.service tsalt-master.service >/dev/null 2>&1 || :; fi
fi`,
  // before removal (not upgrade): stop and disable
  prerm: () => `if [ -d /run/systemd/system ]; then
  systemctl disable --now tsalt-agent.service tsalt-master.service >/dev/null 2>&1 || :
fi
# the V8 code caches the installed program wrote for itself (bin/tsalt.js): not the package's files
rm -f /usr/lib/tsalt/dist/bundle/*.cjs.*.v8cache`,
  postrm: () => `if [ -d /run/systemd/system ]; then systemctl daemon-reload >/dev/null 2>&1 || :; fi`,
};

fs.mkdirSync(opts.out, { recursive: true });
const built = [];

if (!opts.only || opts.only === 'deb') {
  const dir = path.join(work, 'deb');
  stage(dir, 'lib/systemd/system');
  const meta = path.join(dir, 'DEBIAN');
  fs.mkdirSync(meta);
  const size = Number(run('du', ['-sk', '--exclude=DEBIAN', dir]).split('\t')[0]);
  fs.writeFileSync(
    path.join(meta, 'control'),
    [
      'Package: tsalt',
      `Version: ${version}-${release}`,
      'Architecture: amd64',
      'Maintainer: tsalt developers <tsalt@localhost>',
      `Depends: nodejs (>= ${nodeMajor})`,
      'Section: admin',
      'Priority: optional',
      `Installed-Size: ${size}`,
      'Homepage: https://github.com/tsalt/tsalt',
      `Description: ${summary}`,
      ...description.map((l) => ` ${l}`),
      '',
    ].join('\n'),
  );
  fs.writeFileSync(path.join(meta, 'conffiles'), '/etc/tsalt/agent.yaml.example\n/etc/tsalt/master.yaml.example\n');
  const sh = (body) => `#!/bin/sh\nset -e\n${body}\nexit 0\n`;
  // dpkg: postinst configure <old-version> on an upgrade; prerm remove (not upgrade)
  fs.writeFileSync(path.join(meta, 'postinst'), sh(`[ "$1" = configure ] || exit 0\n${scripts.postinst('[ -n "$2" ]')}`), { mode: 0o755 });
  fs.writeFileSync(path.join(meta, 'prerm'), sh(`[ "$1" = remove ] || exit 0\n${scripts.prerm()}`), { mode: 0o755 });
  fs.writeFileSync(path.join(meta, 'postrm'), sh(scripts.postrm()), { mode: 0o755 });
  const out = path.join(opts.out, `tsalt_${version}-${release}_amd64.deb`);
  run('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', dir, out]);
  built.push(out);
}

if (!opts.only || opts.only === 'rpm') {
  const top = path.join(work, 'rpm');
  const dir = path.join(work, 'rpm-root');
  stage(dir, 'usr/lib/systemd/system');
  for (const d of ['SPECS', 'RPMS', 'BUILD', 'BUILDROOT', 'SOURCES', 'SRPMS']) fs.mkdirSync(path.join(top, d), { recursive: true });
  const spec = `
Name: tsalt
Version: ${version}
Release: ${release}
Summary: ${summary}
License: ${pkgJson.license}
URL: https://github.com/tsalt/tsalt
# EL's AppStream nodejs carries epoch 1 (nodejs-1:20.x); 1:20 keeps 1:18 out
Requires: nodejs >= 1:${nodeMajor}
# built outside an RPM distribution: no debuginfo, no distribution-specific post-processing
%define debug_package %{nil}
%define __os_install_post %{nil}
%define _build_id_links none
%define _binary_payload w6.xzdio

%description
${description.join('\n')}

%install
cp -a ${dir}/. %{buildroot}/

%files
/usr/lib/tsalt
/usr/bin/tsalt
/usr/lib/systemd/system/tsalt-agent.service
/usr/lib/systemd/system/tsalt-master.service
%dir /etc/tsalt
%dir %attr(0700,root,root) /etc/tsalt/pki
%config(noreplace) /etc/tsalt/agent.yaml.example
%config(noreplace) /etc/tsalt/master.yaml.example
%doc /usr/share/doc/tsalt/README.md

# rpm: $1 is the number of versions installed after the operation (1 install, 2 upgrade, 0 erase)
%post
${scripts.postinst('[ "$1" -ge 2 ]')}

%preun
if [ "$1" -eq 0 ]; then
${scripts.prerm()}
fi

%postun
${scripts.postrm()}
`;
  const specFile = path.join(top, 'SPECS/tsalt.spec');
  fs.writeFileSync(specFile, spec);
  run('rpmbuild', ['-bb', '--quiet', '--define', `_topdir ${top}`, '--target', 'x86_64-linux', specFile]);
  const rpm = path.join(top, 'RPMS/x86_64', `tsalt-${version}-${release}.x86_64.rpm`);
  const out = path.join(opts.out, path.basename(rpm));
  fs.copyFileSync(rpm, out);
  built.push(out);
}

for (const f of built) console.log(`${f} (${(fs.statSync(f).size / 1048576).toFixed(1)} MiB)`);
