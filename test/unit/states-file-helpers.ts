/** Shared by the file state tests: the test-run / real-run / second-run contract. */
import { expect } from 'vitest';
import { runState, type HarnessOptions } from '../helpers/harness.js';

export type Outcome = Awaited<ReturnType<typeof runState>>;

/**
 * A test run predicts the real run's change keys (result null), the real run succeeds, and a
 * second run (and a second test run) reports no changes. Returns the real run's outcome.
 */
export async function convergeTwice(fun: string, args: Record<string, unknown>, o: HarnessOptions = {}): Promise<Outcome> {
  const predicted = await runState(fun, args, { ...o, test: true });
  expect(predicted.result, `test run: ${predicted.comment}`).toBeNull();
  const real = await runState(fun, args, { ...o, test: false });
  expect(real.result, `real run: ${real.comment}`).toBe(true);
  expect(Object.keys(real.changes).sort()).toEqual(Object.keys(predicted.changes).sort());
  expect(Object.keys(real.changes).length).toBeGreaterThan(0);
  const again = await runState(fun, args, { ...o, test: false });
  expect(again.result, `second run: ${again.comment}`).toBe(true);
  expect(again.changes).toEqual({});
  const testAgain = await runState(fun, args, { ...o, test: true });
  expect(testAgain.result).toBe(true);
  expect(testAgain.changes).toEqual({});
  return real;
}
