/**
 * The engine's public face: render + compile a tree for one host, then converge it.
 * Masterless (`tsalt local apply`) and the agent (`tsalt apply` from a master) both call this.
 */
import type { TreeSource } from './tree/source.js';
import type { Data } from './render/salt-functions.js';
import { countResults, type RunReport, type StateResult } from '../protocol/results.js';
import { compileRun, type CompiledState } from './compile/compile.js';
import { converge } from './run/runner.js';
import { makeRunBase } from './run/context.js';
import { withJobSignal } from './run/abort.js';
import { now } from './run/clock.js';

export interface EngineRequest {
  tree: TreeSource;
  /** the host's id (minion id) */
  id: string;
  grains: Data;
  pillar: Data;
  /** SLS names to apply; empty/absent: highstate (what top.sls gives this id) */
  sls?: string[];
  test: boolean;
  /** `--root DIR`: file states are rebased under DIR (demos, tests) */
  root?: string;
  opts?: Data;
  /** called once per state as it finishes, in execution order */
  onResult?: (r: StateResult) => void;
  /** aborting it kills the run: programs started for it are terminated, states not run yet report so */
  signal?: AbortSignal;
  /** this is the only run in the process (masterless): its signal can be process-wide */
  onlyRunInProcess?: boolean;
  /**
   * Keep the parsed YAML of rendered SLS on disk across runs (engine/render/yaml-cache.ts).
   * Rendered text can hold pillar values: only for pillar that is on this machine already
   * (`tsalt local` with its own pillar tree), never for pillar a master sent.
   */
  parsedYamlCache?: boolean;
}

/** Compile only (`tsalt local show`). Throws CompileError; touches nothing. */
export async function compile(req: EngineRequest): Promise<CompiledState[]> {
  const base = makeRunBase(req);
  return compileRun(base, { id: req.id, sls: req.sls ?? [] });
}

/** Compile everything, then converge. A CompileError is thrown before any state runs. */
export function apply(req: EngineRequest): Promise<RunReport> {
  return withJobSignal(req.signal, () => applyNow(req), { wholeProcess: req.onlyRunInProcess === true });
}

async function applyNow(req: EngineRequest): Promise<RunReport> {
  const base = makeRunBase(req);
  const started = now();
  const low = await compileRun(base, { id: req.id, sls: req.sls ?? [] });
  const results = await converge(base, low, req.onResult);
  return {
    id: req.id,
    test: req.test,
    results,
    counts: countResults(results),
    duration_ms: Math.round((now() - started) * 1000) / 1000,
  };
}
