/**
 * The Python methods of str, list and dict a template may call (`'a,b'.split(',')`,
 * `d.items()`, `l.append(x)`), with Python's semantics. Reached only through ./sandbox.ts, which
 * binds them to their receiver; they touch only own data of that receiver.
 */
import { pyOutput, pyRepr, tuple, pyEquals, origKey, PyFloat } from './pyrepr.js';
import { kwOf } from './salt-exec/args.js';

type AnyFn = (this: any, ...a: any[]) => unknown;

export class PyError extends Error {}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function own(obj: object, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

function keyOf(k: unknown): string {
  if (typeof k === 'string') return k;
  if (typeof k === 'number') return String(k);
  if (typeof k === 'boolean') return k ? 'True' : 'False';
  if (k === null) return 'None';
  throw new PyError(`unhashable key ${pyRepr(k)}`);
}

function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}

/** Python's str.format mini-language: fill, align, sign, width, precision, type d/f/s/x/o/b/e/%. */
export function formatSpec(vIn: unknown, spec: string): string {
  const v = vIn instanceof PyFloat ? vIn.value : vIn;
  if (spec === '') return pyOutput(vIn);
  const m = /^(?:(.)?([<>^=]))?([+\- ])?(#)?(0)?(\d+)?(,)?(?:\.(\d+))?([bcdeEfFgGnosxX%])?$/.exec(spec);
  if (!m) throw new PyError(`Invalid format specifier '${spec}'`);
  const [, fillC, alignC, sign, , zero, widthS, comma, precS, type] = m;
  let s: string;
  const num = typeof v === 'number' ? v : undefined;
  const prec = precS !== undefined ? Number(precS) : undefined;
  switch (type) {
    case 'd':
    case 'n':
      if (num === undefined) throw new PyError(`Unknown format code 'd' for object of type 'str'`);
      s = String(Math.trunc(num));
      break;
    case 'f':
    case 'F':
      s = (num ?? Number(v)).toFixed(prec ?? 6);
      break;
    case 'e':
    case 'E':
      s = (num ?? Number(v)).toExponential(prec ?? 6).replace(/e([+-])(\d)$/, 'e$10$2');
      if (type === 'E') s = s.toUpperCase();
      break;
    case '%':
      s = ((num ?? Number(v)) * 100).toFixed(prec ?? 6) + '%';
      break;
    case 'x':
      s = (num ?? 0).toString(16);
      break;
    case 'X':
      s = (num ?? 0).toString(16).toUpperCase();
      break;
    case 'o':
      s = (num ?? 0).toString(8);
      break;
    case 'b':
      s = (num ?? 0).toString(2);
      break;
    case 'g':
    case 'G':
      s = generalFormat(num ?? Number(v), prec === undefined ? 6 : prec === 0 ? 1 : prec);
      if (type === 'G') s = s.toUpperCase();
      break;
    case 'c':
      s = String.fromCodePoint(num ?? 0);
      break;
    default:
      s = pyOutput(vIn);
      if (prec !== undefined && typeof v === 'string') s = s.slice(0, prec);
      else if (prec !== undefined && num !== undefined) s = String(Number(num.toPrecision(prec)));
  }
  if (comma && num !== undefined) s = s.replace(/^(-?\d+)/, (d) => d.replace(/\B(?=(\d{3})+(?!\d))/g, ','));
  if (num !== undefined && sign && num >= 0 && type !== 's') s = (sign === ' ' ? ' ' : sign === '+' ? '+' : '') + s;
  const width = widthS ? Number(widthS) : 0;
  if (s.length >= width) return s;
  const fill = fillC ?? (zero && !alignC ? '0' : ' ');
  const align = alignC ?? (zero ? '=' : num !== undefined ? '>' : '<');
  const pad = width - s.length;
  if (align === '<') return s + fill.repeat(pad);
  if (align === '>') return fill.repeat(pad) + s;
  if (align === '^') return fill.repeat(Math.floor(pad / 2)) + s + fill.repeat(Math.ceil(pad / 2));
  const sgn = /^[+\- ]/.test(s) ? s[0]! : '';
  return sgn + fill.repeat(pad) + s.slice(sgn.length);
}

/** Python's 'g' presentation: `p` significant digits, fixed or exponent form, trailing zeros dropped. */
function generalFormat(x: number, p: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? 'nan' : x > 0 ? 'inf' : '-inf';
  if (x === 0) return '0';
  const [mant, expText] = x.toExponential(p - 1).split('e') as [string, string];
  const exp = Number(expText);
  if (exp >= -4 && exp < p) {
    const fixed = x.toFixed(Math.max(0, p - 1 - exp));
    return fixed.includes('.') ? fixed.replace(/0+$/, '').replace(/\.$/, '') : fixed;
  }
  const m = mant.includes('.') ? mant.replace(/0+$/, '').replace(/\.$/, '') : mant;
  return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** Resolve `name.attr[key]` in a format field through the sandbox's lookup. */
type Lookup = (obj: unknown, key: unknown) => unknown;
let fieldLookup: Lookup = () => undefined;
export function setFieldLookup(l: Lookup): void {
  fieldLookup = l;
}

export function pyFormat(fmt: string, rawArgs: unknown[]): string {
  const [args, kw] = kwOf(rawArgs);
  let auto = 0;
  return fmt.replace(/\{\{|\}\}|\{([^{}]*)\}/g, (m, field: string | undefined) => {
    if (m === '{{') return '{';
    if (m === '}}') return '}';
    const f = field ?? '';
    const specAt = f.indexOf(':');
    const head = specAt >= 0 ? f.slice(0, specAt) : f;
    const spec = specAt >= 0 ? f.slice(specAt + 1) : '';
    const [nameConv, conv] = head.split('!') as [string, string | undefined];
    const nm = /^([^.[]*)(.*)$/.exec(nameConv)!;
    const first = nm[1]!;
    let v = first === '' ? args[auto++] : /^\d+$/.test(first) ? args[Number(first)] : kw[first];
    if (v === undefined) throw new PyError(first === '' || /^\d+$/.test(first) ? 'Replacement index out of range' : `KeyError: '${first}'`);
    for (const part of nm[2]!.matchAll(/\.([^.[]+)|\[([^\]]+)\]/g)) {
      if (part[1] !== undefined) {
        // `.name` is getattr: dict keys are not attributes
        if (v !== null && typeof v === 'object' && !Array.isArray(v)) throw new PyError(`AttributeError: object has no attribute '${part[1]}'`);
        v = fieldLookup(v, part[1]);
      } else {
        const key = /^\d+$/.test(part[2]!) ? Number(part[2]) : part[2];
        v = fieldLookup(v, key);
        if (v === undefined) throw new PyError(`KeyError: ${pyRepr(key)}`);
      }
    }
    if (conv === 'r') v = pyRepr(v);
    else if (conv === 's') v = pyOutput(v);
    return formatSpec(v, spec);
  });
}

function stripChars(s: string, chars: unknown, left: boolean, right: boolean): string {
  if (chars === undefined || chars === null) {
    if (left) s = s.replace(/^\s+/, '');
    if (right) s = s.replace(/\s+$/, '');
    return s;
  }
  const set = new Set(String(chars));
  let a = 0;
  let b = s.length;
  if (left) while (a < b && set.has(s[a]!)) a++;
  if (right) while (b > a && set.has(s[b - 1]!)) b--;
  return s.slice(a, b);
}

function pySplit(s: string, sep: unknown, max: unknown, fromRight: boolean): string[] {
  const limit = typeof max === 'number' && max >= 0 ? max : -1;
  if (sep === undefined || sep === null) {
    const words = s.trim() === '' ? [] : s.trim().split(/\s+/);
    if (limit < 0 || words.length <= limit + 1) return words;
    if (fromRight) {
      const keep = words.slice(words.length - limit);
      const restText = s.replace(/\s+$/, '');
      let cut = restText.length;
      for (let i = 0; i < limit; i++) cut = restText.slice(0, cut).replace(/\s+\S+$/, '').length;
      return [restText.slice(0, cut).replace(/^\s+/, ''), ...keep];
    }
    const out: string[] = [];
    let rest = s.replace(/^\s+/, '');
    for (let i = 0; i < limit; i++) {
      const m = /^(\S+)\s+/.exec(rest);
      if (!m) break;
      out.push(m[1]!);
      rest = rest.slice(m[0].length);
    }
    if (rest !== '') out.push(rest);
    return out;
  }
  const sp = String(sep);
  if (sp === '') throw new PyError('empty separator');
  const parts = s.split(sp);
  if (limit < 0 || parts.length <= limit + 1) return parts;
  if (fromRight) return [parts.slice(0, parts.length - limit).join(sp), ...parts.slice(parts.length - limit)];
  return [...parts.slice(0, limit), parts.slice(limit).join(sp)];
}

function startsEnds(s: string, p: unknown, ends: boolean): boolean {
  const list = Array.isArray(p) ? p : [p];
  return list.some((x) => (ends ? s.endsWith(String(x)) : s.startsWith(String(x))));
}

function pyTitle(s: string): string {
  return s.replace(/\p{L}+/gu, (w) => w.charAt(0).toUpperCase() + w.slice(1).toLowerCase());
}

export const STR_METHODS: Record<string, AnyFn> = {
  format(this: string, ...a: unknown[]) {
    return pyFormat(this, a);
  },
  strip(this: string, c?: unknown) {
    return stripChars(this, c, true, true);
  },
  lstrip(this: string, c?: unknown) {
    return stripChars(this, c, true, false);
  },
  rstrip(this: string, c?: unknown) {
    return stripChars(this, c, false, true);
  },
  startswith(this: string, p: unknown) {
    return startsEnds(this, p, false);
  },
  endswith(this: string, p: unknown) {
    return startsEnds(this, p, true);
  },
  split(this: string, ...raw: unknown[]) {
    const [a, kw] = kwOf(raw);
    return pySplit(this, a[0] ?? kw.sep, a[1] ?? kw.maxsplit, false);
  },
  rsplit(this: string, ...raw: unknown[]) {
    const [a, kw] = kwOf(raw);
    return pySplit(this, a[0] ?? kw.sep, a[1] ?? kw.maxsplit, true);
  },
  upper(this: string) {
    return this.toUpperCase();
  },
  lower(this: string) {
    return this.toLowerCase();
  },
  casefold(this: string) {
    return this.toLowerCase();
  },
  swapcase(this: string) {
    return [...this].map((c) => (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase())).join('');
  },
  title(this: string) {
    return pyTitle(this);
  },
  capitalize(this: string) {
    return this.charAt(0).toUpperCase() + this.slice(1).toLowerCase();
  },
  join(this: string, items: unknown) {
    const list = Array.isArray(items) ? items : typeof items === 'string' ? [...items] : items && typeof items === 'object' ? Object.keys(items) : [];
    for (const x of list) if (typeof x !== 'string') throw new PyError(`sequence item: expected str instance, ${pyRepr(x)} found`);
    return list.join(this);
  },
  isdigit(this: string) {
    return /^\d+$/.test(this);
  },
  isnumeric(this: string) {
    return /^\d+$/.test(this);
  },
  isdecimal(this: string) {
    return /^\d+$/.test(this);
  },
  isalpha(this: string) {
    return /^\p{L}+$/u.test(this);
  },
  isalnum(this: string) {
    return /^[\p{L}\d]+$/u.test(this);
  },
  isspace(this: string) {
    return /^\s+$/.test(this);
  },
  islower(this: string) {
    return /[a-z]/.test(this) && this === this.toLowerCase();
  },
  isupper(this: string) {
    return /[A-Z]/.test(this) && this === this.toUpperCase();
  },
  replace(this: string, a: unknown, b: unknown, count?: unknown) {
    const parts = this.split(String(a));
    if (typeof count === 'number' && count >= 0 && parts.length - 1 > count) {
      return parts.slice(0, count + 1).join(String(b)) + String(a) + parts.slice(count + 1).join(String(a));
    }
    return parts.join(String(b));
  },
  find(this: string, s: unknown) {
    return this.indexOf(String(s));
  },
  rfind(this: string, s: unknown) {
    return this.lastIndexOf(String(s));
  },
  index(this: string, s: unknown) {
    const i = this.indexOf(String(s));
    if (i < 0) throw new PyError('substring not found');
    return i;
  },
  count(this: string, s: unknown) {
    const x = String(s);
    return x ? this.split(x).length - 1 : this.length + 1;
  },
  splitlines(this: string) {
    const out = this.split(/\r\n|\r|\n/);
    if (out.length && out[out.length - 1] === '') out.pop();
    return out;
  },
  zfill(this: string, n: number) {
    const sign = /^[+-]/.test(this) ? this[0]! : '';
    return sign + this.slice(sign.length).padStart(n - sign.length, '0');
  },
  center(this: string, n: number, fill = ' ') {
    const pad = n - this.length;
    if (pad <= 0) return this;
    const left = Math.floor(pad / 2) + (pad & n & 1);
    return fill.repeat(left) + this + fill.repeat(pad - left);
  },
  ljust(this: string, n: number, fill = ' ') {
    return this.padEnd(n, fill);
  },
  rjust(this: string, n: number, fill = ' ') {
    return this.padStart(n, fill);
  },
  partition(this: string, sep: unknown) {
    const s = String(sep);
    const i = this.indexOf(s);
    return tuple(i < 0 ? [this, '', ''] : [this.slice(0, i), s, this.slice(i + s.length)]);
  },
  rpartition(this: string, sep: unknown) {
    const s = String(sep);
    const i = this.lastIndexOf(s);
    return tuple(i < 0 ? ['', '', this] : [this.slice(0, i), s, this.slice(i + s.length)]);
  },
};

function listIndex(list: unknown[], x: unknown): number {
  return list.findIndex((y) => pyEquals(x, y));
}

export const LIST_METHODS: Record<string, AnyFn> = {
  append(this: unknown[], x: unknown) {
    this.push(x);
    return null;
  },
  extend(this: unknown[], xs: unknown) {
    this.push(...(Array.isArray(xs) ? xs : typeof xs === 'string' ? [...xs] : xs && typeof xs === 'object' ? Object.keys(xs) : []));
    return null;
  },
  insert(this: unknown[], i: number, x: unknown) {
    this.splice(i < 0 ? Math.max(0, this.length + i) : i, 0, x);
    return null;
  },
  pop(this: unknown[], i?: number) {
    if (!this.length) throw new PyError('pop from empty list');
    const at = i === undefined ? this.length - 1 : i < 0 ? this.length + i : i;
    if (at < 0 || at >= this.length) throw new PyError('pop index out of range');
    return this.splice(at, 1)[0];
  },
  remove(this: unknown[], x: unknown) {
    const i = listIndex(this, x);
    if (i < 0) throw new PyError('list.remove(x): x not in list');
    this.splice(i, 1);
    return null;
  },
  index(this: unknown[], x: unknown) {
    const i = listIndex(this, x);
    if (i < 0) throw new PyError(`${pyRepr(x)} is not in list`);
    return i;
  },
  count(this: unknown[], x: unknown) {
    return this.filter((y) => pyEquals(x, y)).length;
  },
  reverse(this: unknown[]) {
    this.reverse();
    return null;
  },
  sort(this: unknown[], ...raw: unknown[]) {
    const [, kw] = kwOf(raw);
    const cmp = (a: unknown, b: unknown): number => {
      const x = a instanceof PyFloat ? a.value : a;
      const y = b instanceof PyFloat ? b.value : b;
      if ((typeof x === 'number' || typeof x === 'boolean') && (typeof y === 'number' || typeof y === 'boolean')) return Number(x) - Number(y);
      if (typeof x === 'string' && typeof y === 'string') return x < y ? -1 : x > y ? 1 : 0;
      throw new PyError(`'<' not supported between instances of ${pyRepr(a)} and ${pyRepr(b)}`);
    };
    const sorted = [...this].sort(cmp);
    if (kw.reverse === true) sorted.reverse();
    this.splice(0, this.length, ...sorted);
    return null;
  },
  copy(this: unknown[]) {
    return [...this];
  },
  clear(this: unknown[]) {
    this.length = 0;
    return null;
  },
};

export const DICT_METHODS: Record<string, AnyFn> = {
  items(this: Record<string, unknown>) {
    return Object.entries(this).map(([k, v]) => tuple([origKey(this, k), v]));
  },
  keys(this: Record<string, unknown>) {
    return Object.keys(this).map((k) => origKey(this, k));
  },
  values(this: Record<string, unknown>) {
    return Object.values(this);
  },
  get(this: Record<string, unknown>, key: unknown, def: unknown = null) {
    const k = keyOf(key);
    return own(this, k) ? this[k] : def;
  },
  pop(this: Record<string, unknown>, key: unknown, ...rest: unknown[]) {
    const k = keyOf(key);
    if (own(this, k)) {
      const v = this[k];
      delete this[k];
      return v;
    }
    if (rest.length) return rest[0];
    throw new PyError(`KeyError: ${pyRepr(key)}`);
  },
  popitem(this: Record<string, unknown>) {
    const keys = Object.keys(this);
    if (!keys.length) throw new PyError("KeyError: 'popitem(): dictionary is empty'");
    const k = keys[keys.length - 1]!;
    const v = this[k];
    delete this[k];
    return tuple([k, v]);
  },
  setdefault(this: Record<string, unknown>, key: unknown, def: unknown = null) {
    const k = keyOf(key);
    if (!own(this, k)) setKey(this, k, def);
    return this[k];
  },
  update(this: Record<string, unknown>, ...raw: unknown[]) {
    const [a, kw] = kwOf(raw);
    const src = a[0];
    if (Array.isArray(src)) for (const pair of src) setKey(this, keyOf((pair as unknown[])[0]), (pair as unknown[])[1]);
    else if (src && typeof src === 'object') for (const [k, v] of Object.entries(src)) setKey(this, k, v);
    for (const [k, v] of Object.entries(kw)) setKey(this, k, v);
    return null;
  },
  copy(this: Record<string, unknown>) {
    return { ...this };
  },
  clear(this: Record<string, unknown>) {
    for (const k of Object.keys(this)) delete this[k];
    return null;
  },
};

export { escapeRe };
