/**
 * The rendering half of a run: what templates see (tree, grains, pillar, opts, salt[...]) and
 * the renderer. Compile and pillar rendering need only this; the run base (engine/run/context.ts)
 * adds what converging needs (facts, providers, test/root).
 */
import type { TreeSource } from '../tree/source.js';
import { BundleTree } from '../tree/bundle.js';
import { JinjaRenderer } from './jinja.js';
import { CompiledTemplateCache, templateCacheDir } from './compile-cache.js';
import { ParsedYamlCache } from './yaml-cache.js';
import path from 'node:path';
import { saltFunctions, type Data } from './salt-functions.js';

export interface RenderBase {
  tree: TreeSource;
  grains: Data;
  pillar: Data;
  opts: Data;
  renderer: JinjaRenderer;
  /** state runs: rendered SLS text -> its parsed data, across runs (./yaml-cache.ts) */
  parsedYaml?: ParsedYamlCache | undefined;
  salt: Record<string, (...a: unknown[]) => unknown>;
}

/**
 * `compileCache`: keep compiled templates in `<opts.cachedir>/jinja` across runs (./compile-cache.ts;
 * code from the state tree, no data). State runs use it; pillar rendering does not (no copy of
 * pillar templates on disk). `yamlCache` (with compileCache): parsed SLS in `<opts.cachedir>/yaml`
 * (./yaml-cache.ts): rendered data, which can hold pillar values, so only where the pillar is on
 * this machine already (`tsalt local`).
 */
export function makeRenderBase(o: { tree: TreeSource; grains: Data; pillar: Data; opts?: Data; compileCache?: boolean; yamlCache?: boolean; onSaltCall?: (name: string) => void }): RenderBase {
  const opts = o.opts ?? {};
  const jinjaDir = o.compileCache ? templateCacheDir(opts.cachedir) : undefined;
  let salt: RenderBase['salt'] | undefined;
  // one shape for every base, no spread: makeRunBase copies these fields once per job, and an
  // object built by a conditional spread took V8's slow path there (≈12 µs of a no-op job)
  return {
    tree: o.tree,
    grains: o.grains,
    pillar: o.pillar,
    opts,
    renderer: rendererFor(o.tree, jinjaDir),
    parsedYaml: jinjaDir && o.yamlCache ? new ParsedYamlCache(path.join(path.dirname(jinjaDir), 'yaml')) : undefined,
    // made when a template first sees the globals: a run whose SLS hold no template code (a
    // plain no-op tree) never does (its proxy, maps and sandbox entry were made per job)
    get salt() {
      return (salt ??= saltFunctions(o.grains, o.pillar, opts, o.tree, o.onSaltCall));
    },
  };
}

/**
 * A bundle tree's content never changes (its hash names it) and an agent opens the same tree
 * object for each job at that revision: its runs share one renderer (a Nunjucks environment
 * with its filters, globals and loaded templates, all pure over the tree), instead of building
 * one per run. Every other tree gets a renderer of its own run.
 */
const bundleRenderers = new WeakMap<TreeSource, { dir: string | undefined; renderer: JinjaRenderer }>();
function rendererFor(tree: TreeSource, jinjaDir: string | undefined): JinjaRenderer {
  const make = () => new JinjaRenderer(tree, jinjaDir ? new CompiledTemplateCache(jinjaDir) : undefined);
  if (!(tree instanceof BundleTree)) return make();
  const had = bundleRenderers.get(tree);
  if (had && had.dir === jinjaDir) return had.renderer;
  const renderer = make();
  bundleRenderers.set(tree, { dir: jinjaDir, renderer });
  return renderer;
}

/** The variables every template sees: Salt's names. */
export function templateGlobals(base: RenderBase): Data {
  return {
    grains: base.grains,
    pillar: base.pillar,
    opts: base.opts,
    salt: base.salt,
    __salt__: base.salt,
    __grains__: base.grains,
    __pillar__: base.pillar,
    __opts__: base.opts,
    saltenv: 'base',
    env: 'base',
  };
}
