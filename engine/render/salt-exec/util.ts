/**
 * Pure helpers formulas call from templates: defaults.merge/deepcopy and slsutil.merge
 * (salt/utils/dictupdate.py), hashutil.* and random.get_str.
 */
import crypto from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { bind, flag, isDict, str, type Data, type SaltFns } from './args.js';

/** Keys that would reach an object's prototype through `target[k]`: never merged. */
const UNSAFE_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Salt's dictupdate.update: recursive dict update; lists extended (no duplicates) with mergeLists. */
export function dictUpdate(dest: Data, upd: Data, recursive: boolean, mergeLists: boolean): Data {
  for (const [k, v] of Object.entries(upd)) {
    if (UNSAFE_KEYS.has(k)) continue;
    const d = dest[k];
    if (recursive && isDict(d) && isDict(v)) dest[k] = dictUpdate(d, v, true, mergeLists);
    else if (recursive && mergeLists && Array.isArray(d) && Array.isArray(v)) {
      const merged = structuredClone(d) as unknown[];
      for (const x of v) if (!merged.some((m) => isDeepStrictEqual(m, x))) merged.push(x);
      dest[k] = merged;
    } else dest[k] = v;
  }
  return dest;
}

function dictArg(fn: string, a: Data, name: string): Data {
  const v = a[name];
  if (!isDict(v)) throw new Error(`${fn}: '${name}' must be a dict`);
  return v;
}

/** Salt's dictupdate.merge strategies. */
function slsutilMerge(a: Data, b: Data, strategy: string, renderer: string, mergeLists: boolean): Data {
  let s = strategy;
  if (s === 'smart') s = renderer.split('|').pop() === 'yamlex' || renderer.startsWith('yamlex_') ? 'aggregate' : 'recurse';
  switch (s) {
    case 'list': {
      // Salt's merge_list: keys of obj_a only; a key in both becomes [a, b]
      const out: Data = {};
      for (const [k, v] of Object.entries(a)) if (!UNSAFE_KEYS.has(k)) out[k] = Object.prototype.hasOwnProperty.call(b, k) ? [v, b[k]] : v;
      return out;
    }
    case 'overwrite': {
      // top-level keys of obj_b replace obj_a's whole values, then a recursive merge
      const copy = structuredClone(a);
      for (const k of Object.keys(b)) if (!UNSAFE_KEYS.has(k) && k in copy) copy[k] = structuredClone(b[k]);
      return dictUpdate(copy, b, true, mergeLists);
    }
    case 'none':
      return dictUpdate(structuredClone(a), b, true, false);
    default:
      // 'recurse'; 'aggregate' without yamlex markers merges the same way
      return dictUpdate(structuredClone(a), b, true, mergeLists);
  }
}

const DIGESTS: Record<string, string> = { md5: 'md5', sha256: 'sha256', sha512: 'sha512' };

function digest(fn: string, alg: string, raw: unknown[]): string {
  const instr = str(fn, bind(fn, raw, ['instr']).a, 'instr');
  return crypto.createHash(alg).update(instr, 'utf8').digest('hex');
}

function b64decode(fn: string, raw: unknown[]): string {
  const instr = str(fn, bind(fn, raw, ['instr']).a, 'instr');
  const clean = instr.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 !== 0) throw new Error(`${fn}: invalid base64 input`);
  return Buffer.from(clean, 'base64').toString('utf8');
}

/** Unbiased crypto-random picks from `pool`. */
export function randomString(length: number, pool: string): string {
  const chars = [...pool];
  let out = '';
  for (let i = 0; i < length; i++) out += chars[crypto.randomInt(chars.length)];
  return out;
}

const LOWER = 'abcdefghijklmnopqrstuvwxyz';
const UPPER = LOWER.toUpperCase();
const DIGITS = '0123456789';
const PUNCT = '!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'; // Python's string.punctuation
const WHITESPACE = ' \t\n\r\x0b\x0c';
const PRINTABLE = DIGITS + LOWER + UPPER + PUNCT + WHITESPACE;

export function utilFunctions(): SaltFns {
  return {
    'defaults.merge': (...raw) => {
      const fn = 'defaults.merge';
      const { a } = bind(fn, raw, ['dest', 'src', 'merge_lists', 'in_place', 'upd', 'recursive']);
      if (a.src === undefined && a.upd !== undefined) a.src = a.upd; // older Salt's name
      const dest = dictArg(fn, a, 'dest');
      const src = dictArg(fn, a, 'src');
      const target = flag(a.in_place, true) ? dest : structuredClone(dest);
      return dictUpdate(target, src, flag(a.recursive, true), flag(a.merge_lists, false));
    },
    'defaults.deepcopy': (...raw) => structuredClone(bind('defaults.deepcopy', raw, ['source']).a.source),
    'defaults.update': (...raw) => {
      const fn = 'defaults.update';
      const { a } = bind(fn, raw, ['dest', 'defaults', 'merge_lists', 'in_place']);
      // Salt: the defaults are the base, dest's own values win
      const dest = dictArg(fn, a, 'dest');
      const merged = dictUpdate(structuredClone(dictArg(fn, a, 'defaults')), structuredClone(dest), true, flag(a.merge_lists, true));
      if (!flag(a.in_place, true)) return merged;
      for (const k of Object.keys(dest)) delete dest[k];
      return Object.assign(dest, merged);
    },
    'slsutil.merge': (...raw) => {
      const fn = 'slsutil.merge';
      const { a } = bind(fn, raw, ['obj_a', 'obj_b', 'strategy', 'renderer', 'merge_lists']);
      const strategy = a.strategy === undefined || a.strategy === null ? 'smart' : String(a.strategy);
      if (!['smart', 'recurse', 'aggregate', 'overwrite', 'list', 'none'].includes(strategy)) {
        throw new Error(`${fn}: unknown merging strategy '${strategy}'`);
      }
      const renderer = a.renderer === undefined || a.renderer === null ? 'yaml' : String(a.renderer);
      return slsutilMerge(dictArg(fn, a, 'obj_a'), dictArg(fn, a, 'obj_b'), strategy, renderer, flag(a.merge_lists, false));
    },
    'slsutil.update': (...raw) => {
      const fn = 'slsutil.update';
      const { a } = bind(fn, raw, ['dest', 'upd', 'recursive_update', 'merge_lists']);
      return dictUpdate(dictArg(fn, a, 'dest'), dictArg(fn, a, 'upd'), flag(a.recursive_update, true), flag(a.merge_lists, false));
    },
    'hashutil.digest': (...raw) => {
      const { a } = bind('hashutil.digest', raw, ['instr', 'checksum']);
      const checksum = a.checksum === undefined || a.checksum === null ? 'md5' : String(a.checksum); // Salt's default
      const alg = DIGESTS[checksum];
      if (!alg) throw new Error(`hashutil.digest: hash func '${checksum}' is not supported`);
      return digest('hashutil.digest', alg, [a.instr]);
    },
    'hashutil.md5_digest': (...raw) => digest('hashutil.md5_digest', 'md5', raw),
    'hashutil.sha256_digest': (...raw) => digest('hashutil.sha256_digest', 'sha256', raw),
    'hashutil.sha512_digest': (...raw) => digest('hashutil.sha512_digest', 'sha512', raw),
    'hashutil.base64_b64encode': (...raw) => Buffer.from(str('hashutil.base64_b64encode', bind('hashutil.base64_b64encode', raw, ['instr']).a, 'instr'), 'utf8').toString('base64'),
    'hashutil.base64_b64decode': (...raw) => b64decode('hashutil.base64_b64decode', raw),
    'hashutil.base64_encodestring': (...raw) => {
      // Python's encodebytes: lines of 76 characters, each ending in a newline
      const s = Buffer.from(str('hashutil.base64_encodestring', bind('hashutil.base64_encodestring', raw, ['instr']).a, 'instr'), 'utf8').toString('base64');
      return s === '' ? '' : (s.match(/.{1,76}/g) ?? []).map((l) => l + '\n').join('');
    },
    'hashutil.base64_decodestring': (...raw) => b64decode('hashutil.base64_decodestring', raw),
    'random.get_str': (...raw) => {
      const fn = 'random.get_str';
      const { a } = bind(fn, raw, ['length', 'chars', 'lowercase', 'uppercase', 'digits', 'punctuation', 'whitespace', 'printable']);
      const length = a.length === undefined || a.length === null ? 20 : Number(a.length);
      if (!Number.isInteger(length) || length < 0 || length > 65536) throw new Error(`${fn}: length must be an integer from 0 to 65536`);
      let pool: string;
      if (a.chars !== undefined && a.chars !== null) pool = String(a.chars);
      else if (flag(a.printable, false)) pool = PRINTABLE;
      else {
        pool = '';
        if (flag(a.lowercase, true)) pool += LOWER;
        if (flag(a.uppercase, true)) pool += UPPER;
        if (flag(a.digits, true)) pool += DIGITS;
        if (flag(a.punctuation, true)) pool += PUNCT;
        if (flag(a.whitespace, false)) pool += WHITESPACE;
      }
      if (pool === '') throw new Error(`${fn}: no characters to choose from`);
      return randomString(length, pool);
    },
  };
}
