import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';

const modeOf = (p: string) => (fs.lstatSync(p).mode & 0o7777).toString(8).padStart(4, '0');

function tree(files: Record<string, string>, emptyDirs: string[] = []): string {
  const dir = tempDir('tsalt-tree-');
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  for (const e of emptyDirs) fs.mkdirSync(path.join(dir, e), { recursive: true });
  return dir;
}

describe('file.directory', () => {
  it('creates with owner and mode, makedirs', async () => {
    const d = tempDir();
    const name = path.join(d, 'a/b');
    const fail = await runState('file.directory', { name });
    expect(fail).toMatchObject({ result: false, comment: `No directory to create ${name} in` });
    const r = await convergeTwice('file.directory', { name, user: 'nobody', group: 'daemon', mode: 750, makedirs: true });
    expect(r.changes).toEqual({ [name]: 'New Dir', user: 'nobody', group: 'daemon', mode: '0750' });
    const st = fs.statSync(name);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([65534, 1, 0o750]);
  });

  it('recurse sets user/group/mode below, dirs get dir_mode and files file_mode', async () => {
    const d = tempDir();
    fs.mkdirSync(path.join(d, 'sub'));
    fs.writeFileSync(path.join(d, 'sub/f'), 'x', { mode: 0o600 });
    fs.writeFileSync(path.join(d, 'g'), 'x', { mode: 0o644 });
    const r = await convergeTwice('file.directory', { name: d, user: 'daemon', dir_mode: '0755', file_mode: '0640', recurse: ['user', 'mode'] });
    expect(r.changes[path.join(d, 'sub/f')]).toEqual({ user: 'daemon', mode: '0640' });
    expect(r.changes[path.join(d, 'sub')]).toEqual({ user: 'daemon' });
    expect(fs.statSync(path.join(d, 'g')).uid).toBe(1);
    expect(modeOf(path.join(d, 'sub/f'))).toBe('0640');
    expect(modeOf(path.join(d, 'sub'))).toBe('0755');
  });

  it('clean removes everything not excluded', async () => {
    const d = tempDir();
    for (const f of ['keep.conf', 'drop.txt', 'sub/keep.conf', 'sub/drop', 'gone/x']) {
      fs.mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
      fs.writeFileSync(path.join(d, f), '');
    }
    const r = await convergeTwice('file.directory', { name: d, clean: true, exclude_pat: '*.conf' });
    expect(r.changes.removed).toEqual([path.join(d, 'drop.txt'), path.join(d, 'gone'), path.join(d, 'sub/drop')]);
    expect(fs.readdirSync(d).sort()).toEqual(['keep.conf', 'sub']);
    expect(fs.readdirSync(path.join(d, 'sub'))).toEqual(['keep.conf']);
  });

  it('refuses to replace a file unless force', async () => {
    const d = tempDir();
    const name = path.join(d, 'x');
    fs.writeFileSync(name, 'file');
    expect((await runState('file.directory', { name })).comment).toBe(`Specified location ${name} exists and is a file`);
    expect(fs.readFileSync(name, 'utf8')).toBe('file');
    await convergeTwice('file.directory', { name, force: true });
    expect(fs.statSync(name).isDirectory()).toBe(true);
  });
});

describe('file.absent / exists / missing', () => {
  it('removes files and directories, twice', async () => {
    const d = tempDir();
    fs.writeFileSync(path.join(d, 'f'), 'x');
    fs.mkdirSync(path.join(d, 'dd/e'), { recursive: true });
    expect((await convergeTwice('file.absent', { name: path.join(d, 'f') })).changes).toEqual({ removed: path.join(d, 'f') });
    const r = await convergeTwice('file.absent', { name: path.join(d, 'dd') });
    expect(r.comment).toBe(`Removed directory ${path.join(d, 'dd')}`);
    expect(fs.readdirSync(d)).toEqual([]);
  });

  it('refuses / (also under --root)', async () => {
    expect((await runState('file.absent', { name: '/' })).result).toBe(false);
    const root = tempDir('tsalt-root-');
    expect((await runState('file.absent', { name: '/' }, { root })).result).toBe(false);
    expect(fs.existsSync(root)).toBe(true);
  });

  it('exists / missing report without changing anything', async () => {
    const d = tempDir();
    expect(await runState('file.exists', { name: d })).toMatchObject({ result: true, changes: {} });
    expect(await runState('file.exists', { name: path.join(d, 'no') })).toMatchObject({ result: false, comment: `Specified path ${path.join(d, 'no')} does not exist` });
    expect(await runState('file.missing', { name: path.join(d, 'no') })).toMatchObject({ result: true, changes: {} });
    expect((await runState('file.missing', { name: d })).result).toBe(false);
  });
});

describe('file.touch', () => {
  it('creates, then (Salt) touches on every run; explicit times are idempotent', async () => {
    const d = tempDir();
    const name = path.join(d, 't');
    expect((await runState('file.touch', { name })).changes).toEqual({ new: name });
    expect((await runState('file.touch', { name })).changes).toEqual({ touched: name });
    await convergeTwice('file.touch', { name, atime: 1_600_000_000, mtime: 1_600_000_100 });
    expect(Math.floor(fs.statSync(name).mtimeMs / 1000)).toBe(1_600_000_100);
  });
});

describe('file.symlink', () => {
  it('creates, retargets, owns; refuses a file without force', async () => {
    const d = tempDir();
    const name = path.join(d, 'l');
    expect((await convergeTwice('file.symlink', { name, target: '/etc/hostname' })).changes).toEqual({ new: name });
    expect(fs.readlinkSync(name)).toBe('/etc/hostname');
    expect((await convergeTwice('file.symlink', { name, target: 'relative/x' })).changes).toEqual({ change: name });
    expect(fs.readlinkSync(name)).toBe('relative/x');
    expect((await convergeTwice('file.symlink', { name, target: 'relative/x', user: 'nobody', group: 'nogroup' })).changes).toEqual({ ownership: 'nobody:nogroup' });
    expect(fs.lstatSync(name).uid).toBe(65534);
    const f = path.join(d, 'file');
    fs.writeFileSync(f, 'x');
    expect(await runState('file.symlink', { name: f, target: '/tmp' })).toMatchObject({ result: false, comment: `File exists where the symlink ${f} should be` });
    await convergeTwice('file.symlink', { name: f, target: '/tmp', force: true });
    expect(fs.readlinkSync(f)).toBe('/tmp');
    expect(fs.readdirSync(d).filter((x) => x.includes('.tsalt-'))).toEqual([]);
  });

  it('makedirs under --root; the link text is the target as written', async () => {
    const root = tempDir('tsalt-root-');
    await convergeTwice('file.symlink', { name: '/opt/app/current', target: '/opt/app/releases/1', makedirs: true }, { root });
    expect(fs.readlinkSync(path.join(root, 'opt/app/current'))).toBe('/opt/app/releases/1');
  });
});

describe('file.copy', () => {
  it('copies, keeps an existing target without force, replaces with force when different', async () => {
    const d = tempDir();
    const src = path.join(d, 'src');
    fs.writeFileSync(src, 'one', { mode: 0o640 });
    const name = path.join(d, 'dst');
    const r = await convergeTwice('file.copy', { name, source: src });
    expect(r.changes).toEqual({ [name]: src });
    expect(modeOf(name)).toBe('0640');
    fs.writeFileSync(src, 'two');
    expect((await runState('file.copy', { name, source: src })).changes).toEqual({});
    expect(fs.readFileSync(name, 'utf8')).toBe('one');
    await convergeTwice('file.copy', { name, source: src, force: true, user: 'nobody', mode: '0600' });
    expect(fs.readFileSync(name, 'utf8')).toBe('two');
    expect(fs.statSync(name).uid).toBe(65534);
  });

  it('preserve keeps the source owner and mode; a missing source fails', async () => {
    const d = tempDir();
    const src = path.join(d, 'src');
    fs.writeFileSync(src, 'x', { mode: 0o604 });
    fs.chownSync(src, 1, 1);
    await convergeTwice('file.copy', { name: path.join(d, 'p'), source: src, preserve: true });
    const st = fs.statSync(path.join(d, 'p'));
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([1, 1, 0o604]);
    expect(await runState('file.copy', { name: path.join(d, 'q'), source: path.join(d, 'none') })).toMatchObject({ result: false });
  });
});

describe('file.recurse', () => {
  it('mirrors a tree directory with templates, modes, empty dirs and clean', async () => {
    const treeDir = tree({ 'web/conf/a.conf': 'port={{ port }}\n', 'web/conf/sub/b.conf': 'b\n', 'web/conf/skip.swp': 'x' }, ['web/conf/empty']);
    const d = tempDir();
    const name = path.join(d, 'etc');
    fs.mkdirSync(name);
    fs.writeFileSync(path.join(name, 'stale'), 'old');
    const args = { name, source: 'salt://web/conf', template: 'jinja', port: 80, file_mode: '0640', dir_mode: '0750', include_empty: true, clean: true, exclude_pat: '*.swp' };
    const r = await convergeTwice('file.recurse', args, { treeDir });
    expect(Object.keys(r.changes).sort()).toEqual([name, path.join(name, 'a.conf'), path.join(name, 'empty'), path.join(name, 'sub'), path.join(name, 'sub/b.conf'), 'removed'].sort());
    expect(r.changes[path.join(name, 'a.conf')]).toMatchObject({ diff: 'New file', mode: '0640' });
    expect(r.changes.removed).toEqual([path.join(name, 'stale')]);
    expect(fs.readFileSync(path.join(name, 'a.conf'), 'utf8')).toBe('port=80\n');
    expect(fs.existsSync(path.join(name, 'skip.swp'))).toBe(false);
    expect(modeOf(path.join(name, 'sub'))).toBe('0750');
    expect(modeOf(path.join(name, 'sub/b.conf'))).toBe('0640');
    expect(fs.statSync(path.join(name, 'empty')).isDirectory()).toBe(true);
    // a changed tree file is one change, keyed by the file
    fs.writeFileSync(path.join(treeDir, 'web/conf/sub/b.conf'), 'b2\n');
    const c = await runState('file.recurse', args, { treeDir });
    expect(Object.keys(c.changes)).toEqual([path.join(name, 'sub/b.conf')]);
  });

  it('refuses sources outside the tree', async () => {
    const treeDir = tree({ 'x/y': 'y' });
    fs.symlinkSync('/etc', path.join(treeDir, 'x/etc'));
    const d = tempDir();
    for (const source of ['salt://../', 'salt://x']) {
      const r = await runState('file.recurse', { name: path.join(d, 'out'), source }, { treeDir });
      expect(r.result, source).toBe(false);
      expect(fs.existsSync(path.join(d, 'out'))).toBe(false);
    }
  });
});
