/**
 * The suite's /dev/null guard: a state (or a test) that chmods, chowns or replaces /dev/null
 * breaks initdb, shells and half the machine, and once went unnoticed here. Global setup
 * checks it after every project's run, and every host-side test file checks it after its tests
 * (test/dev-null-guard.ts), so the file that did it is the one that fails.
 */
import fs from 'node:fs';

/** What is wrong with `p` as a /dev/null (a 0666 character device 1,3), or undefined. */
export function devNullProblem(p = '/dev/null'): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.lstatSync(p);
  } catch (e) {
    return `${p} is missing (${(e as Error).message})`;
  }
  if (!st.isCharacterDevice()) return `${p} is not a character device any more (mode ${(st.mode >>> 0).toString(8)})`;
  // Linux encodes major 1, minor 3 as (1 << 8) | 3
  if (st.rdev !== ((1 << 8) | 3)) return `${p} is a character device but not 1,3 (rdev ${st.rdev})`;
  const mode = st.mode & 0o7777;
  if (mode !== 0o666) return `${p} has mode ${mode.toString(8).padStart(4, '0')}, not 0666`;
  return undefined;
}

/** Throw, loudly, when /dev/null is damaged; `when` says after what. */
export function assertDevNull(when: string, p = process.env.TSALT_TEST_DEV_NULL || '/dev/null'): void {
  const problem = devNullProblem(p);
  if (problem) {
    throw new Error(`/dev/null guard: ${problem} ${when}. Something (a state, a test) wrote, chmod-ed or replaced it; restore with: rm -f ${p} && mknod -m 0666 ${p} c 1 3`);
  }
}
