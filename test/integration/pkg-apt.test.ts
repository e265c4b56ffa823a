/**
 * pkg states through the real apt/dpkg of this machine, with small packages from Debian's
 * archive (`hello`, `sl`: no dependencies beyond what a base system has). Needs the archive.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, execOk } from '../../agent/run/exec.js';
import { runState, tempDir } from '../helpers/harness.js';

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

async function converge(fun: string, args: Record<string, unknown>) {
  const predicted = await runState(fun, args, { grains, test: true });
  const real = await runState(fun, args, { grains });
  const again = await runState(fun, args, { grains });
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
