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

/**
 * `tsalt local` runs from a bundle of the engine alone (dist/bundle/local.cjs, cli/local-main.ts):
 * a masterless run is a new process each time, and reading, decoding and deserialising the whole
 * CLI (master, PostgreSQL, TLS certificates, metrics) was a third of its start.
 */
describe('launcher: tsalt local runs from its own bundle', () => {
  beforeAll(() => buildOnce());
  const sourcesOf = (file: string) => {
    const map = JSON.parse(fs.readFileSync(path.join(dir, `${file}.map`), 'utf8')) as { sources: string[] };
    return map.sources.map((s) => path.relative(REPO, path.resolve(dir, s)));
  };

  it('holds the engine and the command, not the master, the agent, PostgreSQL, websockets, x509 or metrics', () => {
    const sources = sourcesOf('local.cjs');
    // zod-jitless: a one-shot run never repays zod's compiled parsers
    for (const s of ['cli/local-main.ts', 'cli/zod-jitless.ts', 'cli/commands/local.ts', 'engine/engine.ts', 'engine/compile/compile.ts']) expect(sources).toContain(s);
    const foreign = sources.filter((s) => /^(master|agent)\/|^cli\/commands\/(?!local\.ts)|node_modules\/(pg|ws|prom-client|node-cron|@peculiar|systeminformation)\//.test(s));
    expect(foreign).toEqual([]);
    // the CLI bundle it leaves out is still several times its size
    expect(fs.statSync(path.join(dir, 'tsalt.cjs')).size).toBeGreaterThan(2 * fs.statSync(path.join(dir, 'local.cjs')).size);
  });

  it("holds none of zod's classic API, nor does the job worker's bundle: the engine's schemas are zod/mini ones", () => {
    // a classic schema's class installs its methods at its first instance: ~4 ms and 190 page
    // faults at the first state schema of every `tsalt local` run (and of every job worker)
    for (const file of ['local.cjs', 'job-worker.cjs']) {
      const sources = sourcesOf(file);
      expect(sources).toContain('engine/states/define.ts');
      expect(sources.filter((s) => /node_modules\/zod\/(index\.js|(v4\/)?classic\/)/.test(s)), file).toEqual([]);
    }
  });

  it("zod/mini loads no messages: the engine's argument errors are English without classic zod or the launcher's setting", () => {
    // a fresh process that builds no classic schema, as the job worker (no cli/zod-jitless.ts)
    const script =
      `const { validateArgs } = await import(${JSON.stringify(path.join(REPO, 'dist/engine/states/define.js'))});` +
      `const file = (await import(${JSON.stringify(path.join(REPO, 'dist/engine/states/file.js'))})).default;` +
      "try { validateArgs(file.managed, { name: 3, mode: 'x' }); } catch (e) { console.log(e.message); }";
    expect(execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' }).trim()).toBe(
      "argument 'name': Invalid input: expected string, received number; argument 'mode': mode must be octal digits like '0644', got \"x\"",
    );
  });

  it('tsalt local apply and show run from it (its code cache is the one written), with the usual answers', () => {
    const tmp = fs.mkdtempSync(path.join(REPO, '.tmp-local-bundle-'));
    try {
      const states = path.join(tmp, 'states');
      fs.mkdirSync(states);
      fs.writeFileSync(path.join(states, 'top.sls'), "base:\n  '*':\n    - one\n");
      fs.writeFileSync(path.join(states, 'one.sls'), 'one:\n  file.managed:\n    - name: /one.txt\n    - contents: hello\n    - makedirs: True\n');
      const local = path.join(dir, 'local.cjs.local-apply.v8cache');
      const full = path.join(dir, 'tsalt.cjs.local-apply.v8cache');
      for (const f of [local, full]) fs.rmSync(f, { force: true });
      const args = ['--states', states, '--pillar', path.join(tmp, 'none'), '--id', 'l1', '--root', path.join(tmp, 'root'), '--no-color'];
      expect(tsalt('local', 'apply', ...args)).toMatch(/Succeeded: 1 \(changed=1\)/);
      expect(fs.readFileSync(path.join(tmp, 'root/one.txt'), 'utf8')).toBe('hello\n');
      expect(fs.existsSync(local)).toBe(true);
      expect(fs.existsSync(full)).toBe(false);
      expect(tsalt('local', 'apply', ...args)).toMatch(/Succeeded: 1 \(changed=0\)/);
      expect(tsalt('local', 'show', ...args)).toMatch(/function: file\.managed/);
      // a bad command line: the command's usage, exit 1, as from the CLI bundle
      let err: { status?: number; stderr?: string } = {};
      try {
        tsalt('local', 'bogus', ...args);
      } catch (e) {
        err = e as typeof err;
      }
      expect(err.status).toBe(1);
      expect(String(err.stderr)).toMatch(/^tsalt local: unknown action 'bogus'\nusage: tsalt local apply/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});

/**
 * `tsalt local` keeps V8's young generation at its first size (bin/tsalt.js sets
 * --semi-space-growth-factor=1 at start): a short run that grows it only touches fresh pages.
 * The preload reads the new space's size as the process exits; the same load without the flag
 * grows it to 8 MiB and more.
 */
describe('launcher: tsalt local does not grow the young generation', () => {
  beforeAll(() => buildOnce());

  it('a run that makes tens of MB of garbage ends with a new space of at most 2 MiB, and its code cache is accepted', () => {
    const tmp = fs.mkdtempSync(path.join(REPO, '.tmp-local-semi-'));
    try {
      const states = path.join(tmp, 'states');
      fs.mkdirSync(states);
      fs.writeFileSync(path.join(states, 'top.sls'), "base:\n  '*':\n    - many\n");
      // 400 states rendered, parsed and checked: well past what fits in V8's first semi-space
      fs.writeFileSync(
        path.join(states, 'many.sls'),
        "{% for i in range(400) %}\nf{{ i }}:\n  file.managed:\n    - name: /d/f{{ i }}.txt\n    - contents: {{ ('line %d ' % i) * 20 }}\n    - makedirs: True\n{% endfor %}\n",
      );
      const preload = path.join(tmp, 'new-space.cjs');
      fs.writeFileSync(
        preload,
        "process.on('exit', () => { const s = require('node:v8').getHeapSpaceStatistics().find((x) => x.space_name === 'new_space'); require('node:fs').writeFileSync(process.env.NEW_SPACE_OUT, String(s.space_size)); });\n",
      );
      const out = path.join(tmp, 'new-space.txt');
      const args = ['--states', states, '--pillar', path.join(tmp, 'none'), '--id', 'l1', '--root', path.join(tmp, 'root'), '--no-color', '--terse'];
      const run = () =>
        execFileSync(process.execPath, ['--require', preload, path.join(REPO, 'bin/tsalt.js'), 'local', 'apply', ...args], {
          encoding: 'utf8',
          env: { ...process.env, NEW_SPACE_OUT: out, TMPDIR: tmp },
        });
      expect(run()).toMatch(/Succeeded: 400 \(changed=400\)/);
      const cacheFile = path.join(dir, 'local.cjs.local-apply.v8cache');
      const mtime = fs.statSync(cacheFile).mtimeMs;
      expect(run()).toMatch(/Succeeded: 400 \(changed=0\)/);
      expect(Number(fs.readFileSync(out, 'utf8'))).toBeLessThanOrEqual(2 * 1024 * 1024);
      // the flag is set before the bundle is compiled: the warm run's cache fits, nothing is rewritten
      expect(fs.statSync(cacheFile).mtimeMs).toBe(mtime);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
