import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentMessageSchema, closeReason, decodeFrame, MasterMessageSchema } from '../../protocol/messages.js';
import { CliRequestSchema } from '../../protocol/cli-messages.js';
import { backoffDelay, backoffStep } from '../../agent/connection/client.js';
import { BundleCache, bundleHash, toWire, type BundleEntry } from '../../engine/tree/bundle.js';
import { tempDir } from '../helpers/harness.js';

const hello = { type: 'hello', version: 1, grains: { os: 'Debian' }, running: [], spooled: ['20240101120000123456'] };

describe('protocol frames', () => {
  it('accepts a well-formed message', () => {
    const d = decodeFrame(AgentMessageSchema, Buffer.from(JSON.stringify(hello)), false);
    expect(d).toEqual({ ok: true, msg: hello });
  });

  it.each([
    ['binary', Buffer.from(JSON.stringify(hello)), true, /binary frame/],
    ['not JSON', Buffer.from('{"type":'), false, /not JSON/],
    ['unknown type', Buffer.from('{"type":"pillar_get","id":"web2"}'), false, /bad message \(type "pillar_get"\)/],
    ['an agent naming itself', Buffer.from(JSON.stringify({ ...hello, id: 'web2' })), false, /bad message/],
    ['bad jid', Buffer.from('{"type":"job_ack","jid":"../../etc"}'), false, /jid: a jid is 20 digits/],
    ['array', Buffer.from('[1,2]'), false, /bad message/],
  ])('refuses %s', (_n, data, binary, reason) => {
    const d = decodeFrame(AgentMessageSchema, data, binary);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).toMatch(reason);
  });

  it('never repeats frame content in the reason (it may hold secrets)', () => {
    const d = decodeFrame(MasterMessageSchema, Buffer.from(JSON.stringify({ type: 'job', jid: '1', spec: { kind: 'apply', pillar: { password: 'hunter2' } } })), false);
    expect(d.ok).toBe(false);
    if (!d.ok) expect(d.reason).not.toMatch(/hunter2/);
  });

  it('CLI requests are strict too', () => {
    expect(CliRequestSchema.safeParse({ type: 'keys.accept', ids: ['a'], all: false }).success).toBe(true);
    expect(CliRequestSchema.safeParse({ type: 'apply', target: '*', tgt_type: 'everything', sls: [], test: false, timeout_s: 5, user: 'u' }).success).toBe(false);
    expect(CliRequestSchema.safeParse({ type: 'apply', target: '*', tgt_type: 'glob', sls: [], test: false, timeout_s: 5, user: 'u', batch: '10%' }).success).toBe(true);
    expect(CliRequestSchema.safeParse({ type: 'apply', target: '*', tgt_type: 'glob', sls: [], test: false, timeout_s: 5, user: 'u', batch: 'ten' }).success).toBe(false);
  });
});

describe('reconnect backoff', () => {
  it('refused rounds stay on the second step; other failures climb', () => {
    expect([0, 1, 2, 9].map((n) => backoffStep(n, true))).toEqual([0, 1, 1, 1]);
    expect([0, 1, 2, 9].map((n) => backoffStep(n, false))).toEqual([0, 1, 2, 9]);
  });
  it('grows exponentially, is capped, and is jittered within [cap/2, cap]', () => {
    expect(backoffDelay(0, 1, 60, () => 0)).toBe(500);
    expect(backoffDelay(0, 1, 60, () => 1)).toBe(1000);
    expect(backoffDelay(3, 1, 60, () => 1)).toBe(8000);
    expect(backoffDelay(20, 1, 60, () => 0)).toBe(30_000);
    expect(backoffDelay(20, 1, 60, () => 1)).toBe(60_000);
    const many = Array.from({ length: 50 }, () => backoffDelay(4, 1, 60));
    expect(new Set(many).size).toBeGreaterThan(1);
  });
});

describe('bundles', () => {
  const entries: BundleEntry[] = [
    { path: 'top.sls', data: Buffer.from("base:\n  '*': [web]\n"), executable: false },
    { path: 'web/init.sls', data: Buffer.from('x:\n  test.nop: []\n'), executable: false },
    { path: 'web/files/run.sh', data: Buffer.from([0, 1, 2, 255]), executable: true },
  ];

  it('hash covers paths, bytes and the executable bit, not order', () => {
    const h = bundleHash(entries);
    expect(bundleHash([...entries].reverse())).toBe(h);
    expect(bundleHash(entries.map((e, i) => (i === 2 ? { ...e, executable: false } : e)))).not.toBe(h);
    expect(bundleHash(entries.map((e, i) => (i === 1 ? { ...e, path: 'web/init2.sls' } : e)))).not.toBe(h);
  });

  it('verifies and unpacks into a cached tree', async () => {
    const cache = new BundleCache(tempDir());
    const hash = bundleHash(entries);
    expect(cache.has(hash)).toBe(false);
    const tree = cache.store({ type: 'bundle', hash, revision: 'abc', files: toWire(entries) }, hash);
    expect(cache.has(hash)).toBe(true);
    expect(tree.label).toBe('revision abc');
    expect((await tree.read('salt://web/files/run.sh')).equals(Buffer.from([0, 1, 2, 255]))).toBe(true);
    expect(fs.statSync(tree.resolve('web/files/run.sh')).mode & 0o111).not.toBe(0);
    expect(await tree.list('')).toEqual(['top.sls', 'web/files/run.sh', 'web/init.sls']);
  });

  it('refuses a bundle whose content does not match, or whose paths leave the tree', () => {
    const dir = tempDir();
    const cache = new BundleCache(dir);
    const hash = bundleHash(entries);
    const wire = toWire(entries);
    const tampered = wire.map((f, i) => (i === 0 ? { ...f, data: Buffer.from('evil').toString('base64') } : f));
    expect(() => cache.store({ type: 'bundle', hash, revision: 'r', files: tampered }, hash)).toThrow(/does not match/);
    const escape = [{ path: '../../etc/cron.d/x', data: '' }];
    expect(() => cache.store({ type: 'bundle', hash, revision: 'r', files: escape }, hash)).toThrow(/leaves the state tree/);
    const abs = [{ path: '/etc/passwd', data: '' }];
    expect(() => cache.store({ type: 'bundle', hash, revision: 'r', files: abs }, hash)).toThrow(/not a plain tree path/);
    expect(() => cache.store({ type: 'bundle', hash: 'a'.repeat(64), revision: 'r', files: wire }, hash)).toThrow(/not the one the job named/);
    expect(fs.readdirSync(path.join(dir, 'bundles'))).toEqual([]);
  });
});

describe('closeReason', () => {
  it('fits a close frame (123 bytes) on a character boundary, however many bytes a character takes', () => {
    expect(closeReason('key rejected')).toBe('key rejected');
    const bad = decodeFrame(AgentMessageSchema, JSON.stringify({ type: '€'.repeat(60) }), false);
    expect(bad.ok).toBe(false);
    const reason = bad.ok ? '' : bad.reason;
    expect(Buffer.byteLength(reason.slice(0, 120))).toBeGreaterThan(123); // what was sent before
    const r = closeReason(reason);
    expect(Buffer.byteLength(r)).toBeLessThanOrEqual(123);
    expect(reason.startsWith(r)).toBe(true);
    expect(Buffer.byteLength(closeReason('😀'.repeat(40)))).toBe(120); // 4-byte characters: 30 of them, none cut
  });
});
