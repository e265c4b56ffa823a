/**
 * bin/tsalt, the `tsalt` command: starts from the V8 startup snapshot (scripts/snapshot.mjs)
 * when it was built by this node from this bundle, else runs bin/tsalt.js. Every case runs real
 * commands on a copy of the build and compares them with `node bin/tsalt.js`: the snapshot is
 * only a faster start, never another behaviour; a missing, stale or damaged one is never an error.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { writeTree } from '../helpers/tree.js';

const REPO = path.resolve(import.meta.dirname, '../..');

let work: string;
let install: string;

/** A copy of what the command needs (bin/, dist/bundle/), so cases can break it freely. */
function copyInstall(to: string): void {
  fs.mkdirSync(path.join(to, 'dist/bundle'), { recursive: true });
  fs.cpSync(path.join(REPO, 'bin'), path.join(to, 'bin'), { recursive: true });
  for (const f of ['tsalt.cjs', 'tsalt.cjs.v8cache']) fs.copyFileSync(path.join(REPO, 'dist/bundle', f), path.join(to, 'dist/bundle', f));
  const r = spawnSync(process.execPath, [path.join(REPO, 'scripts/snapshot.mjs'), '--bundle-dir', path.join(to, 'dist/bundle')], { encoding: 'utf8' });
  if (r.status !== 0 || r.stderr) throw new Error(`snapshot build: ${r.stderr}`);
}

interface Run {
  code: number | null;
  out: string;
  err: string;
  /** the debug line the snapshot's main prints (TSALT_DEBUG=1), or undefined: bin/tsalt.js ran */
  snapshot?: string;
}

function run(argv: string[], env: Record<string, string | undefined> = {}): Run {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: undefined, TSALT_DEBUG: '1', ...env } });
  const line = /^tsalt: debug: started from the startup snapshot (.*)$/m.exec(r.stderr);
  return { code: r.status, out: r.stdout, err: r.stderr.replace(/^tsalt: debug: .*\n/gm, ''), snapshot: line?.[1] };
}
const command = (dir: string, args: string[], env?: Record<string, string | undefined>) => run([path.join(dir, 'bin/tsalt'), ...args], env);
const plain = (dir: string, args: string[], env?: Record<string, string | undefined>) => run([process.execPath, path.join(dir, 'bin/tsalt.js'), ...args], env);

/** --json apply output without what differs run to run (start times, durations, pids). */
function stable(out: string): unknown {
  const j = JSON.parse(out) as { results: Record<string, unknown>[]; duration_ms?: number };
  delete j.duration_ms;
  for (const r of j.results) {
    delete r.start;
    delete r.duration_ms;
    delete (r.changes as { pid?: number }).pid;
  }
  return j;
}

const tree = writeTree({
  'top.sls': "base:\n  '*':\n    - site\n",
  'site.sls': [
    "{% set root = pillar['root'] %}",
    'conf:',
    '  file.managed:',
    '    - name: {{ root }}/app.conf',
    '    - source: salt://app.conf.j2',
    '    - template: jinja',
    '    - makedirs: True',
    'greet:',
    '  cmd.run:',
    '    - name: echo "from $LAUNCHER_CASE in {{ grains[\'id\'] }}"',
    '    - require:',
    '      - file: conf',
    'done:',
    '  test.nop: []',
    '',
  ].join('\n'),
  'app.conf.j2': 'port = {{ pillar["port"] }}\nhost = {{ grains["id"] }}\n',
  'broken.sls': 'x:\n  test.nop:\n    - require:\n      - y\ny:\n  test.nop:\n    - require:\n      - x\n',
});

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-launcher-'));
  install = path.join(work, 'install');
  copyInstall(install);
});
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

function applyArgs(root: string, extra: string[] = []): string[] {
  return ['local', 'apply', '--states', tree, '--pillar', '/nonexistent', '--grains-file', '/nonexistent', '--id', 'box1', '--json', '--no-color', `pillar={"root": "${root}", "port": 8080}`, ...extra];
}

describe('bin/tsalt with a startup snapshot that fits', () => {
  it('starts from the snapshot and applies exactly as bin/tsalt.js does (files, commands, environment, exit code)', () => {
    const rootA = path.join(work, 'rootA');
    const rootB = path.join(work, 'rootB');
    const a = command(install, applyArgs(rootA), { LAUNCHER_CASE: 'snapshot-run' });
    expect(a.snapshot).toContain(`(bundle ${path.join(install, 'dist/bundle/tsalt.cjs')})`);
    const b = plain(install, applyArgs(rootB), { LAUNCHER_CASE: 'snapshot-run' });
    expect(b.snapshot).toBeUndefined();
    expect([a.code, a.err]).toEqual([0, '']);
    expect(b.code).toBe(0);
    const ja = stable(a.out.replaceAll(rootA, 'ROOT'));
    expect(ja).toEqual(stable(b.out.replaceAll(rootB, 'ROOT')));
    // the environment and the pillar are this run's, not the build's
    expect(JSON.stringify(ja)).toContain('from snapshot-run in box1');
    expect(fs.readFileSync(path.join(rootA, 'app.conf'), 'utf8')).toBe('port = 8080\nhost = box1\n');
  });

  it('gives the same output and exit code for help, version, errors and a tree that does not compile', () => {
    for (const args of [['--version'], ['--help'], [], ['nosuch'], ['local', '--help'], ['local', 'frobnicate'], ['local', 'apply', 'broken', '--states', tree, '--id', 'x', '--pillar', '/nonexistent', '--grains-file', '/nonexistent']]) {
      const a = command(install, args);
      const b = plain(install, args);
      expect(a.snapshot, args.join(' ')).toBeDefined();
      expect({ code: a.code, out: a.out, err: a.err }, args.join(' ')).toEqual({ code: b.code, out: b.out, err: b.err });
    }
  });

  it('is used through a symlink (npm bin, /usr/bin/tsalt) and after the installation moved', () => {
    const bindir = path.join(work, 'usrbin');
    fs.mkdirSync(bindir);
    fs.symlinkSync(path.join(install, 'bin/tsalt'), path.join(bindir, 'tsalt'));
    const viaLink = run([path.join(bindir, 'tsalt'), '--version']);
    expect([viaLink.code, viaLink.out]).toEqual([0, 'tsalt 0.1.0\n']);
    expect(viaLink.snapshot).toContain(`(bundle ${path.join(install, 'dist/bundle/tsalt.cjs')})`);
    // a moved installation (rename: its files keep their identity) still fits the stamp; the
    // bundle the snapshot then reports (its import.meta.url, its require) is the new place
    const moved = path.join(work, 'moved');
    fs.renameSync(install, moved);
    try {
      const r = command(moved, applyArgs(path.join(work, 'rootM')), { LAUNCHER_CASE: 'moved' });
      expect(r.snapshot).toContain(`(bundle ${path.join(moved, 'dist/bundle/tsalt.cjs')})`);
      expect(r.code).toBe(0);
      expect(r.out).toContain('from moved in box1');
    } finally {
      fs.renameSync(moved, install);
    }
  });
});

describe('bin/tsalt without a fitting snapshot runs bin/tsalt.js, never fails', () => {
  /** a fresh copy of the installation for a case to break */
  function fresh(name: string): string {
    const dir = path.join(work, name);
    copyInstall(dir);
    return dir;
  }
  function expectPlainAndWorking(dir: string, env?: Record<string, string | undefined>): void {
    const r = command(dir, applyArgs(path.join(dir, 'root')), { LAUNCHER_CASE: 'fallback', ...env });
    expect(r.snapshot).toBeUndefined();
    expect(r.err).not.toMatch(/snapshot/i);
    expect(r.code).toBe(0);
    expect(r.out).toContain('from fallback in box1');
  }

  it('no snapshot at all (a build that could not make one)', () => {
    const dir = fresh('absent');
    fs.rmSync(path.join(dir, 'dist/bundle/tsalt.blob'));
    fs.rmSync(path.join(dir, 'dist/bundle/tsalt.blob.stamp'));
    expectPlainAndWorking(dir);
    // a blob without its stamp (the build stopped between the two) is not used either
    const dir2 = fresh('no-stamp');
    fs.rmSync(path.join(dir2, 'dist/bundle/tsalt.blob.stamp'));
    expectPlainAndWorking(dir2);
  });

  it('another node binary first in PATH (an upgraded or other Node.js; it would refuse the blob)', () => {
    const dir = fresh('other-node');
    const nodeDir = path.join(work, 'other-node-bin');
    fs.mkdirSync(nodeDir);
    fs.copyFileSync(process.execPath, path.join(nodeDir, 'node'));
    fs.chmodSync(path.join(nodeDir, 'node'), 0o755);
    // the same binary under another identity stands for any other node: the stamp does not fit
    expectPlainAndWorking(dir, { PATH: `${nodeDir}:${process.env.PATH}` });
  });

  it('a blob Node.js would refuse (written by another version), a damaged blob, a rebuilt bundle', () => {
    // the version in the blob's header changed: node itself would print "Failed to load the
    // startup snapshot" and exit 14; bin/tsalt never gets there
    const other = fresh('other-version');
    const blobFile = path.join(other, 'dist/bundle/tsalt.blob');
    const blob = fs.readFileSync(blobFile);
    const at = blob.indexOf(process.versions.node);
    expect(at).toBeGreaterThan(0);
    blob.write('0'.repeat(process.versions.node.length), at, 'latin1');
    fs.writeFileSync(`${blobFile}.new`, blob);
    fs.renameSync(`${blobFile}.new`, blobFile);
    const refused = spawnSync(process.execPath, ['--snapshot-blob', blobFile, path.join(other, 'bin/tsalt'), '--version'], { encoding: 'utf8' });
    expect(refused.status).toBe(14); // what running it anyway would do
    expectPlainAndWorking(other);

    // cut short (node would crash deserialising it)
    const damaged = fresh('damaged');
    fs.truncateSync(path.join(damaged, 'dist/bundle/tsalt.blob'), 4096);
    expectPlainAndWorking(damaged);

    // the bundle rebuilt without the snapshot: the blob holds the old code
    const rebuilt = fresh('rebuilt');
    const bundle = path.join(rebuilt, 'dist/bundle/tsalt.cjs');
    fs.appendFileSync(bundle, '');
    fs.utimesSync(bundle, new Date(), new Date(Date.now() + 5000));
    expectPlainAndWorking(rebuilt);
  });

  it('NODE_OPTIONS set (V8 flags in it would make node refuse the blob)', () => {
    expectPlainAndWorking(install, { NODE_OPTIONS: '--max-semi-space-size=4' });
  });

  it('npm run build makes the snapshot, and a later build replaces it', () => {
    // scripts/snapshot.mjs is what the build runs (scripts/bundle.mjs); a second run writes a new
    // blob and stamp that fit, the old ones are gone
    const dir = fresh('rebuild');
    const stamp = path.join(dir, 'dist/bundle/tsalt.blob.stamp');
    const before = fs.readFileSync(stamp, 'utf8');
    execFileSync(process.execPath, [path.join(REPO, 'scripts/snapshot.mjs'), '--bundle-dir', path.join(dir, 'dist/bundle')]);
    expect(fs.readFileSync(stamp, 'utf8')).not.toBe(before);
    expect(command(dir, ['--version']).snapshot).toBeDefined();
    expect(fs.readdirSync(path.join(dir, 'dist/bundle')).sort()).toEqual(['tsalt.blob', 'tsalt.blob.stamp', 'tsalt.cjs', 'tsalt.cjs.v8cache']);
  });
});
