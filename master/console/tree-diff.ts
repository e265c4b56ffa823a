/**
 * What moving the fleet from one revision to another changes in the state tree: files added,
 * removed or changed, each with a unified diff. Only the states bundle is compared, never the
 * pillar (its values are not shown in the console).
 */
import type { BundleEntry } from '../../engine/tree/bundle.js';
import { contentDiff } from '../../engine/states/file/diff.js';

export interface FileChange {
  path: string;
  change: 'added' | 'removed' | 'changed';
  /** unified diff, or Salt's wording for binary files; '' when only the mode changed */
  diff: string;
  /** the executable bit, when it changed */
  executable?: { from: boolean; to: boolean };
}

const EMPTY = Buffer.alloc(0);

export function treeChanges(from: readonly BundleEntry[], to: readonly BundleEntry[]): FileChange[] {
  const before = new Map(from.map((e) => [e.path, e]));
  const after = new Map(to.map((e) => [e.path, e]));
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  const out: FileChange[] = [];
  for (const p of paths) {
    const a = before.get(p);
    const b = after.get(p);
    if (!a) out.push({ path: p, change: 'added', diff: contentDiff(EMPTY, b!.data) });
    else if (!b) out.push({ path: p, change: 'removed', diff: contentDiff(a.data, EMPTY) });
    else if (!a.data.equals(b.data) || a.executable !== b.executable) {
      out.push({
        path: p,
        change: 'changed',
        diff: a.data.equals(b.data) ? '' : contentDiff(a.data, b.data),
        ...(a.executable !== b.executable ? { executable: { from: a.executable, to: b.executable } } : {}),
      });
    }
  }
  return out;
}
