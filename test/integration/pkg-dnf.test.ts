/**
 * pkg/pkgrepo through the real dnf and rpm, into a temporary install root: tiny RPMs built with
 * rpmbuild, served from a local createrepo_c repository. No network, host untouched.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from '../../engine/run/exec.js';
import { runState, tempDir } from '../helpers/harness.js';
import { buildRpm, makeRepo } from '../fixtures/rpm/build.js';

let root: string;
let repo: string;
let grains: Record<string, unknown>;
let v1: string;
let v2: string;
let extraRpm: string;
let weakRpm: string;

async function rpmVersion(name: string): Promise<string | undefined> {
  const r = await exec(['rpm', '--root', root, '-q', '--qf', '%{VERSION}-%{RELEASE}', name]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** test run predicts (result null, same change keys), real run changes, rerun is a no-op */
async function converge(fun: string, args: Record<string, unknown>) {
  const predicted = await runState(fun, args, { grains, test: true });
  const real = await runState(fun, args, { grains });
  const again = await runState(fun, args, { grains });
  expect(predicted.result, predicted.comment).toBe(null);
  expect(real.result, real.comment).toBe(true);
  expect(Object.keys(predicted.changes).sort()).toEqual(Object.keys(real.changes).sort());
  expect(again.result, again.comment).toBe(true);
  expect(again.changes).toEqual({});
  return { predicted, real, again };
}

beforeAll(async () => {
  root = tempDir('tsalt-dnfroot-');
  repo = tempDir('tsalt-rpmrepo-');
  grains = { os_family: 'RedHat', pkg_installroot: root, pkg_releasever: '9', id: 'testhost' };
  v1 = await buildRpm({ name: 'tsalt-hello', version: '1.0' });
  extraRpm = await buildRpm({ name: 'tsalt-extra', version: '0.5', release: '3' });
  v2 = await buildRpm({ name: 'tsalt-hello', version: '2.0' });
  weakRpm = await buildRpm({ name: 'tsalt-weak', version: '1.0', recommends: 'tsalt-extra' });
  await makeRepo(repo, [v1, extraRpm, weakRpm]);
});

afterAll(() => {
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(repo, { recursive: true, force: true });
});

describe('pkgrepo (yum repo file in the install root)', () => {
  it('manages the repo file, then leaves it alone', async () => {
    const args = { name: 'tsalt-local', humanname: 'tsalt local', baseurl: `file://${repo}`, gpgcheck: false };
    const { real } = await converge('pkgrepo.managed', args);
    expect(real.changes).toMatchObject({ baseurl: { old: '', new: `file://${repo}` }, gpgcheck: { old: '', new: '0' } });
    const text = fs.readFileSync(path.join(root, 'etc/yum.repos.d/tsalt-local.repo'), 'utf8');
    expect(text).toContain('[tsalt-local]\nname=tsalt local\nbaseurl=file://');
    expect(text).toContain('enabled=1\ngpgcheck=0\n');
  });

  it('edits one section of a shared file and keeps the others', async () => {
    const file = path.join(root, 'etc/yum.repos.d/shared.repo');
    fs.writeFileSync(file, '# local notes\n[other]\nname=Other\nbaseurl=http://example.invalid/other\nenabled=0\n\n[mine]\nname=Mine\nbaseurl=http://example.invalid/old\nenabled=0\n');
    const { real } = await converge('pkgrepo.managed', { name: 'mine', baseurl: 'http://example.invalid/new', enabled: 0, refresh: false });
    expect(real.changes).toEqual({ baseurl: { old: 'http://example.invalid/old', new: 'http://example.invalid/new' } });
    expect(fs.readFileSync(file, 'utf8')).toBe(
      '# local notes\n[other]\nname=Other\nbaseurl=http://example.invalid/other\nenabled=0\n\n[mine]\nname=Mine\nbaseurl=http://example.invalid/new\nenabled=0\n',
    );
    await converge('pkgrepo.absent', { name: 'mine' });
    expect(fs.readFileSync(file, 'utf8')).not.toContain('[mine]');
    await converge('pkgrepo.absent', { name: 'other' });
    expect(fs.existsSync(file)).toBe(false);
  });

  it('puts the old file back when dnf cannot read the new repo', async () => {
    const file = path.join(root, 'etc/yum.repos.d/broken.repo');
    const r = await runState('pkgrepo.managed', { name: 'broken', baseurl: `file://${repo}/missing`, skip_if_unavailable: 0 }, { grains });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/Failed to configure repo: .*makecache failed/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses a new repo without a baseurl', async () => {
    const r = await runState('pkgrepo.managed', { name: 'nourl' }, { grains });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/no baseurl, mirrorlist or metalink/);
  });
});

describe('pkg with dnf --installroot', () => {
  it('installs a package, predicting the change in test mode', async () => {
    const { predicted, real } = await converge('pkg.installed', { name: 'tsalt-hello' });
    expect(predicted.changes).toEqual({ 'tsalt-hello': { old: '', new: '1.0-1' } });
    expect(real.changes).toEqual({ 'tsalt-hello': { old: '', new: '1.0-1' } });
    expect(await rpmVersion('tsalt-hello')).toBe('1.0-1');
  });

  it('fails on a missing package and installs none of the others', async () => {
    const args = { name: 'set', pkgs: ['tsalt-extra', 'tsalt-no-such-package'] };
    for (const test of [true, false]) {
      const r = await runState('pkg.installed', args, { grains, test });
      expect(r.result).toBe(false);
      expect(r.comment).toContain('were not found');
      expect(r.comment).toContain('tsalt-no-such-package');
    }
    expect(await rpmVersion('tsalt-extra')).toBeUndefined();
  });

  it('installs the rest of a pkgs list in one go, versions as dicts', async () => {
    const { real } = await converge('pkg.installed', { name: 'set', pkgs: [{ 'tsalt-hello': '1.0-1' }, { 'tsalt-extra': 0.5 }] });
    expect(real.changes).toEqual({ 'tsalt-extra': { old: '', new: '0.5-3' } });
    expect(real.comment).toContain('tsalt-extra');
  });

  it('pkg.latest upgrades after the repo gains a version (refresh)', async () => {
    await makeRepo(repo, [v2]);
    const { real } = await converge('pkg.latest', { name: 'tsalt-hello', refresh: true });
    expect(real.changes).toEqual({ 'tsalt-hello': { old: '1.0-1', new: '2.0-1' } });
    expect(await rpmVersion('tsalt-hello')).toBe('2.0-1');
  });

  it('a version glob downgrades to the newest matching version', async () => {
    const { real } = await converge('pkg.installed', { name: 'tsalt-hello', version: '1.0*' });
    expect(real.changes).toEqual({ 'tsalt-hello': { old: '2.0-1', new: '1.0-1' } });
    const none = await runState('pkg.installed', { name: 'tsalt-hello', version: '>=3' }, { grains });
    expect(none.result).toBe(false);
    expect(none.comment).toContain('available: 2.0-1, 1.0-1');
  });

  it('hold needs the versionlock plugin and says so', async () => {
    const r = await runState('pkg.installed', { name: 'tsalt-hello', hold: true }, { grains });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/versionlock/);
  });

  it('removes and purges', async () => {
    const rm = await converge('pkg.removed', { name: 'tsalt-hello' });
    expect(rm.real.changes).toEqual({ 'tsalt-hello': { old: '1.0-1', new: '' } });
    const pg = await converge('pkg.purged', { name: 'x', pkgs: ['tsalt-extra', 'tsalt-hello'] });
    expect(pg.real.changes).toEqual({ 'tsalt-extra': { old: '0.5-3', new: '' } });
    expect(await rpmVersion('tsalt-extra')).toBeUndefined();
  });

  it('install_recommends: False leaves weak dependencies out (install_weak_deps=False); by default dnf installs them', async () => {
    const { real } = await converge('pkg.installed', { name: 'tsalt-weak', install_recommends: false });
    expect(real.changes).toEqual({ 'tsalt-weak': { old: '', new: '1.0-1' } });
    expect(await rpmVersion('tsalt-extra')).toBeUndefined();
    await converge('pkg.removed', { name: 'tsalt-weak' });
    const dflt = await runState('pkg.installed', { name: 'tsalt-weak' }, { grains });
    expect(dflt.result, dflt.comment).toBe(true);
    expect(dflt.changes).toEqual({ 'tsalt-weak': { old: '', new: '1.0-1' }, 'tsalt-extra': { old: '', new: '0.5-3' } });
    await converge('pkg.removed', { name: 'x', pkgs: ['tsalt-weak', 'tsalt-extra'] });
  });

  it('installs package files (sources) in one transaction, predicting from their headers', async () => {
    const args = { name: 'files', sources: [{ 'tsalt-extra': extraRpm }, { 'tsalt-hello': `file://${v2}` }] };
    const { predicted, real, again } = await converge('pkg.installed', args);
    const want = { 'tsalt-extra': { old: '', new: '0.5-3' }, 'tsalt-hello': { old: '', new: '2.0-1' } };
    expect(predicted.changes).toEqual(want);
    expect(real.changes).toEqual(want);
    expect(again.comment).toBe('All specified packages are already installed');
    expect(await rpmVersion('tsalt-hello')).toBe('2.0-1');
  });

  it('an older package file downgrades', async () => {
    const { real } = await converge('pkg.installed', { name: 'files', sources: [{ 'tsalt-hello': v1 }] });
    expect(real.changes).toEqual({ 'tsalt-hello': { old: '2.0-1', new: '1.0-1' } });
    expect(await rpmVersion('tsalt-hello')).toBe('1.0-1');
  });

  it('a package file holding another package than its name fails and installs nothing', async () => {
    const sources = [{ 'tsalt-hello': v2 }, { 'tsalt-other': extraRpm }];
    for (const test of [true, false]) {
      const r = await runState('pkg.installed', { name: 'files', sources }, { grains, test });
      expect(r.result).toBe(false);
      expect(r.comment).toContain(`${extraRpm} holds package 'tsalt-extra', not 'tsalt-other'`);
      expect(r.changes).toEqual({});
    }
    expect(await rpmVersion('tsalt-hello')).toBe('1.0-1');
    const notRpm = await runState('pkg.installed', { name: 'files', sources: [{ 'tsalt-hello': '/etc/hostname' }] }, { grains });
    expect(notRpm.result).toBe(false);
    expect(notRpm.comment).toMatch(/^Failed to parse metadata for \/etc\/hostname/);
  });

  it('pkgrepo.absent removes the repo file', async () => {
    await converge('pkgrepo.absent', { name: 'tsalt-local' });
    expect(fs.existsSync(path.join(root, 'etc/yum.repos.d/tsalt-local.repo'))).toBe(false);
  });
});
