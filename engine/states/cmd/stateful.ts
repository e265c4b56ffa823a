/**
 * Salt's "stateful" protocol for cmd states (salt/states/cmd.py `_reinterpreted_state`):
 * - empty stdout: no changes (stderr, if any, becomes the comment);
 * - stdout that is JSON must be an object; otherwise its LAST non-empty line is a shlex-quoted
 *   list of key=value pairs;
 * - `changed` (yes/no/true/false/1/0) decides whether there are changes; `comment` becomes the
 *   comment; with changes, the other keys plus pid/retcode/stdout/stderr are the changes, and
 *   stdout loses the state line (JSON output is dropped entirely).
 */
export interface CmdOutput {
  pid: number;
  retcode: number;
  stdout: string;
  stderr: string;
}

export interface Reinterpreted {
  changes: Record<string, unknown>;
  comment: string;
  /** set when the output breaks the protocol: the state fails */
  error?: string;
}

/** POSIX shlex.split as Python does it (comments off). Throws on an unclosed quote. */
export function shlexSplit(s: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inToken = false;
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === "'") {
      const end = s.indexOf("'", i + 1);
      if (end < 0) throw new Error('No closing quotation');
      cur += s.slice(i + 1, end);
      inToken = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      let closed = false;
      while (i < s.length) {
        const d = s[i]!;
        if (d === '"') {
          closed = true;
          i++;
          break;
        }
        if (d === '\\' && i + 1 < s.length && (s[i + 1] === '"' || s[i + 1] === '\\')) {
          cur += s[i + 1];
          i += 2;
          continue;
        }
        cur += d;
        i++;
      }
      if (!closed) throw new Error('No closing quotation');
      inToken = true;
    } else if (c === '\\') {
      if (i + 1 >= s.length) throw new Error('No escaped character');
      cur += s[i + 1];
      inToken = true;
      i += 2;
    } else if (/\s/.test(c)) {
      if (inToken) out.push(cur);
      cur = '';
      inToken = false;
      i++;
    } else {
      cur += c;
      inToken = true;
      i++;
    }
  }
  if (inToken) out.push(cur);
  return out;
}

function isTrue(v: unknown): boolean {
  const s = String(v).toLowerCase();
  if (v && ['true', 'yes', '1'].includes(s)) return true;
  if (['false', 'no', '0'].includes(s)) return false;
  throw new Error(`Failed parsing boolean value: ${String(v)}`);
}

export function reinterpret(out: CmdOutput): Reinterpreted {
  const stdout = out.stdout;
  if (!stdout) return { changes: {}, comment: out.stderr || '' };
  let data: Record<string, unknown>;
  let isJson = false;
  let before = '';
  let parsedJson: unknown;
  let jsonOk = false;
  try {
    parsedJson = JSON.parse(stdout);
    jsonOk = true;
  } catch {
    jsonOk = false;
  }
  if (jsonOk) {
    if (!parsedJson || typeof parsedJson !== 'object' || Array.isArray(parsedJson)) {
      return { changes: {}, comment: '', error: 'script JSON output must be a JSON object (e.g., {})!' };
    }
    data = { ...(parsedJson as Record<string, unknown>) };
    isJson = true;
  } else {
    const trimmed = stdout.trimEnd();
    const idx = trimmed.lastIndexOf('\n');
    const line = idx === -1 ? trimmed : trimmed.slice(idx + 1);
    before = idx === -1 ? '' : stdout.slice(0, idx);
    data = {};
    try {
      for (const item of shlexSplit(line)) {
        const eq = item.indexOf('=');
        if (eq <= 0) throw new Error('not key=value');
        data[item.slice(0, eq)] = item.slice(eq + 1);
      }
    } catch {
      return {
        changes: { ...out },
        comment: '',
        error: 'Failed parsing script output! Stdout must be JSON or a line of name=value pairs.',
      };
    }
  }
  let changed: boolean;
  try {
    changed = isTrue(data.changed ?? 'no');
  } catch (e) {
    return { changes: {}, comment: '', error: (e as Error).message };
  }
  let comment = '';
  if ('comment' in data) {
    comment = String(data.comment);
    delete data.comment;
  }
  if (!changed) return { changes: {}, comment };
  for (const [k, v] of Object.entries(out)) if (!(k in data)) data[k] = v;
  data.stdout = isJson ? '' : before;
  return { changes: data, comment };
}
