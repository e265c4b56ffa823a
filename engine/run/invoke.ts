/**
 * Run one state function through the check/apply contract. The runner calls this for every
 * state, tests call it for single modules: one code path for test and real runs.
 */
import type { ApplyOutcome, Changes, StateDefinition } from '../states/define.js';
import { StateFailure } from '../states/define.js';
import type { RunContext } from '../states/context.js';
import { ProviderError } from '../providers/host.js';

export interface InvokeOutcome {
  result: boolean | null;
  changes: Changes;
  comment: string;
}

// argument validation lives with the state contract (states/define.ts); re-exported for callers here
export { ArgError, knownKeys, validateArgs, type ValidatedArgs } from '../states/define.js';

function errorMessage(e: unknown): string {
  // a provider's own failure already says what the package manager / init system answered
  if (e instanceof StateFailure || e instanceof ProviderError) return e.message;
  if (e instanceof Error) return `${e.name === 'Error' ? '' : e.name + ': '}${e.message}`;
  return String(e);
}

export async function invokeState(
  ctx: RunContext,
  def: StateDefinition,
  args: unknown,
  extra: Record<string, unknown>,
): Promise<InvokeOutcome> {
  try {
    const checked = await def.check(ctx, args, extra);
    const changes = checked.changes ?? {};
    if (Object.keys(changes).length === 0) return { result: true, changes: {}, comment: checked.comment };
    if (ctx.test) return { result: null, changes, comment: checked.comment };
    const applied: ApplyOutcome = await def.apply(ctx, args, checked.plan, extra);
    return { result: applied.result ?? true, changes: applied.changes, comment: applied.comment };
  } catch (e) {
    return { result: false, changes: e instanceof StateFailure ? e.changes : {}, comment: errorMessage(e) };
  }
}

export async function invokeModWatch(
  ctx: RunContext,
  def: StateDefinition,
  args: unknown,
  extra: Record<string, unknown>,
): Promise<InvokeOutcome | undefined> {
  if (!def.modWatch) return undefined;
  try {
    const r = await def.modWatch(ctx, args, extra);
    return { result: ctx.test ? null : (r.result ?? true), changes: r.changes, comment: r.comment };
  } catch (e) {
    return { result: false, changes: e instanceof StateFailure ? e.changes : {}, comment: errorMessage(e) };
  }
}
