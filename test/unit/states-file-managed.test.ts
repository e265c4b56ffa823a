import { describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { harnessBase, runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';
import { atomicWrite } from '../../engine/states/file/atomic-write.js';

function tree(files: Record<string, string>): string {
  const dir = tempDir('tsalt-tree-');
  for (const [p, c] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    fs.writeFileSync(path.join(dir, p), c);
  }
  return dir;
}

const modeOf = (p: string) => (fs.statSync(p).mode & 0o7777).toString(8).padStart(4, '0');
const leftovers = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes('.tsalt-'));

describe('file.managed', () => {
  it('creates a file from contents, Salt-style changes, idempotent', async () => {
    const d = tempDir();
    const name = path.join(d, 'motd');
    const r = await convergeTwice('file.managed', { name, contents: 'hello', mode: '0640' });
    expect(r.changes).toEqual({ diff: 'New file', mode: '0640' });
    expect(r.comment).toBe(`File ${name} updated`);
    expect(fs.readFileSync(name, 'utf8')).toBe('hello\n'); // contents_newline
    expect(modeOf(name)).toBe('0640');
    expect(leftovers(d)).toEqual([]);
  });

  it('reports a unified diff for a content change and keeps owner and mode', async () => {
    const d = tempDir();
    const name = path.join(d, 'conf');
    fs.writeFileSync(name, 'a\nb\nc\n', { mode: 0o600 });
    fs.chownSync(name, 1, 1);
    const r = await convergeTwice('file.managed', { name, contents: ['a', 'B', 'c'] });
    expect(r.changes).toEqual({ diff: '--- \n+++ \n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n' });
    const st = fs.statSync(name);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([1, 1, 0o600]);
    expect(leftovers(d)).toEqual([]);
  });

  it('sets user, group and mode of an existing file (real accounts)', async () => {
    const d = tempDir();
    const name = path.join(d, 'f');
    fs.writeFileSync(name, 'x\n', { mode: 0o644 });
    const r = await convergeTwice('file.managed', { name, user: 'nobody', group: 'daemon', mode: 600 });
    expect(r.changes).toEqual({ user: 'nobody', group: 'daemon', mode: '0600' });
    const st = fs.statSync(name);
    expect([st.uid, st.gid, st.mode & 0o7777]).toEqual([65534, 1, 0o600]);
    expect(fs.readFileSync(name, 'utf8')).toBe('x\n'); // no source: content not managed
  });

  it('fails clearly for an unknown user; test mode only warns (Salt)', async () => {
    const d = tempDir();
    const name = path.join(d, 'f');
    const t = await runState('file.managed', { name, contents: 'x', user: 'no-such-user-tsalt' }, { test: true });
    expect(t.result).toBeNull();
    expect(t.changes).toMatchObject({ diff: 'New file', user: 'no-such-user-tsalt' });
    expect(t.comment).toContain('User no-such-user-tsalt is not available');
    const r = await runState('file.managed', { name, contents: 'x', user: 'no-such-user-tsalt' });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('User no-such-user-tsalt is not available');
    expect(fs.existsSync(name)).toBe(false);
  });

  it('renders a jinja source with grains, pillar, context over defaults, and unknown kwargs', async () => {
    const treeDir = tree({ 'app/app.conf.j2': 'host={{ grains.id }} port={{ pillar.app.port }} a={{ a }} b={{ b }} extra={{ colour }}\n' });
    const d = tempDir();
    const name = path.join(d, 'app.conf');
    const o = { treeDir, pillar: { app: { port: 8080 } }, grains: { id: 'web1' } };
    const args = { name, source: 'salt://app/app.conf.j2', template: 'jinja', defaults: { a: 1, b: 1 }, context: { b: 2 }, colour: 'blue' };
    const r = await convergeTwice('file.managed', args, o);
    expect(r.warnings).toEqual([]); // unknown kwargs are template variables, not warnings
    expect(fs.readFileSync(name, 'utf8')).toBe('host=web1 port=8080 a=1 b=2 extra=blue\n');
  });

  it('uses the first source of a list that exists', async () => {
    const treeDir = tree({ 'x/fallback': 'fallback\n' });
    const d = tempDir();
    const name = path.join(d, 'f');
    await convergeTwice('file.managed', { name, source: ['salt://x/specific-web1', 'salt://x/fallback'] }, { treeDir });
    expect(fs.readFileSync(name, 'utf8')).toBe('fallback\n');
    const none = await runState('file.managed', { name, source: ['salt://x/a', 'salt://x/b'] }, { treeDir });
    expect(none.result).toBe(false);
    expect(none.comment).toContain('none of the specified sources were found');
  });

  it('refuses salt:// paths that leave the tree, and symlinks in the tree that point out', async () => {
    const treeDir = tree({ 'ok': 'ok\n' });
    fs.symlinkSync('/etc', path.join(treeDir, 'etc-link'));
    const d = tempDir();
    const name = path.join(d, 'f');
    for (const source of ['salt://../etc/passwd', 'salt://etc-link/passwd', ['salt://etc-link/passwd', 'salt://ok']]) {
      const r = await runState('file.managed', { name, source }, { treeDir });
      expect(r.result, JSON.stringify(source)).toBe(false);
      expect(r.comment).toMatch(/leaves the state tree|outside the state tree/);
      expect(fs.existsSync(name)).toBe(false);
    }
  });

  it('local sources: absolute path and file:// with source_hash verification', async () => {
    const d = tempDir();
    const src = path.join(d, 'src');
    fs.writeFileSync(src, 'payload\n');
    const sha = 'a0a47ba9bf7d5cd8ac1c0e5e07d0f7b71cd3fd5ce5b6d90ab20d41e3ca9e3e71';
    const bad = await runState('file.managed', { name: path.join(d, 'a'), source: src, source_hash: `sha256=${sha}` });
    expect(bad.result).toBe(false);
    expect(bad.comment).toContain('does not match actual checksum');
    const crypto = await import('node:crypto');
    const good = crypto.createHash('sha256').update('payload\n').digest('hex');
    await convergeTwice('file.managed', { name: path.join(d, 'a'), source: src, source_hash: good });
    await convergeTwice('file.managed', { name: path.join(d, 'b'), source: `file://${src}`, source_hash: `sha256=${sha}`, skip_verify: true });
    expect(fs.readFileSync(path.join(d, 'b'), 'utf8')).toBe('payload\n');
  });

  it('check_cmd failure: result false, output in the comment, live file byte-identical', async () => {
    const d = tempDir();
    const name = path.join(d, 'sudoers');
    const old = Buffer.from('old content\n');
    fs.writeFileSync(name, old);
    const ino = fs.statSync(name).ino;
    const r = await runState('file.managed', { name, contents: 'bad line', check_cmd: 'grep -q "^good"' });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('check_cmd execution failed');
    expect(fs.readFileSync(name).equals(old)).toBe(true);
    expect(fs.statSync(name).ino).toBe(ino);
    expect(leftovers(d)).toEqual([]);
    const out = await runState('file.managed', { name, contents: 'x', check_cmd: 'sh -c \'echo "syntax error in $0" >&2; exit 3\'' });
    expect(out.comment).toMatch(/syntax error in \S+/);
    // a passing check lets the write happen; the temp file is the argument
    const ok = await runState('file.managed', { name, contents: 'good line', check_cmd: 'grep -q "^good"' });
    expect(ok.result).toBe(true);
    expect(fs.readFileSync(name, 'utf8')).toBe('good line\n');
  });

  it('replace: False only creates a missing file', async () => {
    const d = tempDir();
    const name = path.join(d, 'f');
    await convergeTwice('file.managed', { name, contents: 'first', replace: false });
    const r = await runState('file.managed', { name, contents: 'second', replace: false });
    expect(r.changes).toEqual({});
    expect(fs.readFileSync(name, 'utf8')).toBe('first\n');
  });

  it('create: False leaves a missing file missing', async () => {
    const d = tempDir();
    const r = await runState('file.managed', { name: path.join(d, 'f'), contents: 'x', create: false });
    expect(r).toMatchObject({ result: true, changes: {} });
    expect(fs.existsSync(path.join(d, 'f'))).toBe(false);
  });

  it('makedirs with dir_mode; without makedirs a missing parent fails', async () => {
    const d = tempDir();
    const name = path.join(d, 'a/b/f');
    const fail = await runState('file.managed', { name, contents: 'x' });
    expect(fail.result).toBe(false);
    expect(fail.comment).toContain('Parent directory not present');
    await convergeTwice('file.managed', { name, contents: 'x', makedirs: true, dir_mode: '0750' });
    expect(modeOf(path.join(d, 'a'))).toBe('0750');
    expect(modeOf(path.join(d, 'a/b'))).toBe('0750');
  });

  it('backup: minion keeps the old file under the cache (beneath --root)', async () => {
    const root = tempDir('tsalt-root-');
    fs.mkdirSync(path.join(root, 'etc'));
    fs.writeFileSync(path.join(root, 'etc/app.conf'), 'v1\n');
    await convergeTwice('file.managed', { name: '/etc/app.conf', contents: 'v2', backup: 'minion' }, { root });
    const bdir = path.join(root, 'var/cache/tsalt/file_backup/etc');
    const backups = fs.readdirSync(bdir);
    expect(backups).toHaveLength(1);
    expect(backups[0]).toMatch(/^app\.conf_\w{3}_\w{3}_\d{2}_\d{2}:\d{2}:\d{2}_\d{6}_\d{4}$/);
    expect(fs.readFileSync(path.join(bdir, backups[0]!), 'utf8')).toBe('v1\n');
    expect(fs.readFileSync(path.join(root, 'etc/app.conf'), 'utf8')).toBe('v2\n');
  });

  it('--root maps the path; messages and changes show the name as written', async () => {
    const root = tempDir('tsalt-root-');
    const r = await convergeTwice('file.managed', { name: '/srv/tsalt-root-test/x', contents: 'x', makedirs: true }, { root });
    expect(r.comment).toBe('File /srv/tsalt-root-test/x updated');
    expect(fs.readFileSync(path.join(root, 'srv/tsalt-root-test/x'), 'utf8')).toBe('x\n');
    expect(fs.existsSync('/srv/tsalt-root-test')).toBe(false);
  });

  it('binary content is described, not diffed; show_changes: False hides the diff', async () => {
    const d = tempDir();
    const src = path.join(d, 'bin');
    fs.writeFileSync(src, Buffer.from([0, 1, 2, 255]));
    const name = path.join(d, 'f');
    fs.writeFileSync(name, Buffer.from([0, 9]));
    const r = await convergeTwice('file.managed', { name, source: src });
    expect(r.changes).toEqual({ diff: 'Replace binary file' });
    fs.writeFileSync(name, 'text\n');
    const h = await runState('file.managed', { name, contents: 'other', show_changes: false });
    expect(h.changes).toEqual({ diff: '<show_changes=False>' });
  });

  it('contents_pillar with a nested key, and follows symlinks by default', async () => {
    const d = tempDir();
    const real = path.join(d, 'real');
    fs.writeFileSync(real, 'old\n');
    const link = path.join(d, 'link');
    fs.symlinkSync(real, link);
    await convergeTwice('file.managed', { name: link, contents_pillar: 'ssh:key' }, { pillar: { ssh: { key: 'ssh-ed25519 AAAA' } } });
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(real, 'utf8')).toBe('ssh-ed25519 AAAA\n');
    const miss = await runState('file.managed', { name: link, contents_pillar: 'ssh:nope' });
    expect(miss).toMatchObject({ result: false, comment: 'Pillar ssh:nope does not exist' });
  });

  it('refuses a directory as target and a relative name', async () => {
    const d = tempDir();
    expect((await runState('file.managed', { name: d, contents: 'x' })).comment).toContain('is a directory');
    expect((await runState('file.managed', { name: 'rel/x', contents: 'x' })).comment).toContain('not an absolute path');
  });

  it('shares one passwd read per run through the fact cache', async () => {
    const base = harnessBase();
    const d = tempDir();
    let reads = 0;
    const orig = base.facts.get.bind(base.facts);
    // the once-per-directory sweep of stale temp files is a fact of its own
    base.facts.get = ((k: string, l: () => Promise<unknown>) => orig(k, () => (k.startsWith('file:stale-temps:') || reads++, l()))) as typeof base.facts.get;
    for (const f of ['a', 'b', 'c']) await runState('file.managed', { name: path.join(d, f), contents: f, user: 'nobody' }, { base });
    expect(reads).toBe(1);
  });

  it('atomic write: a failed rename removes the temp file and leaves the target alone', async () => {
    const d = tempDir();
    const target = path.join(d, 'busy');
    fs.mkdirSync(target);
    fs.writeFileSync(path.join(target, 'inside'), 'x'); // a non-empty directory cannot be renamed over
    await expect(atomicWrite(target, Buffer.from('new'), { uid: 0, gid: 0, mode: 0o644 })).rejects.toThrow();
    expect(fs.readdirSync(d)).toEqual(['busy']);
    expect(fs.readFileSync(path.join(target, 'inside'), 'utf8')).toBe('x');
  });
});
