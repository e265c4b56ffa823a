/**
 * Work an agent no longer repeats on every no-op job (issue 14, bench/agent-job.mjs), and what
 * each job must still see as its own: the run base built without copying the engine request,
 * top.sls read and its targets compiled once per bundle tree (matched against each job's own
 * grains and pillar), the bundle cache's check for a bundle it has.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { makeRunBase, makeRunContext } from '../../engine/run/context.js';
import { makeRenderBase } from '../../engine/render/render-base.js';
import { BundleCache } from '../../engine/tree/bundle.js';
import { tempDir } from '../helpers/harness.js';
import { bundleMessage } from '../helpers/tree.js';
import { topMatches, topStats } from '../../engine/compile/top.js';
import { CompileError } from '../../engine/compile/errors.js';
import { saltStats, type Data } from '../../engine/render/salt-functions.js';
import { converge } from '../../engine/run/runner.js';
import { compileRun } from '../../engine/compile/compile.js';

describe('the run base', () => {
  it('carries every field of the render base, and each job its own grains, pillar and salt functions', () => {
    const b = bundleMessage({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 'x:\n  test.nop: []\n' });
    const tree = new BundleCache(tempDir('tsalt-runbase-')).store(b, b.hash);
    const opts = { cachedir: tempDir('tsalt-runbase-cache-') };
    const render = makeRenderBase({ tree, grains: { id: 'a' }, pillar: { k: 1 }, opts, compileCache: true });
    const one = makeRunBase({ tree, grains: { id: 'a' }, pillar: { k: 1 }, opts, test: false });
    for (const k of Object.keys(render)) expect(one, `run base field ${k}`).toHaveProperty(k);
    expect(one.renderer).toBe(render.renderer); // one renderer per bundle tree
    const two = makeRunBase({ tree, grains: { id: 'b' }, pillar: { k: 2 }, opts, test: true });
    const say = (base: typeof one) => makeRunContext(base, 'x', 'a').renderTemplate("{{ grains.id }} {{ pillar.k }} {{ salt['pillar.get']('k') }}", {}, 'x');
    expect(say(one)).toBe('a 1 1');
    expect(say(two)).toBe('b 2 2');
    expect(two.salt).not.toBe(one.salt);
    expect(two.facts).not.toBe(one.facts);
    expect(two.runData).not.toBe(one.runData);
  });

  it('makes its salt namespace when a template first reaches it, one per run; a run with no template code makes none', async () => {
    const b = bundleMessage({ 'top.sls': "base:\n  '*':\n    - a\n", 'a.sls': 'x:\n  test.nop: []\n', 't.sls': "x:\n  test.nop:\n    - name: {{ salt['pillar.get']('k') }}\n" });
    const tree = new BundleCache(tempDir('tsalt-runbase-')).store(b, b.hash);
    const opts = { cachedir: tempDir('tsalt-runbase-cache-') };
    const made = saltStats.namespaces;
    const plain = makeRunBase({ tree, grains: { id: 'a' }, pillar: { k: 'one' }, opts, test: false });
    expect((await converge(plain, await compileRun(plain, { id: 'a', sls: [] }))).map((r) => r.result)).toEqual([true]);
    expect(saltStats.namespaces - made).toBe(0);
    const templated = makeRunBase({ tree, grains: { id: 'a' }, pillar: { k: 'two' }, opts, test: false });
    const [r] = await converge(templated, await compileRun(templated, { id: 'a', sls: ['t'] }));
    expect(r).toMatchObject({ name: 'two', result: true });
    expect(templated.salt).toBe(templated.salt);
    expect(saltStats.namespaces - made).toBe(1);
  });

  it('is built without copying the whole engine request (its other fields are not read)', () => {
    const b = bundleMessage({ 'top.sls': "base:\n  '*':\n    - a\n" });
    const tree = new BundleCache(tempDir('tsalt-runbase-')).store(b, b.hash);
    let reads = 0;
    const req = { tree, grains: {}, pillar: {}, opts: { cachedir: tempDir('tsalt-runbase-cache-') }, test: false };
    // an engine request's fields the base has no use for (onResult, signal, sls...): a spread read them all
    Object.defineProperty(req, 'onResult', { enumerable: true, get: () => (reads++, undefined) });
    makeRunBase(req);
    expect(reads).toBe(0);
  });
});

describe('top.sls of a bundle tree', () => {
  const jobOn = (tree: ReturnType<BundleCache['open']>, id: string, grains: Data, pillar: Data) =>
    topMatches(makeRenderBase({ tree, grains: { id, ...grains }, pillar }), { id, grains: { id, ...grains }, pillar });
  const cache = (b: ReturnType<typeof bundleMessage>) => {
    const c = new BundleCache(tempDir('tsalt-top-'));
    c.store(b, b.hash);
    return c.open(b.hash, 'r1');
  };

  it('is read and its targets compiled once, and matched against each job\'s own grains and pillar', () => {
    const b = bundleMessage({
      'top.sls': [
        'base:',
        "  '*':",
        '    - common',
        "  'roles:web':",
        '    - match: grain',
        '    - web',
        "  'tier:db':",
        '    - match: pillar',
        '    - db',
        "  'G@os:Debian and not I@skip:yes':",
        '    - match: compound',
        '    - debian',
        "  'web-*':",
        '    - webhosts',
        '',
      ].join('\n'),
    });
    const one = cache(b);
    const two = cache(b); // a second agent of the process, its own cache dir
    const read = topStats.read;
    const compiled = topStats.compiled;
    expect(jobOn(one, 'web-1', { roles: ['web'], os: 'Debian' }, {})).toEqual(['common', 'web', 'debian', 'webhosts']);
    expect(jobOn(one, 'web-1', { roles: ['db'], os: 'Debian' }, { tier: 'db' })).toEqual(['common', 'db', 'debian', 'webhosts']);
    expect(jobOn(one, 'web-1', { roles: [], os: 'Debian' }, { skip: 'yes' })).toEqual(['common', 'webhosts']);
    expect(jobOn(two, 'db-1', { roles: ['web'], os: 'RedHat' }, { tier: 'db' })).toEqual(['common', 'web', 'db']);
    expect(topStats.read - read).toBe(1);
    expect(topStats.compiled - compiled).toBe(1);
  });

  it('with Jinja in it is rendered for each job, with that job\'s grains and pillar', () => {
    const b = bundleMessage({
      'top.sls': "base:\n  '*':\n    - common\n{% if grains.os == 'Debian' %}    - debian\n{% endif %}{% if pillar.get('extra') %}    - extra\n{% endif %}",
    });
    const tree = cache(b);
    const read = topStats.read;
    expect(jobOn(tree, 'h1', { os: 'Debian' }, {})).toEqual(['common', 'debian']);
    expect(jobOn(tree, 'h1', { os: 'RedHat' }, { extra: true })).toEqual(['common', 'extra']);
    expect(jobOn(tree, 'h1', { os: 'Debian' }, { extra: true })).toEqual(['common', 'debian', 'extra']);
    expect(topStats.read - read).toBe(3);
  });

  it('with a target that does not compile fails every job with the same error', () => {
    const b = bundleMessage({ 'top.sls': "base:\n  '*':\n    - common\n  '(|x)':\n    - match: pcre\n    - bad\n" });
    const tree = cache(b);
    const errors = [1, 2].map(() => {
      try {
        jobOn(tree, 'h1', {}, {});
      } catch (e) {
        return e;
      }
      return undefined;
    });
    for (const e of errors) {
      expect(e).toBeInstanceOf(CompileError);
      expect((e as Error).message).toMatch(/target '\(\|x\)'.*empty alternative/);
    }
  });
});

describe('the bundle cache asked whether it has a bundle, job after job', () => {
  it('notices a bundle directory removed under it (the job fetches it again), and refuses names that are not hashes', () => {
    const b = bundleMessage({ 'top.sls': "base:\n  '*':\n    - a\n" });
    const c = new BundleCache(tempDir('tsalt-has-'));
    expect(c.has(b.hash)).toBe(false);
    const tree = c.store(b, b.hash);
    expect(c.has(b.hash)).toBe(true);
    expect(c.has(b.hash)).toBe(true);
    fs.rmSync(tree.dir, { recursive: true });
    expect(c.has(b.hash)).toBe(false);
    c.store(b, b.hash); // what the agent does then: fetched and stored again
    expect(c.has(b.hash)).toBe(true);
    expect(fs.existsSync(path.join(tree.dir, 'top.sls'))).toBe(true);
    for (const bad of ['../x', b.hash.toUpperCase(), '', `${b.hash}/..`]) expect(c.has(bad)).toBe(false);
  });
});

describe('converge', () => {
  it("copies the run base for prereq's dry runs only, and those still run in test mode", async () => {
    const b = bundleMessage({
      'a.sls': 'x:\n  test.nop: []\n',
      'p.sls': "target:\n  test.succeed_with_changes: []\nbefore:\n  test.nop:\n    - prereq:\n      - test: target\n",
    });
    const tree = new BundleCache(tempDir('tsalt-converge-')).store(b, b.hash);
    const counted = () => {
      const base = makeRunBase({ tree, grains: { id: 'h' }, pillar: {}, opts: { cachedir: tempDir('tsalt-converge-cache-') }, test: false, root: tempDir('tsalt-converge-root-') });
      const seen = { copies: 0 };
      Object.defineProperty(base, 'copied', { enumerable: true, get: () => (seen.copies++, undefined) });
      return { base, seen };
    };
    const plain = counted();
    const r1 = await converge(plain.base, await compileRun(plain.base, { id: 'h', sls: ['a'] }));
    expect(r1.map((r) => r.result)).toEqual([true]);
    expect(plain.seen.copies).toBe(0);
    const pre = counted();
    const r2 = await converge(pre.base, await compileRun(pre.base, { id: 'h', sls: ['p'] }));
    expect(r2.map((r) => [r.id, r.result, Object.keys(r.changes).length > 0])).toEqual([
      ['before', true, false],
      ['target', true, true],
    ]);
    expect(pre.seen.copies).toBe(1);
  });
});
