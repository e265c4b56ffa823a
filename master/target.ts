/**
 * Which accepted agents a target names, with the matcher top.sls uses. A target that matches
 * nothing is an error (never "everyone"); matched agents that are offline are returned apart
 * so the CLI can list them.
 */
import { compileTarget, MatchError, type TargetPredicate } from '../engine/compile/match.js';
import type { TargetType } from '../protocol/cli-messages.js';
import type { AgentRow } from './store-api.js';
import type { Data } from '../engine/render/salt-functions.js';

export class TargetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TargetError';
  }
}

/** Does evaluating this target need each agent's pillar (costly: rendered per agent)? */
export function targetNeedsPillar(expr: string, kind: TargetType, nodegroups: Record<string, string | string[]>): boolean {
  if (kind === 'pillar' || kind === 'pillar_pcre') return true;
  if (kind === 'compound' || kind === 'nodegroup') {
    const texts = [expr, ...Object.values(nodegroups).flat()];
    return texts.some((t) => /(^|[\s(])[IJ]@/.test(t));
  }
  return false;
}

export async function resolveTarget(
  expr: string,
  kind: TargetType,
  agents: readonly AgentRow[],
  nodegroups: Record<string, string | string[]>,
  pillarOf: (a: AgentRow) => Promise<Data>,
): Promise<AgentRow[]> {
  if (kind === 'nodegroup' && !Object.prototype.hasOwnProperty.call(nodegroups, expr)) {
    throw new TargetError(`no nodegroup '${expr}' in the master config (known: ${Object.keys(nodegroups).join(', ') || 'none'})`);
  }
  // the whole target is checked before any agent is looked at (or any pillar rendered)
  let matches: TargetPredicate;
  try {
    matches = compileTarget(expr, kind, nodegroups);
  } catch (e) {
    if (e instanceof MatchError) throw new TargetError(`target ${JSON.stringify(expr)} (${kind}): ${e.message}`);
    throw e;
  }
  const needPillar = targetNeedsPillar(expr, kind, nodegroups);
  const out: AgentRow[] = [];
  for (const a of agents) {
    if (a.key_state !== 'accepted') continue;
    const grains = { ...a.grains, id: a.id };
    const pillar = needPillar ? await pillarOf(a) : undefined;
    if (matches({ id: a.id, grains, ...(pillar ? { pillar } : {}) })) out.push(a);
  }
  if (out.length === 0) throw new TargetError(`target ${JSON.stringify(expr)} (${kind}) matched no accepted agent`);
  return out;
}
