/**
 * Low states ("chunks" in Salt): one per (id, module.function, name), with `names` expanded,
 * requisites and run-control keywords pulled out of the function arguments.
 */
import type { CompileErrorDetail } from './errors.js';
import { REQUISITE_KINDS, type HighData, type RequisiteKind } from './high.js';

import type { RequisiteRef } from '../requisite-kinds.js';
export type { RequisiteRef } from '../requisite-kinds.js';

export interface Guards {
  unless?: unknown;
  onlyif?: unknown;
  creates?: unknown;
}

export interface LowState {
  /** unique key, Salt's tag shape: `module_|-id_|-name_|-function` */
  key: string;
  id: string;
  name: string;
  state: string;
  fun: string;
  sls: string;
  file: string;
  line?: number;
  includeChain: string[];
  /** arguments passed to the state function, `name` included */
  args: Record<string, unknown>;
  /** requisites as written (`require`, ...), and those injected by `*_in` elsewhere */
  requisites: Partial<Record<RequisiteKind, RequisiteRef[]>>;
  /** requisite_in declarations of this state, resolved onto their targets by the compiler */
  requisitesIn: Partial<Record<RequisiteKind, RequisiteRef[]>>;
  guards: Guards;
  order: number | 'first' | 'last' | undefined;
  failhard: boolean;
  declIndex: number;
  nameIndex: number;
}

/** Keywords that steer the run and never reach the state function. */
const RUN_KEYS = new Set([
  'order',
  'failhard',
  'unless',
  'onlyif',
  'creates',
  'names',
  'reload_modules',
  'reload_pillar',
  'reload_grains',
  'fire_event',
  'saltenv',
  'parallel',
  'retry',
  'state_output',
]);

export function tagOf(state: string, id: string, name: string, fun: string): string {
  return `${state}_|-${id}_|-${name}_|-${fun}`;
}

/** `- pkg: vim`, `- vim`, `- sls: web`, or a list of those -> refs. */
export function parseRefs(v: unknown): RequisiteRef[] | string {
  const items = Array.isArray(v) ? v : v === null || v === undefined ? [] : [v];
  const out: RequisiteRef[] = [];
  for (const item of items) {
    if (typeof item === 'string' || typeof item === 'number') out.push({ state: null, ref: String(item) });
    else if (item && typeof item === 'object' && !Array.isArray(item)) {
      for (const [state, ref] of Object.entries(item)) {
        for (const r of Array.isArray(ref) ? ref : [ref]) out.push({ state, ref: String(r) });
      }
    } else return `bad requisite reference ${JSON.stringify(item)}: use '- module: id_or_name' or '- id'`;
  }
  return out;
}

/**
 * A copy of a requisite table (lists of `{state, ref}` of strings): each name gets lists of its
 * own. structuredClone did the same at ~20x the cost, once or twice per state of every run.
 */
function copyRefs(t: Partial<Record<RequisiteKind, RequisiteRef[]>>): Partial<Record<RequisiteKind, RequisiteRef[]>> {
  const out: Partial<Record<RequisiteKind, RequisiteRef[]>> = {};
  for (const k in t) out[k as RequisiteKind] = t[k as RequisiteKind]!.map((r) => ({ state: r.state, ref: r.ref }));
  return out;
}

export function buildLow(high: HighData): { low: LowState[]; errors: CompileErrorDetail[] } {
  const low: LowState[] = [];
  const errors: CompileErrorDetail[] = [];
  const seen = new Map<string, LowState>();
  for (const entry of high.entries.values()) {
    for (const decl of entry.decls) {
      const where = (): Omit<CompileErrorDetail, "message"> => ({ file: entry.file, sls: entry.sls, id: entry.id, line: entry.line, includeChain: entry.includeChain });
      const args: Record<string, unknown> = {};
      const requisites: LowState['requisites'] = {};
      const requisitesIn: LowState['requisitesIn'] = {};
      const guards: Guards = {};
      let order: LowState['order'];
      let failhard = false;
      let names: unknown;
      let bad = false;
      for (const [k, v] of decl.args) {
        const kind = k.endsWith('_in') ? k.slice(0, -3) : k;
        if ((REQUISITE_KINDS as readonly string[]).includes(kind)) {
          const refs = parseRefs(v);
          if (typeof refs === 'string') {
            errors.push({ ...where(), message: `${k}: ${refs}` });
            bad = true;
            continue;
          }
          const bucket = k.endsWith('_in') ? requisitesIn : requisites;
          (bucket[kind as RequisiteKind] ??= []).push(...refs);
        } else if (k === 'unless' || k === 'onlyif' || k === 'creates') guards[k] = v;
        else if (k === 'order') {
          if (v === 'first' || v === 'last') order = v;
          else if (typeof v === 'number') order = v;
          else {
            errors.push({ ...where(), message: `order must be a number, 'first' or 'last', got ${JSON.stringify(v)}` });
            bad = true;
          }
        } else if (k === 'failhard') failhard = v === true || v === 'True';
        else if (k === 'names') names = v;
        else if (!RUN_KEYS.has(k)) args[k] = v;
      }
      if (bad) continue;
      const expansions: Array<{ name: string; over: Record<string, unknown> }> = [];
      if (names !== undefined) {
        if (!Array.isArray(names)) {
          errors.push({ ...where(), message: `names must be a list, got ${JSON.stringify(names)}` });
          continue;
        }
        for (const n of names) {
          if (n && typeof n === 'object' && !Array.isArray(n)) {
            const [nm, over] = Object.entries(n)[0] ?? [];
            const overArgs: Record<string, unknown> = {};
            for (const item of Array.isArray(over) ? over : over ? [over] : []) {
              if (item && typeof item === 'object') Object.assign(overArgs, item);
            }
            expansions.push({ name: String(nm), over: overArgs });
          } else expansions.push({ name: String(n), over: {} });
        }
      } else {
        expansions.push({ name: args.name !== undefined && args.name !== null ? String(args.name) : entry.id, over: {} });
      }
      expansions.forEach(({ name, over }, nameIndex) => {
        const key = tagOf(decl.module, entry.id, name, decl.fun);
        const dup = seen.get(key);
        if (dup) {
          errors.push({ ...where(), message: `state '${entry.id}' (${decl.module}.${decl.fun}) has name '${name}' twice` });
          return;
        }
        // `over` may carry requisites for this name only
        const reqs = copyRefs(requisites);
        const finalArgs: Record<string, unknown> = { ...args, name };
        for (const [k, v] of Object.entries(over)) {
          if ((REQUISITE_KINDS as readonly string[]).includes(k)) {
            const refs = parseRefs(v);
            if (typeof refs !== 'string') (reqs[k as RequisiteKind] ??= []).push(...refs);
          } else finalArgs[k] = v;
        }
        const ls: LowState = {
          key,
          id: entry.id,
          name,
          state: decl.module,
          fun: decl.fun,
          sls: entry.sls,
          file: entry.file,
          line: entry.line,
          includeChain: entry.includeChain,
          args: finalArgs,
          requisites: reqs,
          requisitesIn: copyRefs(requisitesIn),
          guards,
          order,
          failhard,
          declIndex: decl.declIndex,
          nameIndex,
        };
        seen.set(key, ls);
        low.push(ls);
      });
    }
  }
  return { low, errors };
}
