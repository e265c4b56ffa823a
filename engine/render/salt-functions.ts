/**
 * The `salt[...]` / `__salt__` functions a template may call: the data lookups here, plus the
 * execution functions Salt trees use in templates (cmd.*, file.*, network.*, pkg.version,
 * user.info, defaults/slsutil merges, hashutil, cp.get_file_str), one file per Salt module in
 * ./salt-exec/. Templates run as the agent (root), as in Salt; pillar values stay data and are
 * never rendered or executed.
 */
import type { TreeSource } from '../tree/source.js';
import { kwOf, type Data } from './salt-exec/args.js';
import { helper, helperObject } from './sandbox.js';
import { plainData } from './pyrepr.js';
import { cmdFunctions } from './salt-exec/cmd.js';
import { cpFunctions } from './salt-exec/cp.js';
import { fileFunctions } from './salt-exec/file.js';
import { networkFunctions } from './salt-exec/network.js';
import { pkgFunctions } from './salt-exec/pkg.js';
import { userFunctions } from './salt-exec/user.js';
import { utilFunctions } from './salt-exec/util.js';

export type { Data };

const MISSING = Symbol('missing');

/** Salt's traverse_dict_and_list: `a:b:0:c` through dicts and lists. */
export function traverse(data: unknown, key: string, delimiter = ':'): unknown {
  let cur: unknown = data;
  for (const part of key.split(delimiter)) {
    if (Array.isArray(cur)) {
      const i = Number(part);
      if (!Number.isInteger(i) || i < 0 || i >= cur.length) return MISSING;
      cur = cur[i];
    } else if (cur !== null && typeof cur === 'object' && Object.prototype.hasOwnProperty.call(cur, part)) {
      cur = (cur as Data)[part];
    } else {
      return MISSING;
    }
  }
  return cur;
}

function getter(source: () => Data) {
  return (...raw: unknown[]) => {
    const [args, kw] = kwOf(raw);
    const key = String(args[0] ?? kw.key ?? '');
    const def = args.length > 1 ? args[1] : 'default' in kw ? kw.default : '';
    const delim = String(args[2] ?? kw.delimiter ?? ':');
    const v = traverse(source(), key, delim);
    return v === MISSING ? def : v;
  };
}

/** Salt's grains.filter_by: pick a dict entry by a grain's value (default os_family). */
function filterBy(grains: Data) {
  return (...raw: unknown[]) => {
    const [args, kw] = kwOf(raw);
    const lookup = (args[0] ?? kw.lookup_dict) as Data;
    const grain = String(args[1] ?? kw.grain ?? 'os_family');
    const merge = (args[2] ?? kw.merge) as Data | undefined;
    const dflt = String(args[3] ?? kw.default ?? 'default');
    const base = (args[4] ?? kw.base) as string | undefined;
    const val = traverse(grains, grain);
    const keys = Array.isArray(val) ? val.map(String) : [String(val)];
    let found: unknown = undefined;
    for (const k of keys) if (lookup && Object.prototype.hasOwnProperty.call(lookup, k)) found = lookup[k];
    if (found === undefined && lookup && Object.prototype.hasOwnProperty.call(lookup, dflt)) found = lookup[dflt];
    let out: Data | undefined = found as Data | undefined;
    if (base && lookup?.[base]) out = deepMerge(structuredClone(lookup[base] as Data), (out ?? {}) as Data);
    if (merge && out) out = deepMerge(structuredClone(out), merge);
    return out ?? null;
  };
}

/** Keys that would reach an object's prototype through `target[k]`: never merged. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

export function deepMerge(target: Data, src: Data): Data {
  for (const [k, v] of Object.entries(src)) {
    if (UNSAFE_KEYS.has(k)) continue;
    const t = target[k];
    if (v && typeof v === 'object' && !Array.isArray(v) && t && typeof t === 'object' && !Array.isArray(t)) {
      deepMerge(t as Data, v as Data);
    } else {
      target[k] = v;
    }
  }
  return target;
}

/** `tree`: the run's state tree, for cp.get_file_str (absent: that function refuses). */
export function saltFunctions(grains: Data, pillar: Data, opts: Data, tree?: TreeSource): Record<string, (...a: unknown[]) => unknown> {
  const pget = getter(() => pillar);
  const gget = getter(() => grains);
  const fns: Record<string, (...a: unknown[]) => unknown> = {
    'pillar.get': pget,
    'pillar.item': (...keys: unknown[]) => Object.fromEntries(kwOf(keys)[0].map((k) => [String(k), pget(k)])),
    'pillar.items': () => pillar,
    'pillar.raw': () => pillar,
    'grains.get': gget,
    'grains.item': (...keys: unknown[]) => Object.fromEntries(kwOf(keys)[0].map((k) => [String(k), gget(k)])),
    'grains.items': () => grains,
    'grains.filter_by': filterBy(grains),
    'config.get': (...raw: unknown[]) => {
      const [args] = kwOf(raw);
      const key = String(args[0]);
      for (const src of [opts, grains, pillar]) {
        const v = traverse(src, key);
        if (v !== MISSING) return v;
      }
      return args.length > 1 ? args[1] : '';
    },
    'config.option': (...raw: unknown[]) => {
      const [args] = kwOf(raw);
      const v = traverse(opts, String(args[0]));
      return v === MISSING ? (args[1] ?? '') : v;
    },
    'test.ping': () => true,
    'test.true': () => true,
    'test.false': () => false,
    ...cmdFunctions(),
    ...fileFunctions(),
    ...networkFunctions(),
    ...pkgFunctions(grains),
    ...userFunctions(),
    ...utilFunctions(),
    ...cpFunctions(tree),
  };
  return saltNamespace(fns);
}

/**
 * The `salt` object templates see: `salt['mod.fn']`, and `salt.mod.fn` as Salt's loader allows.
 * Each function is a sandbox helper; nothing else of the object is reachable from a template.
 */
function saltNamespace(fns: Record<string, (...a: unknown[]) => unknown>): Record<string, (...a: unknown[]) => unknown> {
  // salt functions take plain data: integral Python floats (PyFloat) become numbers again
  for (const [name, fn] of Object.entries(fns)) fns[name] = helper((...a: unknown[]) => fn(...a.map(plainData)));
  const modules = new Map<string, object>();
  const moduleOf = (mod: string) => {
    let m = modules.get(mod);
    if (!m) {
      m = helperObject({}, (name) => (Object.prototype.hasOwnProperty.call(fns, `${mod}.${name}`) ? fns[`${mod}.${name}`] : undefined));
      modules.set(mod, m);
    }
    return m;
  };
  return helperObject(fns, (key) => {
    if (Object.prototype.hasOwnProperty.call(fns, key)) return fns[key];
    if (/^\w+$/.test(key) && Object.keys(fns).some((k) => k.startsWith(`${key}.`))) return moduleOf(key);
    return undefined;
  });
}
