/**
 * file.managed with http:// sources, against a real HTTP server on loopback: source_hash
 * required and checked before anything is written, hash files, fallbacks, no download when
 * the target already has the hash, templates over downloaded text.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';

const work = tempDir('tsalt-remote-');
const served = path.join(work, 'www');
const cachedir = path.join(work, 'cache');
let server: http.Server;
let base: string;
let requests: string[] = [];

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');
const CONF = 'listen 8080\n';
const TPL = 'port = {{ port }}\nhost = {{ grains["id"] }}\n';

beforeAll(async () => {
  fs.mkdirSync(served, { recursive: true });
  fs.writeFileSync(path.join(served, 'app.conf'), CONF);
  fs.writeFileSync(path.join(served, 'app.conf.j2'), TPL);
  fs.writeFileSync(
    path.join(served, 'SHA256SUMS'),
    `${sha256('other')}  other.conf\n${sha256(CONF)}  app.conf\n${sha256(TPL)} *app.conf.j2\n`,
  );
  server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const f = path.join(served, path.basename(req.url ?? ''));
    if (req.url === '/moved.conf') res.writeHead(301, { location: '/app.conf' }).end();
    else if (fs.existsSync(f)) res.writeHead(200).end(fs.readFileSync(f));
    else res.writeHead(404).end('not found');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  fs.rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  requests = [];
});

const opts = { opts: { cachedir } };

describe('file.managed from http(s)', () => {
  it('downloads, verifies source_hash, writes; a rerun neither changes nor downloads', async () => {
    const name = path.join(work, 'a', 'app.conf');
    fs.mkdirSync(path.dirname(name), { recursive: true });
    const args = { name, source: `${base}/app.conf`, source_hash: `sha256=${sha256(CONF)}` };
    const r = await convergeTwice('file.managed', args, opts);
    expect(r.changes).toEqual({ diff: 'New file' });
    expect(fs.readFileSync(name, 'utf8')).toBe(CONF);
    requests = [];
    // the target already has the hash: no request at all (Salt's shortcut), even with the
    // download cache gone
    fs.rmSync(cachedir, { recursive: true, force: true });
    expect((await runState('file.managed', args, opts)).changes).toEqual({});
    expect(requests).toEqual([]);
  });

  it('refuses a remote source without source_hash, writing nothing', async () => {
    const name = path.join(work, 'nohash.conf');
    const r = await runState('file.managed', { name, source: `${base}/app.conf` }, opts);
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/Unable to verify upstream hash of source file .*app\.conf, please set source_hash or set skip_verify to True/);
    expect(fs.existsSync(name)).toBe(false);
    expect(requests).toEqual([]);
  });

  it('a wrong hash fails the state and leaves the good file as it was', async () => {
    const name = path.join(work, 'keep.conf');
    fs.writeFileSync(name, 'good\n');
    const r = await runState('file.managed', { name, source: `${base}/app.conf`, source_hash: sha256('something else') }, opts);
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/does not match the desired source_hash sha256=/);
    expect(fs.readFileSync(name, 'utf8')).toBe('good\n');
    expect(fs.readdirSync(path.join(cachedir, 'downloads')).filter((f) => f.includes('.part-'))).toEqual([]);
  });

  it('takes the hash from a published hash file, by the file name', async () => {
    const name = path.join(work, 'sums.conf');
    const r = await convergeTwice('file.managed', { name, source: `${base}/app.conf`, source_hash: `${base}/SHA256SUMS` }, opts);
    expect(r.result).toBe(true);
    expect(fs.readFileSync(name, 'utf8')).toBe(CONF);
  });

  it('falls back to the next source when one is missing, and follows redirects', async () => {
    const name = path.join(work, 'fallback.conf');
    const r = await convergeTwice(
      'file.managed',
      { name, source: [`${base}/missing.conf`, `${base}/moved.conf`], source_hash: sha256(CONF) },
      opts,
    );
    expect(r.result).toBe(true);
    expect(fs.readFileSync(name, 'utf8')).toBe(CONF);
  });

  it('renders a downloaded template with the state context', async () => {
    const name = path.join(work, 'rendered.conf');
    const r = await convergeTwice(
      'file.managed',
      { name, source: `${base}/app.conf.j2`, source_hash: `${base}/SHA256SUMS`, template: 'jinja', context: { port: 9000 } },
      { ...opts, grains: { id: 'web1', os_family: 'Debian' } },
    );
    expect(r.result).toBe(true);
    expect(fs.readFileSync(name, 'utf8')).toBe('port = 9000\nhost = web1\n');
  });

  it('skip_verify: True downloads without a hash; an unreachable server fails clearly', async () => {
    const name = path.join(work, 'unverified.conf');
    await convergeTwice('file.managed', { name, source: `${base}/app.conf`, skip_verify: true }, opts);
    expect(fs.readFileSync(name, 'utf8')).toBe(CONF);
    const gone = await runState('file.managed', { name: path.join(work, 'gone.conf'), source: `${base}/missing.conf`, skip_verify: true }, opts);
    expect(gone.result).toBe(false);
    expect(gone.comment).toMatch(/Failed to fetch .*missing\.conf: HTTP 404/);
    expect(fs.existsSync(path.join(work, 'gone.conf'))).toBe(false);
  });
});
