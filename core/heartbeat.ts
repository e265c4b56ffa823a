/**
 * A heartbeat that judges the peer, not its own process. A check that fires well past its time
 * means this process was stalled (busy, or starved of CPU on a loaded host): the peer's answer
 * may be waiting unread in the kernel, so that round gives no verdict. And every round's verdict
 * is taken after the event loop's poll phase (setImmediate), so that frames already arrived are
 * read before anyone is judged. Without both, 10,000 agents on a busy host cut themselves off by
 * the thousand in the middle of a job ("master missed a heartbeat") while the master had
 * answered them.
 */

/** a round this much later than its interval (1.5 intervals apart) tells of a stalled process */
export const STALL_FACTOR = 1.5;
/** rounds in a row without a verdict at most: a process late every time still judges, every third round */
export const MAX_UNJUDGED = 2;

export interface HeartbeatClock {
  stop(): void;
}

/**
 * Calls `round(judge)` every `intervalMs` (unref'd), after the poll phase; `judge` is false for a
 * round that came late (this process stalled): it may ping again but must not drop the peer.
 * After MAX_UNJUDGED such rounds in a row the next one judges, late or not.
 */
export function startHeartbeat(intervalMs: number, round: (judge: boolean) => void, now: () => number = () => performance.now()): HeartbeatClock {
  let last = now();
  let unjudged = 0;
  let pending: NodeJS.Immediate | undefined;
  const t = setInterval(() => {
    const at = now();
    const judge = at - last <= intervalMs * STALL_FACTOR || unjudged >= MAX_UNJUDGED;
    unjudged = judge ? 0 : unjudged + 1;
    last = at;
    pending = setImmediate(() => {
      pending = undefined;
      round(judge);
    });
  }, intervalMs);
  t.unref();
  return {
    stop() {
      clearInterval(t);
      if (pending) clearImmediate(pending);
    },
  };
}
