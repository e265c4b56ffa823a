// git.latest against real local repositories created here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { exec, execOk } from '../../engine/run/exec.js';
import { runState, tempDir } from '../helpers/harness.js';

const env = {
  ...process.env,
  GIT_AUTHOR_NAME: 't',
  GIT_AUTHOR_EMAIL: 't@example.invalid',
  GIT_COMMITTER_NAME: 't',
  GIT_COMMITTER_EMAIL: 't@example.invalid',
};
const base = tempDir('tsalt-git-');
const upstream = path.join(base, 'upstream');
let n = 0;

async function git(cwd: string, ...argv: string[]): Promise<string> {
  return (await execOk(['git', ...argv], { cwd, env })).stdout.trim();
}

async function commit(msg: string, file = 'README'): Promise<string> {
  fs.writeFileSync(path.join(upstream, file), `${msg}\n`);
  await git(upstream, 'add', file);
  await git(upstream, 'commit', '-q', '-m', msg);
  return git(upstream, 'rev-parse', 'HEAD');
}

async function converge(args: Record<string, unknown>) {
  const t = await runState('git.latest', args, { test: true });
  expect(t.result, t.comment).toBeNull();
  const r = await runState('git.latest', args);
  expect(r.result, r.comment).toBe(true);
  expect(Object.keys(r.changes).sort()).toEqual(Object.keys(t.changes).sort());
  const again = await runState('git.latest', args);
  expect(again.result, again.comment).toBe(true);
  expect(again.changes).toEqual({});
  return r;
}

const users: string[] = [];
beforeAll(async () => {
  fs.mkdirSync(upstream);
  await git(upstream, 'init', '-q', '-b', 'main');
  await commit('one');
});
afterAll(async () => {
  for (const u of users) await exec(['userdel', '-r', u]);
  fs.rmSync(base, { recursive: true, force: true });
});

describe('git.latest', () => {
  const target = path.join(base, 'checkout', 'app');

  it('clones into a new target, then is a no-op', async () => {
    const head = await git(upstream, 'rev-parse', 'HEAD');
    const r = await converge({ name: upstream, target });
    expect(r.changes).toEqual({ new: `${upstream} => ${target}`, revision: { old: null, new: head } });
    expect(await git(target, 'rev-parse', 'HEAD')).toBe(head);
    // nothing left behind from the temp clone
    expect(fs.readdirSync(path.dirname(target))).toEqual(['app']);
  });

  it('fast-forwards to the new remote HEAD', async () => {
    const old = await git(target, 'rev-parse', 'HEAD');
    const head = await commit('two');
    const r = await converge({ name: upstream, target });
    expect(r.changes).toEqual({ revision: { old, new: head } });
    expect(fs.readFileSync(path.join(target, 'README'), 'utf8')).toBe('two\n');
  });

  it('checks out a tag', async () => {
    await git(upstream, 'tag', '-a', '-m', 'v1', 'v1.0');
    const tagged = await git(upstream, 'rev-parse', 'v1.0^{commit}');
    await commit('three');
    await converge({ name: upstream, target, rev: 'main' });
    const r = await runState('git.latest', { name: upstream, target, rev: 'v1.0' });
    // going back to an older tag is not a fast-forward: Salt refuses without force_reset
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/not a fast-forward.*force_reset/);
    await converge({ name: upstream, target, rev: 'v1.0', force_reset: true });
    expect(await git(target, 'rev-parse', 'HEAD')).toBe(tagged);
  });

  it('keeps local changes unless force_reset', async () => {
    await converge({ name: upstream, target, rev: 'main', force_reset: true });
    fs.writeFileSync(path.join(target, 'README'), 'local edit\n');
    const keep = await runState('git.latest', { name: upstream, target, rev: 'main' });
    expect(keep).toMatchObject({ result: true, changes: {} });
    expect(keep.comment).toMatch(/uncommitted changes/);
    const r = await converge({ name: upstream, target, rev: 'main', force_reset: true });
    expect(r.changes).toEqual({ 'forced update': true });
    expect(fs.readFileSync(path.join(target, 'README'), 'utf8')).toBe('three\n');
  });

  it('refuses a rewritten remote history without force_reset', async () => {
    const old = await git(target, 'rev-parse', 'HEAD');
    fs.writeFileSync(path.join(upstream, 'README'), 'rewritten\n');
    await git(upstream, 'commit', '-q', '-a', '--amend', '-m', 'rewritten');
    const head = await git(upstream, 'rev-parse', 'HEAD');
    const t = await runState('git.latest', { name: upstream, target, rev: 'main' }, { test: true });
    // the new commit is not fetched yet: test mode cannot know it is not a fast-forward
    expect(t.result).toBeNull();
    const r = await runState('git.latest', { name: upstream, target, rev: 'main' });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/not a fast-forward/);
    expect(await git(target, 'rev-parse', 'HEAD')).toBe(old);
    const f = await converge({ name: upstream, target, rev: 'main', force_reset: true });
    expect(f.changes).toEqual({ revision: { old, new: head }, 'forced update': true });
  });

  it('checks out a named local branch from a remote branch', async () => {
    await git(upstream, 'checkout', '-q', '-b', 'dev');
    const dev = await commit('dev work');
    await git(upstream, 'checkout', '-q', 'main');
    await converge({ name: upstream, target, rev: 'dev', branch: 'dev' });
    expect(await git(target, 'symbolic-ref', '--short', 'HEAD')).toBe('dev');
    expect(await git(target, 'rev-parse', 'HEAD')).toBe(dev);
    expect(await git(target, 'rev-parse', '--abbrev-ref', 'dev@{upstream}')).toBe('origin/dev');
  });

  it('updates the remote URL', async () => {
    const moved = path.join(base, 'moved');
    await execOk(['cp', '-a', upstream, moved]);
    const r = await converge({ name: moved, target, rev: 'dev', branch: 'dev' });
    expect(r.changes).toEqual({ remote: { old: upstream, new: moved } });
    expect(await git(target, 'config', '--get', 'remote.origin.url')).toBe(moved);
  });

  it('refuses a non-empty directory that is not a repository, unless force_clone', async () => {
    const t2 = path.join(base, 'occupied');
    fs.mkdirSync(t2);
    fs.writeFileSync(path.join(t2, 'keep'), 'x');
    const r = await runState('git.latest', { name: upstream, target: t2 });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/non-empty and is not a git repository.*force_clone/);
    expect(fs.readdirSync(t2)).toEqual(['keep']);
    const f = await converge({ name: upstream, target: t2, force_clone: true });
    expect(f.changes['forced clone']).toBe(true);
    expect(fs.existsSync(path.join(t2, 'keep'))).toBe(false);
    expect(fs.existsSync(path.join(t2, '.git'))).toBe(true);
  });

  it('shallow clone of a branch with depth', async () => {
    const t3 = path.join(base, 'shallow');
    await converge({ name: `file://${upstream}`, target: t3, rev: 'main', depth: 1 });
    expect(await git(t3, 'rev-parse', '--is-shallow-repository')).toBe('true');
    const r = await runState('git.latest', { name: `file://${upstream}`, target: path.join(base, 's2'), depth: 1 });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/'depth' is used, 'rev' must be set to the name of a branch/);
  });

  it('fails clearly for an unknown rev or an unreachable remote, creating nothing', async () => {
    const t4 = path.join(base, 'never');
    const bad = await runState('git.latest', { name: upstream, target: t4, rev: 'no-such-branch' });
    expect(bad.result).toBe(false);
    expect(bad.comment).toBe("No revision matching 'no-such-branch' exists in the remote repository");
    const gone = await runState('git.latest', { name: path.join(base, 'does-not-exist'), target: t4 });
    expect(gone.result).toBe(false);
    expect(gone.comment).toMatch(/^Failed to check remote refs: .*does not appear to be a git repository/s);
    expect(fs.existsSync(t4)).toBe(false);
    expect(fs.readdirSync(base).filter((f) => f.startsWith('.tsalt-git'))).toEqual([]);
  });

  it('clones as user', async () => {
    const user = `tsg${randomBytes(3).toString('hex')}`;
    await execOk(['useradd', '-m', '-s', '/bin/sh', user]);
    users.push(user);
    const home = (await execOk(['getent', 'passwd', user])).stdout.split(':')[5]!;
    const t5 = path.join(home, 'src', 'app');
    await execOk(['install', '-d', '-o', user, path.join(home, 'src')]);
    // git refuses repositories owned by someone else (safe.directory): give the user its own upstream
    const up = path.join(home, 'up.git');
    await git(base, 'clone', '-q', '--bare', upstream, up);
    await execOk(['chown', '-R', `${user}:`, up]);
    await converge({ name: `file://${up}`, target: t5, user });
    const uid = Number((await execOk(['id', '-u', user])).stdout.trim());
    expect(fs.statSync(path.join(t5, 'README')).uid).toBe(uid);
    expect(fs.statSync(path.join(t5, '.git', 'HEAD')).uid).toBe(uid);
    expect(fs.statSync(t5).uid).toBe(uid);
  });
});
