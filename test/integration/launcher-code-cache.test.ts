/**
 * bin/tsalt.js keeps a V8 code cache per kind of run: a cache holds only the functions the run
 * that wrote it compiled, so with one file the first writer decided for every later run (a
 * stopping master's cache made `tsalt local apply` compile the engine lazily, W54 154 -> 219 ms).
 */
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, REPO } from './fleet-harness.js';

const dir = path.join(REPO, 'dist/bundle');
const cache = (kind: string) => path.join(dir, `tsalt.cjs.${kind}.v8cache`);
const tsalt = (...args: string[]) => execFileSync(process.execPath, [path.join(REPO, 'bin/tsalt.js'), ...args], { encoding: 'utf8' });

describe('launcher: a code cache per kind of run', () => {
  beforeAll(() => buildOnce());

  it('a run writes the cache of its kind and leaves another kind\'s alone; a later run of that kind keeps it', () => {
    for (const k of ['cli', 'help']) fs.rmSync(cache(k), { force: true });
    expect(tsalt('--version')).toMatch(/^tsalt \d/);
    expect(fs.existsSync(cache('cli'))).toBe(true);
    expect(fs.existsSync(cache('help'))).toBe(false);
    const cli = fs.readFileSync(cache('cli'));
    tsalt('help');
    expect(fs.existsSync(cache('help'))).toBe(true);
    // the other kind's run did not replace it
    expect(fs.readFileSync(cache('cli')).equals(cli)).toBe(true);
    // accepted by the next run of its kind: not written again
    const mtime = fs.statSync(cache('cli')).mtimeMs;
    tsalt('--version');
    expect(fs.statSync(cache('cli')).mtimeMs).toBe(mtime);
  });
});
