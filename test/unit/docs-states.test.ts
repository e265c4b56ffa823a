/** docs/states.md is generated from the registry and the schemas; it must not fall behind them. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect, it } from 'vitest';

it('docs/states.md lists every state module, function and argument there is', () => {
  const script = path.resolve(import.meta.dirname, '../../scripts/gen-state-docs.mjs');
  const r = spawnSync(process.execPath, [script, '--check'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});
