/**
 * Salt's matchers, shared by top.sls (state and pillar) and the master's targeting:
 * glob, pcre, list, grain, grain_pcre, pillar, pillar_pcre, ipcidr, compound, nodegroup.
 */
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

export interface Minion {
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

function pcre(expr: string): RegExp {
  try {
    // Salt uses re.match: anchored at the start only
    return new RegExp(`^(?:${expr})`);
  } catch (e) {
    throw new MatchError(`bad regular expression ${JSON.stringify(expr)}: ${(e as Error).message}`);
  }
}

/** `roles:web`, `os:Cent*`, `a:b:c` -> does the data at path match the last part? Lists match any element. */
function dataMatch(data: Record<string, unknown> | undefined, expr: string, regex: boolean, delimiter = ':'): boolean {
  const idx = expr.lastIndexOf(delimiter);
  if (idx <= 0) throw new MatchError(`expected key${delimiter}value, got ${JSON.stringify(expr)}`);
  // `a:b:c` may mean path a:b value c, or path a value b:c; Salt tries the longest path first
  const parts = expr.split(delimiter);
  for (let cut = parts.length - 1; cut >= 1; cut--) {
    const key = parts.slice(0, cut).join(delimiter);
    const want = parts.slice(cut).join(delimiter);
    const v = traverse(data ?? {}, key, delimiter);
    if (typeof v === 'symbol') continue;
    const test = (x: unknown): boolean => {
      if (x === null || x === undefined) return false;
      if (typeof x === 'object' && !Array.isArray(x)) return Object.prototype.hasOwnProperty.call(x, want);
      const s = typeof x === 'boolean' ? (x ? 'True' : 'False') : String(x);
      // Salt's subdict_match lowercases both sides of a glob: `G@os:rocky` matches `Rocky`
      return regex ? pcre(want).test(s) : globMatch(want.toLowerCase(), s.toLowerCase());
    };
    if (Array.isArray(v) ? v.some(test) : test(v)) return true;
  }
  return false;
}

function ipToInt(ip: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(ip);
  if (!m) return undefined;
  return m.slice(1).reduce((a, o) => a * 256 + Number(o), 0);
}

function cidrMatch(cidr: string, minion: Minion): boolean {
  const [net, bitsStr] = cidr.split('/');
  const bits = bitsStr === undefined ? 32 : Number(bitsStr);
  const n = ipToInt(net ?? '');
  if (n === undefined || !(bits >= 0 && bits <= 32)) throw new MatchError(`bad CIDR ${JSON.stringify(cidr)}`);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  const ips = minion.grains.ipv4;
  return (Array.isArray(ips) ? ips : []).some((ip) => {
    const v = ipToInt(String(ip));
    return v !== undefined && ((v & mask) >>> 0) === ((n & mask) >>> 0);
  });
}

export function matchTarget(
  expr: string | readonly string[],
  kind: MatchKind,
  minion: Minion,
  nodegroups: Record<string, string | string[]> = {},
  depth = 0,
): boolean {
  if (Array.isArray(expr)) {
    if (kind === 'list') return expr.map(String).includes(minion.id);
    return expr.some((e) => matchTarget(e, kind, minion, nodegroups, depth));
  }
  const e = String(expr);
  switch (kind) {
    case 'glob':
      return globMatch(e, minion.id);
    case 'pcre':
      return pcre(e).test(minion.id);
    case 'list':
      return e.split(',').map((s) => s.trim()).includes(minion.id);
    case 'grain':
      return dataMatch(minion.grains, e, false);
    case 'grain_pcre':
      return dataMatch(minion.grains, e, true);
    case 'pillar':
      return dataMatch(minion.pillar, e, false);
    case 'pillar_pcre':
      return dataMatch(minion.pillar, e, true);
    case 'ipcidr':
      return cidrMatch(e, minion);
    case 'nodegroup': {
      if (depth > 10) throw new MatchError(`nodegroup ${e}: nested too deep (a loop?)`);
      const g = nodegroups[e];
      if (g === undefined) throw new MatchError(`unknown nodegroup '${e}'`);
      return Array.isArray(g) ? g.includes(minion.id) : compound(g, minion, nodegroups, depth + 1);
    }
    case 'compound':
      return compound(e, minion, nodegroups, depth);
  }
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
function compound(expr: string, minion: Minion, nodegroups: Record<string, string | string[]>, depth: number): boolean {
  const tokens = expr.replace(/\(/g, ' ( ').replace(/\)/g, ' ) ').split(/\s+/).filter(Boolean);
  let pos = 0;
  const peek = () => tokens[pos];
  const parseOr = (): boolean => {
    let v = parseAnd();
    while (peek() === 'or') {
      pos++;
      const r = parseAnd();
      v = v || r;
    }
    return v;
  };
  const parseAnd = (): boolean => {
    let v = parseNot();
    while (peek() === 'and') {
      pos++;
      const r = parseNot();
      v = v && r;
    }
    return v;
  };
  const parseNot = (): boolean => {
    if (peek() === 'not') {
      pos++;
      return !parseNot();
    }
    return parseAtom();
  };
  const parseAtom = (): boolean => {
    const t = tokens[pos++];
    if (t === undefined) throw new MatchError(`compound target ${JSON.stringify(expr)} ends too early`);
    if (t === '(') {
      const v = parseOr();
      if (tokens[pos++] !== ')') throw new MatchError(`compound target ${JSON.stringify(expr)}: missing ')'`);
      return v;
    }
    if (t === ')' || t === 'and' || t === 'or') throw new MatchError(`compound target ${JSON.stringify(expr)}: unexpected '${t}'`);
    const m = /^([A-Z])@(.*)$/.exec(t);
    if (m) {
      const kind = PREFIX[m[1]!];
      if (!kind) throw new MatchError(`compound target: unsupported matcher '${m[1]}@'`);
      return matchTarget(m[2]!, kind, minion, nodegroups, depth);
    }
    return globMatch(t, minion.id);
  };
  const v = parseOr();
  if (pos !== tokens.length) throw new MatchError(`compound target ${JSON.stringify(expr)}: unexpected '${tokens[pos]}'`);
  return v;
}
