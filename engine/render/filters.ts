/** The Jinja filters and tests Salt trees use that Nunjucks lacks or spells differently. */
import type nunjucks from 'nunjucks';
import crypto from 'node:crypto';
import { dumpSaltYaml } from './salt-yaml.js';
import { pyRepr } from './pyrepr.js';

type Kw = { __keywords?: true } & Record<string, unknown>;

function splitKw(args: unknown[]): [unknown[], Record<string, unknown>] {
  const last = args[args.length - 1] as Kw | undefined;
  if (last && typeof last === 'object' && last.__keywords) {
    const { __keywords, ...kw } = last;
    return [args.slice(0, -1), kw];
  }
  return [args, {}];
}

function attrPath(obj: unknown, path: string): unknown {
  let cur = obj;
  for (const k of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Jinja tests, usable in `is` expressions and in select/selectattr. */
const TESTS: Record<string, (v: unknown, ...a: unknown[]) => boolean> = {
  defined: (v) => v !== undefined,
  undefined: (v) => v === undefined,
  none: (v) => v === null,
  true: (v) => v === true,
  false: (v) => v === false,
  boolean: (v) => typeof v === 'boolean',
  integer: (v) => Number.isInteger(v),
  float: (v) => typeof v === 'number' && !Number.isInteger(v),
  number: (v) => typeof v === 'number',
  string: (v) => typeof v === 'string',
  mapping: (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  sequence: (v) => Array.isArray(v) || typeof v === 'string',
  iterable: (v) => Array.isArray(v) || typeof v === 'string' || (v !== null && typeof v === 'object'),
  list: (v) => Array.isArray(v),
  in: (v, c) => (Array.isArray(c) ? c.includes(v) : typeof c === 'string' ? c.includes(String(v)) : c !== null && typeof c === 'object' ? Object.prototype.hasOwnProperty.call(c, String(v)) : false),
  equalto: (v, o) => v === o,
  eq: (v, o) => v === o,
  '==': (v, o) => v === o,
  ne: (v, o) => v !== o,
  '!=': (v, o) => v !== o,
  gt: (v, o) => (v as number) > (o as number),
  ge: (v, o) => (v as number) >= (o as number),
  lt: (v, o) => (v as number) < (o as number),
  le: (v, o) => (v as number) <= (o as number),
  '>': (v, o) => (v as number) > (o as number),
  '<': (v, o) => (v as number) < (o as number),
  odd: (v) => (v as number) % 2 === 1,
  even: (v) => (v as number) % 2 === 0,
  truthy: (v) => !!v,
  falsy: (v) => !v,
  match: (v, re) => typeof v === 'string' && new RegExp(`^(?:${String(re)})`).test(v),
  search: (v, re) => typeof v === 'string' && new RegExp(String(re)).test(v),
};

function runTest(name: unknown, v: unknown, args: unknown[]): boolean {
  if (name === undefined) return !!v;
  const t = TESTS[String(name)];
  if (!t) throw new Error(`no test named '${String(name)}'`);
  return t(v, ...args);
}

function asList(v: unknown): unknown[] {
  if (Array.isArray(v)) return v;
  if (v === null || v === undefined) return [];
  if (typeof v === 'object') return Object.keys(v);
  if (typeof v === 'string') return [...v];
  return [v];
}

export function installFilters(env: nunjucks.Environment): void {
  const withTests = env as unknown as { addTest(n: string, f: (...a: any[]) => boolean): void };
  for (const [name, fn] of Object.entries(TESTS)) withTests.addTest(name, fn);

  const f = (name: string, fn: (...a: any[]) => unknown) => env.addFilter(name, fn);
  f('yaml', (v: unknown, flow = true) => {
    if (flow === false) return dumpSaltYaml(v).trimEnd();
    return pyRepr(v);
  });
  f('yaml_encode', (v: unknown) => (typeof v === 'string' ? JSON.stringify(v) : pyRepr(v)));
  f('yaml_dquote', (v: unknown) => JSON.stringify(String(v)));
  f('yaml_squote', (v: unknown) => `'${String(v).replace(/'/g, "''")}'`);
  const json = (v: unknown, ...rest: unknown[]) => {
    const [, kw] = splitKw(rest);
    const indent = typeof kw.indent === 'number' ? kw.indent : typeof rest[0] === 'number' ? rest[0] : undefined;
    return JSON.stringify(v, kw.sort_keys ? sortedReplacer : undefined, indent);
  };
  f('json', json);
  f('tojson', json);
  f('json_encode', json);
  f('map', (seq: unknown, ...rest: unknown[]) => {
    const [pos, kw] = splitKw(rest);
    const items = asList(seq);
    if (typeof kw.attribute === 'string') {
      return items.map((x) => attrPath(x, kw.attribute as string) ?? kw.default);
    }
    const filterName = pos[0];
    if (typeof filterName !== 'string') return items;
    const filter = env.getFilter(filterName) as (...a: unknown[]) => unknown;
    return items.map((x) => filter(x, ...pos.slice(1)));
  });
  const select = (keep: boolean) => (seq: unknown, test?: unknown, ...args: unknown[]) =>
    asList(seq).filter((x) => runTest(test, x, args) === keep);
  f('select', select(true));
  f('reject', select(false));
  const selectattr = (keep: boolean) => (seq: unknown, attr: string, test?: unknown, ...args: unknown[]) =>
    asList(seq).filter((x) => runTest(test, attrPath(x, attr), args) === keep);
  f('selectattr', selectattr(true));
  f('rejectattr', selectattr(false));
  f('unique', (seq: unknown) => [...new Set(asList(seq))]);
  f('min', (seq: unknown) => asList(seq).reduce((a: any, b: any) => (b < a ? b : a)));
  f('max', (seq: unknown) => asList(seq).reduce((a: any, b: any) => (b > a ? b : a)));
  f('difference', (a: unknown, b: unknown) => asList(a).filter((x) => !asList(b).includes(x)));
  f('intersect', (a: unknown, b: unknown) => asList(a).filter((x) => asList(b).includes(x)));
  f('union', (a: unknown, b: unknown) => [...new Set([...asList(a), ...asList(b)])]);
  f('items', (d: Record<string, unknown>) => Object.entries(d ?? {}));
  f('dictsort', (d: Record<string, unknown>) => Object.entries(d ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  f('to_bool', (v: unknown) => (typeof v === 'string' ? ['true', 'yes', '1', 'on'].includes(v.toLowerCase()) : !!v));
  f('bool', (v: unknown) => (typeof v === 'string' ? ['true', 'yes', '1', 'on'].includes(v.toLowerCase()) : !!v));
  f('is_list', (v: unknown) => Array.isArray(v));
  f('quote', (v: unknown) => `'${String(v).replace(/'/g, `'"'"'`)}'`);
  f('regex_replace', (v: unknown, re: string, rep: string, ...rest: unknown[]) => {
    const [, kw] = splitKw(rest);
    return String(v).replace(new RegExp(re, kw.ignorecase ? 'gi' : 'g'), rep.replace(/\\(\d)/g, '$$$1'));
  });
  f('regex_search', (v: unknown, re: string) => {
    const m = new RegExp(re).exec(String(v));
    return m ? (m.length > 1 ? m.slice(1) : [m[0]]) : null;
  });
  f('regex_match', (v: unknown, re: string) => {
    const m = new RegExp(`^(?:${re})`).exec(String(v));
    return m ? (m.length > 1 ? m.slice(1) : [m[0]]) : null;
  });
  f('base64_encode', (v: unknown) => Buffer.from(String(v)).toString('base64'));
  f('base64_decode', (v: unknown) => Buffer.from(String(v), 'base64').toString('utf8'));
  f('md5', (v: unknown) => crypto.createHash('md5').update(String(v)).digest('hex'));
  f('sha256', (v: unknown) => crypto.createHash('sha256').update(String(v)).digest('hex'));
  f('sha512', (v: unknown) => crypto.createHash('sha512').update(String(v)).digest('hex'));
  f('flatten', (v: unknown) => asList(v).flat(Infinity));
  f('sequence', (v: unknown) => (Array.isArray(v) ? v : [v]));
  f('string', (v: unknown) => (typeof v === 'string' ? v : pyRepr(v)));
  f('str', (v: unknown) => (typeof v === 'string' ? v : pyRepr(v)));
}

function sortedReplacer(_k: string, v: unknown): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v)) {
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)));
  }
  return v;
}
