/**
 * Salt's matchers, shared by top.sls (state and pillar) and the master's targeting:
 * glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, ipcidr, compound, nodegroup.
 *
 * A target is compiled once (compileTarget) into a predicate over agents: the whole expression is
 * checked before any agent is looked at, so an error anywhere in it (an unknown nodegroup, a bad
 * regex, an empty pattern) is reported even when short-circuiting would never evaluate that part.
 * An empty pattern is always an error: an empty regex, grain value or list item would otherwise
 * match every agent (or none) silently.
 */
import net from 'node:net';
import { traverse } from '../render/salt-functions.js';

export type MatchKind =
  | 'glob'
  | 'pcre'
  | 'list'
  | 'grain'
  | 'grain_pcre'
  | 'pillar'
  | 'pillar_pcre'
  | 'ipcidr'
  | 'compound'
  | 'nodegroup';

export const MATCH_KINDS: readonly MatchKind[] = ['glob', 'pcre', 'list', 'grain', 'grain_pcre', 'pillar', 'pillar_pcre', 'ipcidr', 'compound', 'nodegroup'];

export interface MatchedAgent {
  id: string;
  grains: Record<string, unknown>;
  pillar?: Record<string, unknown>;
}

export class MatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MatchError';
  }
}

/** fnmatch: `*`, `?`, `[abc]`, `[!abc]`; the whole string must match. */
export function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) {
        re += '\\[';
        continue;
      }
      let body = glob.slice(i + 1, end);
      if (body.startsWith('!')) body = '^' + body.slice(1);
      re += `[${body.replace(/\\/g, '\\\\')}]`;
      i = end;
    } else re += c.replace(/[.+^${}()|\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`, 's');
}

export function globMatch(glob: string, s: string): boolean {
  return globToRegExp(glob).test(s);
}

/** A compiled target: does it name this agent? */
export type TargetPredicate = (minion: MatchedAgent) => boolean;

type Nodegroups = Record<string, string | string[]>;

const blank = (s: string): boolean => s.trim() === '';

/**
 * Does this regex source contain an empty alternative (``, `a|`, `|a`, `a||b`, `(|a)`, `()`)?
 * An empty alternative matches the empty string at the start of every id (Salt's re.match),
 * so the whole target would name every agent. Escapes and character classes are skipped.
 */
export function hasEmptyAlternative(src: string): boolean {
  let len = 0; // items in the current alternative
  const outer: number[] = [];
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      i++;
      len++;
    } else if (c === '[') {
      let j = i + 1;
      if (src[j] === '^') j++;
      if (src[j] === ']') j++;
      while (j < src.length && src[j] !== ']') j += src[j] === '\\' ? 2 : 1;
      i = j;
      len++;
    } else if (c === '(') {
      outer.push(len);
      len = 0;
      // group prefixes are not content: (?: (?= (?! (?<= (?<! (?<name>
      const m = /^\?(?::|=|!|<=|<!|<[A-Za-z_][A-Za-z0-9_]*>)/.exec(src.slice(i + 1));
      if (m) i += m[0].length;
    } else if (c === '|') {
      if (len === 0) return true;
      len = 0;
    } else if (c === ')') {
      if (len === 0) return true;
      len = (outer.pop() ?? 0) + 1;
    } else len++;
  }
  return len === 0;
}

function pcre(expr: string, what = 'regular expression'): RegExp {
  if (blank(expr)) throw new MatchError(`empty ${what} (it would match every agent)`);
  if (hasEmptyAlternative(expr)) throw new MatchError(`${what} ${JSON.stringify(expr)} has an empty alternative (it would match every agent)`);
  try {
    // Salt uses re.match: anchored at the start only
    return new RegExp(`^(?:${expr})`);
  } catch (e) {
    throw new MatchError(`bad ${what} ${JSON.stringify(expr)}: ${(e as Error).message}`);
  }
}

function glob(expr: string): TargetPredicate {
  if (blank(expr)) throw new MatchError('empty glob');
  const re = globToRegExp(expr);
  return (m) => re.test(m.id);
}

function list(items: readonly unknown[], text: string): TargetPredicate {
  const ids = items.map((s) => String(s).trim());
  if (ids.length === 0 || ids.some((s) => s === '')) throw new MatchError(`list ${JSON.stringify(text)} has an empty item`);
  return (m) => ids.includes(m.id);
}

/**
 * `roles:web`, `os:Cent*`, `a:b:c`: does the data at the path match the last part? Lists match
 * any element. `a:b:c` may mean path a:b value c, or path a value b:c; Salt tries the longest
 * path first, so each reading is compiled here and chosen per agent by which path exists.
 */
function dataMatcher(source: 'grains' | 'pillar', expr: string, regex: boolean, delimiter = ':'): TargetPredicate {
  const idx = expr.indexOf(delimiter);
  if (idx < 0 || blank(expr.slice(0, idx))) throw new MatchError(`expected key${delimiter}value, got ${JSON.stringify(expr)}`);
  const last = expr.slice(expr.lastIndexOf(delimiter) + 1);
  if (blank(last)) {
    throw new MatchError(`${source === 'grains' ? 'grain' : 'pillar'} target ${JSON.stringify(expr)} has an empty value pattern`);
  }
  const parts = expr.split(delimiter);
  const readings: { key: string; want: string; test: (s: string) => boolean }[] = [];
  for (let cut = parts.length - 1; cut >= 1; cut--) {
    const key = parts.slice(0, cut).join(delimiter);
    const want = parts.slice(cut).join(delimiter);
    let test: (s: string) => boolean;
    if (regex) {
      try {
        const re = pcre(want, 'value regex');
        test = (s) => re.test(s);
      } catch (e) {
        // the shortest value is the plain reading: its error is the target's error
        if (cut === parts.length - 1) throw e;
        test = () => false;
      }
    } else {
      // Salt's subdict_match lowercases both sides of a glob: `G@os:rocky` matches `Rocky`
      const re = globToRegExp(want.toLowerCase());
      test = (s) => re.test(s.toLowerCase());
    }
    readings.push({ key, want, test });
  }
  return (m) => {
    const data = source === 'grains' ? m.grains : m.pillar;
    for (const { key, want, test } of readings) {
      const v = traverse(data ?? {}, key, delimiter);
      if (typeof v === 'symbol') continue;
      const one = (x: unknown): boolean => {
        if (x === null || x === undefined) return false;
        if (typeof x === 'object' && !Array.isArray(x)) return Object.prototype.hasOwnProperty.call(x, want);
        return test(typeof x === 'boolean' ? (x ? 'True' : 'False') : String(x));
      };
      if (Array.isArray(v) ? v.some(one) : one(v)) return true;
    }
    return false;
  };
}

/** `10.0.0.0/24`, `10.0.0.5`, `2001:db8::/64` (Salt: ipcidr), checked against the ipv4/ipv6 grains. */
function cidrMatcher(expr: string): TargetPredicate {
  const t = expr.trim();
  if (t === '') throw new MatchError('empty CIDR');
  const slash = t.indexOf('/');
  const addr = slash < 0 ? t : t.slice(0, slash);
  const family = net.isIP(addr);
  if (family === 0) throw new MatchError(`bad CIDR ${JSON.stringify(expr)}: ${JSON.stringify(addr)} is not an IP address`);
  const type = family === 4 ? 'ipv4' : 'ipv6';
  const blocks = new net.BlockList();
  if (slash < 0) blocks.addAddress(addr, type);
  else {
    const bits = t.slice(slash + 1);
    const max = family === 4 ? 32 : 128;
    if (bits.trim() === '') throw new MatchError(`bad CIDR ${JSON.stringify(expr)}: empty prefix length`);
    if (!/^\d{1,3}$/.test(bits) || Number(bits) > max) throw new MatchError(`bad CIDR ${JSON.stringify(expr)}: prefix length must be 0 to ${max}`);
    blocks.addSubnet(addr, Number(bits), type);
  }
  return (m) => {
    const ips = m.grains[type];
    return Array.isArray(ips) && ips.some((ip) => net.isIP(String(ip)) === family && blocks.check(String(ip), type));
  };
}

function nodegroup(name: string, nodegroups: Nodegroups, depth: number): TargetPredicate {
  if (blank(name)) throw new MatchError('empty nodegroup name');
  if (depth > 10) throw new MatchError(`nodegroup ${name}: nested too deep (a loop?)`);
  if (!Object.prototype.hasOwnProperty.call(nodegroups, name)) throw new MatchError(`unknown nodegroup '${name}'`);
  const g = nodegroups[name]!;
  try {
    return Array.isArray(g) ? list(g, g.join(',')) : compound(g, nodegroups, depth + 1);
  } catch (e) {
    if (e instanceof MatchError && !e.message.startsWith('nodegroup ')) throw new MatchError(`nodegroup ${name}: ${e.message}`);
    throw e;
  }
}

/** Compile a target once; every part of it is checked here, before any agent is matched. */
export function compileTarget(expr: string | readonly string[], kind: MatchKind, nodegroups: Nodegroups = {}, depth = 0): TargetPredicate {
  if (Array.isArray(expr)) {
    if (kind === 'list') return list(expr, expr.join(','));
    if (expr.length === 0) throw new MatchError('empty list of targets');
    const each = expr.map((e) => compileTarget(String(e), kind, nodegroups, depth));
    return (m) => each.some((p) => p(m));
  }
  const e = String(expr);
  switch (kind) {
    case 'glob':
      return glob(e);
    case 'pcre': {
      const re = pcre(e);
      return (m) => re.test(m.id);
    }
    case 'list':
      return list(e.split(','), e);
    case 'grain':
      return dataMatcher('grains', e, false);
    case 'grain_pcre':
      return dataMatcher('grains', e, true);
    case 'pillar':
      return dataMatcher('pillar', e, false);
    case 'pillar_pcre':
      return dataMatcher('pillar', e, true);
    case 'ipcidr':
      return cidrMatcher(e);
    case 'nodegroup':
      return nodegroup(e, nodegroups, depth);
    case 'compound':
      return compound(e, nodegroups, depth);
  }
}

export function matchTarget(
  expr: string | readonly string[],
  kind: MatchKind,
  minion: MatchedAgent,
  nodegroups: Nodegroups = {},
  depth = 0,
): boolean {
  return compileTarget(expr, kind, nodegroups, depth)(minion);
}

const PREFIX: Record<string, MatchKind> = {
  G: 'grain',
  P: 'grain_pcre',
  I: 'pillar',
  J: 'pillar_pcre',
  L: 'list',
  E: 'pcre',
  S: 'ipcidr',
  N: 'nodegroup',
};

/** `G@roles:web and not L@web2,web3 or ( I@tier:db and db* )` with not > and > or. */
function compound(expr: string, nodegroups: Nodegroups, depth: number): TargetPredicate {
  const tokens = expr.replace(/\(/g, ' ( ').replace(/\)/g, ' ) ').split(/\s+/).filter(Boolean);
  if (tokens.length === 0) throw new MatchError('empty compound target');
  let pos = 0;
  const peek = () => tokens[pos];
  const parseOr = (): TargetPredicate => {
    const alts = [parseAnd()];
    while (peek() === 'or') {
      pos++;
      alts.push(parseAnd());
    }
    return alts.length === 1 ? alts[0]! : (m) => alts.some((p) => p(m));
  };
  const parseAnd = (): TargetPredicate => {
    const all = [parseNot()];
    while (peek() === 'and') {
      pos++;
      all.push(parseNot());
    }
    return all.length === 1 ? all[0]! : (m) => all.every((p) => p(m));
  };
  const parseNot = (): TargetPredicate => {
    if (peek() === 'not') {
      pos++;
      const p = parseNot();
      return (m) => !p(m);
    }
    return parseAtom();
  };
  const parseAtom = (): TargetPredicate => {
    const t = tokens[pos++];
    if (t === undefined) throw new MatchError(`compound target ${JSON.stringify(expr)} ends too early`);
    if (t === '(') {
      const v = parseOr();
      if (tokens[pos++] !== ')') throw new MatchError(`compound target ${JSON.stringify(expr)}: missing ')'`);
      return v;
    }
    if (t === ')' || t === 'and' || t === 'or') throw new MatchError(`compound target ${JSON.stringify(expr)}: unexpected '${t}'`);
    const m = /^([A-Z])@(.*)$/s.exec(t);
    if (m) {
      const kind = PREFIX[m[1]!];
      if (!kind) throw new MatchError(`compound target: unsupported matcher '${m[1]}@'`);
      try {
        return compileTarget(m[2]!, kind, nodegroups, depth);
      } catch (e) {
        if (e instanceof MatchError) throw new MatchError(`compound target ${JSON.stringify(expr)}, part '${t}': ${e.message}`);
        throw e;
      }
    }
    return glob(t);
  };
  const v = parseOr();
  if (pos !== tokens.length) throw new MatchError(`compound target ${JSON.stringify(expr)}: unexpected '${tokens[pos]}'`);
  return v;
}
