/**
 * Jinja2's built-in filters and tests with their Python semantics and keyword arguments, plus
 * the filters Salt adds (yaml, json, to_bool, regex_*, hashes, ...). These replace every
 * Nunjucks built-in: attribute lookups go through the sandbox (./sandbox.ts), values follow
 * Python's rules (./pyops.ts).
 */
import type nunjucks from 'nunjucks';
import crypto from 'node:crypto';
import { dumpSaltYaml } from './salt-yaml.js';
import { pyRepr, pyOutput, tuple, isTuple, pyEquals, PyFloat, isFloat, pyFloat, numValue } from './pyrepr.js';
import { attributePath, isCallable, isPlainObject, lookup, helper, namedTuple } from './sandbox.js';
import { PyError, pyFormat, STR_METHODS, DICT_METHODS } from './pymethods.js';
import * as py from './pyops.js';

type Kw = Record<string, unknown>;
type Filter = (...a: any[]) => unknown;

function splitKw(args: unknown[]): [unknown[], Kw] {
  const last = args[args.length - 1] as (Kw & { __keywords?: true }) | undefined;
  if (last && typeof last === 'object' && !Array.isArray(last) && last.__keywords) {
    const { __keywords, ...kw } = last;
    return [args.slice(0, -1), kw];
  }
  return [args, {}];
}

/** Bind a filter's arguments to Jinja's parameter names, positional or keyword. */
function bind(name: string, args: unknown[], params: [string, unknown][]): Kw {
  const [pos, kw] = splitKw(args);
  if (pos.length > params.length) throw new PyError(`${name}() takes at most ${params.length + 1} arguments`);
  const out: Kw = {};
  params.forEach(([p, d], i) => {
    out[p] = i < pos.length ? pos[i] : Object.prototype.hasOwnProperty.call(kw, p) ? kw[p] : d;
  });
  for (const k of Object.keys(kw)) if (!params.some(([p]) => p === k)) throw new PyError(`${name}() got an unexpected keyword argument '${k}'`);
  return out;
}

function str(v: unknown): string {
  return pyOutput(v);
}

/** Filters that call str methods on their value (indent, truncate, wordwrap) fail on non-strings, as in Jinja2. */
function strict_str(name: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof String) return String(v);
  throw new PyError(`${name}: expected a string, got '${py.typeName(v)}'`);
}

/** Python's getattr only (Jinja's attr filter): dict keys are not attributes. */
function pyGetattr(v: unknown, name: string): unknown {
  if (typeof v === 'number' && (name === 'real' || name === 'imag')) return name === 'real' ? v : 0;
  if (isPlainObject(v)) return Object.prototype.hasOwnProperty.call(DICT_METHODS, name) ? lookup(v, name, true) : undefined;
  if (typeof v === 'string' || Array.isArray(v)) return typeof lookup(v, name, true) === 'function' ? lookup(v, name, true) : undefined;
  return lookup(v, name, true);
}

/** Jinja's do_title: capitalise each piece split on -, whitespace and ( { [ <. */
function jinjaTitle(s: string): string {
  return s
    .split(/([-\s({\[<]+)/)
    .filter((x) => x !== '')
    .map((x) => x.charAt(0).toUpperCase() + x.slice(1).toLowerCase())
    .join('');
}

/** Jinja's make_attrgetter: attribute path, optional default, optional case folding. */
function attrGetter(attribute: unknown, opts: { lower?: boolean; default?: unknown } = {}): (x: unknown) => unknown {
  const parts = attribute === null || attribute === undefined ? [] : typeof attribute === 'number' ? [attribute] : String(attribute).split(',');
  const one = (x: unknown, p: unknown) => {
    let v = p === undefined ? x : attributePath(x, p);
    if (v === undefined) v = opts.default;
    if (opts.lower && typeof v === 'string') v = v.toLowerCase();
    return v;
  };
  if (parts.length > 1) return (x) => tuple(parts.map((p) => one(x, p)));
  return (x) => one(x, parts[0]);
}

/** Jinja tests (`is` expressions, select/reject). */
export const TESTS: Record<string, (v: unknown, ...a: unknown[]) => boolean> = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  true: (v) => v === true,
  false: (v) => v === false,
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => typeof v === 'number' && Number.isInteger(v),
  float: (v) => isFloat(v),
  number: (v) => typeof v === 'number' || typeof v === 'boolean' || v instanceof PyFloat,
  string: (v) => typeof v === 'string' || v instanceof String,
  mapping: (v) => isPlainObject(v),
  sequence: (v) => Array.isArray(v) || typeof v === 'string' || v instanceof String || isPlainObject(v),
  iterable: (v) => Array.isArray(v) || typeof v === 'string' || v instanceof String || isPlainObject(v),
  callable: (v) => isCallable(v),
  sameas: (v, o) => v === o || (v === undefined && o === null) ? v === o : v === o,
  escaped: (v) => v instanceof String,
  lower: (v) => typeof v === 'string' && v === v.toLowerCase(),
  upper: (v) => typeof v === 'string' && v === v.toUpperCase(),
  divisibleby: (v, n) => (py.mod(v, n) as number) === 0,
  in: (v, c) => py.contains(c, v),
  eq: (v, o) => py.compare(v, '==', o),
  equalto: (v, o) => py.compare(v, '==', o),
  '==': (v, o) => py.compare(v, '==', o),
  ne: (v, o) => py.compare(v, '!=', o),
  '!=': (v, o) => py.compare(v, '!=', o),
  gt: (v, o) => py.compare(v, '>', o),
  greaterthan: (v, o) => py.compare(v, '>', o),
  '>': (v, o) => py.compare(v, '>', o),
  ge: (v, o) => py.compare(v, '>=', o),
  '>=': (v, o) => py.compare(v, '>=', o),
  lt: (v, o) => py.compare(v, '<', o),
  lessthan: (v, o) => py.compare(v, '<', o),
  '<': (v, o) => py.compare(v, '<', o),
  le: (v, o) => py.compare(v, '<=', o),
  '<=': (v, o) => py.compare(v, '<=', o),
  odd: (v) => (py.mod(v, 2) as number) === 1,
  even: (v) => (py.mod(v, 2) as number) === 0,
  // Salt's tests
  match: (v, re, ...rest) => typeof v === 'string' && pyRegex(`^(?:${String(re)})`, flagsOf(rest)).test(v),
  search: (v, re, ...rest) => typeof v === 'string' && pyRegex(String(re), flagsOf(rest)).test(v),
  equal: (v, o) => py.compare(v, '==', o),
};

function flagsOf(rest: unknown[]): string {
  const [, kw] = splitKw(rest);
  return kw.ignorecase ? 'i' : '';
}

/** Python's re syntax in JavaScript: named groups `(?P<n>...)` and `(?P=n)`. */
function pyRegex(re: string, flags = ''): RegExp {
  return new RegExp(re.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>'), flags);
}

function getTest(env: nunjucks.Environment, name: unknown): (v: unknown, ...a: unknown[]) => boolean {
  const t = (env as unknown as { tests: Record<string, Filter> }).tests;
  if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(t, name)) throw new PyError(`No test named '${String(name)}'`);
  return t[name] as (v: unknown, ...a: unknown[]) => boolean;
}

function getFilter(env: nunjucks.Environment, name: unknown): Filter {
  const f = (env as unknown as { filters: Record<string, Filter> }).filters;
  if (typeof name !== 'string' || !Object.prototype.hasOwnProperty.call(f, name)) throw new PyError(`No filter named '${String(name)}'`);
  return f[name]!;
}

function seq(v: unknown): unknown[] {
  return py.pyIter(v);
}

function sortValues(items: unknown[], key: (x: unknown) => unknown, reverse: boolean): unknown[] {
  const out = items.map((x, i) => ({ x, k: key(x), i }));
  out.sort((a, b) => py.cmpSort(a.k, b.k) || a.i - b.i);
  if (reverse) {
    // Python's sort(reverse=True) is stable: equal keys keep their order
    out.sort((a, b) => py.cmpSort(b.k, a.k) || a.i - b.i);
  }
  return out.map((o) => o.x);
}

function lowerKey(caseSensitive: unknown) {
  return (v: unknown) => (!caseSensitive && typeof v === 'string' ? v.toLowerCase() : v);
}

function jsonDump(v: unknown, indent: unknown, sortKeys: boolean, ensureAscii = true): string {
  const ind = typeof indent === 'number' ? ' '.repeat(indent) : typeof indent === 'string' ? indent : undefined;
  const enc = (x: unknown, depth: number): string => {
    if (x === null || x === undefined) return 'null';
    if (x === true) return 'true';
    if (x === false) return 'false';
    if (x instanceof PyFloat) return pyRepr(x);
    if (typeof x === 'number') return Number.isFinite(x) ? pyRepr(x) : Number.isNaN(x) ? 'NaN' : x > 0 ? 'Infinity' : '-Infinity';
    if (typeof x === 'string' || x instanceof String) return jsonStr(String(x), ensureAscii);
    const nl = ind !== undefined ? '\n' + ind.repeat(depth + 1) : '';
    const end = ind !== undefined ? '\n' + ind.repeat(depth) : '';
    const sep = ind !== undefined ? ',' : ', ';
    if (Array.isArray(x)) return x.length ? `[${nl}${x.map((e) => enc(e, depth + 1)).join(sep + nl)}${end}]` : '[]';
    if (isPlainObject(x)) {
      let entries = Object.entries(x);
      if (sortKeys) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      return entries.length ? `{${nl}${entries.map(([k, e]) => `${jsonStr(k, ensureAscii)}: ${enc(e, depth + 1)}`).join(sep + nl)}${end}}` : '{}';
    }
    throw new PyError(`Object of type ${py.typeName(x)} is not JSON serializable`);
  };
  return enc(v, 0);
}

/** json.dumps string escaping (ensure_ascii=True). */
function jsonStr(s: string, ensureAscii: boolean): string {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const ch = s[i]!;
    if (ch === '"') out += '\\"';
    else if (ch === '\\') out += '\\\\';
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (ch === '\b') out += '\\b';
    else if (ch === '\f') out += '\\f';
    else if (c < 0x20 || (ensureAscii && c > 0x7e)) out += '\\u' + c.toString(16).padStart(4, '0');
    else out += ch;
  }
  return out + '"';
}

/** Jinja's htmlsafe_json_dumps: tojson escapes <, >, &, ' for HTML. */
function htmlSafeJson(s: string): string {
  return s.replace(/</g, '\\u003c').replace(/>/g, '\\u003e').replace(/&/g, '\\u0026').replace(/'/g, '\\u0027');
}

function escapeHtml(v: unknown): string {
  return str(v).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&#34;').replace(/'/g, '&#39;');
}

function urlQuote(s: string, safe: string): string {
  return [...Buffer.from(s, 'utf8')]
    .map((b) => {
      const c = String.fromCharCode(b);
      return /[A-Za-z0-9_.~-]/.test(c) || safe.includes(c) ? c : '%' + b.toString(16).toUpperCase().padStart(2, '0');
    })
    .join('');
}

function pyRound(v: number, precision: number, method: string): number {
  const f = Math.pow(10, precision);
  if (method === 'ceil') return Math.ceil(v * f) / f;
  if (method === 'floor') return Math.floor(v * f) / f;
  // Python's round(): half to even on the decimal value
  const x = v * f;
  const r = Math.round(x);
  const isHalf = Math.abs(x % 1) === 0.5;
  const even = isHalf ? (r % 2 === 0 ? r : r - 1) : r;
  return even / f;
}

function wordwrap(s: string, width: number, breakLong: boolean, wrapstring: string, breakOnHyphens: boolean): string {
  // textwrap.wrap per paragraph line, as Jinja does (splitlines, wrap each, join)
  const out: string[] = [];
  for (const line of s.split(/\r\n|\r|\n/)) {
    const words = line.split(/(\s+)/).filter((w) => w !== '');
    const chunks: string[] = [];
    for (const w of words) {
      if (/^\s+$/.test(w)) chunks.push(' '.repeat(w.replace(/\t/g, '        ').length));
      else if (breakOnHyphens) chunks.push(...w.split(/(?<=[A-Za-z]-)(?=[A-Za-z])/));
      else chunks.push(w);
    }
    const lines: string[] = [];
    let cur = '';
    while (chunks.length) {
      const c = chunks.shift()!;
      if (/^ +$/.test(c) && cur === '') continue;
      if ((cur + c).length <= width) {
        cur += c;
        continue;
      }
      if (/^ +$/.test(c)) {
        lines.push(cur.trimEnd());
        cur = '';
        continue;
      }
      if (c.length > width && breakLong) {
        const room = Math.max(1, width - cur.length);
        cur += c.slice(0, room);
        chunks.unshift(c.slice(room));
        lines.push(cur.trimEnd());
        cur = '';
        continue;
      }
      if (cur.trim() !== '') lines.push(cur.trimEnd());
      cur = c;
    }
    if (cur.trim() !== '') lines.push(cur.trimEnd());
    out.push(...lines);
  }
  return out.join(wrapstring);
}

function truncate(s: string, length: number, killwords: boolean, end: string, leeway: number): string {
  if (s.length <= length + leeway) return s;
  if (killwords) return s.slice(0, length - end.length) + end;
  const cut = s.slice(0, length - end.length);
  const i = cut.lastIndexOf(' ');
  return (i >= 0 ? cut.slice(0, i) : cut) + end;
}

function filesizeformat(v: unknown, binary: boolean): string {
  const bytes = Number(v);
  const base = binary ? 1024 : 1000;
  const prefixes = binary ? ['KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB', 'ZiB', 'YiB'] : ['kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];
  if (bytes === 1) return '1 Byte';
  if (bytes < base) return `${Math.trunc(bytes)} Bytes`;
  let unit = base;
  for (let i = 0; i < prefixes.length; i++) {
    unit = Math.pow(base, i + 2);
    if (bytes < unit) return `${((base * bytes) / unit).toFixed(1)} ${prefixes[i]}`;
  }
  return `${((base * bytes) / unit).toFixed(1)} ${prefixes[prefixes.length - 1]}`;
}

export function installFilters(env: nunjucks.Environment): void {
  const e = env as unknown as { filters: Record<string, Filter>; tests: Record<string, Filter> };
  // Nothing of Nunjucks' own: they index data directly and follow JavaScript's rules.
  e.filters = Object.create(null);
  e.tests = Object.create(null);
  for (const [name, fn] of Object.entries(TESTS)) e.tests[name] = fn as Filter;
  e.tests.filter = ((v: unknown) => typeof v === 'string' && Object.prototype.hasOwnProperty.call(e.filters, v)) as Filter;
  e.tests.test = ((v: unknown) => typeof v === 'string' && Object.prototype.hasOwnProperty.call(e.tests, v)) as Filter;
  const f = (name: string, fn: Filter) => {
    e.filters[name] = fn;
  };

  // ---- Jinja2's built-in filters ----
  f('abs', (v) => {
    if (typeof v !== 'number' && typeof v !== 'boolean' && !(v instanceof PyFloat)) throw new PyError(`bad operand type for abs(): '${py.typeName(v)}'`);
    const r = Math.abs(Number(numValue(v)));
    return isFloat(v) ? pyFloat(r) : r;
  });
  f('attr', (v, name) => (typeof name === 'string' ? pyGetattr(v, name) : undefined));
  f('batch', (v, ...a) => {
    const { linecount, fill_with } = bind('batch', a, [['linecount', undefined], ['fill_with', null]]);
    const n = Number(linecount);
    const out: unknown[][] = [];
    let cur: unknown[] = [];
    for (const x of seq(v)) {
      if (cur.length === n) {
        out.push(cur);
        cur = [];
      }
      cur.push(x);
    }
    if (cur.length) {
      if (fill_with !== null && cur.length < n) while (cur.length < n) cur.push(fill_with);
      out.push(cur);
    }
    return out;
  });
  f('capitalize', (v) => STR_METHODS.capitalize!.call(str(v)));
  f('center', (v, ...a) => {
    const { width } = bind('center', a, [['width', 80]]);
    return STR_METHODS.center!.call(str(v), width);
  });
  f('count', (v) => py.pyLen(v));
  f('length', (v) => py.pyLen(v));
  const dflt = (v: unknown, ...a: unknown[]) => {
    const { default_value, boolean } = bind('default', a, [['default_value', ''], ['boolean', false]]);
    if (v === undefined || (boolean && !py.truthy(v))) return default_value;
    return v;
  };
  f('default', dflt);
  f('d', dflt);
  f('dictsort', (v, ...a) => {
    const { case_sensitive, by, reverse } = bind('dictsort', a, [['case_sensitive', false], ['by', 'key'], ['reverse', false]]);
    if (!isPlainObject(v)) throw new PyError('dictsort: expected a mapping');
    const pos = by === 'key' ? 0 : by === 'value' ? 1 : undefined;
    if (pos === undefined) throw new PyError('You can only sort by either "key" or "value"');
    const low = lowerKey(case_sensitive);
    return sortValues(Object.entries(v).map((p) => tuple(p)), (p) => low((p as unknown[])[pos]), !!reverse);
  });
  f('escape', (v) => escapeHtml(v));
  f('e', (v) => escapeHtml(v));
  f('forceescape', (v) => escapeHtml(v));
  f('filesizeformat', (v, ...a) => filesizeformat(v, !!bind('filesizeformat', a, [['binary', false]]).binary));
  f('first', (v) => {
    const s = seq(v);
    return s.length ? s[0] : undefined;
  });
  f('last', (v) => {
    const s = Array.isArray(v) ? v : seq(v);
    return s.length ? s[s.length - 1] : undefined;
  });
  f('float', (v, ...a) => py.toFloat(v, bind('float', a, [['default', pyFloat(0)]]).default));
  f('int', (v, ...a) => {
    const { default: d, base } = bind('int', a, [['default', 0], ['base', 10]]);
    return py.toInt(v, d, Number(base));
  });
  f('format', (v, ...a) => {
    const [pos, kw] = splitKw(a);
    if (pos.length && Object.keys(kw).length) throw new PyError("can't handle positional and keyword arguments at the same time");
    return py.percentFormat(str(v), Object.keys(kw).length ? kw : tuple(pos));
  });
  f('groupby', (v, ...a) => {
    const { attribute, default: d, case_sensitive } = bind('groupby', a, [['attribute', undefined], ['default', undefined], ['case_sensitive', false]]);
    const key = attrGetter(attribute, { default: d, lower: !case_sensitive });
    const exact = attrGetter(attribute, { default: d });
    const items = sortValues(seq(v), key, false);
    const groups: { grouper: unknown; list: unknown[] }[] = [];
    for (const x of items) {
      const k = key(x);
      const last = groups[groups.length - 1];
      if (last && pyEquals(key(last.list[0]), k)) last.list.push(x);
      else groups.push({ grouper: case_sensitive ? k : exact(x), list: [x] });
    }
    return groups.map((g) => namedTuple(tuple([g.grouper, g.list]), { grouper: g.grouper, list: g.list }));
  });
  f('indent', (v, ...a) => {
    const { width, first, blank } = bind('indent', a, [['width', 4], ['first', false], ['blank', false]]);
    const ind = typeof width === 'string' ? width : ' '.repeat(Number(width));
    let s = strict_str('indent', v);
    const nl = '\n';
    s += nl; // Jinja: the last line gets no indent handling of its own
    const lines = s.split(nl);
    const firstLine = lines.shift()!;
    lines.pop();
    const rest = lines.map((l) => (blank || l.trim() !== '' ? ind + l : l));
    let out = [firstLine, ...rest].join(nl);
    if (first) out = ind + out;
    return out;
  });
  f('items', (v) => {
    if (v === undefined) return [];
    if (!isPlainObject(v)) throw new PyError(`Can only get item pairs from a mapping.`);
    return Object.entries(v).map((p) => tuple(p));
  });
  f('join', (v, ...a) => {
    const { d, attribute } = bind('join', a, [['d', ''], ['attribute', undefined]]);
    let items = seq(v);
    if (attribute !== undefined && attribute !== null) items = items.map(attrGetter(attribute));
    return items.map(str).join(str(d));
  });
  f('list', (v) => [...seq(v)]);
  f('lower', (v) => str(v).toLowerCase());
  f('upper', (v) => str(v).toUpperCase());
  f('map', (v, ...a) => {
    const [pos, kw] = splitKw(a);
    const items = seq(v);
    if (Object.prototype.hasOwnProperty.call(kw, 'attribute')) {
      const get = attrGetter(kw.attribute, { default: kw.default });
      return items.map(get);
    }
    const fl = getFilter(env, pos[0]);
    const rest = pos.slice(1);
    const extra = Object.keys(kw).length ? [{ ...kw, __keywords: true }] : [];
    return items.map((x) => fl(x, ...rest, ...extra));
  });
  const minmax = (dir: number) => (v: unknown, ...a: unknown[]) => {
    const { case_sensitive, attribute } = bind(dir > 0 ? 'max' : 'min', a, [['case_sensitive', false], ['attribute', undefined]]);
    const items = seq(v);
    if (!items.length) return undefined;
    const key = attrGetter(attribute, { lower: !case_sensitive });
    return items.reduce((best, x) => (py.cmpSort(key(x), key(best)) * dir > 0 ? x : best));
  };
  f('max', minmax(1));
  f('min', minmax(-1));
  f('pprint', (v) => pyRepr(v, true));
  f('random', (v) => {
    const s = seq(v);
    return s[crypto.randomInt(s.length)];
  });
  const selectFilter = (keep: boolean, attr: boolean) => (v: unknown, ...a: unknown[]) => {
    const [pos] = splitKw(a);
    const get = attr ? attrGetter(pos[0]) : (x: unknown) => x;
    const testArgs = attr ? pos.slice(1) : pos;
    if (!py.truthy(v)) return []; // Jinja: `if value:` before iterating
    const t = testArgs.length ? getTest(env, testArgs[0]) : (x: unknown) => py.truthy(x);
    return seq(v).filter((x) => t(get(x), ...testArgs.slice(1)) === keep);
  };
  f('select', selectFilter(true, false));
  f('reject', selectFilter(false, false));
  f('selectattr', selectFilter(true, true));
  f('rejectattr', selectFilter(false, true));
  f('replace', (v, ...a) => {
    const { old, new: nw, count } = bind('replace', a, [['old', undefined], ['new', undefined], ['count', null]]);
    return STR_METHODS.replace!.call(str(v), str(old), str(nw), count === null ? -1 : count);
  });
  f('reverse', (v) => {
    if (typeof v === 'string') return [...v].reverse().join('');
    return [...seq(v)].reverse();
  });
  f('round', (v, ...a) => {
    const { precision, method } = bind('round', a, [['precision', 0], ['method', 'common']]);
    if (!['common', 'ceil', 'floor'].includes(String(method))) throw new PyError('method must be common, ceil or floor');
    if (typeof v !== 'number' && typeof v !== 'boolean' && !(v instanceof PyFloat)) throw new PyError(`type ${py.typeName(v)} doesn't define __round__ method`);
    const r = pyRound(Number(numValue(v)), Number(precision), String(method));
    // Python: round(int) stays int for method common; ceil/floor go through floats
    return isFloat(v) || method !== 'common' ? pyFloat(r) : r;
  });
  f('safe', (v) => v);
  f('slice', (v, ...a) => {
    const { slices, fill_with } = bind('slice', a, [['slices', undefined], ['fill_with', null]]);
    const items = seq(v);
    const n = Number(slices);
    const per = Math.floor(items.length / n);
    const extra = items.length % n;
    const out: unknown[][] = [];
    let off = 0;
    for (let i = 0; i < n; i++) {
      const start = off + i * per;
      if (i < extra) off++;
      const end = off + (i + 1) * per;
      const part = items.slice(start, end);
      if (fill_with !== null && i >= extra) part.push(fill_with);
      out.push(part);
    }
    return out;
  });
  f('sort', (v, ...a) => {
    const { reverse, case_sensitive, attribute } = bind('sort', a, [['reverse', false], ['case_sensitive', false], ['attribute', undefined]]);
    return sortValues(seq(v), attrGetter(attribute, { lower: !case_sensitive }), !!reverse);
  });
  f('string', (v) => str(v));
  f('striptags', (v) => str(v).replace(/<!--[\s\S]*?-->|<\/?[^>]*>/g, '').replace(/\s+/g, ' ').trim().replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&#34;|&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&'));
  f('sum', (v, ...a) => {
    const { attribute, start } = bind('sum', a, [['attribute', undefined], ['start', 0]]);
    let items = seq(v);
    if (attribute !== undefined && attribute !== null) items = items.map(attrGetter(attribute));
    return items.reduce((acc, x) => py.add(acc, x), start);
  });
  f('title', (v) => jinjaTitle(str(v)));
  // Salt replaces Jinja's tojson: ensure_ascii, keys in their order (salt.utils.jinja.tojson)
  f('tojson', (v, ...a) => htmlSafeJson(jsonDump(v, bind('tojson', a, [['indent', null]]).indent, false)));
  f('trim', (v, ...a) => STR_METHODS.strip!.call(str(v), bind('trim', a, [['chars', null]]).chars));
  f('truncate', (v, ...a) => {
    const { length, killwords, end, leeway } = bind('truncate', a, [['length', 255], ['killwords', false], ['end', '...'], ['leeway', 5]]);
    if (typeof v !== 'string' && !(v instanceof String) && py.pyLen(v) <= Number(length) + Number(leeway)) return v;
    return truncate(strict_str('truncate', v), Number(length), !!killwords, str(end), Number(leeway));
  });
  f('unique', (v, ...a) => {
    const { case_sensitive, attribute } = bind('unique', a, [['case_sensitive', false], ['attribute', undefined]]);
    const key = attrGetter(attribute, { lower: !case_sensitive });
    const seen: unknown[] = [];
    const out: unknown[] = [];
    for (const x of seq(v)) {
      const k = key(x);
      if (!seen.some((s) => pyEquals(s, k))) {
        seen.push(k);
        out.push(x);
      }
    }
    return out;
  });
  f('urlencode', (v) => {
    // Jinja's url_quote: '/' kept in plain values; query pairs quoted for a query string ('+' for space)
    if (typeof v === 'string' || v instanceof String || !(Array.isArray(v) || isPlainObject(v))) return urlQuote(str(v), '/');
    const qs = (x: unknown) => urlQuote(str(x), '').replace(/%20/g, '+');
    const pairs = isPlainObject(v) ? Object.entries(v) : (v as unknown[]).map((p) => py.pyIter(p));
    return pairs
      .map((p) => {
        if (p.length !== 2) throw new PyError('cannot unpack a pair from ' + pyRepr(p));
        return `${qs(p[0])}=${qs(p[1])}`;
      })
      .join('&');
  });
  f('urlize', (v) => str(v).replace(/(https?:\/\/[^\s<]+[^\s<.,:;"')\]!?])/g, '<a href="$1" rel="noopener">$1</a>'));
  f('wordcount', (v) => (str(v).match(/\w+/gu) ?? []).length);
  f('wordwrap', (v, ...a) => {
    const { width, break_long_words, wrapstring, break_on_hyphens } = bind('wordwrap', a, [['width', 79], ['break_long_words', true], ['wrapstring', null], ['break_on_hyphens', true]]);
    return wordwrap(strict_str('wordwrap', v), Number(width), !!break_long_words, wrapstring === null ? '\n' : str(wrapstring), !!break_on_hyphens);
  });
  f('xmlattr', (v, ...a) => {
    const { autospace } = bind('xmlattr', a, [['autospace', true]]);
    if (!isPlainObject(v)) return '';
    const parts = Object.entries(v)
      .filter(([, x]) => x !== null && x !== undefined)
      .map(([k, x]) => {
        if (/[\s/>=]/.test(k)) throw new PyError(`Invalid character in attribute name: '${k}'`);
        return `${escapeHtml(k)}="${escapeHtml(x)}"`;
      });
    const s = parts.join(' ');
    return s && autospace ? ' ' + s : s;
  });

  // ---- Salt's filters (salt/utils/jinja.py and the extra ones trees use) ----
  f('yaml', (v: unknown, flow: unknown = true) => (flow === false ? dumpSaltYaml(v).trimEnd() : pyRepr(v)));
  f('yaml_encode', (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : pyRepr(v)));
  f('yaml_dquote', (v: unknown) => JSON.stringify(str(v)));
  f('yaml_squote', (v: unknown) => `'${str(v).replace(/'/g, "''")}'`);
  const json = (v: unknown, ...rest: unknown[]) => {
    const [pos, kw] = splitKw(rest);
    const indent = kw.indent ?? pos[1] ?? null;
    // Salt's SerializerExtension.format_json: sort_keys=True, salt.utils.json.dumps (ensure_ascii=False)
    return jsonDump(v, indent, (kw.sort_keys ?? pos[0] ?? true) !== false, false);
  };
  f('json', json);
  f('json_encode', json);
  f('difference', (a: unknown, b: unknown) => seq(a).filter((x) => !seq(b).some((y) => pyEquals(x, y))));
  f('intersect', (a: unknown, b: unknown) => seq(a).filter((x) => seq(b).some((y) => pyEquals(x, y))));
  f('symmetric_difference', (a: unknown, b: unknown) => [...seq(a).filter((x) => !seq(b).some((y) => pyEquals(x, y))), ...seq(b).filter((x) => !seq(a).some((y) => pyEquals(x, y)))]);
  f('union', (a: unknown, b: unknown) => {
    const out: unknown[] = [];
    for (const x of [...seq(a), ...seq(b)]) if (!out.some((y) => pyEquals(x, y))) out.push(x);
    return out;
  });
  const toBool = (v: unknown) => (typeof v === 'string' ? ['true', 'yes', '1', 'on'].includes(v.toLowerCase()) : typeof v === 'number' ? v > 0 : py.truthy(v));
  f('to_bool', toBool);
  f('bool', toBool);
  f('is_list', (v: unknown) => Array.isArray(v));
  f('quote', (v: unknown) => `'${str(v).replace(/'/g, `'"'"'`)}'`);
  f('regex_replace', (v: unknown, re: unknown, rep: unknown, ...rest: unknown[]) => {
    const [, kw] = splitKw(rest);
    return str(v).replace(pyRegex(str(re), kw.ignorecase ? 'gi' : 'g'), str(rep).replace(/\$/g, '$$$$').replace(/\\(\d)/g, '$$$1').replace(/\\g<(\w+)>/g, '$$<$1>'));
  });
  f('regex_search', (v: unknown, re: unknown, ...rest: unknown[]) => {
    const m = pyRegex(str(re), flagsOf(rest)).exec(str(v));
    return m ? tuple(m.length > 1 ? m.slice(1).map((x) => x ?? null) : []) : null;
  });
  f('regex_match', (v: unknown, re: unknown, ...rest: unknown[]) => {
    const m = pyRegex(`^(?:${str(re)})`, flagsOf(rest)).exec(str(v));
    return m ? tuple(m.length > 1 ? m.slice(1).map((x) => x ?? null) : []) : null;
  });
  f('base64_encode', (v: unknown) => Buffer.from(str(v)).toString('base64'));
  f('base64_decode', (v: unknown) => Buffer.from(str(v), 'base64').toString('utf8'));
  f('md5', (v: unknown) => crypto.createHash('md5').update(str(v)).digest('hex'));
  f('sha1', (v: unknown) => crypto.createHash('sha1').update(str(v)).digest('hex'));
  f('sha256', (v: unknown) => crypto.createHash('sha256').update(str(v)).digest('hex'));
  f('sha512', (v: unknown) => crypto.createHash('sha512').update(str(v)).digest('hex'));
  f('flatten', (v: unknown) => seq(v).flat(Infinity));
  f('sequence', (v: unknown) => (Array.isArray(v) ? v : [v]));
  f('str', (v: unknown) => str(v));
  f('strftime', (v: unknown) => str(v));
  f('exactly_n_true', (v: unknown, n: unknown = 1) => seq(v).filter(py.truthy).length === Number(n));
  f('exactly_one_true', (v: unknown) => seq(v).filter(py.truthy).length === 1);
  f('avg', (v: unknown) => {
    const s = seq(v) as number[];
    return s.length ? s.reduce((a, b) => a + b, 0) / s.length : 0;
  });
  // salt.utils.data.traverse_dict_and_list as a filter: `pillar | traverse('a:b', 'default')`
  f('traverse', (v: unknown, key: unknown, dflt: unknown = null, delimiter: unknown = ':') => {
    let cur: unknown = v;
    for (const part of String(key).split(String(delimiter))) {
      if (Array.isArray(cur)) {
        const i = Number(part);
        if (!Number.isInteger(i) || i < 0 || i >= cur.length) return dflt;
        cur = cur[i];
      } else if (isPlainObject(cur) && Object.prototype.hasOwnProperty.call(cur, part)) {
        cur = cur[part];
      } else return dflt;
    }
    return cur;
  });
  f('format_string', (v: unknown, ...a: unknown[]) => pyFormat(str(v), a));
}

export { helper, isTuple };
