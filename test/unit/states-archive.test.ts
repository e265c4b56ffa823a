// archive.extracted with real tar/zip archives, a real HTTP server on loopback and the state tree.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { exec, execOk } from '../../engine/run/exec.js';
import { runState, tempDir } from '../helpers/harness.js';

const work = tempDir('tsalt-archive-');
const src = path.join(work, 'src');
const tree = path.join(work, 'tree');
let server: http.Server;
let base = '';
const users: string[] = [];

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A minimal ustar writer: lets a test build archives tar itself refuses to create. */
function tarOf(entries: { name: string; type?: '0' | '2' | '5'; body?: string; link?: string }[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const body = Buffer.from(e.body ?? '');
    const h = Buffer.alloc(512);
    h.write(e.name, 0, 100);
    h.write(e.type === '5' ? '0000755\0' : '0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(body.length.toString(8).padStart(11, '0') + '\0', 124);
    h.write('00000000000\0', 136);
    h.write('        ', 148);
    h.write(e.type ?? '0', 156);
    if (e.link) h.write(e.link, 157, 100);
    h.write('ustar\0', 257);
    h.write('00', 263);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    blocks.push(h, body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

async function converge(args: Record<string, unknown>, o: { root?: string; treeDir?: string } = {}) {
  const t = await runState('archive.extracted', args, { ...o, test: true });
  expect(t.result, t.comment).toBeNull();
  const r = await runState('archive.extracted', args, o);
  expect(r.result, r.comment).toBe(true);
  expect(Object.keys(r.changes).sort()).toEqual(Object.keys(t.changes).sort());
  const again = await runState('archive.extracted', args, o);
  expect(again.result, again.comment).toBe(true);
  expect(again.changes).toEqual({});
  return r;
}

function leftovers(dir: string): string[] {
  return fs.readdirSync(dir).filter((f) => f.startsWith('.tsalt-archive'));
}

beforeAll(async () => {
  fs.mkdirSync(path.join(src, 'app-1.0', 'bin'), { recursive: true });
  fs.writeFileSync(path.join(src, 'app-1.0', 'README'), 'hello\n');
  fs.writeFileSync(path.join(src, 'app-1.0', 'bin', 'run'), '#!/bin/sh\necho run\n', { mode: 0o755 });
  fs.symlinkSync('bin/run', path.join(src, 'app-1.0', 'start'));
  await execOk(['tar', '-czf', path.join(work, 'app.tar.gz'), '-C', src, 'app-1.0']);
  await execOk(['zip', '-qry', path.join(work, 'app.zip'), 'app-1.0'], { cwd: src });
  fs.mkdirSync(path.join(src, 'two'));
  fs.writeFileSync(path.join(src, 'loose.txt'), 'x\n');
  await execOk(['tar', '-cf', path.join(work, 'bomb.tar'), '-C', src, 'app-1.0', 'loose.txt']);
  fs.mkdirSync(tree);
  fs.copyFileSync(path.join(work, 'app.tar.gz'), path.join(tree, 'app.tar.gz'));

  server = http.createServer((req, res) => {
    const f = path.join(work, path.basename(req.url ?? ''));
    if (req.url === '/moved.tar.gz') {
      res.writeHead(302, { location: '/app.tar.gz' }).end();
    } else if (fs.existsSync(f) && fs.statSync(f).isFile()) {
      res.writeHead(200).end(fs.readFileSync(f));
    } else res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  for (const u of users) await exec(['userdel', u]);
  fs.rmSync(work, { recursive: true, force: true });
});

describe('archive.extracted', () => {
  it('extracts a local tar.gz into a new directory, then is a no-op', async () => {
    const name = path.join(work, 'out', 'opt');
    const r = await converge({ name, source: path.join(work, 'app.tar.gz') });
    expect(r.changes.directories_created).toEqual([name]);
    expect([...(r.changes.extracted_files as string[])].sort()).toEqual(
      ['app-1.0/', 'app-1.0/README', 'app-1.0/bin/', 'app-1.0/bin/run', 'app-1.0/start'].sort(),
    );
    expect(r.comment).toBe(`${path.join(work, 'app.tar.gz')} extracted to ${name}`);
    expect(fs.readFileSync(path.join(name, 'app-1.0', 'start'), 'utf8')).toBe('#!/bin/sh\necho run\n');
    expect(fs.lstatSync(path.join(name, 'app-1.0', 'start')).isSymbolicLink()).toBe(true);
    expect(fs.statSync(path.join(name, 'app-1.0', 'bin', 'run')).mode & 0o777).toBe(0o755);
    expect(leftovers(path.dirname(name))).toEqual([]);
  });

  it('extracts again when a file of the archive went missing (Salt checks every path)', async () => {
    const name = path.join(work, 'out', 'opt');
    fs.rmSync(path.join(name, 'app-1.0', 'README'));
    fs.writeFileSync(path.join(name, 'other'), 'kept\n');
    const r = await converge({ name, source: path.join(work, 'app.tar.gz') });
    expect(r.changes.directories_created).toBeUndefined();
    expect(fs.readFileSync(path.join(name, 'app-1.0', 'README'), 'utf8')).toBe('hello\n');
    expect(fs.readFileSync(path.join(name, 'other'), 'utf8')).toBe('kept\n');
  });

  it('extracts a zip, and salt:// sources from the tree', async () => {
    const z = path.join(work, 'zip-out');
    await converge({ name: z, source: `file://${path.join(work, 'app.zip')}` });
    expect(fs.readFileSync(path.join(z, 'app-1.0', 'README'), 'utf8')).toBe('hello\n');
    expect(fs.lstatSync(path.join(z, 'app-1.0', 'start')).isSymbolicLink()).toBe(true);
    const t = path.join(work, 'tree-out');
    await converge({ name: t, source: 'salt://app.tar.gz' }, { treeDir: tree });
    expect(fs.existsSync(path.join(t, 'app-1.0', 'bin', 'run'))).toBe(true);
  });

  it('downloads over HTTP only with a verified source_hash', async () => {
    const name = path.join(work, 'http-out');
    const url = `${base}/moved.tar.gz`;
    const none = await runState('archive.extracted', { name, source: url });
    expect(none.result).toBe(false);
    expect(none.comment).toMatch(/please set source_hash or set skip_verify to True/);
    const bad = await runState('archive.extracted', { name, source: url, source_hash: `sha256=${'0'.repeat(64)}` });
    expect(bad.result).toBe(false);
    expect(bad.comment).toMatch(/does not match the desired source_hash/);
    expect(fs.existsSync(name)).toBe(false);
    await converge({ name, source: url, source_hash: sha256(path.join(work, 'app.tar.gz')) });
    expect(fs.readFileSync(path.join(name, 'app-1.0', 'README'), 'utf8')).toBe('hello\n');
    const skip = path.join(work, 'http-skip');
    await converge({ name: skip, source: `${base}/app.zip`, skip_verify: true });
    expect(fs.existsSync(path.join(skip, 'app-1.0', 'README'))).toBe(true);
  });

  it('fails clearly for a missing or unreachable source', async () => {
    const name = path.join(work, 'never');
    const missing = await runState('archive.extracted', { name, source: `${base}/nope.tar.gz`, skip_verify: true });
    expect(missing.result).toBe(false);
    expect(missing.comment).toMatch(/HTTP 404/);
    const closed = await runState('archive.extracted', { name, source: 'http://127.0.0.1:9/x.tar.gz', skip_verify: true });
    expect(closed.result).toBe(false);
    expect(closed.comment).toMatch(/Failed to fetch .*ECONNREFUSED/);
    const local = await runState('archive.extracted', { name, source: path.join(work, 'nope.tar') });
    expect(local.result).toBe(false);
    expect(local.comment).toMatch(/does not exist/);
    const corrupt = path.join(work, 'corrupt.tar.gz');
    fs.writeFileSync(corrupt, 'this is not an archive');
    const c = await runState('archive.extracted', { name, source: corrupt });
    expect(c.result).toBe(false);
    expect(fs.existsSync(name)).toBe(false);
    expect(leftovers(work)).toEqual([]);
  });

  it('enforces a single top-level directory unless told not to', async () => {
    const name = path.join(work, 'bomb-out');
    const r = await runState('archive.extracted', { name, source: path.join(work, 'bomb.tar') });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/does not have a single top-level directory.*enforce_toplevel/s);
    expect(fs.existsSync(name)).toBe(false);
    await converge({ name, source: path.join(work, 'bomb.tar'), enforce_toplevel: false });
    expect(fs.existsSync(path.join(name, 'loose.txt'))).toBe(true);
  });

  it('never writes outside name', async () => {
    const name = path.join(work, 'evil-out', 'x');
    const cases: [string, Parameters<typeof tarOf>[0], RegExp][] = [
      ['dotdot.tar', [{ name: 'top/', type: '5' }, { name: 'top/../../escaped', body: 'pwned' }], /leaves the target directory/],
      ['abs.tar', [{ name: `${work}/escaped-abs`, body: 'pwned' }], /absolute path/],
      ['link.tar', [{ name: 'top/', type: '5' }, { name: 'top/l', type: '2', link: '../../..' }], /symlink .* outside the target/],
      ['abslink.tar', [{ name: 'top/', type: '5' }, { name: 'top/l', type: '2', link: '/etc' }], /symlink .* outside the target/],
    ];
    for (const [file, entries, msg] of cases) {
      fs.writeFileSync(path.join(work, file), tarOf(entries));
      const r = await runState('archive.extracted', { name, source: path.join(work, file), enforce_toplevel: false });
      expect(r.result, file).toBe(false);
      expect(r.comment).toMatch(msg);
    }
    // zip symlink targets are only known once extracted: the staging check catches them
    const zdir = path.join(work, 'zsrc');
    fs.mkdirSync(path.join(zdir, 'top'), { recursive: true });
    fs.symlinkSync('/etc', path.join(zdir, 'top', 'etc'));
    await execOk(['zip', '-qry', path.join(work, 'evil.zip'), 'top'], { cwd: zdir });
    const z = await runState('archive.extracted', { name, source: path.join(work, 'evil.zip') });
    expect(z.result).toBe(false);
    expect(z.comment).toMatch(/symlink to \/etc, outside the target directory/);
    expect(fs.existsSync(path.join(work, 'escaped'))).toBe(false);
    expect(fs.existsSync(path.join(work, 'escaped-abs'))).toBe(false);
    expect(fs.existsSync(path.dirname(name)) ? fs.readdirSync(path.dirname(name)) : []).toEqual([]);
  });

  it('if_missing, trim_output and clean', async () => {
    const name = path.join(work, 'opts-out');
    fs.mkdirSync(name);
    const r = await runState('archive.extracted', { name, source: path.join(work, 'app.tar.gz'), if_missing: name });
    expect(r).toMatchObject({ result: true, changes: {}, comment: `Path ${name} exists` });
    const t = await converge({ name, source: path.join(work, 'app.tar.gz'), trim_output: 2 });
    expect(t.changes.extracted_files).toHaveLength(2);
    fs.writeFileSync(path.join(name, 'app-1.0', 'stale'), 'old\n');
    const c = await runState('archive.extracted', { name, source: path.join(work, 'app.tar.gz'), clean: true, overwrite: true });
    expect(c.result, c.comment).toBe(true);
    expect(c.changes.removed).toEqual([path.join(name, 'app-1.0')]);
    expect(fs.existsSync(path.join(name, 'app-1.0', 'stale'))).toBe(false);
    expect(fs.existsSync(path.join(name, 'app-1.0', 'README'))).toBe(true);
  });

  it('user and group own what was extracted, and are enforced afterwards', async () => {
    const user = `tsa${crypto.randomBytes(3).toString('hex')}`;
    await execOk(['useradd', '-M', '-s', '/usr/sbin/nologin', user]);
    users.push(user);
    const uid = Number((await execOk(['id', '-u', user])).stdout.trim());
    const gid = Number((await execOk(['id', '-g', user])).stdout.trim());
    const name = path.join(work, 'owned');
    const args = { name, source: path.join(work, 'app.tar.gz'), user, group: user };
    await converge(args);
    for (const p of ['app-1.0', 'app-1.0/README', 'app-1.0/start']) {
      const st = fs.lstatSync(path.join(name, p));
      expect([st.uid, st.gid], p).toEqual([uid, gid]);
    }
    fs.lchownSync(path.join(name, 'app-1.0', 'README'), 0, 0);
    const r = await converge(args);
    expect(r.changes).toEqual({ 'updated ownership': true });
    expect(fs.statSync(path.join(name, 'app-1.0', 'README')).uid).toBe(uid);
    const nouser = await runState('archive.extracted', { ...args, user: 'no-such-user-tsalt' });
    expect(nouser).toMatchObject({ result: false, comment: 'User no-such-user-tsalt does not exist' });
  });

  it('maps name under --root', async () => {
    const root = path.join(work, 'root');
    fs.mkdirSync(root);
    await converge({ name: '/opt/app', source: path.join(work, 'app.tar.gz') }, { root });
    expect(fs.existsSync(path.join(root, 'opt', 'app', 'app-1.0', 'README'))).toBe(true);
  });

  it('rejects tar options that would leave the target', async () => {
    const r = await runState('archive.extracted', { name: path.join(work, 'o2'), source: path.join(work, 'app.tar.gz'), options: '-C /' });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/not allowed/);
    await converge({ name: path.join(work, 'o3'), source: path.join(work, 'app.tar.gz'), options: '--strip-components=1', enforce_toplevel: false });
    expect(fs.existsSync(path.join(work, 'o3', 'README'))).toBe(true);
  });
});
