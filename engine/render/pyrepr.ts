/**
 * Print values the way Salt's Jinja does: Python's repr for dicts, lists and tuples (a YAML flow
 * collection that YAML reads back), True/False/None for booleans and null. Trees rely on
 * `backends: {{ pillar['web_servers'] }}` producing a list.
 */

/**
 * A Python float whose value is integral (`2.0`, `4 / 2`, `'3' | float`): JavaScript has one number
 * type, and Python prints these with `.0`. Non-integral floats stay plain numbers (unambiguous).
 */
export class PyFloat {
  constructor(readonly value: number) {}
}

export function pyFloat(n: number): number | PyFloat {
  return Number.isInteger(n) ? new PyFloat(n) : n;
}

export function isFloat(v: unknown): boolean {
  return v instanceof PyFloat || (typeof v === 'number' && !Number.isInteger(v));
}

/** The JavaScript number of an int/float/bool value (PyFloat unwrapped). */
export function numValue(v: unknown): unknown {
  return v instanceof PyFloat ? v.value : v;
}

/** Data leaving the template world (salt functions): PyFloat back to numbers, copying only if needed. */
export function plainData(v: unknown): unknown {
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) {
    if (!v.some((x) => x instanceof PyFloat || (x !== null && typeof x === 'object'))) return v;
    const out = v.map(plainData);
    return out.every((x, i) => x === v[i]) ? v : out;
  }
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    let changed = false;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      const y = plainData(x);
      if (y !== x) changed = true;
      Object.defineProperty(out, k, { value: y, writable: true, enumerable: true, configurable: true });
    }
    return changed ? out : v;
  }
  return v;
}

/** Arrays that stand for Python tuples (`(a, b)`, dict.items() pairs): printed `(a, b)`. */
const tuples = new WeakSet<unknown[]>();

export function tuple<T extends unknown[]>(a: T): T {
  tuples.add(a);
  return a;
}

export function isTuple(v: unknown): boolean {
  return Array.isArray(v) && tuples.has(v);
}

/** Dict keys that were not strings in the template (`{1: a, True: b}`): JavaScript holds them as text. */
const keyTypes = new WeakMap<object, Map<string, unknown>>();

export function noteKey(obj: object, text: string, key: unknown): void {
  if (typeof key === 'string') return;
  let m = keyTypes.get(obj);
  if (!m) keyTypes.set(obj, (m = new Map()));
  m.set(text, key);
}

/** Whether the dict was written in a template (its key types are known). */
export function hasKeyTypes(obj: object): boolean {
  return keyTypes.has(obj) || templateDicts.has(obj);
}

/** Dicts made by template literals, all keys strings: asking them for 1 is not asking for '1'. */
const templateDicts = new WeakSet<object>();
export function noteTemplateDict(obj: object): void {
  templateDicts.add(obj);
}

/** A dict key as Python has it: the int/bool/None written in the template, else the string. */
export function origKey(obj: object, text: string): unknown {
  const m = keyTypes.get(obj);
  return m && m.has(text) ? m.get(text) : text;
}

/** `sorted`: dict keys in order, as pprint prints them. */
export function pyRepr(v: unknown, sorted = false): string {
  if (v === undefined) return 'Undefined';
  if (v === null) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') return pyNumber(v);
  if (v instanceof PyFloat) return pyFloatRepr(v.value);
  if (typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return pyStr(v);
  if (v instanceof String) return pyStr(String(v));
  if (Array.isArray(v)) {
    const items = v.map((x) => pyRepr(x, sorted));
    if (tuples.has(v)) return v.length === 1 ? `(${items[0]},)` : `(${items.join(', ')})`;
    return `[${items.join(', ')}]`;
  }
  if (v instanceof Date) return pyStr(v.toISOString());
  if (typeof v === 'function') return '<function>';
  if (typeof v === 'object') {
    let entries = Object.entries(v as Record<string, unknown>);
    if (sorted) entries = entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries
      .map(([k, x]) => `${pyRepr(origKey(v, k))}: ${pyRepr(x, sorted)}`)
      .join(', ')}}`;
  }
  return pyStr(String(v));
}

function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'nan';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (!Number.isInteger(n)) return String(n).replace(/e([+-])(\d)$/, 'e$10$2');
  return String(n);
}

/** repr() of an integral float: 2.0, 1e+16. */
function pyFloatRepr(n: number): string {
  if (!Number.isFinite(n)) return pyNumber(n);
  if (Math.abs(n) >= 1e16) return n.toExponential().replace(/e([+-])(\d)$/, 'e$10$2');
  return (Object.is(n, -0) ? '-0' : String(n)) + '.0';
}

/** Python's str.__repr__: single quotes unless the text holds ' and no ", escapes as Python writes them. */
export function pyStr(s: string): string {
  const q = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = q;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === q) out += '\\' + q;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (c < 0x20 || c === 0x7f) out += '\\x' + c.toString(16).padStart(2, '0');
    else if ((c >= 0x80 && c < 0xa0) || c === 0xad) out += '\\x' + c.toString(16).padStart(2, '0');
    else if (c === 0x2028 || c === 0x2029) out += '\\u' + c.toString(16);
    else out += ch;
  }
  return out + q;
}

/** What `{{ value }}` prints: strings as-is, everything else like Python's str(). */
export function pyOutput(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v instanceof String) return String(v);
  if (v === null) return 'None';
  return pyRepr(v);
}

/** Python's == for data: deep for lists/dicts, 1 == 1.0, True == 1. */
export function pyEquals(a: unknown, b: unknown): boolean {
  if (a instanceof String) a = String(a);
  if (b instanceof String) b = String(b);
  if (a instanceof PyFloat) a = a.value;
  if (b instanceof PyFloat) b = b.value;
  if (a === b) return true;
  if (typeof a === 'boolean' && typeof b === 'number') return (a ? 1 : 0) === b;
  if (typeof b === 'boolean' && typeof a === 'number') return (b ? 1 : 0) === a;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (isTuple(a) !== isTuple(b) || a.length !== b.length) return false;
    return a.every((x, i) => pyEquals(x, b[i]));
  }
  if (a && b && typeof a === 'object' && typeof b === 'object' && !Array.isArray(a) && !Array.isArray(b)) {
    const ka = Object.keys(a);
    const kb = Object.keys(b);
    if (ka.length !== kb.length) return false;
    return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && pyEquals((a as any)[k], (b as any)[k]));
  }
  return false;
}
