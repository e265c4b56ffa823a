/** The master's state tree by revision: what goes into a bundle, and what never does. */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StateTree } from '../../master/tree.js';
import { tempDir } from '../helpers/harness.js';

const git = (dir: string, ...a: string[]) =>
  execFileSync('git', ['-C', dir, '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', '-c', 'init.defaultBranch=main', ...a], { encoding: 'utf8' }).trim();

function write(dir: string, files: Record<string, string>) {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
}

describe('state tree revisions', () => {
  it('a plain directory is bundled as it is; links leaving it are left out', async () => {
    const dir = tempDir();
    write(dir, { 'top.sls': 'base: {}\n', 'web/init.sls': 'a: {}\n' });
    fs.symlinkSync('/etc/passwd', path.join(dir, 'web/passwd'));
    fs.symlinkSync('init.sls', path.join(dir, 'web/alias.sls'));
    const b = await new StateTree(dir).current();
    expect(b.revision).toBe(`dir-${b.hash.slice(0, 12)}`);
    expect(b.entries.map((e) => e.path)).toEqual(['top.sls', 'web/alias.sls', 'web/init.sls']);
    write(dir, { 'top.sls': 'base: {x: []}\n' });
    expect((await new StateTree(dir).current()).hash).not.toBe(b.hash);
  });

  it('a plain directory needs no git: on a master without git it is checked and bundled', async () => {
    const dir = tempDir();
    write(dir, { 'top.sls': 'base: {}\n' });
    const saved = process.env.PATH;
    process.env.PATH = tempDir(); // an empty directory: no git to be found
    try {
      const tree = new StateTree(dir);
      await tree.check();
      const b = await tree.current();
      expect(b.revision).toBe(`dir-${b.hash.slice(0, 12)}`);
      expect(await tree.head()).toBeUndefined();
    } finally {
      process.env.PATH = saved;
    }
  });

  it('a tree that appears, or is put in git, after the master started is seen as it is now', async () => {
    const parent = tempDir();
    const dir = path.join(parent, 'states');
    const t = new StateTree(dir);
    await expect(t.head()).rejects.toThrow(/does not exist/);
    write(dir, { 'top.sls': 'base: {}\n' });
    expect(await t.head()).toBeUndefined(); // a plain directory for now
    git(dir, 'init', '-q');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', 'one');
    expect(await t.head()).toBe(git(dir, 'rev-parse', 'HEAD'));
  });

  it('a git tree pins HEAD: uncommitted files are not in the bundle', async () => {
    const dir = tempDir();
    write(dir, { 'top.sls': 'base: {}\n', 'run.sh': '#!/bin/sh\n' });
    fs.chmodSync(path.join(dir, 'run.sh'), 0o755);
    git(dir, 'init', '-q');
    git(dir, 'add', '-A');
    git(dir, 'commit', '-q', '-m', 'one');
    write(dir, { 'top.sls': 'base: {changed: []}\n', 'new.sls': 'x: {}\n' });
    const t = new StateTree(dir);
    const b = await t.current();
    expect(b.revision).toBe(git(dir, 'rev-parse', 'HEAD'));
    expect(b.entries.map((e) => [e.path, e.executable, e.data.toString()])).toEqual([
      ['run.sh', true, '#!/bin/sh\n'],
      ['top.sls', false, 'base: {}\n'],
    ]);
  });

  it('a tree in a subdirectory of a repository bundles that subdirectory only', async () => {
    const repo = tempDir();
    write(repo, { 'states/top.sls': 'base: {}\n', 'pillar/secret.sls': 'password: x\n', 'README': 'r' });
    git(repo, 'init', '-q');
    git(repo, 'add', '-A');
    git(repo, 'commit', '-q', '-m', 'one');
    const b = await new StateTree(path.join(repo, 'states')).current();
    expect(b.entries.map((e) => e.path)).toEqual(['top.sls']);
  });

  it('a repository without a commit is a clear error', async () => {
    const dir = tempDir();
    git(dir, 'init', '-q');
    await expect(new StateTree(dir).current()).rejects.toThrow(/without a commit: commit the states first/);
  });
});
