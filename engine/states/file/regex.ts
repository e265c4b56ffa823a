/**
 * Salt trees carry Python regular expressions (`file.replace`, `file.line`). Translate the
 * common Python-only syntax to JavaScript and implement `re.sub`'s replacement template, so
 * patterns behave as they did under Salt.
 */
import { StateFailure } from '../define.js';

// Python re flag bits, as Salt's `flags` accepts them (names, lists, or an int)
const FLAG_BITS: Record<string, number> = { TEMPLATE: 1, T: 1, IGNORECASE: 2, I: 2, LOCALE: 4, L: 4, MULTILINE: 8, M: 8, DOTALL: 16, S: 16, UNICODE: 32, U: 32, VERBOSE: 64, X: 64, ASCII: 256, A: 256 };

export function pyFlags(flags: number | string | string[] | undefined, dflt: number): number {
  if (flags === undefined) return dflt;
  if (typeof flags === 'number') return flags;
  let n = 0;
  for (const f of Array.isArray(flags) ? flags : [flags]) {
    const bit = FLAG_BITS[String(f).toUpperCase().replace(/^RE\./, '')];
    if (bit === undefined) throw new StateFailure(`Invalid re flag given: ${f}`);
    n |= bit;
  }
  return n;
}

/** Python pattern + flag bits -> a global JS RegExp. */
export function pyRegex(pattern: string, flagBits = 0): RegExp {
  let bits = flagBits;
  let src = pattern;
  // leading inline flags: (?i), (?ms), ...
  const inline = /^\(\?([aiLmsux]+)\)/.exec(src);
  if (inline) {
    for (const c of inline[1]!) bits |= FLAG_BITS[c.toUpperCase()] ?? 0;
    src = src.slice(inline[0].length);
  }
  if (bits & 64) src = stripVerbose(src);
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      const n = src[i + 1] ?? '';
      if (!inClass && n === 'A') out += '(?<![\\s\\S])';
      else if (!inClass && n === 'Z') out += '(?![\\s\\S])';
      else out += c + n;
      i++;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      out += c;
      continue;
    }
    if (c === '[') {
      inClass = true;
      out += c;
      if (src[i + 1] === '^') out += src[++i];
      if (src[i + 1] === ']') out += '\\' + src[++i]; // Python allows a leading literal ]
      continue;
    }
    if (src.startsWith('(?P<', i)) {
      out += '(?<';
      i += 3;
      continue;
    }
    const back = /^\(\?P=(\w+)\)/.exec(src.slice(i));
    if (back) {
      out += `\\k<${back[1]}>`;
      i += back[0].length - 1;
      continue;
    }
    out += c;
  }
  let js = 'g';
  if (bits & 2) js += 'i';
  if (bits & 8) js += 'm';
  if (bits & 16) js += 's';
  try {
    return new RegExp(out, js);
  } catch (e) {
    throw new StateFailure(`Invalid regular expression ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
}

/** re.VERBOSE: whitespace and # comments outside classes and escapes are not part of the pattern. */
function stripVerbose(src: string): string {
  let out = '';
  let inClass = false;
  for (let i = 0; i < src.length; i++) {
    const c = src[i]!;
    if (c === '\\') {
      out += c + (src[i + 1] ?? '');
      i++;
    } else if (inClass) {
      if (c === ']') inClass = false;
      out += c;
    } else if (c === '[') {
      inClass = true;
      out += c;
    } else if (/\s/.test(c)) continue;
    else if (c === '#') {
      while (i < src.length && src[i] !== '\n') i++;
    } else out += c;
  }
  return out;
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', f: '\f', v: '\v', a: '\x07', b: '\b', '\\': '\\' };

/** Expand a Python replacement template (`\1`, `\g<name>`, `\n`) for one match. */
function expand(repl: string, m: RegExpExecArray): string {
  let out = '';
  for (let i = 0; i < repl.length; i++) {
    const c = repl[i]!;
    if (c !== '\\' || i + 1 >= repl.length) {
      out += c;
      continue;
    }
    const rest = repl.slice(i + 1);
    const num = /^\d{1,2}/.exec(rest);
    const named = /^g<(\w+)>/.exec(rest);
    if (num) {
      out += m[Number(num[0])] ?? '';
      i += num[0].length;
    } else if (named) {
      const key = named[1]!;
      out += (/^\d+$/.test(key) ? m[Number(key)] : m.groups?.[key]) ?? '';
      i += named[0].length;
    } else if (ESCAPES[rest[0]!] !== undefined) {
      out += ESCAPES[rest[0]!];
      i++;
    } else {
      out += c; // unknown escapes stay as written (Python keeps them too, for letters it errors)
    }
  }
  return out;
}

/** re.subn: replace up to `count` matches (0 = all); returns the text and the number replaced. */
export function pySubn(re: RegExp, text: string, repl: string, count = 0): [string, number] {
  re.lastIndex = 0;
  let out = '';
  let last = 0;
  let n = 0;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    out += text.slice(last, m.index) + expand(repl, m);
    last = m.index + m[0].length;
    n++;
    if (m[0].length === 0) re.lastIndex++;
    if (count > 0 && n >= count) break;
  }
  return [out + text.slice(last), n];
}

/** Python's re.escape for literal text in a pattern. */
export function pyEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}
