/**
 * pkg states through the real apt/dpkg of this machine, with small packages from Debian's
 * archive (`hello`, `sl`: no dependencies beyond what a base system has). Needs the archive.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, execOk } from '../../engine/run/exec.js';
import { runState, tempDir, type HarnessOptions } from '../helpers/harness.js';

const grains = { os_family: 'Debian', id: 'testhost' };
// bash-completion: no dependencies, an epoch in its version, conffiles that remove leaves behind
const PKGS = ['hello', 'sl', 'bash-completion'];
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

async function dpkgVersion(name: string): Promise<string | undefined> {
  const r = await exec(['dpkg-query', '-W', '-f=${db:Status-Abbrev}|${Version}', name]);
  const [status, version] = r.stdout.split('|');
  return r.code === 0 && status?.[1] === 'i' ? version : undefined;
}

async function purgeAll(): Promise<void> {
  await execOk(['apt-mark', 'unhold', ...PKGS]);
  await execOk(['apt-get', '-q', '-y', '-o', 'DPkg::Lock::Timeout=600', 'purge', ...PKGS], { env });
}

async function candidate(name: string): Promise<string> {
  const r = await execOk(['apt-cache', 'policy', name]);
  return /Candidate: (\S+)/.exec(r.stdout)![1]!;
}

async function converge(fun: string, args: Record<string, unknown>, o: HarnessOptions = {}) {
  const predicted = await runState(fun, args, { grains, ...o, test: true });
  const real = await runState(fun, args, { grains, ...o });
  const again = await runState(fun, args, { grains, ...o });
  expect(predicted.result, predicted.comment).toBe(null);
  expect(real.result, real.comment).toBe(true);
  expect(predicted.changes).toEqual(real.changes);
  expect(again.result, again.comment).toBe(true);
  expect(again.changes).toEqual({});
  return { predicted, real, again };
}

let hello: string;
let sl: string;

beforeAll(async () => {
  await purgeAll();
  hello = await candidate('hello');
  sl = await candidate('sl');
});

afterAll(purgeAll);

describe('pkg with apt', () => {
  it('installs a package; test mode predicts the exact changes', async () => {
    const { real, again } = await converge('pkg.installed', { name: 'hello' });
    expect(real.changes).toEqual({ hello: { old: '', new: hello } });
    expect(real.comment).toBe('The following packages were installed/updated: hello.');
    expect(again.comment).toBe('Package hello is already installed');
    expect(await dpkgVersion('hello')).toBe(hello);
  });

  it('an installed version satisfies exact and comparison specs', async () => {
    for (const version of [hello, `>=${hello}`, `${hello.slice(0, 2)}*`]) {
      const r = await runState('pkg.installed', { name: 'hello', version }, { grains });
      expect(r.result, r.comment).toBe(true);
      expect(r.changes).toEqual({});
    }
  });

  it("fails with apt's message for a missing package and installs nothing", async () => {
    for (const test of [true, false]) {
      const r = await runState('pkg.installed', { name: 'x', pkgs: ['sl', 'tsalt-no-such-package'] }, { grains, test });
      expect(r.result).toBe(false);
      expect(r.comment).toContain('were not found');
      expect(r.comment).toContain('E: Unable to locate package tsalt-no-such-package');
      expect(r.changes).toEqual({});
    }
    expect(await dpkgVersion('sl')).toBeUndefined();
    const v = await runState('pkg.installed', { name: 'hello', version: '0.0.1-1' }, { grains });
    expect(v.result).toBe(false);
    expect(v.comment).toContain("Version '0.0.1-1' for 'hello' was not found");
  });

  it('holds and unholds', async () => {
    const held = await converge('pkg.installed', { name: 'hello', hold: true });
    expect(held.real.changes).toEqual({ hello: { old: '', new: 'hold' } });
    expect((await execOk(['apt-mark', 'showhold'])).stdout.split('\n')).toContain('hello');
    const unheld = await converge('pkg.installed', { name: 'hello', hold: false });
    expect(unheld.real.changes).toEqual({ hello: { old: 'hold', new: '' } });
  });

  it('pkg.latest installs the candidate of a pkgs list in one transaction', async () => {
    const { real, again } = await converge('pkg.latest', { name: 'x', pkgs: ['hello', 'sl'] });
    expect(real.changes).toEqual({ sl: { old: '', new: sl } });
    expect(real.comment).toContain('successfully installed/upgraded: sl.');
    expect(again.comment).toBe('All packages are up-to-date (hello, sl).');
  });

  it('removes, then purges', async () => {
    const rm = await converge('pkg.removed', { name: 'hello' });
    expect(rm.real.changes).toEqual({ hello: { old: hello, new: '' } });
    expect(rm.again.comment).toBe('All specified packages are already absent');
    const pg = await converge('pkg.purged', { name: 'x', pkgs: ['sl', 'hello'] });
    expect(pg.real.changes).toEqual({ sl: { old: sl, new: '' } });
    expect(await dpkgVersion('sl')).toBeUndefined();
  });

  it('purges what remove left behind (config files)', async () => {
    const name = 'bash-completion';
    await converge('pkg.installed', { name, version: '2.11*' }); // epoch ignored when not asked for
    const version = await dpkgVersion(name);
    expect(version).toMatch(/^1:2\.11/);
    const rm = await converge('pkg.removed', { name });
    expect(rm.real.changes).toEqual({ [name]: { old: version, new: '' } });
    expect(fs.existsSync('/etc/bash_completion')).toBe(true);
    const pg = await converge('pkg.purged', { name });
    expect(pg.real.changes).toEqual({ [name]: { old: version, new: '' } });
    expect(fs.existsSync('/etc/bash_completion')).toBe(false);
  });

  it('rejects a bad version spec before touching anything', async () => {
    const r = await runState('pkg.installed', { name: 'hello', version: '>=<1' }, { grains });
    expect(r.result).toBe(false);
    expect(r.comment).toBe("Invalid version specification '>=<1' for package 'hello'.");
  });
});

describe('pkgrepo with apt sources (file in a temp dir: the machine keeps its own)', () => {
  const dir = tempDir('tsalt-aptsrc-');
  const tree = tempDir('tsalt-tree-');
  const file = path.join(dir, 'tsalt.list');
  const keyring = path.join(dir, 'tsalt.asc');
  const line = `deb [signed-by=${keyring}] http://deb.example.invalid/debian bookworm main`;
  const key = '-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnot a real key\n-----END PGP PUBLIC KEY BLOCK-----\n';
  fs.writeFileSync(path.join(tree, 'repo.asc'), key);
  const opts = { grains, treeDir: tree };

  it('adds the source line and its key, then leaves them alone', async () => {
    const args = { name: line, file, key_url: 'salt://repo.asc', refresh: false };
    const t = await runState('pkgrepo.managed', args, { ...opts, test: true });
    const r = await runState('pkgrepo.managed', args, opts);
    const again = await runState('pkgrepo.managed', args, opts);
    expect(t.result).toBe(null);
    expect(r.result, r.comment).toBe(true);
    expect(r.changes).toEqual({ repo: { old: '', new: line }, key_url: { old: '', new: 'salt://repo.asc' } });
    expect(Object.keys(t.changes)).toEqual(Object.keys(r.changes));
    expect(again.changes).toEqual({});
    expect(fs.readFileSync(file, 'utf8')).toBe(`${line}\n`);
    expect(fs.readFileSync(keyring, 'utf8')).toBe(key);
  });

  it('disables with enabled: false, cleans the file with clean_file', async () => {
    fs.appendFileSync(file, 'deb http://other.example.invalid/debian bookworm main\n');
    const off = await runState('pkgrepo.managed', { name: line, file, enabled: false, refresh: false }, opts);
    expect(off.changes).toEqual({ repo: { old: line, new: `# ${line}` } });
    expect(fs.readFileSync(file, 'utf8')).toBe(`# ${line}\ndeb http://other.example.invalid/debian bookworm main\n`);
    const clean = await runState('pkgrepo.managed', { name: line, file, clean_file: true, refresh: false }, opts);
    expect(clean.result, clean.comment).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${line}\n`);
    const again = await runState('pkgrepo.managed', { name: line, file, clean_file: true, refresh: false }, opts);
    expect(again.changes).toEqual({});
  });

  it('pkgrepo.absent removes the line (and the emptied file)', async () => {
    const r = await runState('pkgrepo.absent', { name: line, file }, opts);
    expect(r.result, r.comment).toBe(true);
    expect(r.changes).toEqual({ repo: line });
    expect(fs.existsSync(file)).toBe(false);
    const again = await runState('pkgrepo.absent', { name: line, file }, opts);
    expect(again.changes).toEqual({});
  });

  it('a key_url that cannot be read fails without writing anything', async () => {
    const f2 = path.join(dir, 'other.list');
    const r = await runState('pkgrepo.managed', { name: line, file: f2, key_url: 'salt://missing.asc', refresh: false }, opts);
    expect(r.result).toBe(false);
    expect(r.comment).toContain("Failed to fetch key_url 'salt://missing.asc'");
    expect(fs.existsSync(f2)).toBe(false);
  });
});

describe('pkg.installed sources: package files with apt', () => {
  // names unique to this test; the dep package pulls `sl` from the archive (apt resolves it)
  const SRC = 'tsalt-test-src';
  const DEP = 'tsalt-test-dep';
  const work = tempDir('tsalt-debsrc-');
  const tree = path.join(work, 'tree');
  const www = path.join(work, 'www');
  const opts: HarnessOptions = { treeDir: tree, opts: { cachedir: path.join(work, 'cache') } };
  let server: http.Server;
  let base: string;
  const hits = new Map<string, number>();

  /** A tiny .deb built with the real dpkg-deb: one file under /usr/share/doc/<name>/. */
  async function buildDeb(name: string, version: string, depends?: string): Promise<string> {
    const root = path.join(work, 'build', `${name}-${version}`);
    fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
    fs.mkdirSync(path.join(root, 'usr/share/doc', name), { recursive: true });
    fs.writeFileSync(
      path.join(root, 'DEBIAN/control'),
      [
        `Package: ${name}`,
        `Version: ${version}`,
        'Architecture: all',
        'Maintainer: tsalt tests <root@localhost>',
        ...(depends ? [`Depends: ${depends}`] : []),
        'Description: tsalt test package',
        ' Installed from a package file by the tsalt test suite.',
        '',
      ].join('\n'),
    );
    fs.writeFileSync(path.join(root, 'usr/share/doc', name, 'VERSION'), `${version}\n`);
    const out = path.join(work, `${name}_${version}_all.deb`);
    await execOk(['dpkg-deb', '--build', '--root-owner-group', root, out]);
    return out;
  }

  const purgeTest = () => execOk(['dpkg', '--purge', SRC, DEP], { env });

  beforeAll(async () => {
    await purgeTest();
    fs.mkdirSync(path.join(tree, 'pkgs'), { recursive: true });
    fs.mkdirSync(www);
    for (const [name, version, dep] of [
      [SRC, '1.0-1'],
      [SRC, '2.0-1'],
      [DEP, '1:0.5-1', 'sl'],
    ] as const) {
      const deb = await buildDeb(name, version, dep);
      fs.copyFileSync(deb, path.join(tree, 'pkgs', path.basename(deb)));
      fs.copyFileSync(deb, path.join(www, path.basename(deb)));
    }
    fs.writeFileSync(path.join(tree, 'pkgs/README.txt'), 'not a package\n');
    server = http.createServer((req, res) => {
      const url = req.url ?? '';
      hits.set(url, (hits.get(url) ?? 0) + 1);
      // `/get?id=dep`: a download URL whose last segment does not end in .deb
      const file = url === '/get?id=dep' ? `${DEP}_1:0.5-1_all.deb` : path.basename(url);
      const f = path.join(www, file);
      if (fs.existsSync(f)) res.writeHead(200).end(fs.readFileSync(f));
      else res.writeHead(404).end('not found');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await purgeTest();
    await new Promise((r) => server.close(r));
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('a file holding another package than its name fails, and nothing is installed', async () => {
    const sources = [{ [SRC]: `salt://pkgs/${SRC}_1.0-1_all.deb` }, { 'tsalt-test-wrong': `salt://pkgs/${SRC}_2.0-1_all.deb` }];
    for (const test of [true, false]) {
      const r = await runState('pkg.installed', { name: 'files', sources }, { grains, ...opts, test });
      expect(r.result).toBe(false);
      expect(r.comment).toContain(`salt://pkgs/${SRC}_2.0-1_all.deb holds package '${SRC}', not 'tsalt-test-wrong'`);
      expect(r.changes).toEqual({});
    }
    expect(await dpkgVersion(SRC)).toBeUndefined();
  });

  it('installs from a salt:// file; test mode predicts the version inside the file', async () => {
    const args = { name: 'files', sources: [{ [SRC]: `salt://pkgs/${SRC}_1.0-1_all.deb` }] };
    const { predicted, real, again } = await converge('pkg.installed', args, opts);
    expect(predicted.changes).toEqual({ [SRC]: { old: '', new: '1.0-1' } });
    expect(predicted.comment).toBe(`The following packages would be installed/updated: ${SRC}`);
    expect(real.comment).toBe(`The following packages were installed/updated: ${SRC}.`);
    expect(again.comment).toBe('All specified packages are already installed');
    expect(await dpkgVersion(SRC)).toBe('1.0-1');
    expect(fs.readFileSync(`/usr/share/doc/${SRC}/VERSION`, 'utf8')).toBe('1.0-1\n');
  });

  it('upgrades from http and installs a second file with its dependency, in one transaction, fetching once per run', async () => {
    const sl = await candidate('sl');
    expect(await dpkgVersion('sl')).toBeUndefined();
    hits.clear();
    const args = {
      name: 'files',
      sources: [{ [SRC]: `${base}/${SRC}_2.0-1_all.deb` }, { [DEP]: `${base}/get?id=dep` }],
    };
    const { real, again } = await converge('pkg.installed', args, opts);
    expect(real.changes).toEqual({
      [SRC]: { old: '1.0-1', new: '2.0-1' },
      [DEP]: { old: '', new: '1:0.5-1' },
      sl: { old: '', new: sl },
    });
    expect(real.comment).toBe('2 targeted packages were installed/updated.');
    expect(again.comment).toBe('All specified packages are already installed');
    expect(await dpkgVersion(SRC)).toBe('2.0-1');
    expect(await dpkgVersion(DEP)).toBe('1:0.5-1');
    // three runs (test, real, again), one download each: apply installs the file check fetched
    expect(Object.fromEntries(hits)).toEqual({ [`/${SRC}_2.0-1_all.deb`]: 3, '/get?id=dep': 3 });
  });

  it('an older file (local path) downgrades; a file already installed (file://, epoch in its version) is left alone', async () => {
    const local = path.join(www, `${SRC}_1.0-1_all.deb`);
    const args = { name: 'files', sources: [{ [SRC]: local }, { [DEP]: `file://${www}/${DEP}_1:0.5-1_all.deb` }] };
    const { real } = await converge('pkg.installed', args, opts);
    expect(real.changes).toEqual({ [SRC]: { old: '2.0-1', new: '1.0-1' } });
    expect(real.comment).toBe(`The following packages were installed/updated: ${SRC}. The following packages were already installed: ${DEP}.`);
    // `version` is ignored with sources, as Salt documents: the file's own version counts
    const again = await runState('pkg.installed', { ...args, version: '9.9' }, { grains, ...opts });
    expect([again.result, again.changes]).toEqual([true, {}]);
  });

  it('refuses bad arguments and unreadable files before installing anything', async () => {
    const file = `salt://pkgs/${SRC}_2.0-1_all.deb`;
    const cases: Array<[Record<string, unknown>, string | RegExp]> = [
      [{ sources: [{ [SRC]: file }], pkgs: ['sl'] }, 'Only one of "pkgs" and "sources" is permitted.'],
      [{ sources: [{ [SRC]: 'pkgs/x.deb' }] }, /Path pkgs\/x\.deb is either not absolute or an invalid protocol/],
      [{ sources: [{ [SRC]: 'ftp://example.invalid/x.deb' }] }, /Unsupported source ftp:/],
      [{ sources: [{ [SRC]: 'salt://pkgs/missing.deb' }] }, /Unable to cache salt:\/\/pkgs\/missing\.deb/],
      [{ sources: [{ [SRC]: `${base}/missing.deb` }] }, /Failed to fetch .*HTTP 404/],
      [{ sources: [{ [SRC]: 'salt://pkgs/README.txt' }] }, /Failed to parse metadata for salt:\/\/pkgs\/README\.txt: .*not a Debian format archive/],
      [{ sources: [{ [SRC]: file }, { [SRC]: file }] }, `Package '${SRC}' is listed more than once in sources`],
    ];
    for (const [extra, message] of cases) {
      for (const test of [true, false]) {
        const r = await runState('pkg.installed', { name: 'files', ...extra }, { grains, ...opts, test });
        expect(r.result, JSON.stringify(extra)).toBe(false);
        expect(r.comment).toMatch(message);
        expect(r.changes).toEqual({});
      }
    }
    // a malformed list is an argument error, caught before the state runs
    await expect(runState('pkg.installed', { name: 'files', sources: [{ a: file, b: file }] }, { grains, ...opts })).rejects.toThrow(
      /maps one package name to its file/,
    );
    expect(await dpkgVersion(SRC)).toBe('1.0-1');
    expect(await dpkgVersion('sl')).toBeDefined();
  });
});
