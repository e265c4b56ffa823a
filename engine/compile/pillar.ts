/**
 * Pillar for one host: pillar/top.sls matched against its id and grains, each pillar SLS
 * rendered (Jinja + YAML) and merged recursively in top-file order. The master does this per
 * agent, so an agent only ever receives its own pillar.
 */
import type { TreeSource } from '../tree/source.js';
import { makeRenderBase } from '../render/render-base.js';
import { deepMerge, type Data } from '../render/salt-functions.js';
import { topMatches } from './top.js';
import { loadSls, SlsLoadError } from './sls-file.js';
import { resolveInclude } from './high.js';
import { CompileError, type CompileErrorDetail } from './errors.js';

export async function renderPillar(tree: TreeSource, id: string, grains: Data, opts: Data = {}): Promise<Data> {
  return renderPillarWith(tree, id, { ...grains, id: grains.id ?? id }, opts);
}

/** What a caller may learn of a render (the master's pillar cache: which inputs it used). */
export interface PillarRenderWatch {
  /** a salt[...] function whose result is not a function of tree, grains and pillar was called */
  impure(name: string): void;
}

/** salt[...] functions whose result depends only on their arguments, grains, pillar and the tree. */
const PURE_PREFIXES = ['pillar.', 'grains.', 'config.', 'test.', 'log.', 'defaults.', 'slsutil.', 'hashutil.'];
const PURE_NAMES = new Set(['file.basename', 'file.dirname', 'file.join', 'file.normpath', 'cp.get_file_str']);
export const isPureSaltCall = (name: string) => PURE_NAMES.has(name) || PURE_PREFIXES.some((p) => name.startsWith(p));
const isPure = isPureSaltCall;

/**
 * renderPillar with `grains` used as given (they must hold `id`): templates see this very
 * object, so a caller may hand in a view that notes what is read. `watch` hears of impure calls.
 */
export async function renderPillarWith(tree: TreeSource, id: string, grains: Data, opts: Data = {}, watch?: PillarRenderWatch): Promise<Data> {
  if (!tree.existsSync('top.sls')) return {};
  const pillar: Data = {};
  const onSaltCall = watch ? (name: string) => (isPure(name) ? undefined : watch.impure(name)) : undefined;
  const base = makeRenderBase({ tree, grains, pillar, opts, onSaltCall });
  const errors: CompileErrorDetail[] = [];
  const done = new Set<string>();
  const visit = (sls: string, chain: string[]) => {
    if (done.has(sls)) return;
    done.add(sls);
    try {
      const f = loadSls(base, sls);
      if (!f) {
        errors.push({ sls, includeChain: [...chain, sls], message: `pillar SLS '${sls}' not found in ${tree.label}` });
        return;
      }
      const { include, ...data } = f.data;
      for (const inc of Array.isArray(include) ? include : include ? [include] : []) {
        visit(resolveInclude(f, typeof inc === 'string' ? inc : Object.keys(inc as object)[0]!), [...chain, sls]);
      }
      deepMerge(pillar, structuredClone(data));
    } catch (e) {
      if (e instanceof SlsLoadError) errors.push({ ...e.detail, includeChain: [...chain, sls] });
      else throw e;
    }
  };
  for (const sls of topMatches(base, { id, grains })) visit(sls, ['pillar top.sls']);
  if (errors.length) throw new CompileError(errors);
  return pillar;
}
