/**
 * The `salt[...]` / `__salt__` functions a template may call: the data lookups here, plus the
 * execution functions Salt trees use in templates (cmd.*, file.*, network.*, pkg.version,
 * user.info, defaults/slsutil merges, hashutil, cp.get_file_str), one file per Salt module in
 * ./salt-exec/. Templates run as the agent (root), as in Salt; pillar values stay data and are
 * never rendered or executed.
 */
import type { TreeSource } from '../tree/source.js';
import { kwOf, bind, isDict, type Data } from './salt-exec/args.js';
import { dictUpdate } from './salt-exec/util.js';
import { pyRepr, pyOutput, pyEquals, tuple } from './pyrepr.js';
import { percentFormat, truthy } from './pyops.js';
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

/**
 * Salt's pillar.get / grains.get: `a:b:c` paths, a default (Salt's is ''), and for pillar.get
 * `merge=True`: a dict default updated with the pillar's dict, a list default extended with
 * the pillar's items (salt/modules/pillar.py get).
 */
function getter(fn: string, source: () => Data, withMerge: boolean, log: (msg: string) => void) {
  return (...raw: unknown[]) => {
    const { a } = bind(fn, raw, withMerge ? ['key', 'default', 'merge', 'merge_nested_lists', 'delimiter', 'pillarenv', 'saltenv'] : ['key', 'default', 'delimiter', 'ordered'], { loose: true });
    const key = String(a.key ?? '');
    const def = 'default' in a ? a.default : '';
    const delim = String(a.delimiter ?? ':');
    const v = traverse(source(), key, delim);
    if (withMerge && a.merge === true) {
      if (isDict(def)) {
        if (v !== MISSING && isDict(v)) return dictUpdate(structuredClone(def), structuredClone(v), true, a.merge_nested_lists === true);
        if (v !== MISSING) log(`pillar.get: Default (${pyRepr(def)}) is a dict, but the returned pillar value (${pyRepr(v)}) is of type '${pyTypeName(v)}'. Merge will be skipped.`);
      } else if (Array.isArray(def)) {
        if (v !== MISSING && Array.isArray(v)) {
          const out = structuredClone(def) as unknown[];
          for (const x of v) if (!out.some((y) => pyEquals(x, y))) out.push(x);
          return out;
        }
        if (v !== MISSING) log(`pillar.get: Default (${pyRepr(def)}) is a list, but the returned pillar value (${pyRepr(v)}) is of type '${pyTypeName(v)}'. Merge will be skipped.`);
      } else {
        log(`pillar.get: Default (${pyRepr(def)}) is of type '${pyTypeName(def)}', must be a dict or list to merge. Merge will be skipped.`);
      }
    }
    return v === MISSING ? def : v;
  };
}

function pyTypeName(v: unknown): string {
  return v === null ? 'NoneType' : Array.isArray(v) ? 'list' : typeof v === 'string' ? 'str' : typeof v === 'number' ? (Number.isInteger(v) ? 'int' : 'float') : typeof v === 'boolean' ? 'bool' : 'dict';
}

/** Python's fnmatch.fnmatchcase: `*`, `?`, `[seq]`, `[!seq]`. */
export function fnmatchcase(name: string, pattern: string): boolean {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = pattern.slice(i + 1, end);
        if (body.startsWith('!')) body = '^' + body.slice(1);
        re += `[${body.replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^(?:${re})$`, 's').test(name);
}

/**
 * Salt's grains.filter_by (salt/utils/data.py filter_by): the grain's value (each item of a list
 * grain, in order) is matched against the lookup keys as fnmatch patterns, first match wins; else
 * the `default` key; a `base` entry is the dict the match is merged over; `merge` is merged last.
 */
function filterBy(grains: Data) {
  return (...raw: unknown[]) => {
    const { a } = bind('grains.filter_by', raw, ['lookup_dict', 'grain', 'merge', 'default', 'base']);
    const lookup = a.lookup_dict;
    if (!isDict(lookup)) throw new Error('grains.filter_by: lookup_dict must be a dict');
    const grain = String(a.grain ?? 'os_family');
    const dflt = String(a.default ?? 'default');
    const base = a.base as string | undefined;
    const merge = a.merge;
    const val = traverse(grains, grain);
    const values = val === MISSING ? [] : Array.isArray(val) ? val : [val];
    let ret: unknown = undefined;
    for (const each of values) {
      const text = typeof each === 'string' ? each : pyOutput(each);
      const key = Object.keys(lookup).find((k) => fnmatchcase(text, k));
      if (key !== undefined) {
        ret = lookup[key];
        break;
      }
    }
    if (ret === undefined) ret = Object.prototype.hasOwnProperty.call(lookup, dflt) ? lookup[dflt] : undefined;
    if (truthy(base) && Object.prototype.hasOwnProperty.call(lookup, String(base))) {
      const baseValues = lookup[String(base)];
      if (ret === undefined) ret = baseValues;
      else if (isDict(baseValues)) {
        if (!isDict(ret)) throw new Error('grains.filter_by: filter_by default and look-up values must both be dictionaries.');
        ret = dictUpdate(structuredClone(baseValues), structuredClone(ret), true, false);
      }
    }
    if (truthy(merge)) {
      if (!isDict(merge)) throw new Error('grains.filter_by: filter_by merge argument must be a dictionary.');
      ret = ret === undefined ? merge : dictUpdate(structuredClone(ret as Data), structuredClone(merge), true, false);
    }
    return ret === undefined ? null : ret;
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

/** salt namespaces made in this process (tests: a run that never reaches one makes none) */
export const saltStats = { namespaces: 0 };

/**
 * `tree`: the run's state tree, for cp.get_file_str (absent: that function refuses). `onCall`:
 * told each function's name as it is called (the master's pillar cache watches for impure ones).
 */
export function saltFunctions(grains: Data, pillar: Data, opts: Data, tree?: TreeSource, onCall?: (name: string) => void): Record<string, (...a: unknown[]) => unknown> {
  saltStats.namespaces++;
  // built when a template first reaches the namespace: most no-op runs' templates never do, and
  // its ~130 functions were a tenth of what an agent's run spent before compiling
  return saltNamespace(() => saltTable(grains, pillar, opts, tree, onCall));
}

function saltTable(grains: Data, pillar: Data, opts: Data, tree?: TreeSource, onCall?: (name: string) => void): Record<string, (...a: unknown[]) => unknown> {
  const pget = getter('pillar.get', () => pillar, true, logWarn);
  const gget = getter('grains.get', () => grains, false, logWarn);
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
      // salt/modules/config.py get(key, default='', delimiter=':', merge=None, omit_opts=False, ...)
      const { a } = bind('config.get', raw, ['key', 'default', 'delimiter', 'merge', 'omit_opts', 'omit_pillar', 'omit_master', 'omit_grains'], { loose: true });
      const key = String(a.key);
      const delim = String(a.delimiter ?? ':');
      const sources = [a.omit_opts ? undefined : opts, a.omit_grains ? undefined : grains, a.omit_pillar ? undefined : pillar];
      for (const src of sources) {
        if (!src) continue;
        const v = traverse(src, key, delim);
        if (v !== MISSING) return v;
      }
      return 'default' in a ? a.default : '';
    },
    'config.option': (...raw: unknown[]) => {
      const [args] = kwOf(raw);
      const v = traverse(opts, String(args[0]));
      return v === MISSING ? (args[1] ?? '') : v;
    },
    ...logFunctions(),
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
  if (onCall) for (const [name, fn] of Object.entries(fns)) fns[name] = (...a: unknown[]) => (onCall(name), fn(...a));
  return fns;
}

/** Salt's log module (salt/modules/log.py): each level logs the message and returns None. */
function logFunctions(): Record<string, (...a: unknown[]) => unknown> {
  const out: Record<string, (...a: unknown[]) => unknown> = {};
  const levels: [string, (m: string) => void][] = [
    ['trace', templateLog.debug],
    ['debug', templateLog.debug],
    ['info', templateLog.info],
    ['warning', templateLog.warn],
    ['error', templateLog.error],
    ['critical', templateLog.error],
    ['exception', templateLog.error],
  ];
  for (const [level, write] of levels) {
    out[`log.${level}`] = (...raw: unknown[]) => {
      const { a, rest } = bind(`log.${level}`, raw, ['message'], { varargs: true, loose: true });
      // the message is a %-format string with the extra arguments, as Python's logging takes it
      const msg = String(a.message ?? '');
      let text = msg;
      if (rest.length) {
        try {
          text = percentFormat(msg, tuple(rest));
        } catch {
          text = `${msg} ${rest.map((x) => pyOutput(x)).join(' ')}`;
        }
      }
      write(`template: ${text}`);
      return null;
    };
  }
  return out;
}

/** Where templates' log.* calls and pillar.get merge warnings go (the process log, stderr by default). */
export const templateLog = {
  debug: (m: string) => logSink('debug', m),
  info: (m: string) => logSink('info', m),
  warn: (m: string) => logSink('warn', m),
  error: (m: string) => logSink('error', m),
};

let logSink: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void = (level, msg) => {
  if (level === 'warn' || level === 'error') process.stderr.write(`tsalt ${level}: ${msg}\n`);
};

/** Route template log messages to a process's logger (agent, master, CLI). */
export function setTemplateLogSink(sink: (level: 'debug' | 'info' | 'warn' | 'error', msg: string) => void): void {
  logSink = sink;
}

function logWarn(msg: string): void {
  templateLog.error(msg);
}

/**
 * The `salt` object templates see: `salt['mod.fn']`, and `salt.mod.fn` as Salt's loader allows.
 * Each function is a sandbox helper; nothing else of the object is reachable from a template.
 */
function saltNamespace(build: () => Record<string, (...a: unknown[]) => unknown>): Record<string, (...a: unknown[]) => unknown> {
  let table: Record<string, (...a: unknown[]) => unknown> | undefined;
  const raw = () => (table ??= build());
  const own = (key: PropertyKey): key is string => typeof key === 'string' && Object.prototype.hasOwnProperty.call(raw(), key);
  // Each function becomes a sandbox helper when first reached, not all of them at every run's
  // start (a WeakSet entry each: most of a no-op state run's setup when an agent process runs
  // hundreds of agents). The same wrapper every time it is reached.
  const wrapped = new Map<string, (...a: unknown[]) => unknown>();
  const fn = (key: string) => {
    let w = wrapped.get(key);
    if (!w) {
      const f = raw()[key]!;
      // salt functions take plain data: integral Python floats (PyFloat) become numbers again
      w = helper((...a: unknown[]) => f(...a.map(plainData)));
      wrapped.set(key, w);
    }
    return w;
  };
  // whatever reads the object (a template through the resolver below, engine code by property,
  // Object.entries) sees the wrapped functions only
  // (the target stays empty: every trap answers from the table, built on first use; its
  // properties are configurable, as a proxy may report for keys its target lacks)
  const fns = new Proxy({} as Record<string, (...a: unknown[]) => unknown>, {
    get: (_t, key) => (own(key) ? fn(key) : Reflect.get(raw(), key)),
    has: (_t, key) => Reflect.has(raw(), key),
    ownKeys: () => Reflect.ownKeys(raw()),
    getOwnPropertyDescriptor: (_t, key) => {
      const d = Reflect.getOwnPropertyDescriptor(raw(), key);
      return d && own(key) ? { ...d, value: fn(key) } : d;
    },
    set: (_t, key, v) => Reflect.set(raw(), key, v),
    defineProperty: (_t, key, d) => Reflect.defineProperty(raw(), key, d),
    deleteProperty: (_t, key) => Reflect.deleteProperty(raw(), key),
  });
  const modules = new Map<string, object>();
  const moduleOf = (mod: string) => {
    let m = modules.get(mod);
    if (!m) {
      m = helperObject({}, (name) => (own(`${mod}.${name}`) ? fn(`${mod}.${name}`) : undefined));
      modules.set(mod, m);
    }
    return m;
  };
  return helperObject(fns, (key) => {
    if (own(key)) return fn(key);
    if (/^\w+$/.test(key) && Object.keys(raw()).some((k) => k.startsWith(`${key}.`))) return moduleOf(key);
    return undefined;
  });
}
