/**
 * What compiled templates call for expressions (`runtime.py.*`, see ./nunjucks-patch.ts):
 * Python's operators (./pyops.ts) and Salt's StrictUndefined, which makes any use of an
 * undefined value other than `is defined`/`default` an error naming it.
 */
import nunjucks from 'nunjucks';
import * as ops from './pyops.js';
import { tuple, noteKey, pyFloat, noteTemplateDict } from './pyrepr.js';
import { dictKey, setOwn, helper, helperObject } from './sandbox.js';
import { namespaceSet } from './globals.js';
import { kwOf } from './salt-exec/args.js';

/* eslint-disable @typescript-eslint/no-explicit-any */
const TemplateError = (nunjucks.lib as any).TemplateError as new (m: string, l?: number, c?: number) => Error;

/** Where an error from an imported/included template was imported: importer file and line. */
export interface ImportLink {
  file: string;
  line: number;
}

export function undefinedError(desc: string, lineno: number, colno: number): Error {
  const e = new TemplateError(`'${desc}' is undefined`, lineno + 1, colno + 1);
  (e as { missing?: string }).missing = desc;
  return e;
}

const BREAK = { signal: 'break' };
const CONTINUE = { signal: 'continue' };

/** Jinja's loop variable for one iteration: index, first, cycle(), changed(), loop(...) when recursive. */
function makeLoop(items: unknown[], depth: number, recurse: ((items: unknown[], depth: number) => string) | null) {
  let last: unknown[] | undefined;
  const changed = helper((...vals: unknown[]) => {
    const [v] = kwOf(vals);
    if (last !== undefined && ops.pyEquals(last, v)) return false;
    last = v;
    return true;
  });
  return {
    at(i: number) {
      const call = helper((next: unknown) => {
        if (!recurse) throw new TemplateError('Tried to call non recursive loop. Maybe you forgot the "recursive" modifier.');
        return recurse(ops.pyIter(next), depth + 1);
      });
      const fields: Record<string, unknown> = {
        index: i + 1,
        index0: i,
        revindex: items.length - i,
        revindex0: items.length - i - 1,
        first: i === 0,
        last: i === items.length - 1,
        length: items.length,
        depth,
        depth0: depth - 1,
        previtem: i > 0 ? items[i - 1] : undefined,
        nextitem: i < items.length - 1 ? items[i + 1] : undefined,
        cycle: helper((...args: unknown[]) => {
          const [a] = kwOf(args);
          if (!a.length) throw new TemplateError('no items for cycling given');
          return a[i % a.length];
        }),
        changed,
      };
      return helperObject(call, (k) => (Object.prototype.hasOwnProperty.call(fields, k) ? fields[k] : undefined));
    },
  };
}

export const pyRuntime = {
  BREAK,
  CONTINUE,
  loop: makeLoop,
  unpack(v: unknown, n: number): unknown[] {
    const items = ops.pyIter(v);
    if (items.length !== n) throw new TemplateError(items.length > n ? `too many values to unpack (expected ${n})` : `not enough values to unpack (expected ${n}, got ${items.length})`);
    return items;
  },
  kwargs(pairs: [string, unknown][]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of pairs) setOwn(out, k, v);
    return out;
  },
  nameMacro(macro: unknown, name: string, args: string[]): void {
    if (typeof macro === 'function') helperObject(macro, (k) => (k === 'name' ? name : k === 'arguments' ? tuple([...args]) : undefined));
  },
  nsSet(ns: unknown, key: string, value: unknown): void {
    namespaceSet(ns, key, value);
  },
  ...ops,
  strict(v: unknown, desc: string, lineno: number, colno: number): unknown {
    if (v === undefined) throw undefinedError(desc, lineno, colno);
    return v;
  },
  truthy: ops.truthy,
  tuple,
  float: pyFloat,
  /** A dict literal: keys evaluated (`{1: a, True: b, x: c}`), each an own property whatever its name. */
  dict(pairs: [unknown, unknown][]): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [k, v] of pairs) {
      const key = dictKey(k);
      if (key === undefined) throw new TemplateError(`unhashable type: '${ops.typeName(k)}'`);
      setOwn(out, key, v);
      noteKey(out, key, k);
    }
    noteTemplateDict(out);
    return out;
  },
  iterable(v: unknown): unknown[] {
    return ops.pyIter(v);
  },
  or(a: unknown, b: () => unknown): unknown {
    return ops.truthy(a) ? a : b();
  },
  and(a: unknown, b: () => unknown): unknown {
    return ops.truthy(a) ? b() : a;
  },
  compareChain(first: unknown, ...rest: unknown[]): boolean {
    let left = first;
    for (let i = 0; i < rest.length; i += 2) {
      const right = (rest[i + 1] as () => unknown)();
      if (!ops.compare(left, rest[i] as string, right)) return false;
      left = right;
    }
    return true;
  },
  filter(env: any, name: string, lineno: number, colno: number): (...a: unknown[]) => unknown {
    const filters = env.filters as Record<string, (...a: unknown[]) => unknown>;
    if (!Object.prototype.hasOwnProperty.call(filters, name)) throw new TemplateError(`no filter named '${name}'`, lineno + 1, colno + 1);
    return filters[name]!;
  },
  test(env: any, name: string, lineno: number, colno: number): (...a: unknown[]) => boolean {
    const tests = env.tests as Record<string, (...a: unknown[]) => boolean>;
    if (!Object.prototype.hasOwnProperty.call(tests, name)) throw new TemplateError(`no test named '${name}'`, lineno + 1, colno + 1);
    const t = tests[name]!;
    return (...a: unknown[]) => t(...a) === true;
  },
  importedFrom(err: unknown, file: string | undefined, lineno: number): unknown {
    if (err && typeof err === 'object' && file) {
      const e = err as { tsaltChain?: ImportLink[] };
      e.tsaltChain ??= [];
      const last = e.tsaltChain[e.tsaltChain.length - 1];
      if (!last || last.file !== file) e.tsaltChain.push({ file, line: lineno + 1 });
    }
    return err;
  },
};
