/**
 * Requisites -> a dependency graph: `*_in` turned around, references matched by id or name
 * (Salt's rule), missing targets recorded on the state that names them (it fails at run time
 * with Salt's "not found" comment; the others run), cycles reported, and the static execution
 * order computed
 * (Salt's: sort by order, then run each state's requisites depth-first before it).
 */
import type { CompileErrorDetail } from './errors.js';
import type { RequisiteKind } from './high.js';
import type { LowState, RequisiteRef } from './low.js';

export interface Edge {
  kind: RequisiteKind;
  /** key of the state this one depends on (for prereq: the state this one runs before) */
  target: string;
}

/** A requisite of a state whose target is not part of the run (Salt: "not found"). */
export interface MissingRequisite {
  kind: RequisiteKind;
  /** module written in the requisite (`pkg` of `- pkg: nginx`), `id` when none was */
  state: string;
  ref: string;
}

export type Linked = LowState & {
  deps: Edge[];
  /** requisites whose target is not in this run: the state fails with Salt's "not found" comment, the others run */
  missing?: MissingRequisite[];
};

/** Salt's comment for a state whose requisites were not found (salt/state.py, same layout). */
export function missingRequisitesComment(missing: MissingRequisite[]): string {
  let out = 'The following requisites were not found:\n';
  const kinds = [...new Set(missing.map((m) => m.kind))];
  for (const kind of kinds) {
    out += `${' '.repeat(19)}${kind}:\n`;
    for (const m of missing.filter((x) => x.kind === kind)) out += `${' '.repeat(23)}${m.state}: ${m.ref}\n`;
  }
  return out;
}

/** Kinds that make the requiring state run after its target. prereq runs before it; listen adds no order. */
const ORDERING: ReadonlySet<RequisiteKind> = new Set([
  'require',
  'watch',
  'onchanges',
  'onfail',
  'require_any',
  'watch_any',
  'onchanges_any',
  'onfail_any',
  'onfail_all',
]);

function describeRef(kind: string, r: RequisiteRef): string {
  return r.state ? `${kind}: {${r.state}: ${r.ref}}` : `${kind}: ${r.ref}`;
}

export function linkRequisites(low: LowState[]): { states: Linked[]; errors: CompileErrorDetail[] } {
  const errors: CompileErrorDetail[] = [];
  const byIdOrName = new Map<string, LowState[]>();
  const bySls = new Map<string, LowState[]>();
  const add = (m: Map<string, LowState[]>, k: string, s: LowState) => {
    const l = m.get(k);
    if (l) {
      if (!l.includes(s)) l.push(s);
    } else m.set(k, [s]);
  };
  for (const s of low) {
    add(byIdOrName, s.id, s);
    add(byIdOrName, s.name, s);
    add(bySls, s.sls, s);
  }
  const find = (r: RequisiteRef): LowState[] => {
    if (r.state === 'sls') {
      // `- sls: web` matches web and, as in Salt, web.* files
      const out: LowState[] = [];
      for (const [sls, list] of bySls) if (sls === r.ref || sls.startsWith(r.ref + '.')) out.push(...list);
      return out;
    }
    if (r.state === 'id') return low.filter((s) => s.id === r.ref);
    const cands = byIdOrName.get(r.ref) ?? [];
    return r.state ? cands.filter((s) => s.state === r.state) : cands;
  };

  const deps = new Map<string, Edge[]>(low.map((s) => [s.key, []]));
  const pushEdge = (from: LowState, kind: RequisiteKind, to: LowState) => {
    if (from.key === to.key) return;
    const list = deps.get(from.key)!;
    if (!list.some((e) => e.kind === kind && e.target === to.key)) list.push({ kind, target: to.key });
  };
  const where = (s: LowState): CompileErrorDetail => ({ file: s.file, sls: s.sls, id: s.id, line: s.line, includeChain: s.includeChain, message: '' });

  const missing = new Map<string, MissingRequisite[]>();
  for (const s of low) {
    for (const [kind, refs] of Object.entries(s.requisites) as Array<[RequisiteKind, RequisiteRef[]]>) {
      for (const r of refs) {
        const targets = find(r);
        if (!targets.length) {
          // as Salt: this state fails ("requisites were not found"), the rest of the run goes on
          const list = missing.get(s.key) ?? [];
          list.push({ kind, state: r.state ?? 'id', ref: r.ref });
          missing.set(s.key, list);
        }
        for (const t of targets) pushEdge(s, kind, t);
      }
    }
    for (const [kind, refs] of Object.entries(s.requisitesIn) as Array<[RequisiteKind, RequisiteRef[]]>) {
      for (const r of refs) {
        const targets = find(r);
        if (!targets.length) {
          errors.push({ ...where(s), message: `requisite not found: ${describeRef(kind + '_in', r)} — no state with that id or name is part of this run` });
        }
        for (const t of targets) pushEdge(t, kind, s);
      }
    }
  }

  const states: Linked[] = low.map((s) => ({ ...s, deps: deps.get(s.key)!, ...(missing.has(s.key) ? { missing: missing.get(s.key)! } : {}) }));
  if (!errors.length) {
    const cycle = findCycle(states);
    if (cycle) {
      const first = states.find((s) => s.key === cycle[0])!;
      const label = (k: string) => {
        const s = states.find((x) => x.key === k)!;
        return `${s.id} (${s.state}.${s.fun})`;
      };
      errors.push({ ...where(first), message: `requisite cycle: ${[...cycle, cycle[0]!].map(label).join(' -> ')}` });
    }
  }
  return { states, errors };
}

/**
 * `use`: copy the target's arguments that this state does not set itself (never `name`;
 * requisites were taken out of args by the compiler, so they are not inherited, as in Salt).
 */
export function applyUse(states: Linked[]): void {
  const byKey = new Map(states.map((s) => [s.key, s]));
  for (const s of states) {
    for (const e of s.deps) {
      if (e.kind !== 'use') continue;
      const t = byKey.get(e.target)!;
      for (const [k, v] of Object.entries(t.args)) if (k !== 'name' && !(k in s.args)) s.args[k] = structuredClone(v);
    }
  }
}

/** Edges meaning "a runs after b" (prereq reversed). */
export function orderingEdges(states: Linked[]): Map<string, string[]> {
  const after = new Map<string, string[]>(states.map((s) => [s.key, []]));
  for (const s of states) {
    for (const e of s.deps) {
      if (ORDERING.has(e.kind)) after.get(s.key)!.push(e.target);
      else if (e.kind === 'prereq') after.get(e.target)!.push(s.key);
    }
  }
  return after;
}

function findCycle(states: Linked[]): string[] | undefined {
  const after = orderingEdges(states);
  const color = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  const dfs = (k: string): string[] | undefined => {
    color.set(k, 1);
    stack.push(k);
    for (const t of after.get(k) ?? []) {
      const c = color.get(t) ?? 0;
      if (c === 1) return stack.slice(stack.indexOf(t));
      if (c === 0) {
        const r = dfs(t);
        if (r) return r;
      }
    }
    stack.pop();
    color.set(k, 2);
    return undefined;
  };
  for (const s of states) {
    if ((color.get(s.key) ?? 0) === 0) {
      const r = dfs(s.key);
      if (r) return r;
    }
  }
  return undefined;
}

/** Salt's order keys: explicit numbers first, then declaration order, `order: last` at the end. */
export function sortByOrder<T extends LowState>(states: T[]): T[] {
  let cap = 1;
  for (const s of states) if (typeof s.order === 'number' && s.order > cap - 1 && s.order > 0) cap = s.order + 100;
  const key = (s: LowState): number => {
    if (s.order === undefined) return cap;
    if (s.order === 'first') return 0;
    if (s.order === 'last') return cap + 1_000_000;
    if (s.order < 0) return cap + 1_000_000 + s.order;
    return s.order;
  };
  return [...states].sort((a, b) => key(a) - key(b) || a.declIndex - b.declIndex || a.nameIndex - b.nameIndex);
}

/** The order states will run in: sorted, each preceded by what it must run after. */
export function executionOrder<T extends Linked>(states: T[]): T[] {
  const after = orderingEdges(states);
  const byKey = new Map(states.map((s) => [s.key, s]));
  const done = new Set<string>();
  const out: T[] = [];
  const visit = (k: string) => {
    if (done.has(k)) return;
    done.add(k);
    for (const t of after.get(k) ?? []) visit(t);
    out.push(byKey.get(k)!);
  };
  for (const s of sortByOrder(states)) visit(s.key);
  return out;
}
