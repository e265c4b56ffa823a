/**
 * The master's metrics (rendered by prom-client): the counters the job events move, the
 * scrape-time gauges, the HTTP endpoint, and the config key. Rendered text is checked by
 * `promtool check metrics`, Prometheus' own parser and linter.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exec } from '../../engine/run/exec.js';
import { silentLogger } from '../../core/log.js';
import { loadMasterConfig } from '../../master/config.js';
import { MasterMetrics, serveMetrics, type MetricsSource } from '../../master/metrics.js';
import type { StateResult } from '../../protocol/results.js';
import { tempDir } from '../helpers/harness.js';
import { samples } from '../helpers/prometheus.js';

async function promtool(text: string): Promise<{ code: number; out: string }> {
  const r = await exec(['promtool', 'check', 'metrics'], { input: text });
  return { code: r.code, out: r.stdout + r.stderr };
}

const result = (r: boolean | null, changes: Record<string, unknown> = {}): StateResult => ({
  id: 's',
  sls: 'x',
  fun: 'test.nop',
  name: 's',
  result: r,
  changes,
  comment: '',
  start: new Date().toISOString(),
  duration_ms: 1,
  run_num: 0,
});

const src = (over: Partial<MetricsSource> = {}): MetricsSource => ({
  agents: () => [
    { key_state: 'accepted', connected: true },
    { key_state: 'accepted', connected: true },
    { key_state: 'accepted', connected: false },
    { key_state: 'pending', connected: true },
    { key_state: 'rejected', connected: false },
  ],
  revision: async () => 'a'.repeat(40),
  ...over,
});


describe('MasterMetrics', () => {
  it('starts with every series at zero, and reads agents and revision when scraped', async () => {
    const m = new MasterMetrics(1_700_000_000_500);
    const text = await m.render(src());
    const s = samples(text);
    expect(s.get('tsalt_agents{state="connected"}')).toBe(2);
    expect(s.get('tsalt_agents{state="offline"}')).toBe(1);
    expect(s.get('tsalt_agents{state="pending"}')).toBe(1);
    expect(s.get('tsalt_agents{state="rejected"}')).toBe(1);
    for (const k of ['apply', 'run']) expect(s.get(`tsalt_jobs_started_total{kind="${k}"}`)).toBe(0);
    for (const st of ['done', 'failed', 'timeout', 'lost', 'cancelled']) expect(s.get(`tsalt_agent_returns_total{status="${st}"}`)).toBe(0);
    for (const r of ['true', 'false', 'none']) expect(s.get(`tsalt_state_results_total{result="${r}"}`)).toBe(0);
    expect(s.get('tsalt_state_changes_total')).toBe(0);
    expect(s.get('tsalt_job_duration_seconds_count')).toBe(0);
    expect(s.get('tsalt_jobs_running')).toBe(0);
    expect(s.get(`tsalt_state_tree_info{revision="${'a'.repeat(40)}"}`)).toBe(1);
    expect(s.get('tsalt_master_start_time_seconds')).toBe(1_700_000_000.5);
    for (const name of ['tsalt_agents', 'tsalt_jobs_started_total', 'tsalt_job_duration_seconds', 'tsalt_state_tree_info']) {
      expect(text).toMatch(new RegExp(`^# HELP ${name} \\S`, 'm'));
      expect(text).toMatch(new RegExp(`^# TYPE ${name} (counter|gauge|histogram)$`, 'm'));
    }
    const r = await promtool(text);
    expect(r.code, r.out).toBe(0);
  });

  it('job events move the counters, the running gauge and the duration histogram', async () => {
    const m = new MasterMetrics();
    m.jobStarted('1', 'apply');
    m.jobStarted('2', 'run');
    let s = samples(await m.render(src()));
    expect(s.get('tsalt_jobs_running')).toBe(2);
    m.stateResult('1', result(true, { diff: 'x' }));
    m.stateResult('1', result(true));
    m.stateResult('1', result(false, { partly: true }));
    m.stateResult('1', result(null, { would: 'change' })); // test mode: predicted, not changed
    m.agentDone('1', 'done');
    m.agentDone('1', 'failed');
    m.agentDone('2', 'timeout');
    m.agentDone('2', 'lost');
    m.agentDone('2', 'cancelled');
    m.jobCompleted('1');
    m.jobCompleted('1'); // twice: counted once
    m.jobCompleted('nosuch');
    s = samples(await m.render(src()));
    expect(s.get('tsalt_jobs_started_total{kind="apply"}')).toBe(1);
    expect(s.get('tsalt_jobs_started_total{kind="run"}')).toBe(1);
    expect(s.get('tsalt_state_results_total{result="true"}')).toBe(2);
    expect(s.get('tsalt_state_results_total{result="false"}')).toBe(1);
    expect(s.get('tsalt_state_results_total{result="none"}')).toBe(1);
    expect(s.get('tsalt_state_changes_total')).toBe(2);
    for (const st of ['done', 'failed', 'timeout', 'lost', 'cancelled']) expect(s.get(`tsalt_agent_returns_total{status="${st}"}`)).toBe(1);
    expect(s.get('tsalt_jobs_running')).toBe(1);
    expect(s.get('tsalt_job_duration_seconds_count')).toBe(1);
    expect(s.get('tsalt_job_duration_seconds_bucket{le="0.25"}')).toBe(1);
    expect(s.get('tsalt_job_duration_seconds_bucket{le="+Inf"}')).toBe(1);
    m.jobCompleted('2');
    s = samples(await m.render(src()));
    expect(s.get('tsalt_jobs_running')).toBe(0);
    expect(s.get('tsalt_job_duration_seconds_count')).toBe(2);
  });

  it('a plain-directory tree (or a failing git) leaves the revision out; a new HEAD replaces the old series', async () => {
    const m = new MasterMetrics();
    let text = await m.render(src({ revision: async () => undefined }));
    expect(text).toMatch(/# TYPE tsalt_state_tree_info gauge\n\s*# HELP tsalt_master_start_time_seconds/);
    text = await m.render(src({ revision: () => Promise.reject(new Error('no tree')) }));
    expect(text).not.toMatch(/^tsalt_state_tree_info\{/m);
    await m.render(src({ revision: async () => 'b'.repeat(40) }));
    text = await m.render(src({ revision: async () => 'c'.repeat(40) }));
    expect(text.match(/^tsalt_state_tree_info.*$/gm)).toEqual([`tsalt_state_tree_info{revision="${'c'.repeat(40)}"} 1`]);
  });
});

describe('the HTTP endpoint', () => {
  it('serves GET /metrics in format 0.0.4, HEAD without a body, 404 for anything else', async () => {
    const m = new MasterMetrics();
    const srv = await serveMetrics({ interface: '127.0.0.1', port: 0 }, m, src(), silentLogger);
    try {
      const base = `http://127.0.0.1:${srv.port}`;
      const r = await fetch(`${base}/metrics`);
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
      const body = await r.text();
      expect(body).toMatch(/^tsalt_agents\{state="connected"\} 2$/m);
      expect((await fetch(`${base}/metrics?x=1`)).status).toBe(200);
      const head = await fetch(`${base}/metrics`, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(await head.text()).toBe('');
      for (const p of ['/', '/metrics/', '/metricsx', '/favicon.ico', '/../metrics/x']) {
        const n = await fetch(`${base}${p}`);
        expect(n.status, p).toBe(404);
        await n.text();
      }
      const post = await fetch(`${base}/metrics`, { method: 'POST', body: 'x' });
      expect(post.status).toBe(404);
      await post.text();
    } finally {
      await srv.close();
    }
  });

  it('a failing collection is a 500, and the next scrape works again', async () => {
    let fail = true;
    const srv = await serveMetrics(
      { interface: '127.0.0.1', port: 0 },
      new MasterMetrics(),
      src({
        agents: () => {
          if (fail) throw new Error('database is locked');
          return [];
        },
      }),
      silentLogger,
    );
    try {
      const r = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
      expect(r.status).toBe(500);
      expect(await r.text()).not.toContain('database is locked'); // details go to the log
      fail = false;
      expect((await fetch(`http://127.0.0.1:${srv.port}/metrics`)).status).toBe(200);
    } finally {
      await srv.close();
    }
  });

  it('a port in use is an error naming the endpoint', async () => {
    const a = await serveMetrics({ interface: '127.0.0.1', port: 0 }, new MasterMetrics(), src(), silentLogger);
    try {
      await expect(serveMetrics({ interface: '127.0.0.1', port: a.port }, new MasterMetrics(), src(), silentLogger)).rejects.toThrow(
        new RegExp(`metrics endpoint 127\\.0\\.0\\.1:${a.port}: .*EADDRINUSE`),
      );
    } finally {
      await a.close();
    }
  });
});

describe('master.yaml metrics:', () => {
  const write = (text: string) => {
    const f = path.join(tempDir(), 'master.yaml');
    fs.writeFileSync(f, text);
    return f;
  };
  it('absent: no endpoint; empty or {}: 127.0.0.1:9506; keys checked', () => {
    expect(loadMasterConfig(write('port: 4506\n')).metrics).toBeUndefined();
    expect(loadMasterConfig(write('metrics:\n')).metrics).toEqual({ interface: '127.0.0.1', port: 9506 });
    expect(loadMasterConfig(write('metrics: {}\n')).metrics).toEqual({ interface: '127.0.0.1', port: 9506 });
    expect(loadMasterConfig(write('metrics: {interface: 0.0.0.0, port: 9999}\n')).metrics).toEqual({ interface: '0.0.0.0', port: 9999 });
    expect(() => loadMasterConfig(write('metrics: {prot: 1}\n'))).toThrow(/unknown key 'metrics.prot'/);
    expect(() => loadMasterConfig(write('metrics: {port: 70000}\n'))).toThrow(/'metrics.port'/);
    expect(() => loadMasterConfig(write('metrics: true\n'))).toThrow(/'metrics'/);
  });
});
