/**
 * The kill switch of the job being run (`tsalt jobs kill JID`, Ctrl-C on `tsalt local apply`).
 * Every program started on the job's behalf (exec.ts) and the runner's loop see the signal
 * without it being passed through every state module and provider.
 *
 * An agent runs several jobs at once (a state run and `tsalt run` commands, or many agents in
 * one process), so each job's signal lives in an AsyncLocalStorage. A masterless run is the
 * only run in its process: its signal is simply process-wide, which spares every promise of the
 * run the async-hooks bookkeeping AsyncLocalStorage costs on Node 20 (several ms of a no-op run).
 */
import { AsyncLocalStorage } from 'node:async_hooks';

let store: AsyncLocalStorage<AbortSignal> | undefined;
let processSignal: AbortSignal | undefined;

export function withJobSignal<T>(signal: AbortSignal | undefined, fn: () => Promise<T>, o: { wholeProcess?: boolean } = {}): Promise<T> {
  if (!signal) return fn();
  if (o.wholeProcess) {
    processSignal = signal;
    return fn().finally(() => {
      if (processSignal === signal) processSignal = undefined;
    });
  }
  store ??= new AsyncLocalStorage<AbortSignal>();
  return store.run(signal, fn);
}

/** The signal of the job this code runs for, if it can be killed. */
export function jobSignal(): AbortSignal | undefined {
  return store?.getStore() ?? processSignal;
}

export const KILLED_COMMENT = 'Not run: the run was stopped before this state (tsalt jobs kill, or an interrupt)';
