/**
 * Tests that spawn `node bin/tsalt.js` need dist/ current. Build once per test run
 * (scripts/test.sh builds already; this covers `npx vitest run <file>` during development).
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

export default function setup(): void {
  const root = path.resolve(import.meta.dirname, '..');
  if (process.env.TSALT_SKIP_BUILD === '1') return;
  try {
    execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: root, stdio: 'pipe' });
  } catch (e) {
    // type errors still emit JS; the build step of scripts/test.sh is where they fail the run
    const out = String((e as { stdout?: Buffer }).stdout ?? '');
    if (!/error TS/.test(out)) throw e;
  }
  execFileSync(process.execPath, [path.join(root, 'scripts/bundle.mjs')], { cwd: root, stdio: 'pipe' });
}
