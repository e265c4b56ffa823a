/**
 * Scheduled jobs (master.yaml `schedule:`, Salt's scheduler): a highstate every second reaches
 * the agents again and again, a slow job makes ticks skip instead of overlapping, disabled
 * schedules never run, run_on_start runs once right after a (re)start, a target that matches
 * nothing does not stop its schedule, `tsalt schedule` lists them, bad entries stop the master.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { dumpSaltYaml } from '../../core/salt-yaml.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, Proc, REPO, waitFor } from './fleet-harness.js';

interface JobSummary {
  jid: string;
  kind: string;
  started_by: string;
  created: string;
  args: Record<string, unknown>;
  counts: Record<string, number>;
}
interface JobDetail {
  job: JobSummary;
  agents: {
    agent_id: string;
    status: string;
    started: string | null;
    finished: string | null;
    body: { kind: string; stdout?: string } | null;
    results: { id: string; result: boolean | null }[];
  }[];
}
interface ScheduleRow {
  name: string;
  function: string;
  target: string;
  tgt_type: string;
  sls: string[] | null;
  command: string | null;
  interval_s: number;
  enabled: boolean;
  run_on_start: boolean;
  last_run: { time: string; jid: string } | null;
  next_run: string | null;
}

const states = {
  'top.sls': "base:\n  '*':\n    - site\n",
  'site.sls': 'site:\n  test.succeed_without_changes: []\n',
  'slow.sls': 'sleepy:\n  cmd.run:\n    - name: sleep 3\n',
};

const schedule = {
  drift: { function: 'state.highstate', target: 'd*', seconds: 1 },
  slow: { function: 'state.apply', sls: ['slow'], target: 's1', tgt_type: 'list', seconds: 1 },
  boot: { function: 'cmd.run', arg: 'echo booted', target: 'b1', hours: 1, run_on_start: true },
  off: { function: 'state.highstate', seconds: 1, enabled: false, run_on_start: true },
  nobody: { function: 'state.highstate', target: 'nobody*', seconds: 1 },
};

describe('fleet: scheduled jobs', () => {
  let fleet: Fleet;
  /** when every agent was connected: a tick between a key's acceptance and its agent's reconnect finds it offline (lost), as it should */
  let connectedAt = 0;
  const jobsBy = async (name: string) =>
    (await fleet.json<JobSummary[]>(['jobs', '-n', '1000'])).filter((j) => j.started_by === `schedule:${name}`).sort((a, b) => a.jid.localeCompare(b.jid));
  const jobsSinceConnected = async (name: string) => (await jobsBy(name)).filter((j) => Date.parse(j.created) >= connectedAt);
  const detail = (jid: string) => fleet.json<JobDetail>(['jobs', jid]);
  const finished = (jid: string) =>
    waitFor(`job ${jid} finished`, async () => {
      const d = await detail(jid);
      return d.agents.every((m) => !['queued', 'running'].includes(m.status)) ? d : undefined;
    }, 30_000);

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { schedule } });
    await fleet.startMaster();
    fleet.startAgents(['d1', 'd2', 's1', 'b1'].map((id) => fleet.agentConfig(id)));
    await fleet.acceptAll(['d1', 'd2', 's1', 'b1']);
    connectedAt = Date.now();
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a highstate every second reaches the agents again and again, started by schedule:<name>', async () => {
    const jobs = await waitFor('3 drift jobs', async () => {
      const j = await jobsSinceConnected('drift');
      return j.length >= 4 ? j : undefined;
    });
    // the newest may still run; the ones before it are complete, each with every result
    for (const j of jobs.slice(0, 3)) {
      const d = await finished(j.jid);
      expect(d.job.kind).toBe('apply');
      expect(d.job.args).toMatchObject({ sls: [], test: false });
      expect(d.agents.map((m) => [m.agent_id, m.status, m.results.map((r) => [r.id, r.result])])).toEqual([
        ['d1', 'done', [['site', true]]],
        ['d2', 'done', [['site', true]]],
      ]);
    }
  });

  it('a slow job makes ticks skip instead of overlapping', async () => {
    const jobs = await waitFor('3 slow jobs', async () => {
      const j = await jobsSinceConnected('slow');
      return j.length >= 3 ? j : undefined;
    }, 40_000);
    const spans: { start: number; end: number }[] = [];
    for (const j of jobs) {
      const d = await finished(j.jid);
      expect(d.agents.map((m) => [m.agent_id, m.status, m.results.map((r) => r.id)])).toEqual([['s1', 'done', ['sleepy']]]);
      spans.push({ start: Date.parse(d.job.created), end: Math.max(...d.agents.map((m) => Date.parse(m.finished!))) });
    }
    for (let i = 1; i < spans.length; i++) {
      // the next job was created only after the previous one had finished (and about 3 s later)
      expect(spans[i]!.start).toBeGreaterThanOrEqual(spans[i - 1]!.end);
      expect(spans[i]!.start - spans[i - 1]!.start).toBeGreaterThanOrEqual(3000);
    }
    expect(fleet.mastersOut).toMatch(/schedule slow: skipping this run: job \d{20} of the previous run is still running/);
  });

  it('a target that matches nothing logs a warning at every tick and the schedule goes on', async () => {
    const re = /warn .*schedule nobody: no job started: target "nobody\*" \(glob\) matched no accepted agent; the schedule goes on/g;
    const before = fleet.mastersOut.match(re)?.length ?? 0;
    expect(before).toBeGreaterThanOrEqual(1);
    await waitFor('another warning', () => ((fleet.mastersOut.match(re)?.length ?? 0) > before ? true : undefined), 10_000);
    expect(await jobsBy('nobody')).toEqual([]);
  });

  it('enabled: False never runs, even with run_on_start', async () => {
    expect(await jobsBy('off')).toEqual([]);
    expect(fleet.mastersOut).toMatch(/schedule off: disabled/);
  });

  it('tsalt schedule --json lists every schedule with its last and next run', async () => {
    const rows = await fleet.json<ScheduleRow[]>(['schedule']);
    expect(rows.map((r) => [r.name, r.function, r.target, r.interval_s, r.enabled])).toEqual([
      ['drift', 'state.highstate', 'd*', 1, true],
      ['slow', 'state.apply', 's1', 1, true],
      ['boot', 'cmd.run', 'b1', 3600, true],
      ['off', 'state.highstate', '*', 1, false],
      ['nobody', 'state.highstate', 'nobody*', 1, true],
    ]);
    const by = Object.fromEntries(rows.map((r) => [r.name, r]));
    expect(by.slow!.sls).toEqual(['slow']);
    expect(by.slow!.tgt_type).toBe('list');
    expect(by.boot!.command).toBe('echo booted');
    const driftJids = (await jobsBy('drift')).map((j) => j.jid);
    expect(driftJids).toContain(by.drift!.last_run!.jid);
    expect(Date.parse(by.drift!.last_run!.time)).toBeGreaterThan(Date.now() - 10_000);
    expect(Date.parse(by.drift!.next_run!)).toBeGreaterThan(Date.now() - 5_000);
    expect(by.off!.next_run).toBeNull();
    expect(by.off!.last_run).toBeNull();
    expect(by.nobody!.last_run).toBeNull();
    // kept in the meta table of the master's store
    const [meta] = (await fleet.storeQuery("SELECT value FROM meta WHERE key = 'schedule.slow'")) as { value: string }[];
    expect((await jobsBy('slow')).map((j) => j.jid)).toContain((JSON.parse(meta!.value) as { jid: string }).jid);
    const text = await fleet.cli(['schedule']);
    expect(text.code).toBe(0);
    expect(text.stdout).toMatch(/^NAME\s+FUNCTION\s+TARGET\s+EVERY\s+ENABLED\s+LAST RUN\s+JID\s+NEXT RUN/);
    expect(text.stdout).toMatch(/\nboot\s+cmd\.run "echo booted"\s+b1\s+1h\s+yes/);
    expect(text.stdout).toMatch(/\nslow\s+state\.apply slow\s+list:s1\s+1s\s+yes/);
  });

  it('run_on_start runs once right after a master (re)start, once the agents are back', async () => {
    // the first start had no accepted agent: the run found nobody and warned
    expect(await jobsBy('boot')).toEqual([]);
    expect(fleet.mastersOut).toMatch(/schedule boot: no job started: target "b1" \(glob\) matched no accepted agent/);
    await fleet.master!.kill('SIGTERM');
    const restarted = Date.now();
    await fleet.startMaster();
    const [job] = await waitFor('the boot job', async () => {
      const j = await jobsBy('boot');
      return j.length ? j : undefined;
    });
    expect(Date.parse(job!.created) - restarted).toBeLessThan(10_000);
    const d = await finished(job!.jid);
    expect(d.job.kind).toBe('run');
    // not started while the agent was still reconnecting (it would have been "lost")
    expect(d.agents.map((m) => [m.agent_id, m.status, m.body?.stdout])).toEqual([['b1', 'done', 'booted\n']]);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await jobsBy('boot')).toHaveLength(1);
  });
});

describe('fleet: a bad schedule entry stops the master', () => {
  const refused = async (entry: Record<string, unknown>): Promise<{ code: number | null; out: string }> => {
    const fleet = new Fleet({ states: { 'top.sls': 'base: {}\n' }, git: false, master: { schedule: { nightly: entry } } });
    try {
      const file = path.join(fleet.dir, 'master.yaml');
      fs.writeFileSync(file, dumpSaltYaml({ ...fleet.masterCfg, port: 0 }));
      const p = new Proc(spawn(process.execPath, [path.join(REPO, 'bin/tsalt.js'), 'master', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] }));
      const t = setTimeout(() => void p.kill('SIGKILL'), 20_000);
      const code = await p.exited;
      clearTimeout(t);
      return { code, out: p.out };
    } finally {
      await fleet.stop();
    }
  };

  it('an unknown key is named', async () => {
    const r = await refused({ function: 'state.highstate', minutes: 5, splai: 30 });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/tsalt master: .*master\.yaml: unknown key 'schedule\.nightly\.splai'/);
    expect(r.out).not.toMatch(/listening/);
  });

  it('an entry without an interval is named', async () => {
    const r = await refused({ function: 'state.highstate', splay: 30 });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/tsalt master: .*master\.yaml: 'schedule\.nightly': no interval: give seconds, minutes, hours and\/or days/);
  });
});
