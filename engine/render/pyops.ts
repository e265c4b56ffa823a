/**
 * Python's semantics for what Jinja expressions do with values: truth, iteration, length,
 * comparison, arithmetic, `%` formatting, `in`. The compiled templates call these instead of
 * JavaScript's operators (an empty list is false, `[1] + [2]` is `[1, 2]`, `7 // 2` is 3).
 */
import { pyOutput, pyRepr, pyEquals, isTuple, tuple, origKey, hasKeyTypes, PyFloat, pyFloat, isFloat } from './pyrepr.js';
import { formatSpec, PyError } from './pymethods.js';
import { isPlainObject } from './sandbox.js';

export { pyEquals };

function unwrap(v: unknown): unknown {
  return v instanceof String ? String(v) : v;
}

function n2(v: unknown): unknown {
  return v instanceof PyFloat ? v.value : unwrap(v);
}

/** A numeric result: float when an operand was a float (or the operator always yields one). */
function numResult(r: number, float: boolean): number | PyFloat {
  return float ? pyFloat(r) : r;
}

export function typeName(v: unknown): string {
  v = unwrap(v);
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (v instanceof PyFloat) return 'float';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return isTuple(v) ? 'tuple' : 'list';
  if (typeof v === 'function') return 'function';
  return 'dict';
}

export function truthy(v: unknown): boolean {
  v = n2(v);
  if (Array.isArray(v)) return v.length > 0;
  if (v !== null && typeof v === 'object' && isPlainObject(v)) return Object.keys(v).length > 0;
  return !!v;
}

/** Iterate as Python does: lists, strings by character, dicts by key. */
export function pyIter(v: unknown): unknown[] {
  v = unwrap(v);
  if (Array.isArray(v)) return v;
  if (typeof v === 'string') return [...v];
  if (v !== null && typeof v === 'object' && isPlainObject(v)) return Object.keys(v).map((k) => origKey(v as object, k));
  throw new PyError(`'${typeName(v)}' object is not iterable`);
}

export function pyLen(v: unknown): number {
  v = unwrap(v);
  if (typeof v === 'string') return [...v].length;
  if (Array.isArray(v)) return v.length;
  if (v !== null && typeof v === 'object' && isPlainObject(v)) return Object.keys(v).length;
  throw new PyError(`object of type '${typeName(v)}' has no len()`);
}

function isNum(v: unknown): boolean {
  return typeof v === 'number' || typeof v === 'boolean' || v instanceof PyFloat;
}

function num(v: unknown): number {
  if (v instanceof PyFloat) return v.value;
  return typeof v === 'boolean' ? (v ? 1 : 0) : (v as number);
}

function anyFloat(a: unknown, b: unknown): boolean {
  return isFloat(a) || isFloat(b);
}

function opError(op: string, a: unknown, b: unknown): PyError {
  return new PyError(`unsupported operand type(s) for ${op}: '${typeName(a)}' and '${typeName(b)}'`);
}

export function add(a: unknown, b: unknown): unknown {
  a = unwrap(a);
  b = unwrap(b);
  if (isNum(a) && isNum(b)) return numResult(num(a) + num(b), anyFloat(a, b));
  if (typeof a === 'string' && typeof b === 'string') return a + b;
  if (Array.isArray(a) && Array.isArray(b) && isTuple(a) === isTuple(b)) {
    const r = [...a, ...b];
    return isTuple(a) ? tuple(r) : r;
  }
  if (typeof a === 'string' || typeof b === 'string') {
    throw new PyError(typeof a === 'string' ? `can only concatenate str (not "${typeName(b)}") to str` : opError('+', a, b).message);
  }
  throw opError('+', a, b);
}

export function sub(a: unknown, b: unknown): unknown {
  if (isNum(a) && isNum(b)) return numResult(num(a) - num(b), anyFloat(a, b));
  throw opError('-', a, b);
}

function repeat(seq: unknown, n: number): unknown {
  const times = Math.max(0, Math.trunc(n));
  if (typeof seq === 'string') return seq.repeat(times);
  const out: unknown[] = [];
  for (let i = 0; i < times; i++) out.push(...(seq as unknown[]));
  return isTuple(seq) ? tuple(out) : out;
}

export function mul(a: unknown, b: unknown): unknown {
  a = unwrap(a);
  b = unwrap(b);
  if (isNum(a) && isNum(b)) return numResult(num(a) * num(b), anyFloat(a, b));
  const isInt = (x: unknown) => typeof x === 'boolean' || (typeof x === 'number' && Number.isInteger(x));
  if ((typeof a === 'string' || Array.isArray(a)) && isInt(b)) return repeat(a, num(b));
  if ((typeof b === 'string' || Array.isArray(b)) && isInt(a)) return repeat(b, num(a));
  throw opError('*', a, b);
}

export function div(a: unknown, b: unknown): unknown {
  if (isNum(a) && isNum(b)) {
    if (num(b) === 0) throw new PyError('division by zero');
    return pyFloat(num(a) / num(b));
  }
  throw opError('/', a, b);
}

export function floordiv(a: unknown, b: unknown): unknown {
  if (isNum(a) && isNum(b)) {
    if (num(b) === 0) throw new PyError('integer division or modulo by zero');
    return numResult(Math.floor(num(a) / num(b)), anyFloat(a, b));
  }
  throw opError('//', a, b);
}

export function mod(a: unknown, b: unknown): unknown {
  a = unwrap(a);
  if (typeof a === 'string') return percentFormat(a, unwrap(b));
  if (isNum(a) && isNum(b)) {
    if (num(b) === 0) throw new PyError('integer division or modulo by zero');
    const r = num(a) % num(b);
    return numResult(r !== 0 && r < 0 !== num(b) < 0 ? r + num(b) : r, anyFloat(a, b));
  }
  throw opError('%', a, b);
}

export function pow(a: unknown, b: unknown): unknown {
  if (isNum(a) && isNum(b)) return numResult(Math.pow(num(a), num(b)), anyFloat(a, b) || num(b) < 0);
  throw opError('** or pow()', a, b);
}

export function neg(a: unknown): unknown {
  if (isNum(a)) return numResult(-num(a), isFloat(a));
  throw new PyError(`bad operand type for unary -: '${typeName(a)}'`);
}

export function pos(a: unknown): unknown {
  if (isNum(a)) return numResult(num(a), isFloat(a));
  throw new PyError(`bad operand type for unary +: '${typeName(a)}'`);
}

/** Jinja's `~`: both sides as str(). */
export function concat(a: unknown, b: unknown): string {
  return pyOutput(a) + pyOutput(b);
}

/** `%`-formatting: %s %r %d %i %f %x %o %e %g %c %% with flags, width and precision; %(name)s. */
export function percentFormat(fmt: string, args: unknown): string {
  const mapping = isPlainObject(args) ? (args as Record<string, unknown>) : undefined;
  if (mapping && !/%\(/.test(fmt) && /%[^%]/.test(fmt.replace(/%%/g, ''))) {
    // a dict on the right of '%s' is the one argument
    return percentFormat(fmt, tuple([args]));
  }
  const list = Array.isArray(args) && isTuple(args) ? args : [args];
  let i = 0;
  const out = fmt.replace(/%(?:\(([^)]*)\))?([-+ #0]*)(\d+|\*)?(?:\.(\d+))?([sdirfFxXoeEgGc%])/g, (m, key: string | undefined, flags: string, width: string | undefined, prec: string | undefined, conv: string) => {
    if (conv === '%') return '%';
    let v: unknown;
    if (key !== undefined) {
      if (!mapping) throw new PyError('format requires a mapping');
      if (!Object.prototype.hasOwnProperty.call(mapping, key)) throw new PyError(`KeyError: '${key}'`);
      v = mapping[key];
    } else {
      if (i >= list.length) throw new PyError('not enough arguments for format string');
      v = list[i++];
    }
    let s: string;
    switch (conv) {
      case 's':
        s = pyOutput(v);
        if (prec !== undefined) s = s.slice(0, Number(prec));
        break;
      case 'r':
        s = pyRepr(v);
        break;
      case 'd':
      case 'i':
        if (!isNum(v)) throw new PyError(`%${conv} format: a real number is required, not ${typeName(v)}`);
        s = String(Math.trunc(num(v)));
        break;
      case 'c':
        s = typeof v === 'number' ? String.fromCodePoint(v) : String(v);
        break;
      default:
        if (!isNum(v)) throw new PyError(`must be real number, not ${typeName(v)}`);
        s = formatSpec(num(v), `${prec !== undefined ? '.' + prec : ''}${conv}`);
    }
    if (flags.includes('+') && isNum(v) && num(v) >= 0 && 'dieEfFgG'.includes(conv)) s = '+' + s;
    else if (flags.includes(' ') && isNum(v) && num(v) >= 0 && 'dieEfFgG'.includes(conv)) s = ' ' + s;
    const w = width === undefined ? 0 : Number(width);
    if (s.length < w) {
      if (flags.includes('-')) s = s.padEnd(w);
      else if (flags.includes('0') && conv !== 's' && conv !== 'r') {
        const sign = /^[+\- ]/.test(s) ? s[0]! : '';
        s = sign + s.slice(sign.length).padStart(w - sign.length, '0');
      } else s = s.padStart(w);
    }
    return s;
  });
  // Python: leftover arguments are an error unless the right side is a mapping-like object (dict, list)
  if (i < list.length && !mapping && !(Array.isArray(args) && !isTuple(args))) throw new PyError('not all arguments converted during string formatting');
  return out;
}

function cmpValues(a: unknown, b: unknown, op: string): number {
  a = unwrap(a);
  b = unwrap(b);
  if (a instanceof PyFloat) a = a.value;
  if (b instanceof PyFloat) b = b.value;
  if (isNum(a) && isNum(b)) return num(a) - num(b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  if (Array.isArray(a) && Array.isArray(b) && isTuple(a) === isTuple(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      if (!pyEquals(a[i], b[i])) return cmpValues(a[i], b[i], op);
    }
    return a.length - b.length;
  }
  throw new PyError(`'${op}' not supported between instances of '${typeName(a)}' and '${typeName(b)}'`);
}

export function compare(a: unknown, op: string, b: unknown): boolean {
  switch (op) {
    case '==':
      return pyEquals(a, b);
    case '!=':
      return !pyEquals(a, b);
    case '<':
      return cmpValues(a, b, op) < 0;
    case '<=':
      return cmpValues(a, b, op) <= 0;
    case '>':
      return cmpValues(a, b, op) > 0;
    case '>=':
      return cmpValues(a, b, op) >= 0;
    default:
      throw new PyError(`unknown comparison ${op}`);
  }
}

/** Sort key comparison for sort/min/max/dictsort: Python's ordering of like values. */
export function cmpSort(a: unknown, b: unknown): number {
  return cmpValues(a, b, '<');
}

export function contains(container: unknown, item: unknown): boolean {
  container = unwrap(container);
  item = unwrap(item);
  if (typeof container === 'string') {
    if (typeof item !== 'string') throw new PyError(`'in <string>' requires string as left operand, not ${typeName(item)}`);
    return container.includes(item);
  }
  if (Array.isArray(container)) return container.some((x) => pyEquals(x, item));
  if (container !== null && typeof container === 'object' && isPlainObject(container)) {
    if (item instanceof PyFloat) item = item.value;
    if ((Array.isArray(item) && !isTuple(item)) || isPlainObject(item)) throw new PyError(`unhashable type: '${typeName(item)}'`);
    if (Array.isArray(item)) return false; // tuple keys are not supported in dicts: never present
    const k = typeof item === 'string' ? item : typeof item === 'number' ? String(item) : typeof item === 'boolean' ? (item ? 'True' : 'False') : item === null ? 'None' : undefined;
    if (k === undefined || !Object.prototype.hasOwnProperty.call(container, k)) return false;
    // a key the template wrote as int/bool/None must be asked for with that type; keys from
    // YAML/JSON data are text in JavaScript, so a number finds them too
    const orig = origKey(container as object, k);
    if (typeof item === 'string') return typeof orig === 'string';
    return typeof orig !== 'string' || !hasKeyTypes(container as object) ? true : false;
  }
  throw new PyError(`argument of type '${typeName(container)}' is not iterable`);
}

/** `x[a:b:c]` on lists, tuples and strings. */
export function slice(obj: unknown, start: unknown, stop: unknown, step: unknown): unknown {
  obj = unwrap(obj);
  const st = step === null || step === undefined ? 1 : (step as number);
  if (st === 0) throw new PyError('slice step cannot be zero');
  const seq = typeof obj === 'string' ? [...obj] : Array.isArray(obj) ? obj : undefined;
  if (!seq) throw new PyError(`'${typeName(obj)}' object is not subscriptable`);
  const len = seq.length;
  const norm = (v: unknown, dflt: number, lo: number, hi: number) => {
    if (v === null || v === undefined) return dflt;
    let n = Math.trunc(v as number);
    if (n < 0) n += len;
    return Math.min(Math.max(n, lo), hi);
  };
  const out: unknown[] = [];
  if (st > 0) {
    const a = norm(start, 0, 0, len);
    const b = norm(stop, len, 0, len);
    for (let i = a; i < b; i += st) out.push(seq[i]);
  } else {
    const a = norm(start, len - 1, -1, len - 1);
    const b = norm(stop, -1, -1, len - 1);
    for (let i = a; i > b; i += st) out.push(seq[i]);
  }
  if (typeof obj === 'string') return out.join('');
  return isTuple(obj) ? tuple(out) : out;
}

export function toInt(v: unknown, dflt: unknown = 0, base = 10): unknown {
  v = n2(v);
  if (typeof v === 'boolean') return v ? 1 : 0;
  if (typeof v === 'number') return Number.isFinite(v) ? Math.trunc(v) : dflt;
  if (typeof v === 'string') {
    const s = v.trim().replace(/_/g, '');
    if (base === 10 && /^[+-]?\d+$/.test(s)) return parseInt(s, 10);
    if (base !== 10) {
      const body = s.replace(/^0[xob]/i, '');
      const n = parseInt(body, base);
      return Number.isNaN(n) ? dflt : n;
    }
    if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(s)) return Math.trunc(Number(s));
    return dflt;
  }
  return dflt;
}

export function toFloat(v: unknown, dflt: unknown = pyFloat(0)): unknown {
  v = n2(v);
  if (typeof v === 'boolean') return pyFloat(v ? 1 : 0);
  if (typeof v === 'number') return pyFloat(v);
  if (typeof v === 'string') {
    const s = v.trim().toLowerCase().replace(/_/g, '');
    if (/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/.test(s)) return pyFloat(Number(s));
    if (/^[+-]?(inf|infinity)$/.test(s)) return s.startsWith('-') ? -Infinity : Infinity;
    if (/^[+-]?nan$/.test(s)) return NaN;
    return dflt;
  }
  return dflt;
}
