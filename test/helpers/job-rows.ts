/** A no-op state's result and an agent's apply return, as the store tests write them. */
import type { JobReturnRow } from '../../master/store-api.js';
import type { StateResult } from '../../protocol/results.js';

/** run_num `n` of a test.nop state named `name` */
export const nopResult = (n: number, name = `s${n}`): StateResult => ({
  id: `s${n}`,
  sls: 'fleet',
  fun: 'test.nop',
  name,
  result: true,
  changes: {},
  comment: 'ok',
  start: new Date().toISOString(),
  duration_ms: 1,
  run_num: n,
});

/** `agentId`'s successful apply of `results` in job `jid` */
export const applyReturn = (jid: string, agentId: string, results: StateResult[]): JobReturnRow => ({
  jid,
  agentId,
  status: 'done',
  body: { kind: 'apply', report: { id: agentId, test: false, results, counts: { total: results.length, succeeded: results.length, changed: 0, failed: 0 }, duration_ms: 2 } },
});
