/**
 * `tsalt demo`: master + one local agent on a temp dir, the example tree applied under a
 * scratch root, the job history browsable with `tsalt jobs` while the demo runs.
 */
import { spawn, spawnSync } from 'node:child_process';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Proc, REPO, TEST_STORE } from './fleet-harness.js';

// The demo is the one-command first run on the embedded SQLite store (its master.yaml is the
// demo's own, not the harness's): nothing of it changes with TSALT_TEST_STORE=postgres.
const sqliteOnly = describe.skipIf(TEST_STORE === 'postgres');

sqliteOnly('tsalt demo', () => {
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
    // the demo accepts the key itself: no "key pending, run tsalt keys accept" moments before
    expect(demo.out).not.toMatch(/key pending/);
    expect(demo.out).toMatch(/accepted the key of demo-agent \(preseeded/);
    // the hints run as printed, tsalt on PATH or not (here it is not)
    const hintLine = new RegExp(`^  (.*) jobs --socket ${sock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm').exec(demo.out);
    expect(hintLine, demo.out).not.toBeNull();
    const viaHint = spawnSync('/bin/sh', ['-c', `${hintLine![1]} jobs --socket ${sock}`], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });
    expect(viaHint.status, viaHint.stderr).toBe(0);
    expect(viaHint.stdout).toMatch(/^\d{20}\s+apply\s+\*/m);
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

sqliteOnly('scripts/demo.sh', () => {
  let root: string;
  beforeAll(() => {
    buildOnce();
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-demosh-test-'));
  });
  afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

  const demoSh = () => spawnSync('bash', [path.join(REPO, 'scripts/demo.sh')], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', TSALT_DEMO_ROOT: root, PATH: '/usr/local/bin:/usr/bin:/bin' }, timeout: 300_000 });
  const tmpDemos = () => fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tsalt-demo-') && !n.startsWith('tsalt-demo-test-'));

  it('says what it does, skips a current build, reuses its directory, no key-pending warning', () => {
    const before = tmpDemos();
    const first = demoSh();
    expect(first.status, first.stderr).toBe(0);
    const out = first.stdout + first.stderr;
    expect(out).toMatch(/^== build is current \(dist\/bundle\/tsalt\.cjs\)$/m);
    expect(out).toMatch(/^== 1\. masterless: /m);
    expect(out).toMatch(/^== 2\. master \+ agent: tsalt demo --dir /m);
    expect(out).not.toMatch(/key pending/);
    expect(out).toMatch(/1 targeted, 1 succeeded, 0 failed, 0 did not return/);
    expect(out).toMatch(new RegExp(`Demo files: ${root} \\(reused by the next run; rm -rf ${root} removes them\\)`));
    expect(out).toMatch(/tsalt is not on your PATH: .*'npm link'/s);
    const second = demoSh();
    expect(second.status, second.stderr).toBe(0);
    // the same directory both times, nothing new left in the temp directory
    expect(fs.readdirSync(root).sort()).toEqual(['fleet', 'local']);
    expect(tmpDemos()).toEqual(before);
    // both runs' jobs are in the one history
    const db = new Database(path.join(root, 'fleet/master.db'), { readonly: true });
    try {
      expect((db.prepare('SELECT count(*) AS n FROM jobs').get() as { n: number }).n).toBe(2);
    } finally {
      db.close();
    }
  });
});
