/** top.sls: which SLS (or pillar SLS) a host gets, matched as Salt matches it. */
import type { RenderBase } from '../render/render-base.js';
import { MatchError, matchTarget, MATCH_KINDS, type MatchKind, type MatchedAgent } from './match.js';
import { parseYamlShared, renderText, SlsLoadError, slsVars } from './sls-file.js';
import { CompileError } from './errors.js';

/** SLS names top.sls gives this minion, in top-file order, each once. */
export function topMatches(base: RenderBase, minion: MatchedAgent, nodegroups: Record<string, string | string[]> = {}): string[] {
  return matchTop(readTop(base), minion, nodegroups);
}

/** top.sls rendered (with the base's grains) and parsed, before any target is matched. */
export interface TopFile {
  /** the process's one parse of this rendered text (sls-file.ts parseYamlShared): only read */
  data: Record<string, unknown>;
  positions: ReadonlyMap<string, { line: number; column: number }>;
}

/** Renders and parses top.sls: the part of topMatches that depends on what the template reads. */
export function readTop(base: RenderBase): TopFile {
  const file = 'top.sls';
  if (!base.tree.existsSync(file)) {
    throw new CompileError([{ file, message: `no top.sls in ${base.tree.label}: name the SLS to apply, or add a top file` }]);
  }
  let data: unknown;
  let positions: ReadonlyMap<string, { line: number; column: number }>;
  try {
    const text = base.tree.readSync(file).toString('utf8');
    ({ data, positions } = parseYamlShared(renderText(base, text, file, slsVars('top', file)), file));
  } catch (e) {
    if (e instanceof SlsLoadError) throw new CompileError([e.detail]);
    throw e;
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) {
    throw new CompileError([{ file, line: 1, message: 'top.sls must map environments (base:) to targets' }]);
  }
  return { data: data as Record<string, unknown>, positions };
}

/** The SLS names a rendered top.sls gives this minion, in top-file order, each once (the top file is only read). */
export function matchTop(top: TopFile, minion: MatchedAgent, nodegroups: Record<string, string | string[]> = {}): string[] {
  const file = 'top.sls';
  const { data, positions } = top;
  const out: string[] = [];
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
      let hit: boolean;
      try {
        hit = matchTarget(target, kind, minion, nodegroups);
      } catch (e) {
        if (e instanceof MatchError) throw new CompileError([{ file, message: `target '${target}': ${e.message}` }]);
        throw e;
      }
      if (hit) for (const s of sls) if (!out.includes(s)) out.push(s);
    }
  }
  return out;
}
