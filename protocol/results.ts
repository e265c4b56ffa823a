import * as z from 'zod/mini';

/** One state's outcome, as Salt's `ret` dict plus where and when it ran. Sent agent -> master. */
export const StateResultSchema = z.object({
  /** the state id from the SLS (`nginx_conf` in `nginx_conf: {file.managed: ...}`) */
  id: z.string(),
  sls: z.string(),
  /** `module.function`, e.g. `file.managed` */
  fun: z.string(),
  name: z.string(),
  /** true: converged/succeeded, false: failed, null: test mode with pending changes */
  result: z.nullable(z.boolean()),
  changes: z.record(z.string(), z.unknown()),
  comment: z.string(),
  /** ISO time the state started */
  start: z.string(),
  duration_ms: z.number(),
  /** position in execution order, from 0 */
  run_num: z.int(),
  warnings: z.optional(z.array(z.string())),
});
export type StateResult = z.infer<typeof StateResultSchema>;

export const RunCountsSchema = z.object({
  total: z.int(),
  succeeded: z.int(),
  changed: z.int(),
  failed: z.int(),
});
export type RunCounts = z.infer<typeof RunCountsSchema>;

/** A whole run (highstate or named SLS) on one host. */
export const RunReportSchema = z.object({
  id: z.string(),
  test: z.boolean(),
  results: z.array(StateResultSchema),
  counts: RunCountsSchema,
  duration_ms: z.number(),
});
export type RunReport = z.infer<typeof RunReportSchema>;

export function countResults(results: readonly StateResult[]): RunCounts {
  let failed = 0;
  let changed = 0;
  for (const r of results) {
    if (r.result === false) failed++;
    if (Object.keys(r.changes).length > 0) changed++;
  }
  return { total: results.length, succeeded: results.length - failed, changed, failed };
}

/** Salt's state return dict of one agent's run: `<state>_|-<id>_|-<name>_|-<function>` -> result. */
export function saltStateReturn(results: StateResult[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const r of results) {
    const dot = r.fun.indexOf('.');
    out[`${r.fun.slice(0, dot)}_|-${r.id}_|-${r.name}_|-${r.fun.slice(dot + 1)}`] = {
      __id__: r.id,
      __run_num__: r.run_num,
      __sls__: r.sls,
      changes: r.changes,
      comment: r.comment,
      duration: r.duration_ms,
      name: r.name,
      result: r.result,
      start: r.start,
    };
  }
  return out;
}
