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
import { loadHigh } from './high.js';
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
  const high = loadHigh(base, slsList, chain);
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
