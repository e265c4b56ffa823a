/**
 * Nunjucks configured to behave like Salt's Jinja (docs/design.md, "Render"; the traps: docs/sls.md):
 * - dicts/lists print as Python repr (YAML flow), booleans as True/False, null as None;
 * - undefined values are an error when printed (Salt's StrictUndefined);
 * - a template's final newline is kept;
 * - Python methods on dicts/lists (`.items()`, `.get()`, `.append()`) via Jinja compat, plus the
 *   string methods trees use (`.format`, `.split`, `.strip`, `.startswith`, ...);
 * - no way out: every lookup and call goes through ./sandbox.ts (own data of plain data and
 *   registered helpers only), so templates cannot reach `process`, `require` or the filesystem;
 * - `{% include %}`/`{% import %}`/`{% from %}` read from the state tree only.
 */
import nunjucks from 'nunjucks';
import { loadSaltYaml } from './salt-yaml.js';
import { installPatches, ORIGINALS, renderGlobals } from './nunjucks-patch.js';
import { jinjaGlobals } from './globals.js';
import type { ImportLink } from './py-runtime.js';
import { installFilters } from './filters.js';
import type { TreeSource } from '../tree/source.js';
import { normaliseTreePath } from '../tree/source.js';
import { CompiledTemplateCache, environmentFingerprint } from './compile-cache.js';

let patched = false;
const compiledCode = new Map<string, Record<string, unknown>>();
/** Tests: drop this process's compiled templates, so the next compile goes to the disk cache. */
export function forgetCompiledTemplates(): void {
  compiledCode.clear();
}
/** The on-disk cache of each renderer's environment, and that environment's part of the key. */
const diskCaches = new WeakMap<object, { cache: CompiledTemplateCache; fingerprint?: string }>();

/** A template's compiled props via the on-disk cache of its environment (undefined: none). */
function compileViaDisk(t: any): Record<string, unknown> | undefined {
  const disk = diskCaches.get(t.env);
  if (!disk) return undefined;
  const env = t.env;
  disk.fingerprint ??= environmentFingerprint(env);
  const key = CompiledTemplateCache.key(disk.fingerprint, t.path ?? '', t.tmplStr);
  let source = disk.cache.get(key);
  if (source === undefined) {
    // the call Template._compile makes: the same (patched) compiler, the same arguments
    source = (nunjucks as any).compiler.compile(t.tmplStr, env.asyncFilters, env.extensionsList, t.path, env.opts) as string;
    disk.cache.set(key, source);
  }
  return new Function(source)() as Record<string, unknown>;
}
/** Patch Nunjucks' runtime once per process: compat methods, closed lookups, Salt-style output. */
function patchRuntime(): void {
  if (patched) return;
  patched = true;
  installPatches();
  const rt = (nunjucks as unknown as { runtime: Record<string, any> }).runtime;
  // Errors inside an imported template must name that template, not the importer.
  const T = (nunjucks.Template as any).prototype;
  const origGetExported = T.getExported as (...a: unknown[]) => unknown;
  ORIGINALS['Template.getExported'] = String(origGetExported);
  T.getExported = function (this: { path?: string }, ...args: unknown[]) {
    // getExported(cb) | getExported(ctx, cb) | getExported(ctx, frame, cb)
    const cb = args.pop() as (e: unknown, v?: unknown) => void;
    const [ctx = {}, parentFrame = null] = args;
    const path = this.path;
    const wrap = (e: unknown) => (e && path ? (nunjucks.lib as any)._prettifyError(path, true, e) : e);
    // Our loader is synchronous, so the imported template finishes before getExported returns.
    // The importer's continuation (the rest of its template) runs only after that: called from
    // inside, its errors would be caught by the imported template's own try/catch and blamed on
    // the imported file.
    let result: [unknown, unknown] | undefined;
    try {
      origGetExported.call(this, ctx, parentFrame, (e: unknown, v?: unknown) => {
        result = [e, v];
      });
    } catch (e) {
      throw wrap(e);
    }
    if (!result) throw new Error(`import of ${path ?? 'a template'} did not complete synchronously`);
    return cb(wrap(result[0]), result[1]);
  };
  // Compiled code is pure over (source, path): every run builds a new environment (its tree and
  // loader), but the same templates compile once per process. Bounded, oldest dropped first.
  const origCompile = T._compile as (this: any) => void;
  ORIGINALS['Template._compile'] = String(origCompile);
  T._compile = function (this: any) {
    const key = `${this.path ?? ''}\0${this.tmplStr}`;
    const cached = compiledCode.get(key);
    if (cached && !this.tmplProps) this.tmplProps = cached;
    else if (!this.tmplProps) this.tmplProps = compileViaDisk(this);
    origCompile.call(this);
    if (!cached) {
      const props: Record<string, unknown> = { root: this.rootRenderFunc };
      for (const [name, fn] of Object.entries(this.blocks as Record<string, unknown>)) props[`b_${name}`] = fn;
      compiledCode.set(key, props);
      if (compiledCode.size > 2000) compiledCode.delete(compiledCode.keys().next().value!);
    }
  };
  // the same for {% include %}: Template.render(ctx, frame, cb) runs the includer's continuation in cb
  const origRender = T.render as (...a: unknown[]) => unknown;
  ORIGINALS['Template.render'] = String(origRender);
  T.render = function (this: unknown, ...args: unknown[]) {
    const cb = args[args.length - 1];
    if (args.length < 3 || typeof cb !== 'function') return origRender.apply(this, args);
    let result: [unknown, unknown] | undefined;
    origRender.call(this, args[0], args[1], (e: unknown, v?: unknown) => {
      result = [e, v];
    });
    if (!result) throw new Error('include did not complete synchronously');
    return (cb as (e: unknown, v?: unknown) => unknown)(result[0], result[1]);
  };
  // StrictUndefined: printing an undefined value is an error; None (null) prints as 'None'
  rt.ensureDefined = function ensureDefined(val: unknown, lineno: number, colno: number) {
    if (val === undefined) {
      throw new (nunjucks.lib as any).TemplateError('undefined value printed (missing pillar/grain key or variable?)', lineno + 1, colno + 1);
    }
    return val;
  };
}

/** Loads `{% include/import/from %}` targets from the state tree, with `./x` relative to the caller. */
class TreeLoader extends (nunjucks.Loader as unknown as new () => object) {
  constructor(private readonly tree: TreeSource) {
    super();
  }
  getSource(name: string): { src: string; path: string; noCache: boolean } | null {
    const rel = normaliseTreePath(name);
    // null = not found, which `{% include … ignore missing %}` and template lists rely on
    if (!this.tree.existsSync(rel)) return null;
    return { src: this.tree.readSync(rel).toString('utf8'), path: rel, noCache: false };
  }
  isRelative(name: string): boolean {
    return name.startsWith('./') || name.startsWith('../');
  }
  resolve(from: string, to: string): string {
    return TreeLoader.join(from, to);
  }
  /** `to` relative to the directory of tree file `from`. */
  static join(from: string, to: string): string {
    const dir = from.includes('/') ? from.slice(0, from.lastIndexOf('/')) : '';
    const parts = dir ? dir.split('/') : [];
    for (const seg of to.split('/')) {
      if (seg === '.' || seg === '') continue;
      if (seg === '..') parts.pop();
      else parts.push(seg);
    }
    return parts.join('/');
  }
}

/** Jinja's `{% do expr %}`: evaluate for the side effect (`{% do list.append(x) %}`), print nothing. */
class DoExtension {
  tags = ['do'];
  parse(parser: any, nodes: any): unknown {
    const tok = parser.nextToken();
    const expr = parser.parseExpression();
    parser.advanceAfterBlockEnd(tok.value);
    return new nodes.CallExtension(this, 'run', new nodes.NodeList(tok.lineno, tok.colno, [expr]));
  }
  run(): string {
    return '';
  }
}

/**
 * Salt's data-loading tags: `{% import_yaml 'x.yaml' as v %}`, `{% import_json 'x.json' as v %}`
 * (read from the state tree, `./x` relative to the current template), and
 * `{% load_yaml as v %}...{% endload %}` / `{% load_json as v %}...{% endload %}` for inline data.
 */
class ImportDataExtension {
  tags = ['import_yaml', 'import_json', 'load_yaml', 'load_json'];
  /** set by the renderer once its environment exists */
  env!: nunjucks.Environment;
  constructor(private readonly tree: TreeSource) {}

  parse(parser: any, nodes: any, lexer: any): unknown {
    const tok = parser.nextToken();
    const kind = tok.value as string;
    const args: unknown[] = [new nodes.Literal(tok.lineno, tok.colno, kind)];
    if (kind.startsWith('import_')) args.push(parser.parseExpression());
    if (!parser.skipSymbol('as')) parser.fail(`${kind}: expected 'as <name>'`, tok.lineno, tok.colno);
    const name = parser.nextToken();
    if (name.type !== lexer.TOKEN_SYMBOL) parser.fail(`${kind}: expected a variable name after 'as'`, tok.lineno, tok.colno);
    args.push(new nodes.Literal(name.lineno, name.colno, name.value));
    // `{% import_yaml 'x.yaml' as d with context %}`: the file is rendered with the importer's variables
    let withContext = false;
    if (kind.startsWith('import_') && parser.skipSymbol('with')) {
      if (!parser.skipSymbol('context')) parser.fail(`${kind}: expected 'context' after 'with'`, tok.lineno, tok.colno);
      withContext = true;
    } else if (kind.startsWith('import_') && parser.skipSymbol('without')) {
      if (!parser.skipSymbol('context')) parser.fail(`${kind}: expected 'context' after 'without'`, tok.lineno, tok.colno);
    }
    if (kind.startsWith('import_')) args.push(new nodes.Literal(name.lineno, name.colno, withContext));
    parser.advanceAfterBlockEnd(tok.value);
    if (kind.startsWith('import_')) return new nodes.CallExtension(this, 'run', new nodes.NodeList(tok.lineno, tok.colno, args));
    const body = parser.parseUntilBlocks('endload');
    parser.advanceAfterBlockEnd();
    return new nodes.CallExtension(this, 'run', new nodes.NodeList(tok.lineno, tok.colno, args), [body]);
  }

  run(context: any, kind: string, ...rest: unknown[]): string {
    let text: string;
    let name: string;
    let source: string;
    if (kind.startsWith('import_')) {
      const [file, varName, withContext] = rest as [string, string, boolean];
      const from = String(context.lookup('tplpath') ?? '');
      const rel = (file.startsWith('./') || file.startsWith('../')) && from ? TreeLoader.join(from, file) : normaliseTreePath(file);
      // Salt imports the file as a template: Jinja in it is rendered before the YAML is read
      const tmpl = new nunjucks.Template(this.tree.readSync(rel).toString('utf8'), this.env, rel, true);
      text = tmpl.render(withContext ? { ...context.getVariables() } : {});
      name = varName;
      source = rel;
    } else {
      const [varName, body] = rest as [string, () => string];
      text = body();
      name = varName;
      source = `${kind} block`;
    }
    let value: unknown;
    try {
      value = kind.endsWith('_json') ? JSON.parse(text) : loadSaltYaml(text, source);
    } catch (e) {
      throw new Error(`${kind} ${source}: ${(e as Error).message.split('\n')[0]}`);
    }
    context.setVariable(name, value);
    return '';
  }
}

export interface TemplateError {
  message: string;
  line?: number;
  column?: number;
  /** tree-relative path of the file the error is in (may be an included file) */
  file?: string;
}

export class RenderError extends Error {
  constructor(
    message: string,
    readonly file: string,
    readonly line?: number,
    readonly column?: number,
    /** importers, innermost first: the file and line of each `{% import/from/include %}` that led to `file` */
    readonly importChain: ImportLink[] = [],
  ) {
    super(message);
    this.name = 'RenderError';
  }
}

export class JinjaRenderer {
  private readonly env: nunjucks.Environment;

  /** `compileCache`: compiled templates kept on disk across runs (./compile-cache.ts). */
  constructor(tree: TreeSource, compileCache?: CompiledTemplateCache) {
    patchRuntime();
    this.env = new nunjucks.Environment(new TreeLoader(tree) as unknown as nunjucks.ILoader, {
      autoescape: false,
      throwOnUndefined: true,
      trimBlocks: false,
      lstripBlocks: false,
    });
    installFilters(this.env);
    (this.env as unknown as { globals: Record<string, unknown> }).globals = jinjaGlobals();
    // `{% include ['a.j2', 'b.j2'] %}`: the first that exists, as Jinja's select_template
    const env = this.env as unknown as { getTemplate: (...a: any[]) => unknown };
    const getTemplate = env.getTemplate.bind(env);
    env.getTemplate = (name: unknown, ...rest: any[]) => {
      if (!Array.isArray(name)) return getTemplate(name, ...rest);
      const found = name.find((n) => typeof n === 'string' && tree.existsSync(normaliseTreePath(n)));
      if (found === undefined) {
        const cb = rest[rest.length - 1];
        const err = new Error(`none of the templates exist: ${name.join(', ')}`);
        if (typeof cb === 'function') return cb(err);
        throw err;
      }
      return getTemplate(found, ...rest);
    };
    this.env.addExtension('do', new DoExtension());
    const importData = new ImportDataExtension(tree);
    importData.env = this.env;
    this.env.addExtension('importData', importData);
    if (compileCache) diskCaches.set(this.env, { cache: compileCache });
  }

  /** Compiled templates of this renderer's runs: the same source file rendered for 40 states compiles once. */
  private readonly compiled = new Map<string, nunjucks.Template>();

  /** What texts with no `{` rendered to (nothing in them for Jinja: the same whatever the variables). */
  private readonly plainOut = new Map<string, string>();

  /**
   * The output of `text` when it holds no Jinja (no `{` at all: no expression, statement or
   * comment), rendered once per renderer and text; undefined for any other text (render it).
   * A plain top.sls or SLS is most of a no-op job's rendering, for every agent of a process.
   */
  renderPlain(text: string, name: string): string | undefined {
    if (text.includes('{')) return undefined;
    let out = this.plainOut.get(text);
    if (out === undefined) {
      out = this.render(text, {}, name);
      if (this.plainOut.size >= 1000) this.plainOut.clear();
      this.plainOut.set(text, out);
    }
    return out;
  }

  /** Render `text` (from tree file `name`, for messages and relative imports). */
  render(text: string, vars: Record<string, unknown>, name: string): string {
    try {
      const key = `${name}\0${text}`;
      let tmpl = this.compiled.get(key);
      if (!tmpl) {
        tmpl = new nunjucks.Template(text, this.env, name, true);
        // a renderer can serve many runs (render-base.ts rendererFor): bounded
        if (this.compiled.size >= 1000) this.compiled.clear();
        this.compiled.set(key, tmpl);
      }
      renderGlobals.push(vars);
      try {
        return tmpl.render(vars);
      } finally {
        renderGlobals.pop();
      }
    } catch (e) {
      throw toRenderError(e, name);
    }
  }
}

/** Nunjucks puts "(path) [Line L, Column C]\n  msg" in the message; pull it apart. */
function toRenderError(e: unknown, name: string): RenderError {
  if (e instanceof RenderError) return e;
  const err = e as { message?: string; lineno?: number; colno?: number; tsaltChain?: ImportLink[] };
  let msg = String(err.message ?? e);
  let file = name;
  let line = err.lineno;
  let column = err.colno;
  const m = /^\(([^)]*)\)(?: \[Line (\d+), Column (\d+)\])?\s*\n?\s*([\s\S]*)$/.exec(msg);
  if (m) {
    if (m[1] && m[1] !== 'unknown path') file = m[1];
    if (m[2]) line = Number(m[2]);
    if (m[3]) column = Number(m[3]);
    msg = m[4]!.trim();
  }
  msg = msg.replace(/^Error: /, '').replace(/^Template render error: /, '');
  // nested "(file) [Line..]" from includes: keep the innermost position
  const inner = /\(([^)]*)\) \[Line (\d+), Column (\d+)\]\s*\n?\s*([\s\S]*)$/.exec(msg);
  if (inner) {
    if (inner[1] && inner[1] !== 'unknown path') file = inner[1];
    line = Number(inner[2]);
    column = Number(inner[3]);
    msg = inner[4]!.trim();
  }
  msg = msg.replace(/^(?:Error: |Template render error: |TypeError: )+/, '');
  const chain = (err.tsaltChain ?? []).filter((l, i) => !(i === 0 && l.file === file));
  return new RenderError(msg, file, line, column, chain);
}
