/**
 * Text from agents (grains, state ids and comments, command output) reaches the operator's
 * terminal through the CLI's human output. Control characters in it could retitle the window,
 * clear the screen, move the cursor over earlier lines or hide text (ESC sequences, CR, C1
 * CSI, bidi overrides), so human output shows them as visible escapes. JSON output keeps the
 * data as it is (JSON.stringify escapes control characters itself). This is the one place that
 * escaping lives: every human output path calls escapeControl (a string) or forTerminal (a value).
 */

// C0 controls except tab and newline, DEL, C1 controls, and the bidi embedding/override/isolate
// characters that reorder what the terminal shows (CVE-2021-42574, "Trojan Source")
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

const hex = (c: string, width: number) => c.charCodeAt(0).toString(16).padStart(width, '0');

/** `\x1b]0;title\x07` -> the visible text `\x1b]0;title\x07`; tabs and newlines stay. */
export function escapeControl(s: string): string {
  return s.replace(UNSAFE, (c) => (c.charCodeAt(0) <= 0xff ? `\\x${hex(c, 2)}` : `\\u${hex(c, 4)}`));
}

/** The same data with every string (keys too) escaped, for human output; other values as they are. */
export function forTerminal<T>(v: T): T {
  if (typeof v === 'string') return escapeControl(v) as T;
  if (Array.isArray(v)) return v.map((x) => forTerminal(x)) as T;
  if (v !== null && typeof v === 'object' && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null)) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [escapeControl(k), forTerminal(x)])) as T;
  }
  return v;
}
