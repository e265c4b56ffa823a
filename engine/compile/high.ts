/**
 * High data: every SLS of the run loaded (includes followed depth-first, included files first,
 * as Salt orders them), `extend` applied, `exclude` applied. Still one entry per state id.
 */
import type { RenderBase } from '../render/render-base.js';
import type { CompileErrorDetail } from './errors.js';
import { loadSls, parseYamlShared, renderSls, slsFromRendered, slsVars, SlsLoadError, type SlsFile } from './sls-file.js';
import { REQUISITE_KINDS } from '../requisite-kinds.js';
// kept here too: modules that read them from high data import them from here
export { REQUISITE_KINDS, type RequisiteKind } from '../requisite-kinds.js';

export interface StateDecl {
  module: string;
  fun: string;
  /** arguments in the order written (list of single-key dicts in the SLS) */
  args: Array<[string, unknown]>;
  /** auto order: position of this declaration in the whole run */
  declIndex: number;
}

export interface HighEntry {
  id: string;
  sls: string;
  file: string;
  line?: number;
  column?: number;
  includeChain: string[];
  decls: StateDecl[];
}

export interface HighData {
  entries: Map<string, HighEntry>;
  /** SLS names loaded, in load order */
  slsLoaded: string[];
  errors: CompileErrorDetail[];
}

const RESERVED = new Set(['include', 'extend', 'exclude']);

const APPENDABLE = new Set<string>([...REQUISITE_KINDS, ...REQUISITE_KINDS.map((k) => `${k}_in`)]);

/** Resolve `.sub`, `..sub` relative to the including SLS, as Salt does. */
export function resolveInclude(from: Pick<SlsFile, 'slspath'>, inc: string): string {
  if (!inc.startsWith('.')) return inc;
  const dots = /^\.+/.exec(inc)![0].length;
  const rest = inc.slice(dots);
  const parts = from.slspath ? from.slspath.split('/') : [];
  for (let i = 1; i < dots; i++) parts.pop();
  return [...parts, ...(rest ? [rest] : [])].join('.');
}

function asArgList(v: unknown, where: () => Omit<CompileErrorDetail, "message">, errors: CompileErrorDetail[]): Array<[string, unknown]> | undefined {
  if (v === null || v === undefined) return [];
  if (Array.isArray(v)) {
    const out: Array<[string, unknown]> = [];
    for (const item of v) {
      if (item && typeof item === 'object' && !Array.isArray(item)) {
        for (const [k, x] of Object.entries(item)) out.push([k, x]);
      } else {
        errors.push({ ...where(), message: `argument ${JSON.stringify(item)} must be a 'key: value' item` });
        return undefined;
      }
    }
    return out;
  }
  if (typeof v === 'object') return Object.entries(v as Record<string, unknown>);
  errors.push({ ...where(), message: `arguments must be a list of 'key: value' items, got ${JSON.stringify(v)}` });
  return undefined;
}

function argDecl(
  module: string,
  fun: string,
  argsRaw: unknown,
  where: () => Omit<CompileErrorDetail, 'message'>,
  errors: CompileErrorDetail[],
  nextIndex: () => number,
): StateDecl[] {
  const args = asArgList(argsRaw, where, errors);
  return args ? [{ module, fun, args, declIndex: nextIndex() }] : [];
}

/** Parse one id's body into its state declarations (both Salt forms). */
export function parseDecls(
  id: string,
  body: unknown,
  where: () => Omit<CompileErrorDetail, "message">,
  errors: CompileErrorDetail[],
  nextIndex: () => number,
  /** in `extend:`, `service: [- watch: ...]` adds to the id's service state: no function needed */
  o: { extend?: boolean } = {},
): StateDecl[] {
  if (typeof body === 'string' && body.includes('.')) body = { [body]: [] }; // `vim: pkg.installed`
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    errors.push({ ...where(), message: `state '${id}' must be a mapping of module.function to arguments, got ${JSON.stringify(body)}` });
    return [];
  }
  const decls: StateDecl[] = [];
  const seenModules = new Set<string>();
  for (const [key, v] of Object.entries(body as Record<string, unknown>)) {
    if (key.startsWith('__')) continue;
    let module: string;
    let fun: string | undefined;
    let argsRaw: unknown = v;
    if (key.includes('.')) {
      const dot = key.indexOf('.');
      module = key.slice(0, dot);
      fun = key.slice(dot + 1);
    } else {
      module = key;
      if (typeof v === 'string') {
        fun = v;
        argsRaw = [];
      } else if (Array.isArray(v)) {
        const funs = v.filter((x) => typeof x === 'string') as string[];
        if (funs.length === 0 && o.extend) {
          decls.push(...argDecl(module, '', v, where, errors, nextIndex));
          continue;
        }
        if (funs.length !== 1) {
          errors.push({
            ...where(),
            message: funs.length
              ? `too many functions declared for '${module}' in state '${id}': ${funs.join(', ')}`
              : `no function given for '${module}' in state '${id}' (write '${module}.<function>' or '- <function>')`,
          });
          continue;
        }
        fun = funs[0];
        argsRaw = v.filter((x) => typeof x !== 'string');
      } else {
        errors.push({ ...where(), message: `'${module}' in state '${id}' needs a function: '${module}.<function>:'` });
        continue;
      }
    }
    if (seenModules.has(module)) {
      errors.push({ ...where(), message: `state '${id}' declares module '${module}' twice; use another id for the second` });
      continue;
    }
    seenModules.add(module);
    const args = asArgList(argsRaw, where, errors);
    if (!args) continue;
    decls.push({ module, fun: fun!, args, declIndex: nextIndex() });
  }
  return decls;
}

/** How one SLS of a run was loaded: its file and rendered text, not found, or the error loading it. */
export type RenderedSls = { file: string; text: string } | { missing: true } | { error: SlsLoadError };

/**
 * Render every SLS a run loads, in the order loadHigh loads them (includes followed through the
 * process's shared parse of each text), each once: the rendered texts are all a compile depends
 * on besides the SLS list (compile.ts keys its plans by them). `loaderOf` then gives loadHigh
 * these renders, so no template is rendered twice (a template may call salt functions).
 */
export function renderRun(base: RenderBase, slsList: string[]): Map<string, RenderedSls> {
  const out = new Map<string, RenderedSls>();
  const visit = (sls: string) => {
    if (out.has(sls)) return;
    let r: { file: string; text: string } | undefined;
    try {
      r = renderSls(base, sls);
    } catch (e) {
      if (!(e instanceof SlsLoadError)) throw e;
      out.set(sls, { error: e });
      return;
    }
    if (!r) {
      out.set(sls, { missing: true });
      return;
    }
    out.set(sls, r);
    let data: unknown;
    try {
      data = parseYamlShared(r.text, r.file, base.parsedYaml).data;
    } catch {
      return; // loadHigh reports it (parsing the same text again)
    }
    if (!data || typeof data !== 'object' || Array.isArray(data)) return;
    const inc = (data as Record<string, unknown>).include;
    if (inc === undefined) return;
    const from = { slspath: slsVars(sls, r.file).slspath as string };
    for (const item of Array.isArray(inc) ? inc : [inc]) {
      const name = typeof item === 'string' ? item : item && typeof item === 'object' ? Object.keys(item)[0] : undefined;
      if (name) visit(resolveInclude(from, name));
    }
  };
  for (const sls of slsList) visit(sls);
  return out;
}

/** loadHigh's loader over a run's renders (renderRun): parses (a copy of its own), renders nothing. */
export function loaderOf(base: RenderBase, rendered: ReadonlyMap<string, RenderedSls>): (sls: string) => SlsFile | undefined {
  return (sls) => {
    const r = rendered.get(sls);
    if (!r) return loadSls(base, sls); // not reached by renderRun (never: same walk); rendered here
    if ('error' in r) throw r.error;
    if ('missing' in r) return undefined;
    return slsFromRendered(base, sls, r.file, r.text);
  };
}

export function loadHigh(
  base: RenderBase,
  slsList: string[],
  chain0: string[] = [],
  /** how an SLS is loaded: found, rendered and parsed by default */
  load: (sls: string) => SlsFile | undefined = (sls) => loadSls(base, sls),
): HighData {
  const entries = new Map<string, HighEntry>();
  const errors: CompileErrorDetail[] = [];
  const loaded: string[] = [];
  const visiting = new Set<string>();
  const files: SlsFile[] = [];
  const extends_: Array<{ from: SlsFile; body: unknown }> = [];
  const excludes: Array<{ from: SlsFile; body: unknown }> = [];
  let declCounter = 0;

  const visit = (sls: string, chain: string[], includedFrom?: SlsFile) => {
    if (loaded.includes(sls) || visiting.has(sls)) return; // Salt includes each SLS once; include loops are harmless
    visiting.add(sls);
    let f: SlsFile | undefined;
    try {
      f = load(sls);
    } catch (e) {
      if (e instanceof SlsLoadError) {
        errors.push({ sls, includeChain: [...chain, sls], ...e.detail });
        return;
      }
      throw e;
    }
    if (!f) {
      errors.push({
        sls,
        file: includedFrom?.file,
        includeChain: [...chain, sls],
        message: `SLS '${sls}' not found in ${base.tree.label} (looked for ${sls.replace(/\./g, '/')}.sls and ${sls.replace(/\./g, '/')}/init.sls)`,
      });
      return;
    }
    const here = [...chain, sls];
    const inc = f.data.include;
    if (inc !== undefined) {
      const list = Array.isArray(inc) ? inc : [inc];
      for (const item of list) {
        const name = typeof item === 'string' ? item : item && typeof item === 'object' ? Object.keys(item)[0] : undefined;
        if (!name) {
          errors.push({ file: f.file, sls, includeChain: here, line: f.positions.get('include')?.line, message: `bad include entry ${JSON.stringify(item)}` });
          continue;
        }
        visit(resolveInclude(f, name), here, f);
      }
    }
    loaded.push(sls);
    files.push(f);
    for (const [id, body] of Object.entries(f.data)) {
      if (RESERVED.has(id)) continue;
      const pos = f.positions.get(id);
      const where = (): Omit<CompileErrorDetail, "message"> => ({ file: f!.file, sls, id, line: pos?.line, column: pos?.column, includeChain: here });
      const prev = entries.get(id);
      if (prev) {
        errors.push({ ...where(), message: `conflicting ID '${id}': also declared in SLS '${prev.sls}' (${prev.file}:${prev.line ?? '?'}); state ids must be unique across the run` });
        continue;
      }
      const decls = parseDecls(id, body, where, errors, () => declCounter++);
      entries.set(id, { id, sls, file: f.file, line: pos?.line, column: pos?.column, includeChain: here, decls });
    }
    if (f.data.extend !== undefined) extends_.push({ from: f, body: f.data.extend });
    if (f.data.exclude !== undefined) excludes.push({ from: f, body: f.data.exclude });
    visiting.delete(sls);
  };

  for (const sls of slsList) visit(sls, chain0);

  for (const { from, body } of extends_) applyExtend(entries, from, body, errors, () => declCounter++);
  for (const { from, body } of excludes) applyExclude(entries, from, body, errors);
  return { entries, slsLoaded: loaded, errors };
}

function applyExtend(
  entries: Map<string, HighEntry>,
  from: SlsFile,
  body: unknown,
  errors: CompileErrorDetail[],
  nextIndex: () => number,
): void {
  const line = from.positions.get('extend')?.line;
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    errors.push({ file: from.file, sls: from.sls, line, message: 'extend must be a mapping of state ids' });
    return;
  }
  for (const [id, ext] of Object.entries(body as Record<string, unknown>)) {
    const where = (): Omit<CompileErrorDetail, "message"> => ({ file: from.file, sls: from.sls, id, line });
    const target = entries.get(id);
    if (!target) {
      errors.push({ ...where(), message: `cannot extend ID '${id}': it is not part of the high state (include the SLS that declares it)` });
      continue;
    }
    for (const d of parseDecls(id, ext, where, errors, nextIndex, { extend: true })) {
      const existing = target.decls.find((x) => x.module === d.module);
      if (!existing) {
        if (!d.fun) {
          errors.push({ ...where(), message: `cannot extend '${d.module}' of ID '${id}': the ID has no '${d.module}' state and the extend names no function` });
          continue;
        }
        target.decls.push(d);
        continue;
      }
      for (const [k, v] of d.args) {
        const i = existing.args.findIndex(([ek]) => ek === k);
        if (i >= 0 && APPENDABLE.has(k)) {
          const old = existing.args[i]![1];
          existing.args[i] = [k, [...(Array.isArray(old) ? old : [old]), ...(Array.isArray(v) ? v : [v])]];
        } else if (i >= 0) existing.args[i] = [k, v];
        else existing.args.push([k, v]);
      }
    }
  }
}

function applyExclude(entries: Map<string, HighEntry>, from: SlsFile, body: unknown, errors: CompileErrorDetail[]): void {
  const list = Array.isArray(body) ? body : [body];
  for (const item of list) {
    if (typeof item === 'string') {
      for (const [id, e] of entries) if (e.sls === item) entries.delete(id);
    } else if (item && typeof item === 'object' && 'sls' in item) {
      const sls = String((item as { sls: unknown }).sls);
      for (const [id, e] of entries) if (e.sls === sls) entries.delete(id);
    } else if (item && typeof item === 'object' && 'id' in item) {
      entries.delete(String((item as { id: unknown }).id));
    } else {
      errors.push({ file: from.file, sls: from.sls, line: from.positions.get('exclude')?.line, message: `bad exclude entry ${JSON.stringify(item)}: use '- sls: name' or '- id: name'` });
    }
  }
}
