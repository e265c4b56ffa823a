/**
 * Print values the way Salt's Jinja does: Python's repr for dicts and lists (a YAML flow
 * collection that YAML reads back), True/False/None for booleans and null. Trees rely on
 * `backends: {{ pillar['web_servers'] }}` producing a list.
 */
export function pyRepr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  if (typeof v === 'string') return pyStr(v);
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (v instanceof Date) return pyStr(v.toISOString());
  if (typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyStr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  }
  return pyStr(String(v));
}

function pyStr(s: string): string {
  // Python prefers single quotes; a string holding ' but no " is double-quoted. Either way the
  // result must stay valid YAML, so anything with control characters or both quote kinds goes
  // out as a JSON (= YAML double-quoted) string.
  if (/[\u0000-\u001f\\]/.test(s) || (s.includes("'") && s.includes('"'))) return JSON.stringify(s);
  if (s.includes("'")) return `"${s}"`;
  return `'${s}'`;
}

/** What `{{ value }}` prints: strings as-is, everything else like Python's str(). */
export function pyOutput(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v === null) return 'None';
  return pyRepr(v);
}
