/**
 * Milliseconds on a monotonic clock, for durations only (differences of two readings).
 * `performance.now()` gives the same, but its first use loads Node's perf_hooks (seven internal
 * modules) into every `tsalt local apply`; process.hrtime is there from the start.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
