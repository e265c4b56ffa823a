/**
 * The whole compile step, pure over data: top/SLS -> high -> low -> linked graph in execution
 * order, every state's module, function and arguments checked. All errors are collected and
 * thrown together; nothing runs when there is one.
 */
import type { RenderBase } from '../render/render-base.js';
import { lookupState } from '../states/registry.js';
import { ArgError, validateArgs } from '../states/define.js';
import type { StateDefinition } from '../states/define.js';
import { CompileError, type CompileErrorDetail } from './errors.js';
import { loadHigh, loaderOf, renderRun, type RenderedSls } from './high.js';
import { buildLow } from './low.js';
import { applyUse, executionOrder, linkRequisites as linkRequisites_, type Linked } from './requisites.js';
import { topMatches } from './top.js';

export type CompiledState = Linked & {
  def: StateDefinition;
  /** validated arguments for the state function */
  runArgs: unknown;
  /** arguments the function does not declare (template variables for file.managed) */
  extra: Record<string, unknown>;
  warnings: string[];
};

export async function compileRun(base: RenderBase, o: { id: string; sls: string[] }): Promise<CompiledState[]> {
  let slsList = o.sls;
  let chain: string[] = [];
  if (!slsList.length) {
    slsList = topMatches(base, { id: o.id, grains: base.grains, pillar: base.pillar });
    chain = ['top.sls'];
    if (!slsList.length) throw new CompileError([{ file: 'top.sls', message: `no top file match for '${o.id}': nothing to apply` }]);
  }
  // everything past rendering depends only on the rendered texts (and the SLS list): a plan
  // compiled from the same ones is reused, each run getting its own copy
  const rendered = renderRun(base, slsList);
  const key = planKey(slsList, chain, rendered);
  const planned = key === undefined ? undefined : plans.get(key);
  if (planned) {
    planStats.reused++;
    return planned.map(copyState);
  }
  planStats.compiled++;
  const plan = await compileRendered(base, slsList, chain, rendered);
  if (key !== undefined) {
    if (plans.size >= PLANS) plans.delete(plans.keys().next().value!);
    plans.set(key, plan.map(copyState));
  }
  return plan;
}

/**
 * Compiled plans by what they were compiled from, in this process (the agents of one process
 * running one tree compile it once per distinct rendering). In memory only: rendered text can
 * hold pillar values. Bounded: the most recent plans, of small trees.
 */
const plans = new Map<string, CompiledState[]>();
/** plans compiled and reused in this process (tests, benchmarks) */
export const planStats = { compiled: 0, reused: 0 };
const PLANS = 64;
const PLAN_TEXT_MAX = 256 * 1024;

/** The key of a plan: the SLS list, the include chain and every SLS's file and rendered text; undefined when a load failed or the texts are large. */
function planKey(slsList: string[], chain: string[], rendered: ReadonlyMap<string, RenderedSls>): string | undefined {
  const parts: string[] = [];
  let size = 0;
  for (const [sls, r] of rendered) {
    if (!('text' in r)) return undefined;
    size += r.text.length;
    if (size > PLAN_TEXT_MAX) return undefined;
    parts.push(sls, r.file, r.text);
  }
  return JSON.stringify([slsList, chain, parts]);
}

/**
 * A compiled state with data of its own (arguments, requisites, guards): states are handed
 * their arguments and may change them; the state definition (code) is shared.
 */
function copyState(s: CompiledState): CompiledState {
  const out = {} as Record<string, unknown>;
  for (const [k, v] of Object.entries(s)) out[k] = k === 'def' ? v : copyData(v);
  return out as unknown as CompiledState;
}

/** A deep copy of parsed and validated data: plain objects and arrays copied, Dates, Buffers, Maps and Sets too; anything else (class instances) is shared. */
export function copyData<T>(v: T): T {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(copyData) as T;
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto === Object.prototype || proto === null) {
    const out: Record<string, unknown> = proto === null ? Object.create(null) : {};
    for (const k of Object.keys(v)) out[k] = copyData((v as Record<string, unknown>)[k]);
    return out as T;
  }
  if (v instanceof Date) return new Date(v.getTime()) as T;
  if (Buffer.isBuffer(v)) return Buffer.from(v) as T;
  if (v instanceof Map) return new Map([...v].map(([k, x]) => [k, copyData(x)])) as T;
  if (v instanceof Set) return new Set([...v].map(copyData)) as T;
  return v;
}

async function compileRendered(base: RenderBase, slsList: string[], chain: string[], rendered: ReadonlyMap<string, RenderedSls>): Promise<CompiledState[]> {
  const high = loadHigh(base, slsList, chain, loaderOf(base, rendered));
  const errors: CompileErrorDetail[] = [...high.errors];
  const { low, errors: lowErrors } = buildLow(high);
  errors.push(...lowErrors);
  const { states, errors: linkErrors } = linkRequisites_(low);
  errors.push(...linkErrors);
  applyUse(states);

  const compiled: CompiledState[] = [];
  for (const s of states) {
    const where = { file: s.file, sls: s.sls, id: s.id, line: s.line, includeChain: s.includeChain };
    const found = await lookupState(s.state, s.fun);
    if ('error' in found) {
      errors.push({ ...where, message: found.error });
      continue;
    }
    try {
      const v = validateArgs(found.def, s.args);
      compiled.push({ ...s, def: found.def, runArgs: v.args, extra: v.extra, warnings: v.warnings });
    } catch (e) {
      if (e instanceof ArgError) errors.push({ ...where, message: `${s.state}.${s.fun}: ${e.message}` });
      else throw e;
    }
  }
  if (errors.length) throw new CompileError(errors);
  return executionOrder(compiled);
}
