/**
 * Writing a managed file when things go wrong on the agent: the agent SIGKILLed while the new
 * content is being written (the file is the old one or the new one, never a mix; the job is
 * lost; the next run converges), and the disk filling up mid-write (a small real tmpfs: the
 * state fails saying so, the old file stays, no temp file is left).
 */
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from '../integration/fleet-harness.js';

const OLD = 'old content\n';
const big = (seed: string, n: number) => {
  const chunk = crypto.createHash('sha256').update(seed).digest('hex');
  return chunk.repeat(Math.ceil(n / chunk.length)).slice(0, n);
};
const NEW = big('new', 6 * 1024 * 1024);

const managed = (name: string, source: string) => `${name}:\n  file.managed:\n    - name: /out/${name}\n    - source: salt://${source}\n    - makedirs: True\n`;

interface ApplyJson {
  code: number;
  jid: string;
  agents: Record<string, { status: string; body?: { kind: string; report?: { results: { id: string; result: boolean | null; comment: string }[] } } }>;
}

describe('faults: writing a managed file', () => {
  let fleet: Fleet;
  let out: string;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states: {
        'top.sls': "base:\n  '*':\n    - common\n",
        'common.sls': 'hello:\n  test.succeed_without_changes: []\n',
        'data.txt': OLD,
        'big.sls': managed('big.txt', 'data.txt'),
        'full.sls': managed('full/cfg.txt', 'data.txt'),
      },
      master: { heartbeat_s: 30, lost_after_s: 5 },
    });
    await fleet.startMaster();
    fleet.startAgent('w1');
    await fleet.acceptAll(['w1']);
    out = path.join(fleet.dir, 'agents/w1/root/out');
  });
  afterAll(async () => {
    spawnSync('umount', ['-l', path.join(out, 'full')]);
    await fleet?.stop();
  });

  it('SIGKILL while the new content is written: old or new file, never partial; the next run converges', async () => {
    expect((await fleet.json<ApplyJson>(['apply', 'w1', 'big'])).code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'big.txt'), 'utf8')).toBe(OLD);
    fleet.writeTree('states', { 'data.txt': NEW });
    fleet.commit('big new content');
    // kill the agent the moment its temp file appears beside the target (inotify)
    const agent = fleet.agents[0]!;
    let killedAt = '';
    const watcher = fs.watch(out, (_ev, name) => {
      if (!killedAt && name && String(name).startsWith('.big.txt.tsalt-')) {
        // the writer is the agent's job worker (its child process): both die, as in a crash
        const kids = fs.readFileSync(`/proc/${agent.child.pid}/task/${agent.child.pid}/children`, 'utf8').split(/\s+/).filter(Boolean);
        for (const k of kids) process.kill(Number(k), 'SIGKILL');
        agent.child.kill('SIGKILL');
        killedAt = String(name);
      }
    });
    const run = fleet.json<ApplyJson>(['apply', 'w1', 'big', '--timeout', '60']);
    await agent.exited;
    watcher.close();
    expect(killedAt).toMatch(/^\.big\.txt\.tsalt-/);
    const now = fs.readFileSync(path.join(out, 'big.txt'), 'utf8');
    expect(now === OLD || now === NEW).toBe(true);
    const r = await run;
    expect(r.agents.w1!.status).toBe('lost');
    // back up: the next run converges to the new content
    fleet.agents.length = 0;
    fleet.startAgents([path.join(fleet.dir, 'agents/w1/agent.yaml')]);
    await fleet.waitConnected(['w1']);
    const again = await fleet.json<ApplyJson>(['apply', 'w1', 'big']);
    expect(again.code).toBe(0);
    expect(fs.readFileSync(path.join(out, 'big.txt'), 'utf8')).toBe(NEW);
  });

  it('disk full mid-write: the state fails saying so, the old file stays, no temp file is left', async () => {
    fleet.writeTree('states', { 'data.txt': OLD });
    fleet.commit('small again');
    const dir = path.join(out, 'full');
    fs.mkdirSync(dir, { recursive: true });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', dir], { encoding: 'utf8' });
    expect(m.status, m.stderr).toBe(0);
    expect((await fleet.json<ApplyJson>(['apply', 'w1', 'full'])).code).toBe(0);
    fleet.writeTree('states', { 'data.txt': NEW });
    fleet.commit('too big for the disk');
    const r = await fleet.json<ApplyJson>(['apply', 'w1', 'full']);
    expect(r.code).not.toBe(0);
    const res = r.agents.w1!.body!.report!.results[0]!;
    expect(res.result).toBe(false);
    expect(res.comment).toMatch(/no space left on device|ENOSPC/i);
    expect(fs.readFileSync(path.join(dir, 'cfg.txt'), 'utf8')).toBe(OLD);
    expect(fs.readdirSync(dir)).toEqual(['cfg.txt']);
    // the agent carries on: room again, the next run converges
    spawnSync('mount', ['-o', 'remount,size=16m', dir]);
    const again = await fleet.json<ApplyJson>(['apply', 'w1', 'full']);
    expect(again.code).toBe(0);
    expect(fs.readFileSync(path.join(dir, 'cfg.txt'), 'utf8')).toBe(NEW);
    await waitFor('umount', () => (spawnSync('umount', [dir]).status === 0 ? true : undefined));
  });
});
