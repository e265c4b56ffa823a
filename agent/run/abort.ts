/**
 * The kill switch of the job being run (`tsalt jobs kill JID`). The agent runs each job inside
 * `withJobSignal`, so every program it starts on the job's behalf (exec.ts) and the runner's
 * loop see the same signal without passing it through every state module and provider.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const store = new AsyncLocalStorage<AbortSignal>();

export function withJobSignal<T>(signal: AbortSignal | undefined, fn: () => T): T {
  return signal ? store.run(signal, fn) : fn();
}

/** The signal of the job this code runs for, if it can be killed. */
export function jobSignal(): AbortSignal | undefined {
  return store.getStore();
}

export const KILLED_COMMENT = 'Not run: the run was stopped before this state (tsalt jobs kill, or an interrupt)';
