/**
 * `tsalt local apply` keeps dpkg-query's answer across runs (engine/providers/pkg/db-answer-cache.ts),
 * with this machine's real dpkg: a `dpkg-query` first on PATH logs each call and runs the real
 * one, so the runs below count the queries they fork. The database is changed for real (dpkg -i
 * of a tiny package built here, a dpkg transaction caught mid-way with its journal in updates/).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execOk } from '../../engine/run/exec.js';
import { tempDir } from '../helpers/harness.js';
import { writeTree } from '../helpers/tree.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/tsalt.js');
const PKG = 'tsalt-test-pkgcache';
const FORMAT = '${db:Status-Abbrev}';
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

const work = tempDir('tsalt-pkgdb-');
const wrapperDir = path.join(work, 'bin');
const log = path.join(work, 'dpkg-query.log');
const tmp = path.join(work, 'tmp');
const cacheDir = path.join(tmp, `tsalt-cache-${process.getuid!()}`, 'pkgdb');
const go = path.join(work, 'go');
const waiting = path.join(work, 'waiting');
let background: ChildProcess | undefined;

/** A tiny .deb built with the real dpkg-deb; `postinst`: its script body. */
function buildDeb(version: string, postinst?: string): string {
  const root = path.join(work, 'build', version);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.mkdirSync(path.join(root, 'usr/share/doc', PKG), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'DEBIAN/control'),
    `Package: ${PKG}\nVersion: ${version}\nArchitecture: all\nMaintainer: tsalt tests <root@localhost>\nDescription: tsalt test package\n`,
  );
  if (postinst) fs.writeFileSync(path.join(root, 'DEBIAN/postinst'), `#!/bin/sh\n${postinst}\n`, { mode: 0o755 });
  fs.writeFileSync(path.join(root, 'usr/share/doc', PKG, 'VERSION'), `${version}\n`);
  const out = path.join(work, `${PKG}_${version}_all.deb`);
  spawnSync('dpkg-deb', ['--build', '--root-owner-group', root, out], { stdio: 'ignore' });
  return out;
}

const tree = writeTree({
  'probe.sls': `${PKG}:\n  pkg.removed: []\n`,
  'inst.sls': [
    'get:',
    '  pkg.installed:',
    '    - name: files',
    '    - sources:',
    `      - ${PKG}: salt://${PKG}_1.0_all.deb`,
    'check:',
    '  pkg.installed:',
    `    - name: ${PKG}`,
    '    - require:',
    '      - get',
    '',
  ].join('\n'),
});

interface Run {
  queries: number;
  results: Array<{ id: string; result: boolean | null; changes: Record<string, unknown>; comment: string }>;
  err: string;
}

/** One `tsalt local apply <sls>`: its results and how many installed-packages queries it forked. */
function tsalt(sls: string, o: { test?: boolean; debug?: boolean } = {}): Run {
  fs.writeFileSync(log, '');
  const args = [BIN, 'local', 'apply', sls, '--states', tree, '--pillar', '/nonexistent', '--id', 'h1', '--grains-file', '/nonexistent', '--json'];
  if (o.test) args.push('--test');
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    env: { ...env, PATH: `${wrapperDir}:${process.env.PATH}`, TMPDIR: tmp, ...(o.debug ? { TSALT_DEBUG: '1' } : { TSALT_DEBUG: '' }) },
  });
  const queries = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l.includes(FORMAT)).length;
  let results: Run['results'];
  try {
    results = JSON.parse(r.stdout).results;
  } catch {
    throw new Error(`tsalt local apply ${sls} exited ${r.status}: ${r.stdout}\n${r.stderr}`);
  }
  return { queries, results, err: r.stderr };
}

const journal = () => fs.readdirSync('/var/lib/dpkg/updates').filter((n) => /^\d+$/.test(n));
const purge = () => execOk(['dpkg', '--purge', PKG], { env });

beforeAll(async () => {
  fs.mkdirSync(wrapperDir);
  fs.mkdirSync(tmp);
  // the real dpkg-query, each call logged
  fs.writeFileSync(path.join(wrapperDir, 'dpkg-query'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${log}\nexec /usr/bin/dpkg-query "$@"\n`, { mode: 0o755 });
  fs.copyFileSync(buildDeb('1.0'), path.join(tree, `${PKG}_1.0_all.deb`));
  buildDeb('2.0', `[ "$1" = configure ] || exit 0\ntouch ${waiting}\nwhile [ ! -e ${go} ]; do sleep 0.05; done`);
  expect(journal()).toEqual([]);
  await purge();
});

afterAll(async () => {
  fs.mkdirSync(work, { recursive: true });
  fs.writeFileSync(go, '');
  if (background && background.exitCode === null) await new Promise((r) => background!.once('exit', r));
  await purge();
});

describe('the installed-packages answer across runs, real dpkg', () => {
  it('the first run queries and stores the answer; a no-op run after it forks no query', () => {
    const first = tsalt('probe', { test: true });
    expect(first.queries).toBe(1);
    expect(first.results[0]).toMatchObject({ result: true, comment: 'All specified packages are already absent' });
    expect(fs.readdirSync(cacheDir)).toHaveLength(1);
    for (let i = 0; i < 2; i++) {
      const again = tsalt('probe', { test: true });
      expect(again.queries).toBe(0);
      expect(again.results[0]).toMatchObject({ result: true, changes: {} });
    }
  });

  it('dpkg changing the database: the next run queries and sees it', async () => {
    await execOk(['dpkg', '-i', path.join(work, `${PKG}_1.0_all.deb`)], { env });
    const seen = tsalt('probe', { test: true });
    expect(seen.queries).toBe(1);
    expect(seen.results[0]).toMatchObject({ result: null, changes: { [PKG]: { old: '1.0', new: '' } } });
    expect(tsalt('probe', { test: true }).queries).toBe(0);
    await purge();
    const gone = tsalt('probe', { test: true });
    expect(gone.queries).toBe(1);
    expect(gone.results[0]).toMatchObject({ result: true, changes: {} });
  });

  it('a run that installs a package and then checks it sees the truth', () => {
    const r = tsalt('inst');
    // the first look is the answer stored by the run before; after the install, the query
    expect(r.queries).toBe(1);
    expect(r.results.map((x) => [x.id, x.result])).toEqual([
      ['get', true],
      ['check', true],
    ]);
    expect(r.results[0]!.changes).toEqual({ [PKG]: { old: '', new: '1.0' } });
    expect(r.results[1]!.comment).toBe(`Package ${PKG} is already installed`);
    const after = tsalt('probe', { test: true });
    expect(after.queries).toBe(0);
    expect(after.results[0]).toMatchObject({ result: null, changes: { [PKG]: { old: '1.0', new: '' } } });
  });

  it('during a dpkg transaction (journal entries in updates/) every run queries; none is stored', async () => {
    const files = fs.readdirSync(cacheDir).length;
    // an upgrade to 2.0 whose postinst waits: dpkg has written its journal, not yet status
    background = spawn('dpkg', ['-i', path.join(work, `${PKG}_2.0_all.deb`)], { env, stdio: 'ignore' });
    const exited = new Promise<number | null>((r) => background!.once('exit', r));
    for (let i = 0; i < 600 && !fs.existsSync(waiting); i++) await new Promise((r) => setTimeout(r, 50));
    expect(fs.existsSync(waiting)).toBe(true);
    expect(journal().length).toBeGreaterThan(0);
    for (let i = 0; i < 2; i++) {
      const mid = tsalt('probe', { test: true });
      expect(mid.queries).toBe(1);
      // dpkg-query's truth (2.0 unpacked, being configured: not installed), not 1.0 from before
      expect(mid.results[0]).toMatchObject({ result: true, changes: {} });
    }
    expect(fs.readdirSync(cacheDir)).toHaveLength(files);
    fs.writeFileSync(go, '');
    expect(await exited).toBe(0);
    expect(journal()).toEqual([]);
    const done = tsalt('probe', { test: true });
    expect(done.queries).toBe(1);
    expect(done.results[0]).toMatchObject({ result: null, changes: { [PKG]: { old: '2.0', new: '' } } });
    expect(tsalt('probe', { test: true }).queries).toBe(0);
  });

  it('a corrupt cache file is ignored (said with TSALT_DEBUG=1), the answer is right, the file replaced', () => {
    for (const f of fs.readdirSync(cacheDir)) {
      const file = path.join(cacheDir, f);
      fs.writeFileSync(file, fs.readFileSync(file, 'utf8').replaceAll('2.0', '9.9'));
    }
    const r = tsalt('probe', { test: true, debug: true });
    expect(r.queries).toBe(1);
    expect(r.err).toMatch(/ignoring package-database cache file .*: its content does not match its checksum; computing it again/);
    expect(r.results[0]).toMatchObject({ result: null, changes: { [PKG]: { old: '2.0', new: '' } } });
    const again = tsalt('probe', { test: true, debug: true });
    expect(again.queries).toBe(0);
    expect(again.err).not.toMatch(/ignoring package-database cache/);
  });
});
