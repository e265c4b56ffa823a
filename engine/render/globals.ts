/** Jinja2's global functions (range, dict, lipsum, cycler, joiner, namespace) as sandbox helpers. */
import { helper, helperObject, setOwn } from './sandbox.js';
import { kwOf } from './salt-exec/args.js';
import { PyError } from './pymethods.js';

/** namespace() objects: attributes set with `{% set ns.x = … %}`, read with `ns.x`. */
const namespaces = new WeakMap<object, Record<string, unknown>>();

export function isNamespace(v: unknown): boolean {
  return v !== null && typeof v === 'object' && namespaces.has(v);
}

export function namespaceSet(ns: unknown, key: string, value: unknown): void {
  const store = ns !== null && typeof ns === 'object' ? namespaces.get(ns) : undefined;
  if (!store) throw new PyError('can only assign attributes to a namespace');
  setOwn(store, key, value);
}

function makeNamespace(init: Record<string, unknown>): object {
  const store: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(init)) setOwn(store, k, v);
  const ns = {};
  namespaces.set(ns, store);
  return helperObject(ns, (k) => (Object.prototype.hasOwnProperty.call(store, k) ? store[k] : undefined));
}

export function namespaceRepr(v: unknown): string | undefined {
  const store = v !== null && typeof v === 'object' ? namespaces.get(v) : undefined;
  if (!store) return undefined;
  return `<Namespace ${JSON.stringify(store)}>`;
}

function range(...raw: unknown[]): number[] {
  const [a] = kwOf(raw);
  const nums = a.map((x) => {
    if (typeof x !== 'number' || !Number.isInteger(x)) throw new PyError(`'${typeof x}' object cannot be interpreted as an integer`);
    return x;
  });
  const [start, stop, step] = nums.length === 1 ? [0, nums[0]!, 1] : [nums[0]!, nums[1]!, nums[2] ?? 1];
  if (step === 0) throw new PyError('range() arg 3 must not be zero');
  const out: number[] = [];
  // Jinja's sandbox caps range() at MAX_RANGE (100000) items
  for (let i = start; step > 0 ? i < stop : i > stop; i += step) {
    if (out.length >= 100000) throw new PyError('Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).');
    out.push(i);
  }
  return out;
}

function cycler(...raw: unknown[]): object {
  const [items] = kwOf(raw);
  let pos = 0;
  const obj = {};
  return helperObject(obj, (k) => {
    if (k === 'current') return items[pos];
    if (k === 'next')
      return helper(() => {
        const v = items[pos];
        pos = (pos + 1) % items.length;
        return v;
      });
    if (k === 'reset')
      return helper(() => {
        pos = 0;
        return null;
      });
    if (k === 'items') return items;
    return undefined;
  });
}

function joiner(...raw: unknown[]): () => string {
  const [a, kw] = kwOf(raw);
  const sep = String(a[0] ?? kw.sep ?? ', ');
  let used = false;
  return helper(() => {
    if (!used) {
      used = true;
      return '';
    }
    return sep;
  });
}

const LOREM = 'lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et dolore magna aliqua'.split(' ');

/** A fresh object each time (an environment's own globals), the same stateless helpers in it. */
export function jinjaGlobals(): Record<string, unknown> {
  return { ...(globalsOnce ??= makeGlobals()) };
}
let globalsOnce: Record<string, unknown> | undefined;

function makeGlobals(): Record<string, unknown> {
  return {
    range: helper(range),
    // Salt's jinja global: `{{ raise('message') }}` fails the render with that message
    raise: helper((msg: unknown) => {
      throw new PyError(String(msg));
    }),
    dict: helper((...raw: unknown[]) => {
      const [a, kw] = kwOf(raw);
      const out: Record<string, unknown> = {};
      const src = a[0];
      if (Array.isArray(src)) for (const p of src) setOwn(out, String((p as unknown[])[0]), (p as unknown[])[1]);
      else if (src && typeof src === 'object') for (const [k, v] of Object.entries(src)) setOwn(out, k, v);
      for (const [k, v] of Object.entries(kw)) setOwn(out, k, v);
      return out;
    }),
    lipsum: helper((n: unknown = 5) => Array.from({ length: Number(n) }, () => LOREM.join(' ')).join('\n\n')),
    cycler: helper(cycler),
    joiner: helper(joiner),
    namespace: helper((...raw: unknown[]) => {
      const [a, kw] = kwOf(raw);
      const init: Record<string, unknown> = {};
      if (a[0] && typeof a[0] === 'object') for (const [k, v] of Object.entries(a[0])) setOwn(init, k, v);
      for (const [k, v] of Object.entries(kw)) setOwn(init, k, v);
      return makeNamespace(init);
    }),
  };
}
