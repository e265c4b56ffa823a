/**
 * Converge compiled states in order, with Salt's requisite semantics:
 * - a failed require/watch/onchanges/prereq target: the dependent reports
 *   "One or more requisite failed" and does not run;
 * - onchanges: runs only when a target changed; onfail: only when a target failed;
 * - watch: when a target changed and the state itself changed nothing, its mod_watch runs;
 * - prereq: the target is checked first (test mode); the prereq state runs only when the
 *   target is about to change;
 * - listen: mod_watch at the end of the run; failhard: stop at the first failure.
 */
import type { StateResult } from '../../protocol/results.js';
import type { CompiledState } from '../compile/compile.js';
import { missingRequisitesComment, orderingEdges } from '../compile/requisites.js';
import type { RequisiteKind } from '../requisite-kinds.js';
import { makeRunContext, type RunBase } from './context.js';
import { invokeModWatch, invokeState, type InvokeOutcome } from './invoke.js';
import { jobSignal, KILLED_COMMENT } from './abort.js';
import { now } from './clock.js';

const FAIL_BLOCKS: ReadonlySet<RequisiteKind> = new Set(['require', 'watch', 'onchanges', 'prereq', 'onchanges_any', 'listen']);

function hasChanges(r: { changes: Record<string, unknown> } | undefined): boolean {
  return !!r && Object.keys(r.changes).length > 0;
}

export async function converge(
  base: RunBase,
  states: CompiledState[],
  onResult?: (r: StateResult) => void,
): Promise<StateResult[]> {
  const byKey = new Map(states.map((s) => [s.key, s]));
  const after = orderingEdges(states);
  const results = new Map<string, StateResult>();
  const ordered: StateResult[] = [];
  const predicted = new Map<string, InvokeOutcome>();
  const prereqedBy = new Map<string, CompiledState[]>();
  for (const s of states) {
    for (const e of s.deps) {
      if (e.kind === 'prereq') {
        const l = prereqedBy.get(e.target) ?? [];
        l.push(s);
        prereqedBy.set(e.target, l);
      }
    }
  }
  let stopped = false;
  const killed = jobSignal();
  // prereq's dry runs only (few runs have one): not copied for every run
  let testBase: RunBase | undefined;

  const record = (s: CompiledState, out: InvokeOutcome, start: Date, t0: number, idOverride?: string, funOverride?: string) => {
    const r: StateResult = {
      id: idOverride ?? s.id,
      sls: s.sls,
      fun: funOverride ?? `${s.state}.${s.fun}`,
      name: s.name,
      result: out.result,
      changes: out.changes,
      comment: out.comment,
      start: start.toISOString(),
      duration_ms: Math.round((now() - t0) * 1000) / 1000,
      run_num: ordered.length,
      ...(s.warnings.length ? { warnings: s.warnings } : {}),
    };
    if (!idOverride) results.set(s.key, r);
    ordered.push(r);
    onResult?.(r);
    return r;
  };

  const guardsOf = (s: CompiledState) => s.guards.unless !== undefined || s.guards.onlyif !== undefined || s.guards.creates !== undefined;

  const decide = async (s: CompiledState): Promise<InvokeOutcome> => {
    const targets = (kinds: RequisiteKind[]) =>
      s.deps.filter((e) => kinds.includes(e.kind)).map((e) => ({ s: byKey.get(e.target)!, r: results.get(e.target) }));

    // requisites naming states that are not in the run (Salt: "not found"): this state fails
    if (s.missing?.length) return { result: false, changes: {}, comment: missingRequisitesComment(s.missing) };
    // failed requisites block the state
    const failed = new Set<CompiledState>();
    for (const e of s.deps) {
      const r = results.get(e.target);
      if (FAIL_BLOCKS.has(e.kind) && r?.result === false) failed.add(byKey.get(e.target)!);
    }
    for (const kind of ['require_any', 'watch_any'] as const) {
      const t = targets([kind]);
      if (t.length && t.every((x) => x.r?.result === false)) t.forEach((x) => failed.add(x.s));
    }
    for (const p of prereqedBy.get(s.key) ?? []) if (results.get(p.key)?.result === false) failed.add(p);
    if (failed.size) {
      return { result: false, changes: {}, comment: `One or more requisite failed: ${[...failed].map((f) => `${f.sls}.${f.id}`).join(', ')}` };
    }

    const onchanges = targets(['onchanges', 'onchanges_any']);
    if (onchanges.length && !onchanges.some((x) => hasChanges(x.r))) {
      return { result: true, changes: {}, comment: 'State was not run because none of the onchanges reqs changed' };
    }
    const onfailAny = targets(['onfail', 'onfail_any']);
    const onfailAll = targets(['onfail_all']);
    if (onfailAny.length || onfailAll.length) {
      const triggered =
        (onfailAny.length > 0 && onfailAny.some((x) => x.r?.result === false)) ||
        (onfailAll.length > 0 && onfailAll.every((x) => x.r?.result === false));
      if (!triggered) return { result: true, changes: {}, comment: 'State was not run because onfail req did not change' };
    }

    const prereqs = s.deps.filter((e) => e.kind === 'prereq');
    if (prereqs.length) {
      const preds = prereqs.map((e) => ({ t: byKey.get(e.target)!, p: predicted.get(e.target) }));
      const bad = preds.filter((x) => x.p?.result === false);
      if (bad.length) return { result: false, changes: {}, comment: `One or more requisite failed: ${bad.map((x) => `${x.t.sls}.${x.t.id}`).join(', ')}` };
      if (!preds.some((x) => hasChanges(x.p))) return { result: true, changes: {}, comment: 'No changes detected' };
    }

    const ctx = makeRunContext(base, s.id, s.sls, s.requisitesIn);
    if (guardsOf(s)) {
      const { evaluateGuards, guardOptions } = await import('./guards.js');
      const g = await evaluateGuards(s.guards, guardOptions(s.args));
      if (!g.run) return { result: g.error ? false : true, changes: {}, comment: g.comment };
    }
    let out = await invokeState(ctx, s.def, s.runArgs, s.extra);
    const watched = targets(['watch', 'watch_any']);
    if (out.result !== false && !hasChanges(out) && watched.some((x) => hasChanges(x.r))) {
      const w = await invokeModWatch(ctx, s.def, s.runArgs, s.extra);
      if (w) out = w;
    }
    return out;
  };

  const run = async (s: CompiledState): Promise<void> => {
    if (killed?.aborted) stopped = true;
    if (results.has(s.key) || stopped) return;
    for (const k of after.get(s.key) ?? []) await run(byKey.get(k)!);
    if (results.has(s.key) || stopped) return;
    // prereq: bring each target up to just before it would run, then ask it what it would change
    for (const e of s.deps) {
      if (e.kind !== 'prereq' || predicted.has(e.target)) continue;
      const t = byKey.get(e.target)!;
      for (const k of after.get(t.key) ?? []) if (k !== s.key) await run(byKey.get(k)!);
      if (stopped) return;
      testBase ??= { ...base, test: true };
      predicted.set(t.key, await invokeState(makeRunContext(testBase, t.id, t.sls, t.requisitesIn), t.def, t.runArgs, t.extra));
    }
    const start = new Date();
    const t0 = now();
    const out = await decide(s);
    record(s, out, start, t0);
    if (out.result === false && s.failhard) stopped = true;
  };

  const prefetched = new Set<unknown>();
  for (const s of states) {
    if (!s.def.prefetch || prefetched.has(s.def)) continue;
    prefetched.add(s.def);
    try {
      s.def.prefetch(makeRunContext(base, s.id, s.sls));
    } catch {
      /* a prefetch is only a head start: the state itself reports any problem */
    }
  }

  for (const s of states) {
    await run(s);
    if (stopped) break;
  }
  // a killed run says which states it never got to, so the report is complete
  if (killed?.aborted) {
    for (const s of states) {
      if (!results.has(s.key)) record(s, { result: false, changes: {}, comment: KILLED_COMMENT }, new Date(), now());
    }
  }

  // listen: mod_watch once at the end for states whose listened-to targets changed
  if (!stopped) {
    for (const s of states) {
      const listened = s.deps.filter((e) => e.kind === 'listen').map((e) => results.get(e.target));
      if (!listened.some(hasChanges) || results.get(s.key)?.result === false || !s.def.modWatch) continue;
      const start = new Date();
      const t0 = now();
      const out = await invokeModWatch(makeRunContext(base, s.id, s.sls), s.def, s.runArgs, s.extra);
      if (out) record(s, out, start, t0, `listener_${s.id}`, `${s.state}.mod_watch`);
    }
  }
  return ordered;
}
