/**
 * Tests that spawn `node bin/tsalt.js` need dist/ current. Build once per test run
 * (scripts/test.sh builds already; this covers `npx vitest run <file>` during development).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { assertDevNull } from './helpers/dev-null.js';

/** Returns the teardown: /dev/null must still be a 0666 character device after the run. */
export default function setup(): () => void {
  const teardown = () => assertDevNull('after this vitest run');
  // damaged before we start: say so now, not after a run that then fails for odd reasons
  assertDevNull('before this vitest run');
  const root = path.resolve(import.meta.dirname, '..');
  if (process.env.TSALT_SKIP_BUILD === '1') return teardown;
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    // type errors still emit JS; the build step of scripts/test.sh is where they fail the run
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    if (!/error TS/.test(out)) throw e;
  }
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs')], { cwd: root, stdio: 'pipe' });
  return teardown;
}
