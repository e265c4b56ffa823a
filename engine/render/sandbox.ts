/**
 * The one guard between a template and JavaScript. Every attribute access (`a.b`), item access
 * (`a[b]`), filter attribute lookup (`map(attribute=)`, `sort(attribute=)`, `selectattr`,
 * `groupby`, `sum`, `unique`, `min`/`max`, `join(attribute=)`) and call goes through here.
 *
 * What a template can reach:
 * - own data properties of plain data: objects whose prototype is Object.prototype or null,
 *   arrays (integer indexes, negative from the end), strings (integer indexes);
 * - the Python methods of str/list/dict that ./pymethods.ts defines, bound to their receiver;
 * - helpers: functions and objects registered here (the `salt` functions, macros, Jinja's
 *   globals such as range/cycler/namespace).
 * Never: a function found in data that is not a registered helper, a getter, an inherited
 * property (so never `constructor` or a prototype), a property of a function. Keys must be
 * strings or numbers: an array or an object with toString is never converted to a key.
 * Deny = undefined, which Salt's StrictUndefined then reports by name.
 */
import { STR_METHODS, LIST_METHODS, DICT_METHODS } from './pymethods.js';

type AnyFn = (...a: any[]) => unknown;

/** Functions a template may call. */
const callables = new WeakSet<object>();
/** Helper objects with their own attribute resolver (salt namespace, cycler, namespace()). */
const helperObjects = new WeakMap<object, (key: string) => unknown>();

export function helper<F extends AnyFn>(fn: F): F {
  callables.add(fn);
  return fn;
}

/** Register an object whose attributes are resolved by `get` (nothing else of it is reachable). */
export function helperObject<T extends object>(obj: T, get: (key: string) => unknown): T {
  helperObjects.set(obj, get);
  return obj;
}

/** Tuples with named fields (groupby's `grouper`/`list`), read by name without opening arrays' own keys. */
const namedFields = new WeakMap<unknown[], Record<string, unknown>>();
export function namedTuple<T extends unknown[]>(t: T, fields: Record<string, unknown>): T {
  namedFields.set(t, fields);
  return t;
}

export function isCallable(v: unknown): v is AnyFn {
  return typeof v === 'function' && callables.has(v);
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Strings Nunjucks marks safe are String objects: treat them as the string they hold. */
function unwrapString(v: unknown): unknown {
  return v instanceof String ? String(v) : v;
}

/** What a template may hold of a value found in data: functions only when they are helpers. */
function allowValue(v: unknown): unknown {
  if (typeof v === 'function') return callables.has(v) ? v : undefined;
  return v;
}

function ownData(obj: object, key: string): unknown {
  const d = Object.getOwnPropertyDescriptor(obj, key);
  if (!d || !('value' in d)) return undefined; // absent, or a getter/setter
  return allowValue(d.value);
}

function index(len: number, key: unknown): number | undefined {
  if (typeof key !== 'number' || !Number.isInteger(key)) return undefined;
  const i = key < 0 ? key + len : key;
  return i >= 0 && i < len ? i : undefined;
}

function method(table: Record<string, AnyFn>, recv: unknown, key: string): AnyFn | undefined {
  if (!Object.prototype.hasOwnProperty.call(table, key)) return undefined;
  const fn = table[key]!;
  return helper((...a: unknown[]) => fn.apply(recv, a));
}

/** Dict keys as JavaScript holds them: strings; numbers and booleans as Jinja literals spell them. */
export function dictKey(key: unknown): string | undefined {
  if (typeof key === 'string') return key;
  if (typeof key === 'number' && Number.isFinite(key)) return String(key);
  if (typeof key === 'boolean') return key ? 'True' : 'False';
  if (key === null) return 'None';
  return undefined;
}

/**
 * `obj.key` (attr = true: Python attribute first, then item) or `obj[key]` (item first, then
 * attribute), as Jinja's getattr/getitem do.
 */
export function lookup(objIn: unknown, key: unknown, attr = false): unknown {
  const obj = unwrapString(objIn);
  if (obj === null || obj === undefined) return undefined;
  if (typeof obj === 'string') {
    const i = index(obj.length, key);
    if (i !== undefined) return obj[i];
    return typeof key === 'string' ? method(STR_METHODS, obj, key) : undefined;
  }
  if (Array.isArray(obj)) {
    const i = index(obj.length, key);
    if (i !== undefined) return allowValue(obj[i]);
    const named = namedFields.get(obj);
    if (named && typeof key === 'string' && Object.prototype.hasOwnProperty.call(named, key)) return allowValue(named[key]);
    return typeof key === 'string' ? method(LIST_METHODS, obj, key) : undefined;
  }
  if (typeof obj === 'function' || typeof obj === 'object') {
    const resolver = helperObjects.get(obj);
    if (resolver) return typeof key === 'string' ? allowValue(resolver(key)) : undefined;
  }
  if (typeof obj !== 'object') return undefined; // numbers, booleans, functions: no members
  if (!isPlainObject(obj)) return undefined;
  const k = dictKey(key);
  if (k === undefined) return undefined;
  if (attr && typeof key === 'string') {
    const m = method(DICT_METHODS, obj, key);
    if (m) return m;
    return ownData(obj, k);
  }
  const v = ownData(obj, k);
  if (v !== undefined || Object.prototype.hasOwnProperty.call(obj, k)) return v;
  return typeof key === 'string' ? method(DICT_METHODS, obj, key) : undefined;
}

/** Jinja's environment.getitem for `attribute='a.b.0'` in filters: dotted path, integer parts. */
export function attributePath(obj: unknown, path: unknown): unknown {
  if (typeof path === 'number') return lookup(obj, path);
  if (typeof path !== 'string') return undefined;
  let cur = obj;
  for (const part of path.split('.')) {
    cur = lookup(cur, /^-?\d+$/.test(part) ? Number(part) : part);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** Call from a template: only helpers. */
export function callChecked(fn: unknown, name: string, args: unknown[]): unknown {
  if (isCallable(fn)) return fn(...args);
  if (fn === undefined) throw new Error(`'${name}' is undefined`);
  throw new Error(`'${name}' is not callable`);
}

/** Set a key on a template-made dict as an own property, whatever its name (`__proto__` included). */
export function setOwn(obj: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
}
