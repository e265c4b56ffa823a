/**
 * Which state results of a run are streamed to the master before its return: only those of a
 * run that lasts. The return holds every result anyway; a streamed one is a frame more for the
 * agent to send and for the master to decode, check and store, which for the common no-op run
 * (a few states, done in milliseconds) doubled the traffic of a job at no use to anyone.
 */

/**
 * A run still going this long after it started streams its results: the ones finished so far
 * at once, the rest as they finish. Why 1 s: a no-op run of a usual tree ends well within it
 * (tens of milliseconds, a few hundred on a loaded host), so it sends nothing but its return;
 * past it, a person watching `tsalt apply` starts to wait for progress, and what a run did so
 * far should be in the master's store should the agent die before its return.
 */
export const STREAM_AFTER_MS = 1000;

export interface ResultHold<T> {
  /** A result as it finishes: held in the run's first STREAM_AFTER_MS, sent after. */
  add(r: T): void;
  /** The run ended: its return carries what is still held (dropped here), nothing more is sent. */
  end(): void;
}

/**
 * Holds a run's results until `afterMs` from now, then sends them (in one turn: their frames
 * leave together) and every later one as it comes; `end()` before then sends none.
 */
export function holdResults<T>(send: (r: T) => void, afterMs = STREAM_AFTER_MS): ResultHold<T> {
  let held: T[] | undefined = [];
  const timer = setTimeout(() => {
    const now = held ?? [];
    held = undefined;
    for (const r of now) send(r);
  }, afterMs);
  // the run keeps the process alive, not this
  timer.unref();
  let ended = false;
  return {
    add(r) {
      if (ended) return;
      if (held) held.push(r);
      else send(r);
    },
    end() {
      ended = true;
      clearTimeout(timer);
      held = undefined;
    },
  };
}
