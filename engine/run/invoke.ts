/**
 * Run one state function through the check/apply contract. The runner calls this for every
 * state, tests call it for single modules: one code path for test and real runs.
 */
import type { z } from 'zod';
import type { ApplyOutcome, Changes, StateDefinition } from '../states/define.js';
import { StateFailure } from '../states/define.js';
import type { RunContext } from '../states/context.js';
import { ProviderError } from '../providers/host.js';

export interface InvokeOutcome {
  result: boolean | null;
  changes: Changes;
  comment: string;
}

export interface ValidatedArgs {
  args: unknown;
  extra: Record<string, unknown>;
  warnings: string[];
}

export class ArgError extends Error {
  constructor(readonly issues: string[]) {
    super(issues.join('; '));
    this.name = 'ArgError';
  }
}

/** Validate raw arguments; unknown keys are warnings (Salt ignores them) or template vars. */
export function validateArgs(def: StateDefinition, raw: Record<string, unknown>): ValidatedArgs {
  const parsed = def.args.safeParse(raw);
  if (!parsed.success) {
    throw new ArgError(
      parsed.error.issues.map((i) => (i.path.length ? `argument '${i.path.join('.')}': ${i.message}` : i.message)),
    );
  }
  const known = knownKeys(def.args);
  const extra: Record<string, unknown> = {};
  const warnings: string[] = [];
  if (known) {
    const unknown = Object.keys(raw).filter((k) => !known.has(k));
    for (const k of unknown) extra[k] = raw[k];
    if (unknown.length && !def.passUnknownArgs) {
      warnings.push(`The following arguments are not used by the state and are ignored: ${unknown.join(', ')}`);
    }
  }
  return { args: parsed.data, extra, warnings };
}

export function knownKeys(schema: z.ZodType): Set<string> | undefined {
  // z.object(...) (possibly wrapped in effects/pipe) exposes its shape; passthrough objects accept all keys
  let s: any = schema;
  for (let i = 0; i < 5 && s; i++) {
    const def = s._zod?.def ?? s._def;
    if (def?.type === 'object') {
      if (def.catchall && def.catchall._zod?.def?.type !== 'never') return undefined;
      return new Set(Object.keys(def.shape));
    }
    s = def?.in ?? def?.innerType ?? def?.schema;
  }
  return undefined;
}

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
