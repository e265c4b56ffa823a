// npm.installed / npm.removed with the real npm and the registry this machine reaches.
import { afterAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { exec, execOk } from '../../engine/run/exec.js';
import { harnessBase, runState, tempDir } from '../helpers/harness.js';
import { splitSpec } from '../../engine/states/npm.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanup.reverse()) await c();
});

async function converge(fun: string, args: Record<string, unknown>) {
  const t = await runState(fun, args, { test: true });
  expect(t.result, t.comment).toBeNull();
  const r = await runState(fun, args);
  expect(r.result, r.comment).toBe(true);
  expect(Object.keys(r.changes).sort()).toEqual(Object.keys(t.changes).sort());
  expect(r.changes).toEqual(t.changes);
  const again = await runState(fun, args);
  expect(again.result, again.comment).toBe(true);
  expect(again.changes).toEqual({});
  return r;
}

function version(dir: string, pkg: string): string | undefined {
  const f = path.join(dir, 'node_modules', pkg, 'package.json');
  return fs.existsSync(f) ? (JSON.parse(fs.readFileSync(f, 'utf8')) as { version: string }).version : undefined;
}

describe('splitSpec', () => {
  it('splits names, versions and scoped names', () => {
    expect(splitSpec('is-number')).toEqual(['is-number', undefined]);
    expect(splitSpec('is-number@7.0.0')).toEqual(['is-number', '7.0.0']);
    expect(splitSpec('@types/node')).toEqual(['@types/node', undefined]);
    expect(splitSpec('@types/node@20.1.0')).toEqual(['@types/node', '20.1.0']);
  });
});

describe('npm.installed / npm.removed', () => {
  const dir = tempDir('tsalt-npm-');
  cleanup.push(async () => fs.rmSync(dir, { recursive: true, force: true }));

  it('installs a pinned package into a directory, then is a no-op', async () => {
    const r = await converge('npm.installed', { name: 'is-number@7.0.0', dir });
    expect(r.changes).toEqual({ old: [], new: ['is-number@7.0.0'] });
    expect(version(dir, 'is-number')).toBe('7.0.0');
    // an unpinned name is satisfied by what is there
    const any = await runState('npm.installed', { name: 'is-number', dir });
    expect(any).toMatchObject({ result: true, changes: {} });
    expect(any.comment).toContain('satisfied by is-number@7.0.0');
  });

  it('changes the version when a different one is pinned', async () => {
    await converge('npm.installed', { name: 'ignored', pkgs: ['is-number@6.0.0'], dir });
    expect(version(dir, 'is-number')).toBe('6.0.0');
  });

  it('shares one npm ls per directory per run', async () => {
    const base = harnessBase();
    const a = await runState('npm.installed', { name: 'is-number@6.0.0', dir }, { base });
    // the directory changes behind the run's back: the memoised answer is still used
    fs.rmSync(path.join(dir, 'node_modules', 'is-number'), { recursive: true });
    const b = await runState('npm.installed', { name: 'is-number@6.0.0', dir }, { base });
    expect(a.changes).toEqual({});
    expect(b.changes).toEqual({});
    // a fresh run sees the truth and repairs it
    await converge('npm.installed', { name: 'is-number@6.0.0', dir });
  });

  it('removes it, then is a no-op', async () => {
    const r = await converge('npm.removed', { name: 'is-number', dir });
    expect(r.changes).toEqual({ 'is-number': 'Removed' });
    expect(version(dir, 'is-number')).toBeUndefined();
  });

  it("fails with npm's message for a package that does not exist, installing nothing", async () => {
    const d = tempDir('tsalt-npm-bad-');
    cleanup.push(async () => fs.rmSync(d, { recursive: true, force: true }));
    const r = await runState('npm.installed', { name: 'x', pkgs: ['is-number@7.0.0', 'no-such-pkg-tsalt-zzz@1.0.0'], dir: d });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/404 Not Found/);
    expect(r.comment).toContain('no-such-pkg-tsalt-zzz');
    expect(version(d, 'is-number')).toBeUndefined();
  });

  it('fails clearly when dir does not exist', async () => {
    const r = await runState('npm.installed', { name: 'is-number', dir: '/nonexistent/tsalt-npm' });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('/nonexistent/tsalt-npm does not exist');
  });

  it('runs npm as user', async () => {
    const user = `tsn${randomBytes(3).toString('hex')}`;
    await execOk(['useradd', '-m', '-s', '/bin/sh', user]);
    cleanup.push(() => exec(['userdel', '-r', user]));
    const home = (await execOk(['getent', 'passwd', user])).stdout.split(':')[5]!;
    const d = path.join(home, 'app');
    await execOk(['install', '-d', '-o', user, '-g', user, d]);
    await converge('npm.installed', { name: 'is-number@7.0.0', dir: d, user });
    const st = fs.statSync(path.join(d, 'node_modules', 'is-number', 'package.json'));
    const uid = Number((await execOk(['id', '-u', user])).stdout.trim());
    expect(st.uid).toBe(uid);
  });
});
