/**
 * Salt's refresh-once and `install_recommends` through the real apt and dpkg. apt reads a
 * configuration of its own here (APT_CONFIG): lists, cache and sources in a temp dir, one local
 * flat repository built with dpkg-deb + dpkg-scanpackages. The machine's lists stay untouched;
 * dpkg installs the test packages for real and the test purges them.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec, execOk } from '../../engine/run/exec.js';
import { runState, tempDir } from '../helpers/harness.js';

const grains = { os_family: 'Debian', id: 'testhost' };
const A = 'tsalt-rf-a'; // Recommends: REC
const REC = 'tsalt-rf-rec';
const LATE = 'tsalt-rf-late'; // published after the first refresh
const GONE = 'tsalt-rf-gone'; // published while the lists are missing
const ALL = [A, REC, LATE, GONE];
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

const work = tempDir('tsalt-aptrefresh-');
const repo = path.join(work, 'repo');
const lists = path.join(work, 'lists');

async function dpkgVersion(name: string): Promise<string | undefined> {
  const r = await exec(['dpkg-query', '-W', '-f=${db:Status-Abbrev}|${Version}', name]);
  const [status, version] = r.stdout.split('|');
  return r.code === 0 && status?.[1] === 'i' ? version : undefined;
}

/** Publish a tiny package in the local repository (and regenerate its Packages index). */
async function publish(name: string, version: string, recommends?: string): Promise<void> {
  const root = path.join(work, 'build', name);
  fs.mkdirSync(path.join(root, 'DEBIAN'), { recursive: true });
  fs.writeFileSync(
    path.join(root, 'DEBIAN/control'),
    [
      `Package: ${name}`,
      `Version: ${version}`,
      'Architecture: all',
      'Maintainer: tsalt tests <root@localhost>',
      ...(recommends ? [`Recommends: ${recommends}`] : []),
      'Description: tsalt test package',
      '',
    ].join('\n'),
  );
  await execOk(['dpkg-deb', '--build', '--root-owner-group', root, path.join(repo, `${name}_${version}_all.deb`)]);
  const scan = await execOk(['dpkg-scanpackages', '--multiversion', '.'], { cwd: repo });
  fs.writeFileSync(path.join(repo, 'Packages'), scan.stdout);
}

const packageLists = () => fs.readdirSync(lists).filter((f) => /_Packages(\.\w+)?$/.test(f));
const dropLists = () => {
  for (const f of packageLists()) fs.rmSync(path.join(lists, f));
};

async function converge(args: Record<string, unknown>) {
  const predicted = await runState('pkg.installed', args, { grains, test: true });
  const real = await runState('pkg.installed', args, { grains });
  const again = await runState('pkg.installed', args, { grains });
  expect(predicted.result, predicted.comment).toBe(null);
  expect(real.result, real.comment).toBe(true);
  expect(predicted.changes).toEqual(real.changes);
  expect(again.changes).toEqual({});
  return real;
}

const purge = () => execOk(['dpkg', '--purge', ...ALL], { env });
const savedAptConfig = process.env.APT_CONFIG;

beforeAll(async () => {
  await purge();
  for (const d of [repo, lists, path.join(work, 'cache'), path.join(work, 'sources.list.d')]) fs.mkdirSync(d, { recursive: true });
  await publish(REC, '1.0-1');
  await publish(A, '1.0-1', REC);
  fs.writeFileSync(path.join(work, 'sources.list'), `deb [trusted=yes] file:${repo} ./\n`);
  const conf = path.join(work, 'apt.conf');
  fs.writeFileSync(
    conf,
    [
      `Dir::State::Lists "${lists}";`,
      `Dir::Cache "${path.join(work, 'cache')}";`,
      `Dir::Etc::SourceList "${path.join(work, 'sources.list')}";`,
      `Dir::Etc::SourceParts "${path.join(work, 'sources.list.d')}";`,
      // the temp dir is root's alone: no download sandbox user
      'APT::Sandbox::User "root";',
      '',
    ].join('\n'),
  );
  process.env.APT_CONFIG = conf;
});

afterAll(async () => {
  if (savedAptConfig === undefined) delete process.env.APT_CONFIG;
  else process.env.APT_CONFIG = savedAptConfig;
  await purge();
  fs.rmSync(work, { recursive: true, force: true });
});

describe('pkg refreshes the package database once, as Salt does', () => {
  it('a fresh host (no lists) refreshes before its first install; install_recommends: False leaves Recommends out', async () => {
    expect(packageLists()).toEqual([]);
    const real = await converge({ name: A, install_recommends: false });
    expect(real.changes).toEqual({ [A]: { old: '', new: '1.0-1' } });
    expect(await dpkgVersion(REC)).toBeUndefined();
    expect(packageLists().length).toBe(1);
  });

  it('not again in the same process: a package published since is found only with refresh: True', async () => {
    await publish(LATE, '1.0-1');
    const stale = await runState('pkg.installed', { name: LATE }, { grains });
    expect(stale.result).toBe(false);
    expect(stale.comment).toContain(`Unable to locate package ${LATE}`);
    const forced = await runState('pkg.installed', { name: LATE, refresh: true }, { grains });
    expect(forced.result, forced.comment).toBe(true);
    expect(await dpkgVersion(LATE)).toBe('1.0-1');
  });

  it('refresh: False never refreshes, even with the lists gone', async () => {
    dropLists();
    const r = await runState('pkg.installed', { name: GONE, refresh: false }, { grains });
    expect(r.result).toBe(false);
    expect(packageLists()).toEqual([]);
  });

  it('a converged state needs no repository: nothing is refreshed', async () => {
    const r = await runState('pkg.installed', { name: A }, { grains });
    expect(r.result, r.comment).toBe(true);
    expect(r.comment).toBe(`Package ${A} is already installed`);
    expect(packageLists()).toEqual([]);
  });

  it('again once the lists have gone missing', async () => {
    await publish(GONE, '2.0-1');
    const r = await runState('pkg.installed', { name: GONE }, { grains });
    expect(r.result, r.comment).toBe(true);
    expect(r.changes).toEqual({ [GONE]: { old: '', new: '2.0-1' } });
    expect(packageLists().length).toBe(1);
  });

  it("without install_recommends apt's default installs Recommends; True asks for them explicitly", async () => {
    await execOk(['dpkg', '--purge', A], { env });
    const real = await converge({ name: A });
    expect(real.changes).toEqual({ [A]: { old: '', new: '1.0-1' }, [REC]: { old: '', new: '1.0-1' } });
    await execOk(['dpkg', '--purge', A, REC], { env });
    // against an apt.conf that turns Recommends off, True still asks for them
    const off = path.join(work, 'sources.list.d', '..', 'norec.conf');
    fs.writeFileSync(off, `${fs.readFileSync(process.env.APT_CONFIG!, 'utf8')}APT::Install-Recommends "false";\n`);
    process.env.APT_CONFIG = off;
    try {
      const without = await runState('pkg.installed', { name: A, test: true }, { grains, test: true });
      expect(without.changes).toEqual({ [A]: { old: '', new: '1.0-1' } });
      const withRec = await converge({ name: A, install_recommends: true });
      expect(withRec.changes).toEqual({ [A]: { old: '', new: '1.0-1' }, [REC]: { old: '', new: '1.0-1' } });
    } finally {
      process.env.APT_CONFIG = path.join(work, 'apt.conf');
    }
  });
});
