/**
 * The agent's job worker (Salt's minion `multiprocessing`): state runs happen in a child
 * process of the agent, let go job_worker_idle_s after the last job, so an idle agent holds
 * its connection and not the engine. A worker that dies fails its job alone: the agent stays
 * connected and the next job gets a new worker. `multiprocessing: False` runs jobs in the agent.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor, type Proc } from './fleet-harness.js';

const mark = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-worker-')), 'ppid');
const SLEEP = 'sleep 53.75';
// cmd.run's shell writes its parent's pid: the process the state run happened in
const states = {
  'where.sls': `where:\n  cmd.run:\n    - name: 'echo $PPID > ${mark}'\n`,
  'slow.sls': `slow:\n  cmd.run:\n    - name: 'echo $PPID > ${mark}; ${SLEEP}'\n`,
};

const parentOf = (pid: number): number | undefined => {
  try {
    return Number(/^PPid:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
  } catch {
    return undefined; // gone
  }
};
const alive = (pid: number) => fs.existsSync(`/proc/${pid}`);
const childrenOf = (pid: number): number[] =>
  fs.readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').split(/\s+/).filter(Boolean).map(Number);

interface ApplyJson {
  code: number;
  agents: Record<string, { status: string; error?: string; body?: { kind: string; error?: string; report?: { counts: { failed: number } } } }>;
}

describe('fleet: jobs in the job worker', () => {
  let fleet: Fleet;
  let w1: Proc;
  let w2: Proc;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    w1 = fleet.startAgent('w1', { cfg: { job_worker_idle_s: 3 } });
    w2 = fleet.startAgent('w2', { cfg: { multiprocessing: false } });
    await fleet.acceptAll(['w1', 'w2']);
  });
  afterAll(async () => {
    spawnSync('pkill', ['-f', SLEEP]);
    await fleet?.stop();
    fs.rmSync(path.dirname(mark), { recursive: true, force: true });
  });

  const apply = async (id: string, sls: string): Promise<ApplyJson> => {
    const r = await fleet.cli(['apply', id, sls, '--json'], 120_000);
    return { ...(JSON.parse(r.stdout) as ApplyJson), code: r.code };
  };
  const ranIn = () => Number(fs.readFileSync(mark, 'utf8').trim());

  it('runs a state run in a child process of the agent, and lets that process go when idle', async () => {
    const r = await apply('w1', 'where');
    expect(r.code, JSON.stringify(r)).toBe(0);
    const worker = ranIn();
    expect(worker).not.toBe(w1.child.pid);
    expect(parentOf(worker)).toBe(w1.child.pid);
    // the next job, within job_worker_idle_s, goes to the same (warm) worker
    expect((await apply('w1', 'where')).code).toBe(0);
    expect(ranIn()).toBe(worker);
    await waitFor('the idle worker to exit', () => (alive(worker) ? undefined : true), 20_000);
    expect(w1.running).toBe(true);
  });

  it('answers ping and grains itself, without a worker; a call that needs the engine goes to the worker', async () => {
    await waitFor('no job worker', () => (childrenOf(w1.child.pid!).length ? undefined : true), 20_000);
    const ping = await fleet.json<{ returns: Record<string, { status: string; return?: unknown }> }>(['ping', 'w1']);
    expect(ping.returns.w1!.status).toBe('ok');
    const grains = await fleet.json<{ returns: Record<string, { status: string; return?: { id?: string } }> }>(['call', 'w1', 'grains.items']);
    expect(grains.returns.w1!.return?.id).toBe('w1');
    expect(childrenOf(w1.child.pid!)).toEqual([]);
    const r = await fleet.json<{ returns: Record<string, { status: string; return?: unknown }> }>(['call', 'w1', 'cmd.run', 'echo $PPID']);
    expect(r.returns.w1!.status).toBe('ok');
    const worker = Number(r.returns.w1!.return);
    expect(worker).not.toBe(w1.child.pid);
    expect(parentOf(worker)).toBe(w1.child.pid);
  });

  it('with multiprocessing: False runs it in the agent process itself', async () => {
    expect((await apply('w2', 'where')).code).toBe(0);
    expect(ranIn()).toBe(w2.child.pid);
  });

  it('a worker that dies fails its job alone: the agent stays connected, the next job gets a new worker', async () => {
    fs.rmSync(mark, { force: true });
    const applying = apply('w1', 'slow');
    const worker = await waitFor('the slow state to start', () => (fs.existsSync(mark) && fs.readFileSync(mark, 'utf8').trim() ? ranIn() : undefined), 60_000);
    process.kill(worker, 'SIGKILL');
    const r = await applying;
    expect(r.code).not.toBe(0);
    expect(JSON.stringify(r.agents.w1)).toMatch(/job worker process exited \(SIGKILL\)/);
    spawnSync('pkill', ['-f', SLEEP]);
    expect(w1.running).toBe(true);
    const again = await apply('w1', 'where');
    expect(again.code, JSON.stringify(again)).toBe(0);
    expect(ranIn()).not.toBe(worker);
    expect(parentOf(ranIn())).toBe(w1.child.pid);
  });
});
