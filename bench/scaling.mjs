/**
 * Scaling curve: the no-op run of trees of 54, 540 and 5,400 states (W54's mix scaled up,
 * packages still 5). Linear or better means the marginal cost per added state does not grow.
 */
import { prepare, tsaltApply, tsaltNoop, expectSummary } from './w54.mjs';
import { timeOnce, tail } from './lib/measure.mjs';

export async function runScaling({ scratch, sizes, runs, log }) {
  const rows = [];
  for (const n of sizes) {
    const tree = prepare(scratch, n);
    log(`scaling: ${n} states, first converge`);
    const first = await timeOnce(tsaltApply(tree, ['--terse']));
    if (first.code !== 0) throw new Error(`scaling ${n}: first converge exited ${first.code}\n${tail(first.stdout)}\n${tail(first.stderr)}`);
    expectSummary(first.stdout, n);
    log(`scaling: ${n} states, no-op x${runs}`);
    // --terse: at 5,400 states printing every unchanged state would dominate what we measure.
    const noop = await tsaltNoop(tree, runs, n, ['--terse']);
    rows.push({ states: n, mix: tree.mix, first, noop });
  }
  return rows;
}
