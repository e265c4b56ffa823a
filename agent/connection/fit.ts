/**
 * Keep what an agent sends under `max_return_bytes`. The master closes a connection whose frame
 * is over its max_frame_bytes; a return that big would be refused again after every reconnect
 * (it is spooled and re-sent), so the job would never finish. Long strings (command output,
 * diffs) are cut in the middle, keeping the head and the tail, where errors usually are, and
 * the result says so.
 */
import type { JobReturn } from '../../protocol/messages.js';
import type { StateResult } from '../../protocol/results.js';

export const DEFAULT_MAX_RETURN_BYTES = 8 * 1024 * 1024;

const bytes = (v: unknown) => Buffer.byteLength(JSON.stringify(v));

/** Each string longer than `limit` characters loses its middle; counts what was cut. */
function cutStrings<T>(v: T, limit: number, cut: { n: number }): T {
  if (typeof v === 'string') {
    if (v.length <= limit) return v;
    const keep = Math.floor(limit / 2);
    const dropped = v.length - 2 * keep;
    cut.n += dropped;
    return `${v.slice(0, keep)}\n... [${dropped} characters cut by tsalt: the return was over max_return_bytes] ...\n${v.slice(v.length - keep)}` as T;
  }
  if (Array.isArray(v)) return v.map((x) => cutStrings(x, limit, cut)) as T;
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = cutStrings(x, limit, cut);
    return out as T;
  }
  return v;
}

const LIMITS = [1024 * 1024, 64 * 1024, 4096, 512];

function note(cut: number, max: number): string {
  return `output shortened by ${cut} characters to fit max_return_bytes (${max})`;
}

/**
 * JSON of `msg`, fitted by `fit` when it may be over `max`: a text of n UTF-16 units is at most
 * 3n bytes of UTF-8, so the common small message is stringified once (not measured, then
 * stringified again to be sent and spooled); a larger one goes through `fit` as before.
 */
export function fittedJson<T>(msg: T, max: number, fit: (m: T) => T): { msg: T; json: string } {
  const json = JSON.stringify(msg);
  if (json.length * 3 <= max) return { msg, json };
  const fitted = fit(msg);
  return { msg: fitted, json: fitted === msg ? json : JSON.stringify(fitted) };
}

/** One state's result, as streamed while the run goes on. */
export function fitStateResult(r: StateResult, max: number): StateResult {
  if (bytes(r) <= max) return r;
  for (const limit of LIMITS) {
    const cut = { n: 0 };
    const fitted = { ...r, changes: cutStrings(r.changes, limit, cut), comment: cutStrings(r.comment, limit, cut) };
    fitted.warnings = [...(r.warnings ?? []), note(cut.n, max)];
    if (bytes(fitted) <= max) return fitted;
  }
  return { ...r, changes: {}, comment: r.comment.slice(0, 256), warnings: [`changes dropped: the result was over max_return_bytes (${max})`] };
}

/** A job's return: the whole report (apply) or the command's output (run). */
export function fitReturn(ret: JobReturn, max: number): JobReturn {
  if (bytes(ret) <= max) return ret;
  const body = ret.body;
  for (const limit of LIMITS) {
    const cut = { n: 0 };
    let fitted: JobReturn;
    if (body.kind === 'apply') {
      const results = body.report.results.map((r) => {
        const before = cut.n;
        const changes = cutStrings(r.changes, limit, cut);
        const comment = cutStrings(r.comment, limit, cut);
        return cut.n > before ? { ...r, changes, comment, warnings: [...(r.warnings ?? []), note(cut.n - before, max)] } : r;
      });
      fitted = { ...ret, body: { kind: 'apply', report: { ...body.report, results } } };
    } else if (body.kind === 'run') {
      const stdout = cutStrings(body.stdout, limit, cut);
      const stderr = cutStrings(body.stderr, limit, cut);
      fitted = { ...ret, body: { ...body, stdout, stderr } };
    } else {
      fitted = { ...ret, body: { kind: 'error', error: cutStrings(body.error, limit, cut) } };
    }
    if (bytes(fitted) <= max) return fitted;
  }
  const size = bytes(ret);
  return { ...ret, body: { kind: 'error', error: `the return was ${size} bytes, over max_return_bytes (${max}) even shortened; see the agent's log and the states' own logs` } };
}
