/**
 * `git:` in master.yaml: states and pillar of one commit of one repository (bare or a clone),
 * read from git objects, with clear errors for each way the setting can be wrong.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GitSource, StateTree } from '../../master/tree.js';
import { pillarFor } from '../../master/pillar.js';
import { loadMasterConfig } from '../../master/config.js';
import { RolloutConfigSchema } from '../../master/rollout.js';
import { ScheduleEntrySchema } from '../../master/schedule.js';
import { tempDir } from '../helpers/harness.js';

const git = (dir: string, ...a: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', '-c', 'init.defaultBranch=main', ...a], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  }).trim();

function write(dir: string, files: Record<string, string>) {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
}

/** A bare repository and a clone to push from, as an operator has them. */
function repoPair(): { bare: string; work: string; push: (msg: string, files: Record<string, string>) => string } {
  const d = tempDir();
  const bare = path.join(d, 'config.git');
  const work = path.join(d, 'work');
  git(d, 'init', '-q', '--bare', bare);
  git(d, 'clone', '-q', bare, work);
  const push = (msg: string, files: Record<string, string>) => {
    write(work, files);
    git(work, 'add', '-A');
    git(work, 'commit', '-q', '-m', msg);
    git(work, 'push', '-q', 'origin', 'HEAD:main');
    return git(work, 'rev-parse', 'HEAD');
  };
  return { bare, work, push };
}

const src = (repo: string, o: Partial<{ branch: string; states_dir: string; pillar_dir: string }> = {}) =>
  new GitSource({ repo, branch: 'main', states_dir: 'states', pillar_dir: 'pillar', ...o });

describe('git: the config repository', () => {
  it('a job pins one commit: its states as the bundle, its pillar from git objects', async () => {
    const { bare, work, push } = repoPair();
    const c1 = push('one', {
      'states/top.sls': "base:\n  '*':\n    - web\n",
      'states/web.sls': 'a: {test.nop: []}\n',
      'pillar/top.sls': "base:\n  '*':\n    - common\n",
      'pillar/common.sls': 'port: 8080\nname: {{ grains["id"] }}\n',
      'README.md': 'not served\n',
    });
    const s = src(bare);
    await s.check();
    expect(await s.head()).toBe(c1);
    const snap1 = await s.snapshot();
    expect(snap1.revision).toBe(c1);
    expect(snap1.bundle.entries.map((e) => e.path)).toEqual(['top.sls', 'web.sls']);
    expect(await pillarFor(snap1.pillar(), 'web1', {})).toEqual({ port: 8080, name: 'web1' });

    const c2 = push('two', { 'pillar/common.sls': 'port: 9090\n' });
    // uncommitted edits in the clone are never read
    write(work, { 'pillar/common.sls': 'port: 1\n', 'states/web.sls': 'edited: {}\n' });
    expect(await s.head()).toBe(c2);
    expect(await pillarFor((await s.snapshot()).pillar(), 'web1', {})).toEqual({ port: 9090 });
    // an older revision brings its own pillar back, not today's
    const old = await s.snapshot(c1);
    expect(old.revision).toBe(c1);
    expect(await pillarFor(old.pillar(), 'web1', {})).toEqual({ port: 8080, name: 'web1' });
    expect((await s.snapshot('main~1')).revision).toBe(c1);
    expect(await s.isAncestor(c1, c2)).toBe(true);
    expect(await s.isAncestor(c2, c1)).toBe(false);
    expect(await s.commitInfo(c2)).toMatchObject({ sha: c2, subject: 'two', author: 't <t@t.invalid>', parents: [c1] });
  });

  it('a clone (not bare) is read from its objects, not its work tree', async () => {
    const { work, push } = repoPair();
    push('one', { 'states/top.sls': 'base: {}\n', 'pillar/top.sls': "base:\n  '*':\n    - p\n", 'pillar/p.sls': 'k: committed\n' });
    write(work, { 'pillar/p.sls': 'k: uncommitted\n', 'states/new.sls': 'x: {}\n' });
    const snap = await src(work).snapshot();
    expect(snap.bundle.entries.map((e) => e.path)).toEqual(['top.sls']);
    expect(await pillarFor(snap.pillar(), 'h', {})).toEqual({ k: 'committed' });
  });

  it('states_dir and pillar_dir name other directories; a repository without pillar has an empty one', async () => {
    const { bare, push } = repoPair();
    push('one', { 'salt/top.sls': 'base: {}\n', 'salt/x.sls': 'x: {}\n' });
    const snap = await src(bare, { states_dir: 'salt', pillar_dir: 'nopillar' }).snapshot();
    expect(snap.bundle.entries.map((e) => e.path)).toEqual(['top.sls', 'x.sls']);
    expect(await pillarFor(snap.pillar(), 'h', {})).toEqual({});
  });

  it('errors name what is wrong', async () => {
    const d = tempDir();
    await expect(src(path.join(d, 'nope.git')).check()).rejects.toThrow(`git.repo ${path.join(d, 'nope.git')} does not exist`);
    const plain = path.join(d, 'plain');
    fs.mkdirSync(plain);
    await expect(src(plain).check()).rejects.toThrow(`git.repo ${plain} is not a git repository`);

    const { bare, push } = repoPair();
    // an empty repository waits for its first push; a job before it says so
    await src(bare).check();
    await expect(src(bare).snapshot()).rejects.toThrow(/branch main does not exist in .*: push it first/);
    const c1 = push('no top', { 'states/web.sls': 'a: {}\n' });
    await expect(src(bare, { branch: 'release' }).check()).rejects.toThrow("git.branch 'release' does not exist in " + bare + ' (branches: main)');
    await expect(src(bare).snapshot()).rejects.toThrow(`revision ${c1.slice(0, 12)} has no top.sls in states/ of ${bare}`);
    await expect(src(bare, { states_dir: 'salt' }).snapshot()).rejects.toThrow(`revision ${c1.slice(0, 12)} has no salt/ directory`);
    await expect(src(bare).snapshot('deadbeef')).rejects.toThrow(`unknown revision 'deadbeef' in ${bare}`);
    await expect(src(bare).snapshot('--output=/tmp/x')).rejects.toThrow(/unknown revision/);
    // the old way of pointing at a bare repository is refused with the way to do it
    await expect(new StateTree(bare).check()).rejects.toThrow(`state_tree ${bare} is a bare git repository: serve it with \`git: {repo: ${bare}}\``);
  });

  it('master.yaml: git: with its defaults, relative to the file; not together with state_tree', () => {
    const d = tempDir();
    const f = path.join(d, 'master.yaml');
    fs.writeFileSync(f, 'git:\n  repo: config.git\n');
    expect(loadMasterConfig(f).git).toEqual({ repo: path.join(d, 'config.git'), branch: 'main', states_dir: 'states', pillar_dir: 'pillar' });
    expect(loadMasterConfig(f).state_tree).toBeUndefined();
    fs.writeFileSync(f, 'git:\n  repo: config.git\nstate_tree: /srv/salt\n');
    expect(() => loadMasterConfig(f)).toThrow(`${f}: 'state_tree': give either git: (states and pillar from one repository) or state_tree, not both`);
    fs.writeFileSync(f, 'git:\n  repo: config.git\n  states_dir: ../etc\n');
    expect(() => loadMasterConfig(f)).toThrow(`'git.states_dir': a directory inside the repository`);
    fs.writeFileSync(f, 'git:\n  repo: config.git\n  states_dir: salt\n  pillar_dir: salt/pillar\n');
    expect(() => loadMasterConfig(f)).toThrow(`'git.pillar_dir': pillar_dir 'salt/pillar' is inside states_dir 'salt'; pillar would reach every agent`);
    fs.writeFileSync(f, 'git:\n  repo: config.git\n  states_dir: .\n');
    expect(() => loadMasterConfig(f)).toThrow(/pillar would reach every agent/);
    fs.writeFileSync(f, 'state_tree: s\n');
    expect(loadMasterConfig(f)).toMatchObject({ state_tree: path.join(d, 's'), pillar_tree: '/srv/tsalt/pillar' });
  });

  it('batch sizes as Salt users write them: numbers and strings', () => {
    expect(RolloutConfigSchema.parse({ batch: 1 }).batch).toBe('1');
    expect(RolloutConfigSchema.parse({ batch: '50%' }).batch).toBe('50%');
    expect(RolloutConfigSchema.safeParse({ batch: 0 }).success).toBe(false);
    expect(RolloutConfigSchema.safeParse({ batch: 'half' }).success).toBe(false);
    expect(ScheduleEntrySchema.parse({ function: 'state.highstate', minutes: 1, batch: 2 }).batch).toBe('2');
  });
});
