/** Salt-style change descriptions for file content: a unified diff, or a word for binaries. */
import { structuredPatch } from 'diff';

/** Salt's `is_binary`: a NUL byte or bytes that are not UTF-8 mean binary. */
export function isBinary(b: Buffer): boolean {
  const head = b.subarray(0, 8192);
  if (head.includes(0)) return true;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(head.length < b.length ? trimPartialUtf8(head) : head);
    return false;
  } catch {
    return true;
  }
}

/** A cut at 8192 bytes may split a multi-byte character; drop the incomplete tail. */
function trimPartialUtf8(b: Buffer): Buffer {
  let end = b.length;
  for (let i = 1; i <= 3 && end - i >= 0; i++) {
    const c = b[end - i]!;
    if ((c & 0xc0) === 0x80) continue; // continuation byte
    if (c >= 0xc0) end -= i; // lead byte of a sequence that may be incomplete
    break;
  }
  return b.subarray(0, end);
}

/** difflib's range format: `3` for one line, `2,0` for none (the line before). */
function range(start: number, lines: number): string {
  if (lines === 1) return String(start);
  return `${lines === 0 ? start - 1 : start},${lines}`;
}

/** A unified diff with Salt's empty file headers (`--- ` / `+++ `), as `salt.utils.stringutils.get_diff`. */
export function unifiedDiff(oldText: string, newText: string): string {
  const patch = structuredPatch('', '', oldText, newText, '', '', { context: 3 });
  const out = ['--- ', '+++ '];
  for (const h of patch.hunks) {
    out.push(`@@ -${range(h.oldStart, h.oldLines)} +${range(h.newStart, h.newLines)} @@`);
    out.push(...h.lines);
  }
  return out.join('\n') + '\n';
}

/** The `diff` change for replacing `old` with `next`, Salt's wording for binaries. */
export function contentDiff(old: Buffer, next: Buffer): string {
  const ob = isBinary(old);
  const nb = isBinary(next);
  if (ob && nb) return 'Replace binary file';
  if (ob) return 'Replace binary file with text file';
  if (nb) return 'Replace text file with binary file';
  return unifiedDiff(old.toString('utf8'), next.toString('utf8'));
}
