/**
 * A SIGKILL mid-write leaves `.name.tsalt-<pid>-<random>` beside the managed file (the old file
 * stays whole: the new one was never renamed over it). The next real run removes such litter;
 * a test run leaves it, and so does every run for a temp file whose writer is still alive.
 */
import fs from 'node:fs';
import path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { writeTree } from '../helpers/tree.js';
import { tempDir } from '../helpers/harness.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/tsalt.js');
const temps = (dir: string) => fs.readdirSync(dir).filter((f) => f.includes('.tsalt-')).sort();

function localApply(tree: string, extra: string[] = []) {
  return spawnSync(process.execPath, [BIN, 'local', 'apply', '--states', tree, '--pillar', '/nonexistent', '--id', 'h1', '--grains-file', '/nonexistent', ...extra], {
    encoding: 'utf8',
  });
}

describe('stale temp files of a killed write', () => {
  it('an agent killed mid-write leaves the old file and a temp file; the next run removes the temp file and converges', async () => {
    const dir = tempDir('tsalt-stale-');
    const target = path.join(dir, 'big.conf');
    fs.writeFileSync(target, 'old\n');
    // big enough that the write is still going when the temp file shows up
    const tree = writeTree({
      'top.sls': "base:\n  '*':\n    - big\n",
      'big.sls': `big:\n  file.managed:\n    - name: ${target}\n    - source: salt://big.conf\n    - show_changes: False\n`,
    });
    fs.writeFileSync(path.join(tree, 'big.conf'), Buffer.alloc(256 * 1024 * 1024, 'x'));
    try {
      const child = spawn(process.execPath, [BIN, 'local', 'apply', '--states', tree, '--pillar', '/nonexistent', '--id', 'h1', '--grains-file', '/nonexistent'], {
        stdio: 'ignore',
      });
      const seen = await new Promise<boolean>((resolve) => {
        const w = fs.watch(dir, () => {
          if (temps(dir).length) {
            child.kill('SIGKILL');
            w.close();
            resolve(true);
          }
        });
        child.on('exit', () => {
          w.close();
          resolve(false);
        });
      });
      await new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r(null) : child.on('exit', r)));
      expect(seen, 'the write finished before the temp file was seen').toBe(true);
      expect(child.signalCode).toBe('SIGKILL');
      expect(fs.readFileSync(target, 'utf8')).toBe('old\n');
      const left = temps(dir);
      expect(left).toHaveLength(1);
      expect(left[0]).toMatch(new RegExp(`^\\.big\\.conf\\.tsalt-${child.pid}-[0-9a-f]{12}$`));

      const test = localApply(tree, ['--test']);
      expect(test.status).toBe(0);
      expect(temps(dir)).toEqual(left); // a test run changes nothing

      const real = localApply(tree);
      expect(real.status, real.stdout + real.stderr).toBe(0);
      expect(temps(dir)).toEqual([]);
      expect(fs.statSync(target).size).toBe(256 * 1024 * 1024);
    } finally {
      fs.rmSync(tree, { recursive: true, force: true });
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a converged file still gets its litter removed; a live writer’s temp file and other files are left alone', () => {
    const dir = tempDir('tsalt-stale-');
    const target = path.join(dir, 'app.conf');
    fs.writeFileSync(target, 'same\n');
    const tree = writeTree({
      'top.sls': "base:\n  '*':\n    - app\n",
      'app.sls': `app:\n  file.managed:\n    - name: ${target}\n    - contents: same\n`,
    });
    // a finished process's pid (dead), a live one (this test process), an older version's name
    const dead = spawnSync('true').pid;
    const live = process.pid;
    const plant = [`.app.conf.tsalt-${dead}-0123456789ab`, `.other.tsalt-${dead}-0123456789ab`, '.app.conf.tsalt-a1b2c3d4e5f6'];
    const keep = [`.app.conf.tsalt-${live}-0123456789ab`, '.app.conf.tsalt-notours', 'app.conf.tsalt-backup'];
    for (const f of [...plant, ...keep]) fs.writeFileSync(path.join(dir, f), 'partial');
    const r = localApply(tree, ['--json']);
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).counts).toMatchObject({ changed: 0, failed: 0 });
    expect(temps(dir)).toEqual(keep.sort());
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(tree, { recursive: true, force: true });
  });
});
