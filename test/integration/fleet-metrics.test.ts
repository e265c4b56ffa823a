/**
 * The master's Prometheus endpoint with a real master and agents on loopback: agent counts by
 * key state, counters and the duration histogram moving with real jobs, the running gauge
 * during a job, the tree revision following HEAD, 404 elsewhere, and the text accepted by
 * `promtool check metrics` (Prometheus' own parser and linter).
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exec } from '../../engine/run/exec.js';
import { buildOnce, Fleet, freePort, waitFor } from './fleet-harness.js';
import { samples } from '../helpers/prometheus.js';

const states = {
  'top.sls': "base:\n  '*':\n    - ok\n",
  // two states per agent: one changes something, one does not
  'ok.sls': 'changed:\n  test.succeed_with_changes: []\nsame:\n  test.succeed_without_changes: []\n',
  'broken.sls': 'will_fail:\n  test.fail_without_changes: []\n',
  'slow.sls': 'sleepy:\n  cmd.run:\n    - name: sleep 2\n',
};


describe('fleet: metrics endpoint', () => {
  let fleet: Fleet;
  let base = '';
  const scrape = async (): Promise<{ text: string; s: Map<string, number> }> => {
    const r = await fetch(`${base}/metrics`);
    expect(r.status).toBe(200);
    const text = await r.text();
    return { text, s: samples(text) };
  };
  const value = async (key: string) => (await scrape()).s.get(key);
  const agents = async () => {
    const { s } = await scrape();
    return Object.fromEntries(['connected', 'offline', 'pending', 'rejected'].map((st) => [st, s.get(`tsalt_agents{state="${st}"}`)]));
  };
  /**
   * Every master's counters summed (PromQL `sum`): with several masters, each counts what it
   * saw itself (the jobs it started, the state results its agents reported to it)
   */
  const counters = () => fleet.scrapeSum();
  /** the change of every sample between two scrapes (only those that moved) */
  const delta = (a: Map<string, number>, b: Map<string, number>) =>
    Object.fromEntries([...b].filter(([k, v]) => v !== (a.get(k) ?? 0)).map(([k, v]) => [k, v - (a.get(k) ?? 0)]));

  beforeAll(async () => {
    buildOnce();
    const port = await freePort();
    fleet = new Fleet({ states, master: { metrics: { interface: '127.0.0.1', port } } });
    await fleet.startMaster();
    base = `http://127.0.0.1:${port}`;
    await fleet.master!.waitOutput(new RegExp(`metrics on http://127\\.0\\.0\\.1:${port}/metrics`));
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a fresh master: no agents, every counter at zero, HEAD revision, start time', async () => {
    const { text, s } = await scrape();
    expect(await agents()).toEqual({ connected: 0, offline: 0, pending: 0, rejected: 0 });
    expect(s.get('tsalt_jobs_started_total{kind="apply"}')).toBe(0);
    expect(s.get('tsalt_agent_returns_total{status="done"}')).toBe(0);
    expect(s.get('tsalt_job_duration_seconds_count')).toBe(0);
    expect(s.get('tsalt_jobs_running')).toBe(0);
    // the last-resort net's counter exists from the start (core/last-resort.ts)
    expect(s.get('tsalt_unhandled_rejections_total')).toBe(0);
    const head = spawnSync('git', ['-C', path.join(fleet.dir, 'states'), 'rev-parse', 'HEAD'], { encoding: 'utf8' }).stdout.trim();
    expect(head).toMatch(/^[0-9a-f]{40}$/);
    expect(s.get(`tsalt_state_tree_info{revision="${head}"}`)).toBe(1);
    const start = s.get('tsalt_master_start_time_seconds')!;
    expect(Math.abs(start - Date.now() / 1000)).toBeLessThan(120);
    expect(text).toMatch(/^# HELP tsalt_agent_returns_total .+\n# TYPE tsalt_agent_returns_total counter$/m);
  });

  it('counts agents by key state: pending, connected, rejected, offline', async () => {
    fleet.startAgents([fleet.agentConfig('a1'), fleet.agentConfig('b1')]);
    const c1 = fleet.startAgent('c1');
    const r1 = fleet.startAgent('r1');
    await waitFor('4 pending', async () => (await agents()).pending === 4 || undefined);
    await fleet.acceptAll(['a1', 'b1', 'c1']);
    expect(await agents()).toEqual({ connected: 3, offline: 0, pending: 1, rejected: 0 });
    expect((await fleet.cli(['keys', 'reject', 'r1'])).code).toBe(0);
    await r1.kill('SIGKILL');
    expect(await agents()).toEqual({ connected: 3, offline: 0, pending: 0, rejected: 1 });
    await c1.kill('SIGKILL');
    await waitFor('c1 offline', async () => (await agents()).offline === 1 || undefined);
    expect(await agents()).toEqual({ connected: 2, offline: 1, pending: 0, rejected: 1 });
  });

  it('an apply moves jobs started, returns, state results, changes and the duration histogram', async () => {
    const before = await counters();
    const r = await fleet.json<{ code: number }>(['apply', 'a1,b1', '-L']);
    expect(r.code).toBe(0);
    const after = await counters();
    expect(delta(before, after)).toMatchObject({
      'tsalt_jobs_started_total{kind="apply"}': 1,
      'tsalt_agent_returns_total{status="done"}': 2,
      'tsalt_state_results_total{result="true"}': 4,
      'tsalt_state_changes_total': 2,
      'tsalt_job_duration_seconds_count': 1,
      'tsalt_job_duration_seconds_bucket{le="+Inf"}': 1,
    });
    const moved = Object.keys(delta(before, after));
    for (const k of ['tsalt_jobs_started_total{kind="run"}', 'tsalt_agent_returns_total{status="failed"}', 'tsalt_state_results_total{result="none"}']) {
      expect(moved).not.toContain(k);
    }
    expect(after.get('tsalt_job_duration_seconds_sum')!).toBeGreaterThan(before.get('tsalt_job_duration_seconds_sum')!);
    expect(after.get('tsalt_jobs_running')).toBe(0);
  });

  it('test mode, failures, offline targets and runs land in their own series', async () => {
    const before = await counters();
    expect((await fleet.cli(['apply', 'a1', '--test'])).code).toBe(0);
    expect((await fleet.cli(['apply', 'b1', 'broken'])).code).toBe(2);
    // c1 was killed: offline when the job starts, so lost for it
    expect((await fleet.cli(['run', 'a1,c1', 'true', '-L'])).code).toBe(3);
    const d = delta(before, await counters());
    expect(d).toMatchObject({
      'tsalt_jobs_started_total{kind="apply"}': 2,
      'tsalt_jobs_started_total{kind="run"}': 1,
      // test mode: the state with changes to make is none, the one without is true
      'tsalt_state_results_total{result="none"}': 1,
      'tsalt_state_results_total{result="true"}': 1,
      'tsalt_state_results_total{result="false"}': 1,
      'tsalt_agent_returns_total{status="done"}': 2,
      'tsalt_agent_returns_total{status="failed"}': 1,
      'tsalt_agent_returns_total{status="lost"}': 1,
      'tsalt_job_duration_seconds_count': 3,
    });
    // a test run predicts changes; it changes nothing
    expect(d['tsalt_state_changes_total']).toBeUndefined();
  });

  it('tsalt_jobs_running counts a job while it runs', async () => {
    const cli = fleet.cli(['apply', 'a1', 'slow']);
    await waitFor('a job running', async () => (await value('tsalt_jobs_running')) === 1 || undefined, 10_000);
    expect((await cli).code).toBe(0);
    expect(await value('tsalt_jobs_running')).toBe(0);
    const { s } = await scrape();
    // the slow job took 2 s or more: outside the buckets up to 1 s
    expect(s.get('tsalt_job_duration_seconds_bucket{le="+Inf"}')! - s.get('tsalt_job_duration_seconds_bucket{le="1"}')!).toBeGreaterThanOrEqual(1);
  });

  it('the revision follows HEAD', async () => {
    fleet.writeTree('states', { 'extra.sls': 'x:\n  test.nop: []\n' });
    const sha = fleet.commit('second');
    const { s } = await scrape();
    expect(s.get(`tsalt_state_tree_info{revision="${sha}"}`)).toBe(1);
    expect([...s.keys()].filter((k) => k.startsWith('tsalt_state_tree_info'))).toHaveLength(1);
  });

  it('only GET /metrics: other paths and methods are 404', async () => {
    for (const p of ['/', '/metric', '/metrics/x', '/api']) {
      const r = await fetch(`${base}${p}`);
      expect(r.status, p).toBe(404);
      await r.text();
    }
    const r = await fetch(`${base}/metrics`, { method: 'DELETE' });
    expect(r.status).toBe(404);
    await r.text();
    const ok = await fetch(`${base}/metrics`);
    expect(ok.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4\b/);
    await ok.text();
  });

  it('promtool check metrics accepts the scrape, and it holds no agent id or secret', async () => {
    const { text } = await scrape();
    const r = await exec(['promtool', 'check', 'metrics'], { input: text });
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const name of [
      'tsalt_agents',
      'tsalt_jobs_started_total',
      'tsalt_agent_returns_total',
      'tsalt_state_results_total',
      'tsalt_state_changes_total',
      'tsalt_job_duration_seconds',
      'tsalt_jobs_running',
      'tsalt_state_tree_info',
      'tsalt_master_start_time_seconds',
      'tsalt_unhandled_rejections_total',
    ]) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} .+\n# TYPE ${name} (counter|gauge|histogram)$`, 'm'));
    }
    for (const id of ['a1', 'b1', 'c1', 'r1']) expect(text).not.toContain(`"${id}"`);
  });
});
