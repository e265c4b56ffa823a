/**
 * What the agents of one process (`tsalt agent --config a --config b ...`) share between their
 * state runs to keep a no-op job cheap (issue 14), and that sharing never lets one run's data
 * reach another's: bundle trees of one hash read a file once, rendered SLS text is parsed once,
 * the salt namespace wraps its functions when reached; the spool knows its jids without a readdir
 * and keeps its returns in one journal (two appends per job, no file made or removed).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { BundleCache } from '../../engine/tree/bundle.js';
import { tempDir } from '../helpers/harness.js';
import { bundleMessage } from '../helpers/tree.js';
import { parseYaml } from '../../engine/compile/sls-file.js';
import { saltFunctions } from '../../engine/render/salt-functions.js';
import { isCallable } from '../../engine/render/sandbox.js';
import { Spool, spooledJids } from '../../agent/connection/spool.js';
import { decodeFrame, MasterMessageSchema, ValidFrames } from '../../protocol/messages.js';
import { z } from 'zod';
import { makeLogger } from '../../core/log.js';
import { TreeError } from '../../engine/tree/source.js';

const bundle = bundleMessage;

describe('bundle trees of one hash in one process', () => {
  it('serve what the first agent read to the others, each a copy of its own', () => {
    const b = bundle({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 'x:\n  test.nop: []\n' });
    const one = new BundleCache(tempDir('tsalt-share-a-')).store(b, b.hash);
    const twoCache = new BundleCache(tempDir('tsalt-share-b-'));
    twoCache.store(b, b.hash);
    const two = twoCache.open(b.hash, 'r1');
    const first = one.readSync('top.sls');
    // the second agent's copy on disk is gone: its read is the shared one, the same bytes
    fs.rmSync(path.join(two.dir, 'top.sls'));
    expect(two.readSync('top.sls').equals(first)).toBe(true);
    expect(two.existsSync('top.sls')).toBe(true);
    // a caller that writes into what it got changes nobody else's
    first.fill(0x41);
    two.readSync('top.sls').fill(0x42);
    expect(two.readSync('top.sls').toString()).toBe("base:\n  '*':\n    - a\n");
    expect(one.readSync('top.sls').toString()).toBe("base:\n  '*':\n    - a\n");
  });

  it('never share between hashes, and still refuse paths that leave the tree', () => {
    const b1 = bundle({ 'top.sls': 'one\n' });
    const b2 = bundle({ 'top.sls': 'two\n' });
    const c = new BundleCache(tempDir('tsalt-share-c-'));
    expect(c.store(b1, b1.hash).readSync('top.sls').toString()).toBe('one\n');
    expect(c.store(b2, b2.hash).readSync('top.sls').toString()).toBe('two\n');
    expect(() => c.open(b1.hash, 'r1').readSync('../../etc/passwd')).toThrow(TreeError);
    expect(c.open(b1.hash, 'r1').existsSync('missing.sls')).toBe(false);
  });
});

describe('rendered SLS parsed once per process', () => {
  it('gives every run its own copy of the data', () => {
    const text = 'web:\n  pkg.installed:\n    - name: nginx\nweb2: {a: [1, 2]}\n';
    parseYaml(text, 'a.sls'); // parsed, and kept
    const a = parseYaml(text, 'a.sls');
    (a.data as Record<string, unknown>).web = 'changed by run 1';
    (a.data as Record<string, { a: number[] }>).web2!.a.push(3);
    a.positions.set('web', { line: 99, column: 1 });
    const b = parseYaml(text, 'a.sls');
    expect(b.data).toEqual({ web: { 'pkg.installed': [{ name: 'nginx' }] }, web2: { a: [1, 2] } });
    expect(b.positions.get('web')).toEqual({ line: 1, column: 1 });
    expect(b.data).not.toBe(a.data);
  });

  it('still reports text that does not parse, every time', () => {
    for (let i = 0; i < 2; i++) expect(() => parseYaml('a: 1\na: 2\n', 'bad.sls')).toThrow(/bad\.sls|duplicated mapping key/);
  });
});

describe('the salt namespace', () => {
  it('wraps each function as a sandbox helper when reached, the same one each time, whichever way it is read', () => {
    const salt = saltFunctions({ os_family: 'Debian' }, { k: 'v' }, {});
    const ping = salt['test.ping'];
    expect(isCallable(ping)).toBe(true);
    expect(salt['test.ping']).toBe(ping);
    expect(salt['pillar.get']!('k')).toBe('v');
    const entries = Object.entries(salt);
    expect(entries.length).toBeGreaterThan(20);
    for (const [, f] of entries) expect(isCallable(f)).toBe(true);
    expect(Object.fromEntries(entries)['test.ping']).toBe(ping);
    expect(Object.getOwnPropertyDescriptor(salt, 'test.ping')?.value).toBe(ping);
    expect(salt['no.such']).toBeUndefined();
    expect('test.ping' in salt).toBe(true);
    expect('no.such' in salt).toBe(false);
    expect(Object.keys(salt)).toContain('pillar.get');
  });
});

describe("the master's frames, checked once per process", () => {
  const job = {
    type: 'job',
    jid: '20261206180000000009',
    spec: { kind: 'apply', revision: 'r1', bundle: 'a'.repeat(64), sls: [], test: false, pillar: { k: { deep: [1] } } },
  };
  it('give every agent its own message, and refuse what does not parse every time', () => {
    const valid = new ValidFrames();
    const text = JSON.stringify(job);
    const one = decodeFrame(MasterMessageSchema, Buffer.from(text), false, valid);
    expect(valid.has(MasterMessageSchema, text)).toBe(true);
    const two = decodeFrame(MasterMessageSchema, Buffer.from(text), false, valid);
    expect(one.ok && two.ok).toBe(true);
    if (!one.ok || !two.ok) return;
    expect(two.msg).toEqual(job);
    expect(two.msg).not.toBe(one.msg);
    ((one.msg as typeof job).spec.pillar.k.deep as number[]).push(2);
    expect((decodeFrame(MasterMessageSchema, Buffer.from(text), false, valid) as unknown as { msg: typeof job }).msg.spec.pillar.k.deep).toEqual([1]);
    const bad = JSON.stringify({ ...job, jid: 'x' });
    for (let i = 0; i < 2; i++) expect(decodeFrame(MasterMessageSchema, Buffer.from(bad), false, valid).ok).toBe(false);
    // a text is known per schema: good for one says nothing for another
    expect(decodeFrame(z.strictObject({ type: z.literal('other') }), Buffer.from(text), false, valid).ok).toBe(false);
  });

  it('are checked each time when the schema changes what it parses (defaults, transforms)', () => {
    const valid = new ValidFrames();
    const schema = z.object({ a: z.string().default('d'), n: z.string().transform(Number) });
    const text = JSON.stringify({ n: '5' });
    for (let i = 0; i < 2; i++) {
      const d = decodeFrame(schema, Buffer.from(text), false, valid);
      expect(d.ok && d.msg).toEqual({ a: 'd', n: 5 });
    }
    expect(valid.has(schema, text)).toBe(false);
  });
});

describe('the spool', () => {
  /** every waiting return, read back from disk as a flush does */
  const all = (s: Spool) => s.jids().flatMap((j) => s.read(j) ?? []);
  it('knows the jids it holds, those found at its start too, without reading its directory', () => {
    const cache = tempDir('tsalt-spool-');
    const log = makeLogger('error', 'test', () => {});
    const s = new Spool(cache, log);
    const ret = { type: 'job_return' as const, jid: '20261206180000000001', body: { kind: 'error' as const, error: 'x' } };
    expect(s.has(ret.jid)).toBe(false);
    s.put(ret);
    expect(s.has(ret.jid)).toBe(true);
    expect(new Spool(cache, log).has(ret.jid)).toBe(true); // a restarted agent
    s.remove(ret.jid);
    expect(s.has(ret.jid)).toBe(false);
    expect(s.jids()).toEqual([]);
  });

  it('forgets a damaged file it moved aside', () => {
    const cache = tempDir('tsalt-spool-');
    const s = new Spool(cache, makeLogger('error', 'test', () => {}));
    const jid = '20261206180000000002';
    fs.writeFileSync(path.join(cache, 'spool', `${jid}.json`), '{not json');
    const s2 = new Spool(cache, makeLogger('error', 'test', () => {}));
    expect(s2.has(jid)).toBe(true);
    expect(all(s2)).toEqual([]);
    expect(s2.has(jid)).toBe(false);
    expect(s.jids()).toEqual([]);
  });

  const ret = (n: number, error = 'x') => ({ type: 'job_return' as const, jid: `2026120618000000${String(n).padStart(4, '0')}`, body: { kind: 'error' as const, error } });

  it('keeps what waits across a restart, in one journal file: returns in the order spooled, acknowledged ones gone', () => {
    const cache = tempDir('tsalt-spool-');
    const log = makeLogger('error', 'test', () => {});
    const s = new Spool(cache, log);
    for (const n of [3, 1, 2]) s.put(ret(n, `e${n}`));
    s.remove(ret(1).jid);
    expect(fs.readdirSync(path.join(cache, 'spool'))).toEqual(['returns.jsonl']);
    expect(spooledJids(cache)).toEqual([ret(2).jid, ret(3).jid]);
    const back = new Spool(cache, log);
    expect(back.jids()).toEqual([ret(2).jid, ret(3).jid]);
    expect(all(back)).toEqual([ret(2, 'e2'), ret(3, 'e3')]);
    back.remove(ret(2).jid);
    back.remove(ret(3).jid);
    expect(new Spool(cache, log).jids()).toEqual([]);
    expect(spooledJids(cache)).toEqual([]);
  });

  it('sets aside a line cut short (the agent died writing it), keeps the rest, and delivers returns spooled as files by an earlier version', () => {
    const cache = tempDir('tsalt-spool-');
    const lines: string[] = [];
    const log = makeLogger('error', 'test', (l) => lines.push(l));
    new Spool(cache, log).put(ret(4));
    const journal = path.join(cache, 'spool', 'returns.jsonl');
    fs.appendFileSync(journal, JSON.stringify(ret(5)).slice(0, 30));
    fs.writeFileSync(path.join(cache, 'spool', `${ret(6).jid}.json`), JSON.stringify(ret(6)));
    const s = new Spool(cache, log);
    expect(lines.join('\n')).toMatch(/returns\.jsonl: 1 unreadable line.*moved aside/);
    expect(fs.readFileSync(`${journal}.bad`, 'utf8')).toBe(JSON.stringify(ret(5)).slice(0, 30) + '\n');
    expect(all(s)).toEqual([ret(4), ret(6)]);
    s.remove(ret(6).jid);
    expect(fs.existsSync(path.join(cache, 'spool', `${ret(6).jid}.json`))).toBe(false);
    s.put(ret(7));
    expect(new Spool(cache, log).jids()).toEqual([ret(4).jid, ret(7).jid]);
  });

  it('empties its journal once nothing waits in it and it has grown', () => {
    const cache = tempDir('tsalt-spool-');
    const s = new Spool(cache, makeLogger('error', 'test', () => {}));
    const journal = path.join(cache, 'spool', 'returns.jsonl');
    const big = 'y'.repeat(100_000);
    for (let n = 10; n < 14; n++) s.put(ret(n, big));
    for (let n = 10; n < 13; n++) s.remove(ret(n).jid);
    expect(fs.statSync(journal).size).toBeGreaterThan(400_000); // one still waits
    s.remove(ret(13).jid);
    expect(fs.statSync(journal).size).toBe(0);
    s.put(ret(14));
    expect(spooledJids(cache)).toEqual([ret(14).jid]);
  });

  it('a last line that lost only its newline is kept, and the next return does not run into it', () => {
    const cache = tempDir('tsalt-spool-');
    const log = makeLogger('error', 'test', () => {});
    const journal = path.join(cache, 'spool', 'returns.jsonl');
    new Spool(cache, log).put(ret(20));
    fs.writeFileSync(journal, fs.readFileSync(journal, 'utf8').trimEnd());
    const s = new Spool(cache, log);
    s.put(ret(21));
    const back = new Spool(cache, log);
    expect(all(back)).toEqual([ret(20), ret(21)]);
    expect(fs.existsSync(`${journal}.bad`)).toBe(false);
  });

  it('rewrites its journal with what waits once half of it is delivered, reading each back from where it moved', () => {
    const cache = tempDir('tsalt-spool-');
    const s = new Spool(cache, makeLogger('error', 'test', () => {}));
    const journal = path.join(cache, 'spool', 'returns.jsonl');
    const big = (n: number) => ret(n, `e${n}-${'z'.repeat(400_000)}`);
    for (let n = 30; n < 42; n++) s.put(big(n));
    expect(fs.statSync(journal).size).toBeGreaterThan(12 * 400_000);
    for (let n = 30; n < 39; n++) s.remove(big(n).jid);
    // 3 of 12 wait: rewritten with the 6 waiting once half was delivered, then acks appended
    expect(fs.statSync(journal).size).toBeLessThan(7 * 400_000);
    expect(all(s)).toEqual([big(39), big(40), big(41)]);
    s.put(ret(42));
    expect(all(new Spool(cache, makeLogger('error', 'test', () => {})))).toEqual([big(39), big(40), big(41), ret(42)]);
  });
});

describe("an agent's runs at one revision", () => {
  it('share one renderer, and each run renders with its own grains and pillar', async () => {
    const { compile } = await import('../../engine/engine.js');
    const { makeRenderBase } = await import('../../engine/render/render-base.js');
    const b = bundle({
      'top.sls': "base:\n  '*':\n    - a\n",
      'a.sls': "{% set who = grains['id'] ~ '_' ~ pillar['n'] %}\nstate_{{ who }}:\n  test.nop: []\n{% if grains.get('extra') %}\nextra:\n  test.nop: []\n{% endif %}\n",
    });
    const cache = new BundleCache(tempDir('tsalt-share-r-'));
    cache.store(b, b.hash);
    const tree = cache.open(b.hash, 'r1');
    expect(cache.open(b.hash, 'r1')).toBe(tree);
    const cachedir = tempDir('tsalt-share-rc-');
    const base = (g: Record<string, unknown>) => makeRenderBase({ tree, grains: g, pillar: {}, opts: { cachedir }, compileCache: true });
    expect(base({}).renderer).toBe(base({ id: 'x' }).renderer);
    const ids = async (id: string, n: number, extra = false) =>
      (await compile({ tree, id, grains: { id, ...(extra ? { extra: true } : {}) }, pillar: { n }, test: true, opts: { cachedir } })).map((s) => s.id);
    expect(await ids('h1', 1, true)).toEqual(['state_h1_1', 'extra']);
    expect(await ids('h2', 2)).toEqual(['state_h2_2']);
    expect(await ids('h1', 3)).toEqual(['state_h1_3']);
  });
});
