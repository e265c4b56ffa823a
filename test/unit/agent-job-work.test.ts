/**
 * Work an agent no longer repeats on every no-op job (issue 14, bench/agent-job.mjs), and what
 * each job must still see as its own: the run base built without copying the engine request,
 * top.sls read and its targets compiled once per bundle tree (matched against each job's own
 * grains and pillar), the bundle cache's check for a bundle it has.
 */
import { describe, expect, it } from 'vitest';
import { makeRunBase, makeRunContext } from '../../engine/run/context.js';
import { makeRenderBase } from '../../engine/render/render-base.js';
import { BundleCache } from '../../engine/tree/bundle.js';
import { tempDir } from '../helpers/harness.js';
import { bundleMessage } from '../helpers/tree.js';

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
