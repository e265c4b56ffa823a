/**
 * `tsalt demo`: master + one local agent on a temp dir, the example tree applied under a
 * scratch root, the job history browsable with `tsalt jobs` while the demo runs.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Proc, REPO } from './fleet-harness.js';

describe('tsalt demo', () => {
  let dir: string;
  let demo: Proc;
  beforeAll(() => {
    buildOnce();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-demo-test-'));
  });
  afterAll(async () => {
    await demo?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const tsalt = (args: string[]) =>
    new Promise<{ code: number; stdout: string }>((resolve) => {
      const c = spawn(process.execPath, [path.join(REPO, 'bin/tsalt.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
      let stdout = '';
      c.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      c.on('exit', (code) => resolve({ code: code ?? -1, stdout }));
    });

  it('applies the example tree under a scratch root and keeps the history browsable', async () => {
    demo = new Proc(spawn(process.execPath, [path.join(REPO, 'bin/tsalt.js'), 'demo', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } }));
    await demo.waitOutput(/Ctrl-C stops the demo/, 90_000);
    expect(demo.out).toMatch(/Summary for demo-agent/);
    expect(demo.out).toMatch(/1 targeted, 1 succeeded, 0 failed, 0 did not return/);
    // file states landed under the scratch root, not on the machine
    expect(fs.readFileSync(path.join(dir, 'root/etc/motd'), 'utf8')).toMatch(/demo-agent is managed by tsalt/);
    const sock = path.join(dir, 'master.sock');
    expect(demo.out).toContain(`tsalt jobs --socket ${sock}`);
    const jobs = await tsalt(['jobs', '--socket', sock]);
    expect(jobs.code).toBe(0);
    const jid = /^(\d{20})\s+apply\s+\*/m.exec(jobs.stdout)?.[1];
    expect(jid).toBeDefined();
    const one = await tsalt(['jobs', jid!, '--socket', sock]);
    expect(one.stdout).toMatch(/\[done\] demo-agent:/);
    demo.child.kill('SIGINT');
    expect(await demo.exited).toBe(0);
  });
});
