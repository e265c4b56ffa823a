/**
 * The run's file.accumulated text (Salt's `_ACCUMULATORS`): per target filename, accumulator
 * name -> chunks of text, and the requisite references each accumulator was `require_in`/
 * `watch_in`'d to. Lives in `ctx.runData`, so it lasts one run and test runs fill it too.
 */
import type { RunContext } from '../context.js';

interface FileAccumulators {
  text: Map<string, string[]>;
  /** accumulator name -> ids/names of the states it feeds */
  feeds: Map<string, Set<string>>;
}

type Store = Map<string, FileAccumulators>;

const KEY = 'file.accumulated';

function store(ctx: RunContext): Store {
  let s = ctx.runData.get(KEY) as Store | undefined;
  if (!s) {
    s = new Map();
    ctx.runData.set(KEY, s);
  }
  return s;
}

/** Add `chunks` under `name` for `filename`; returns how many were new (Salt skips repeats). */
export function charge(ctx: RunContext, filename: string, name: string, chunks: string[], feeds: string[]): number {
  const s = store(ctx);
  let f = s.get(filename);
  if (!f) {
    f = { text: new Map(), feeds: new Map() };
    s.set(filename, f);
  }
  const into = f.feeds.get(name) ?? new Set<string>();
  for (const r of feeds) into.add(r);
  f.feeds.set(name, into);
  const list = f.text.get(name) ?? [];
  f.text.set(name, list);
  let added = 0;
  for (const c of chunks) {
    if (!list.includes(c)) {
      list.push(c);
      added++;
    }
  }
  return added;
}

/** The `accumulator` template variable of file.managed: every accumulator of the file. */
export function accumulatorVar(ctx: RunContext, filename: string): Record<string, string[]> | undefined {
  const f = store(ctx).get(filename);
  if (!f) return undefined;
  return Object.fromEntries([...f.text].map(([k, v]) => [k, [...v]]));
}

/**
 * The chunks file.blockreplace `name` adds to its content: those of the accumulators aimed at
 * this state (by id, or by name, which is the file), or, when none is, every accumulator of the
 * file (Salt's fallback).
 */
export function accumulatedChunks(ctx: RunContext, name: string): string[] {
  const f = store(ctx).get(name);
  if (!f) return [];
  let names = [...f.text.keys()].filter((n) => {
    const feeds = f.feeds.get(n);
    return feeds !== undefined && (feeds.has(ctx.id) || feeds.has(name));
  });
  if (!names.length) names = [...f.text.keys()];
  return names.flatMap((n) => f.text.get(n) ?? []);
}

/** file.managed's template context: `accumulator` joins `context` when the file has any. */
export function withAccumulator(
  ctx: RunContext,
  filename: string,
  context: Record<string, unknown> | undefined,
): Record<string, unknown> | undefined {
  const acc = accumulatorVar(ctx, filename);
  return acc ? { ...(context ?? {}), accumulator: acc } : context;
}
