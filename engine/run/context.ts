/** Builds the RunContext each state receives. */
import path from 'node:path';
import type { RunContext } from '../states/context.js';
import type { RequisiteKind, RequisiteRef } from '../requisite-kinds.js';
import type { TreeSource } from '../tree/source.js';
import { FactCache } from './facts.js';
import { makeHostEnv, type Exec, type HostEnv } from '../providers/host.js';
import { defaultProviders, type Providers } from '../providers/table.js';
import { PkgDbAnswerCache, pkgDbCacheDir } from '../providers/pkg/db-answer-cache.js';
import type { Data } from '../render/salt-functions.js';
import { makeRenderBase, templateGlobals, type RenderBase } from '../render/render-base.js';

export { templateGlobals };

/** What is the same for every state of one run: the rendering half, and what converging needs. */
export interface RunBase extends RenderBase {
  test: boolean;
  root: string | undefined;
  facts: FactCache;
  /** the providers' view of the run (same facts, opts, grains, root) */
  host: HostEnv;
  providers: Providers;
  /** see RunContext.runData: one map per run, shared by the test copy of the base too */
  runData: Map<string, unknown>;
}

export function makeRunBase(o: {
  test: boolean;
  root?: string;
  tree: TreeSource;
  grains: Data;
  pillar: Data;
  opts?: Data;
  /** default: the provider tables */
  providers?: Providers;
  /** default: the real exec; fixture tests replay recorded output */
  exec?: Exec;
  /** default: the process's memory (refresh-once) */
  memory?: Set<string>;
  /** see EngineRequest.parsedYamlCache */
  parsedYamlCache?: boolean;
}): RunBase {
  const r = makeRenderBase({ tree: o.tree, grains: o.grains, pillar: o.pillar, opts: o.opts, compileCache: true, yamlCache: o.parsedYamlCache === true });
  const facts = new FactCache();
  // the render base's fields named, not spread (and `o`, the whole engine request, not spread
  // either): a spread here was a sixth of an agent's no-op job on V8's slow path
  return {
    tree: r.tree,
    grains: r.grains,
    pillar: r.pillar,
    opts: r.opts,
    renderer: r.renderer,
    parsedYaml: r.parsedYaml,
    get salt() {
      return r.salt; // made when first read (render-base.ts)
    },
    test: o.test,
    root: o.root ? path.resolve(o.root) : undefined,
    facts,
    host: makeHostEnv({
      facts,
      opts: r.opts,
      grains: o.grains,
      root: o.root,
      exec: o.exec,
      memory: o.memory,
      // the machine's package database answers only to the real exec, not to a replaying one
      ...(o.exec ? {} : { pkgDbCache: new PkgDbAnswerCache(pkgDbCacheDir(r.opts.cachedir)) }),
    }),
    providers: o.providers ?? defaultProviders,
    runData: new Map(),
  };
}

export function rootedPath(root: string | undefined, p: string): string {
  if (!root) return p;
  return path.join(root, path.resolve('/', p));
}

export function makeRunContext(
  base: RunBase,
  id: string,
  sls: string,
  requisitesIn: Partial<Record<RequisiteKind, RequisiteRef[]>> = {},
): RunContext {
  return {
    test: base.test,
    root: base.root,
    path: (p) => rootedPath(base.root, p),
    tree: base.tree,
    grains: base.grains,
    pillar: base.pillar,
    opts: base.opts,
    facts: base.facts,
    host: base.host,
    providers: base.providers,
    runData: base.runData,
    requisitesIn,
    id,
    sls,
    renderTemplate(text, vars, name) {
      return base.renderer.render(text, { ...templateGlobals(base), ...vars }, name);
    },
  };
}
