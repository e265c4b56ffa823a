/**
 * One SLS file: find it in the tree (`a.b` -> a/b.sls or a/b/init.sls), render it (Jinja, then
 * YAML, or what its `#!` line asks for) and remember where each top-level id was declared.
 */
import v8 from 'node:v8';
import yaml from 'js-yaml';
import { SALT_YAML_SCHEMA } from '../render/salt-yaml.js';
import type { ParsedYamlCache } from '../render/yaml-cache.js';
import { templateGlobals, type RenderBase as RunBase } from '../render/render-base.js';
import { RenderError } from '../render/jinja.js';
import { TreeError } from '../tree/source.js';
import type { CompileErrorDetail } from './errors.js';

export interface SlsFile {
  sls: string;
  /** tree-relative path */
  file: string;
  /** directory of the sls, '/'-separated ('' at the tree root): Salt's slspath */
  slspath: string;
  data: Record<string, unknown>;
  /** line (1-based) and column of each top-level key */
  positions: Map<string, { line: number; column: number }>;
}

export class SlsLoadError extends Error {
  constructor(readonly detail: CompileErrorDetail) {
    super(detail.message);
  }
}

/** `a.b` -> candidate files, as Salt looks them up. */
export function slsCandidates(sls: string): string[] {
  const p = sls.replace(/\./g, '/');
  return [`${p}.sls`, `${p}/init.sls`];
}

export function findSls(base: RunBase, sls: string): string | undefined {
  return slsCandidates(sls).find((f) => {
    try {
      return base.tree.existsSync(f);
    } catch {
      return false;
    }
  });
}

/** Salt's template variables for an SLS file. */
export function slsVars(sls: string, file: string): Record<string, unknown> {
  const dir = file.includes('/') ? file.slice(0, file.lastIndexOf('/')) : '';
  return {
    sls,
    slspath: dir,
    sls_path: dir.replace(/\//g, '_'),
    slsdotpath: dir.replace(/\//g, '.'),
    slscolonpath: dir.replace(/\//g, ':'),
    tplpath: file,
    tplfile: file,
    tpldir: dir || '.',
    tpldot: dir.replace(/\//g, '.'),
  };
}

export function renderText(
  base: RunBase,
  text: string,
  file: string,
  vars: Record<string, unknown>,
): string {
  const first = text.startsWith('#!') ? text.slice(0, text.indexOf('\n') >>> 0) : '';
  const pipeline = first ? first.slice(2).trim().split('|').map((s) => s.trim()) : ['jinja', 'yaml'];
  for (const r of pipeline) {
    if (!['jinja', 'yaml', 'yamlex'].includes(r)) {
      throw new SlsLoadError({ file, line: 1, message: `renderer '${r}' is not supported (tsalt renders jinja and yaml)` });
    }
  }
  const body = first ? text.slice(first.length + 1) : text;
  if (!pipeline.includes('jinja')) return first ? '\n' + body : body;
  try {
    const out = base.renderer.renderPlain(body, file) ?? base.renderer.render(body, { ...templateGlobals(base), ...vars }, file);
    return first ? '\n' + out : out; // keep line numbers aligned with the file
  } catch (e) {
    if (e instanceof RenderError) {
      const shift = (f: string, l: number | undefined) => (l !== undefined && first && f === file ? l + 1 : l);
      const line = shift(e.file, e.line);
      // an error in an imported map.jinja names where it is and how the SLS reached it
      const chain = e.importChain.length
        ? ` (import chain: ${[...e.importChain].reverse().map((l) => `${l.file}:${shift(l.file, l.line)}`).concat(`${e.file}:${line ?? '?'}`).join(' -> ')})`
        : '';
      throw new SlsLoadError({ file: e.file, line, column: e.column, message: `Jinja error: ${e.message}${chain}` });
    }
    if (e instanceof TreeError) throw new SlsLoadError({ file, message: e.message });
    throw e;
  }
}

/**
 * Parse rendered YAML; errors carry the line in the rendered text (= the file line for most
 * trees). js-yaml because the SLS parse is on every run's hot path (5x faster than `yaml`).
 */
export function parseYaml(
  text: string,
  file: string,
  /** state runs: the data parsed from the same text in an earlier run (only text that parsed is stored) */
  cache?: ParsedYamlCache,
): { data: unknown; positions: Map<string, { line: number; column: number }> } {
  // with a disk cache (`tsalt local`) that one serves: it outlives the process
  const memo = cache ? undefined : parsedInMemory.get(text);
  if (memo) {
    // a copy of its own for every run (callers may change what they get)
    return { data: v8.deserialize(memo.body), positions: new Map(memo.positions) };
  }
  return parseNew(text, file, cache);
}

/**
 * parseYaml for a caller that only reads what it gets (top matching, following includes): the
 * process's one copy of the parse of this text, no copy made. It must not be changed.
 */
export function parseYamlShared(
  text: string,
  file: string,
  cache?: ParsedYamlCache,
): { data: unknown; positions: ReadonlyMap<string, { line: number; column: number }> } {
  if (cache) return parseYaml(text, file, cache);
  const memo = parsedInMemory.get(text);
  if (memo) {
    memo.shared ??= v8.deserialize(memo.body);
    return { data: memo.shared, positions: memo.positions };
  }
  // not kept (too large, or not serialisable): the caller's own parse
  return parseNew(text, file, undefined);
}

function parseNew(
  text: string,
  file: string,
  cache: ParsedYamlCache | undefined,
): { data: unknown; positions: Map<string, { line: number; column: number }> } {
  let data: unknown;
  const cached = cache?.get(text);
  try {
    if (cached) data = cached.data;
    else {
      data = yaml.load(text, { schema: SALT_YAML_SCHEMA, filename: file, json: false });
      cache?.set(text, data);
    }
  } catch (e) {
    if (e instanceof yaml.YAMLException) {
      const line = (e.mark?.line ?? 0) + 1;
      const column = (e.mark?.column ?? 0) + 1;
      throw new SlsLoadError({
        file,
        line,
        column,
        message: `YAML error: ${e.reason} (after rendering; '${lineAt(text, line)}')`,
      });
    }
    throw e;
  }
  const positions = topLevelKeyPositions(text);
  if (!cache) remember(text, data, positions);
  return { data, positions };
}

/**
 * Rendered SLS text parsed in this process, as V8's serialisation (an exact copy of what js-yaml
 * gave: ./yaml-cache.ts's test covers the round trip): the agents of one process rendering the
 * same SLS (most of a no-op tree) parse it once. In memory only (it can hold pillar values), and
 * bounded: the most recent texts, small ones.
 */
const parsedInMemory = new Map<string, { body: Buffer; positions: Map<string, { line: number; column: number }>; shared?: unknown }>();
const MEMO_TEXTS = 256;
const MEMO_TEXT_MAX = 16 * 1024;
function remember(text: string, data: unknown, positions: Map<string, { line: number; column: number }>): void {
  if (text.length > MEMO_TEXT_MAX) return;
  let body: Buffer;
  try {
    body = v8.serialize(data);
  } catch {
    return;
  }
  if (parsedInMemory.size >= MEMO_TEXTS) parsedInMemory.delete(parsedInMemory.keys().next().value!);
  parsedInMemory.set(text, { body, positions: new Map(positions) });
}

/**
 * Line of each top-level key, for messages. A root block mapping puts its keys at column 0;
 * anything else (flow style, a root list) simply yields no positions.
 */
function topLevelKeyPositions(text: string): Map<string, { line: number; column: number }> {
  const positions = new Map<string, { line: number; column: number }>();
  const re = /^(?:'((?:[^']|'')*)'|"((?:[^"\\]|\\.)*)"|([^\s#'"\-?:,\[\]{}&*!|>%@`][^#]*?|-[^\s#][^#]*?))\s*:(?:\s|$)/;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (!l || l[0] === ' ' || l[0] === '\t' || l[0] === '#') continue;
    const m = re.exec(l);
    if (!m) continue;
    const key = m[1] !== undefined ? m[1].replace(/''/g, "'") : m[2] !== undefined ? JSON.parse(`"${m[2]}"`) : m[3]!.trim();
    if (!positions.has(key)) positions.set(key, { line: i + 1, column: 1 });
  }
  return positions;
}

function lineAt(text: string, line: number): string {
  return (text.split('\n')[line - 1] ?? '').trim().slice(0, 80);
}

export function loadSls(base: RunBase, sls: string): SlsFile | undefined {
  const r = renderSls(base, sls);
  return r && slsFromRendered(base, sls, r.file, r.text);
}

/** An SLS found in the tree, read and rendered (not parsed): its file and rendered text; undefined when not found. */
export function renderSls(base: RunBase, sls: string): { file: string; text: string } | undefined {
  const file = findSls(base, sls);
  if (!file) return undefined;
  let text: string;
  try {
    text = base.tree.readSync(file).toString('utf8');
  } catch (e) {
    throw new SlsLoadError({ file, sls, message: (e as Error).message });
  }
  return { file, text: renderText(base, text, file, slsVars(sls, file)) };
}

/** An SLS's rendered text parsed: the caller's own copy of its data. */
export function slsFromRendered(base: RunBase, sls: string, file: string, rendered: string): SlsFile {
  const { data, positions } = parseYaml(rendered, file, base.parsedYaml);
  if (data === null || data === undefined) return { sls, file, slspath: slsVars(sls, file).slspath as string, data: {}, positions };
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new SlsLoadError({ file, sls, line: 1, message: 'SLS must be a mapping of ids to states' });
  }
  return { sls, file, slspath: slsVars(sls, file).slspath as string, data: data as Record<string, unknown>, positions };
}
