/** top.sls: which SLS (or pillar SLS) a host gets, matched as Salt matches it. */
import type { RenderBase } from '../render/render-base.js';
import { compileTarget, MatchError, matchTarget, MATCH_KINDS, type MatchKind, type MatchedAgent, type TargetPredicate } from './match.js';
import { BundleTree } from '../tree/bundle.js';
import { parseYamlShared, renderText, SlsLoadError, slsVars } from './sls-file.js';
import { CompileError } from './errors.js';

/** SLS names top.sls gives this minion, in top-file order, each once. */
export function topMatches(base: RenderBase, minion: MatchedAgent, nodegroups?: Record<string, string | string[]>): string[] {
  return matchTop(readTop(base), minion, nodegroups);
}

/** top.sls rendered (with the base's grains) and parsed, before any target is matched. */
export interface TopFile {
  /** the process's one parse of this rendered text (sls-file.ts parseYamlShared): only read */
  data: Record<string, unknown>;
  positions: ReadonlyMap<string, { line: number; column: number }>;
}

/** top files read (rendered and parsed) and their targets compiled, in this process (tests) */
export const topStats = { read: 0, compiled: 0 };

/**
 * Renders and parses top.sls: the part of topMatches that depends on what the template reads.
 * A bundle tree's top.sls with no template code in it reads the same for every job and agent
 * (its hash names its content): read once per revision in the process (BundleTree.derived);
 * one with Jinja is rendered for each job, with that job's grains and pillar.
 */
export function readTop(base: RenderBase): TopFile {
  const tree = base.tree;
  if (tree instanceof BundleTree) return tree.derived('top.sls', () => readTopNow(base));
  return readTopNow(base).value;
}

function readTopNow(base: RenderBase): { value: TopFile; keep: boolean } {
  const file = 'top.sls';
  topStats.read++;
  if (!base.tree.existsSync(file)) {
    throw new CompileError([{ file, message: `no top.sls in ${base.tree.label}: name the SLS to apply, or add a top file` }]);
  }
  let data: unknown;
  let positions: ReadonlyMap<string, { line: number; column: number }>;
  let plain: boolean;
  try {
    const text = base.tree.readSync(file).toString('utf8');
    // no `{`: no Jinja tag, variable or comment, so the render is the text's alone (renderPlain)
    plain = !text.includes('{');
    ({ data, positions } = parseYamlShared(renderText(base, text, file, slsVars('top', file)), file));
  } catch (e) {
    if (e instanceof SlsLoadError) throw new CompileError([e.detail]);
    throw e;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new CompileError([{ file, line: 1, message: 'top.sls must map environments (base:) to targets' }]);
  }
  return { value: { data: data as Record<string, unknown>, positions }, keep: plain };
}

/** A top file's targets compiled, in top-file order: each target's predicate and its SLS. */
type CompiledTop = { target: string; test: TargetPredicate; sls: string[] }[];
/**
 * By the parsed top file (the process's one parse of its text, never changed): the predicates
 * see each minion's grains and pillar when matched, so one compile serves every job. Only with
 * no nodegroups (state top files; the master's targeting compiles its own).
 */
const compiledTops = new WeakMap<object, CompiledTop>();

/** The SLS names a rendered top.sls gives this minion, in top-file order, each once (the top file is only read). */
export function matchTop(top: TopFile, minion: MatchedAgent, nodegroups?: Record<string, string | string[]>): string[] {
  const compiled = nodegroups === undefined ? compiledOf(top) : undefined;
  if (!compiled) return matchTopNow(top, minion, nodegroups ?? {});
  const out: string[] = [];
  for (const { target, test, sls } of compiled) {
    let hit: boolean;
    try {
      hit = test(minion);
    } catch (e) {
      if (e instanceof MatchError) throw new CompileError([{ file: 'top.sls', message: `target '${target}': ${e.message}` }]);
      throw e;
    }
    if (hit) for (const s of sls) if (!out.includes(s)) out.push(s);
  }
  return out;
}

/** The top file's targets compiled once; undefined when one of them does not compile (matchTopNow says which, as before). */
function compiledOf(top: TopFile): CompiledTop | undefined {
  const had = compiledTops.get(top.data);
  if (had) return had;
  const out: CompiledTop = [];
  try {
    forEachTarget(top, (target, kind, sls) => out.push({ target, test: compileTarget(target, kind), sls }));
  } catch {
    return undefined;
  }
  topStats.compiled++;
  compiledTops.set(top.data, out);
  return out;
}

/** Each target of the top file in order, with its match kind and SLS; throws CompileError for a malformed one. */
function forEachTarget(top: TopFile, each: (target: string, kind: MatchKind, sls: string[]) => void): void {
  const file = 'top.sls';
  const { data, positions } = top;
  for (const [env, targets] of Object.entries(data)) {
    if (!targets || typeof targets !== 'object' || Array.isArray(targets)) {
      throw new CompileError([{ file, line: positions.get(env)?.line, message: `environment '${env}' must map targets to lists of SLS` }]);
    }
    for (const [target, list] of Object.entries(targets as Record<string, unknown>)) {
      const items = Array.isArray(list) ? list : [list];
      let kind: MatchKind = 'glob';
      const sls: string[] = [];
      for (const item of items) {
        if (typeof item === 'string') sls.push(item);
        else if (item && typeof item === 'object' && 'match' in item) {
          const m = String((item as { match: unknown }).match);
          if (!(MATCH_KINDS as readonly string[]).includes(m)) {
            throw new CompileError([{ file, message: `target '${target}': unknown match type '${m}' (known: ${MATCH_KINDS.join(', ')})` }]);
          }
          kind = m as MatchKind;
        }
      }
      each(target, kind, sls);
    }
  }
}

/** matchTop without the compiled targets: each compiled and matched in turn (nodegroups, or a target that does not compile). */
function matchTopNow(top: TopFile, minion: MatchedAgent, nodegroups: Record<string, string | string[]>): string[] {
  const out: string[] = [];
  forEachTarget(top, (target, kind, sls) => {
    let hit: boolean;
    try {
      hit = matchTarget(target, kind, minion, nodegroups);
    } catch (e) {
      if (e instanceof MatchError) throw new CompileError([{ file: 'top.sls', message: `target '${target}': ${e.message}` }]);
      throw e;
    }
    if (hit) for (const s of sls) if (!out.includes(s)) out.push(s);
  });
  return out;
}
