/**
 * Rollouts of a lab's state tree (a git work tree as state_tree, `rollout:` and a schedule):
 * a new commit becomes the desired revision and goes out one batch (one job) at a time; a
 * broken one halts, and the agent it did not reach stays on its revision through the scheduled
 * highstates (issue 8, failure 1); `tsalt rollback` holds through them too.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { buildOnce, Fleet, freePort, waitFor } from './fleet-harness.js';
import { samples } from '../helpers/prometheus.js';
import { exec } from '../../engine/run/exec.js';

interface JobSummary {
  jid: string;
  started_by: string;
  revision: string;
  intent: string;
}
interface JobDetail {
  agents: { agent_id: string; status: string; revision: string | null; error: string | null; results: { id: string; result: boolean | null }[] }[];
}
interface Status {
  desired: string;
  last_rollout: { revision: string; status: string; message: string | null } | null;
  agents: { id: string; revision: string; revision_applied: string | null; revision_attempted: string | null; attempt_status: string | null; sync: string }[];
}

const site = (tag: string, fail = false) => ({
  'site.sls':
    `/etc/site:\n  file.managed:\n    - makedirs: True\n    - contents: "${tag}"\n` + (fail ? `broken:\n  test.fail_without_changes:\n    - require:\n      - file: /etc/site\n` : ''),
});

describe('fleet: rollouts hold, through scheduled highstates', () => {
  let fleet: Fleet;
  const jobs = async () => fleet.json<JobSummary[]>(['jobs', '--limit', '200']);
  const status = () => fleet.json<Status>(['status']);
  const file = (id: string) => fleet.agentFileText(id);
  /** scheduled jobs started after `since` (jid order), finished */
  const scheduledAfter = async (since: string, n: number) =>
    waitFor(`${n} scheduled runs`, async () => {
      const js = (await jobs()).filter((j) => j.started_by === 'schedule:hs' && j.jid > since);
      if (js.length < n) return undefined;
      const details = await Promise.all(js.slice(-n).map((j) => fleet.json<JobDetail>(['jobs', j.jid])));
      return details.every((d) => d.agents.every((a) => !['queued', 'running'].includes(a.status))) ? details : undefined;
    }, 40_000);
  const lastJid = async () => (await jobs())[0]?.jid ?? '';
  let metricsPort = 0;
  const scrape = async () => samples(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text());

  beforeAll(async () => {
    buildOnce();
    metricsPort = await freePort();
    fleet = new Fleet({
      states: { 'top.sls': "base:\n  '*':\n    - site\n", ...site('v1') },
      master: { rollout: { target: 'o*', batch: 1, stop_on_failure: true }, schedule: { hs: { function: 'state.highstate', target: 'o*', seconds: 1 } }, metrics: { interface: '127.0.0.1', port: metricsPort } },
    });
    await fleet.startMaster();
    fleet.startAgents([fleet.agentConfig('o1'), fleet.agentConfig('o2')]);
    await fleet.acceptAll(['o1', 'o2']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('the work tree\'s HEAD is the first desired revision', async () => {
    const head = fleet.gitRev('HEAD');
    await waitFor('o1 and o2 on v1', async () => ((await status()).agents.every((a) => a.sync === 'in_sync') && file('o1') === 'v1' && file('o2') === 'v1') || undefined, 40_000);
    expect((await status()).desired).toBe(head);
  });

  it('a new commit goes out one batch, one job, at a time', async () => {
    fleet.writeTree('states', site('v2'));
    const v2 = fleet.commit('v2');
    await waitFor('both on v2', async () => {
      const s = await status();
      return s.desired === v2 && s.agents.every((a) => a.revision_applied === v2) ? s : undefined;
    }, 40_000);
    const rollouts = (await jobs()).filter((j) => j.started_by === 'rollout' && j.revision === v2);
    expect(rollouts.length).toBe(2);
    for (const j of rollouts) expect((await fleet.json<JobDetail>(['jobs', j.jid])).agents).toHaveLength(1);
    expect(file('o1')).toBe('v2');
    expect(file('o2')).toBe('v2');
  });

  it('a broken commit halts after the first batch; the agent not reached stays on v2 through scheduled highstates', async () => {
    const v2 = (await status()).desired;
    fleet.writeTree('states', site('v3', true));
    const v3 = fleet.commit('v3 broken');
    const s = await waitFor('the rollout halted', async () => {
      const x = await status();
      return x.last_rollout?.revision === v3 && x.last_rollout.status === 'halted' ? x : undefined;
    }, 40_000);
    expect(s.desired).toBe(v3);
    const [reached, held] = s.agents.find((a) => a.revision_attempted === v3)!.id === 'o1' ? ['o1', 'o2'] : ['o2', 'o1'];
    const since = await lastJid();
    const runs = await scheduledAfter(since, 2);
    for (const d of runs) {
      const byId = Object.fromEntries(d.agents.map((a) => [a.agent_id, a.revision]));
      expect(byId[held]).toBe(v2);
      expect(byId[reached]).toBe(v3);
    }
    expect(file(held)).toBe('v2');
    const after = await status();
    expect(after.agents.find((a) => a.id === held)).toMatchObject({ revision: v2, revision_applied: v2, sync: 'held' });
    expect(after.agents.find((a) => a.id === reached)).toMatchObject({ revision: v3, attempt_status: 'failed', sync: 'failed' });
    // scheduled runs correct drift: corrective, not intentional
    expect((await jobs()).filter((j) => j.started_by === 'schedule:hs').every((j) => j.intent === 'corrective')).toBe(true);
    const m = await scrape();
    expect(m.get(`tsalt_desired_revision_info{revision="${v3}"}`)).toBe(1);
    expect(m.get('tsalt_rollouts_total{outcome="halted"}')).toBe(1);
    expect(m.get('tsalt_agents_behind')).toBe(1); // the reached agent failed on v3; the held one is in sync with v2
    expect(fleet.mastersOut).toMatch(/warn .*rollout [0-9a-f]{12}: halted: batch 1\/2/);
    // Prometheus' own linter accepts the release metrics; no agent id in them
    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const lint = await exec(['promtool', 'check', 'metrics'], { input: text });
    expect(lint.code, lint.stdout + lint.stderr).toBe(0);
    expect(text).not.toMatch(/o1|o2/);
  });

  it('tsalt rollback to v2 puts both back and holds through scheduled highstates', async () => {
    const v2 = fleet.gitRev('HEAD~1');
    const r = await fleet.cli(['rollback', v2]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect((await status()).desired).toBe(v2);
    const since = await lastJid();
    const runs = await scheduledAfter(since, 2);
    for (const d of runs) for (const a of d.agents) expect([a.agent_id, a.revision, a.status]).toEqual([a.agent_id, v2, 'done']);
    expect(file('o1')).toBe('v2');
    expect(file('o2')).toBe('v2');
    expect((await status()).agents.map((a) => a.sync)).toEqual(['in_sync', 'in_sync']);
  });

  it('a hand edit on an agent is put back by the next scheduled run and counted as a corrective change', async () => {
    // counted by the master the agent's results reach: every master's, summed
    const before = (await fleet.scrapeSum()).get('tsalt_state_changes_by_intent_total{intent="corrective"}') ?? 0;
    const f = path.join(fleet.dir, 'agents', 'o1', 'root', 'etc', 'site');
    fs.writeFileSync(f, 'edited by hand\n');
    await waitFor('the drift put back', () => (file('o1') === 'v2' ? true : undefined), 30_000);
    await waitFor('the corrective change counted', async () => ((await fleet.scrapeSum()).get('tsalt_state_changes_by_intent_total{intent="corrective"}')! > before ? true : undefined));
    const r = await fleet.cli(['jobs']);
    expect(r.stdout).toMatch(/^JID\s+KIND\s+TARGET\s+SLS\s+TEST\s+BY\s+INTENT\s+REVISION\s+CHANGED\s+RESULT$/m);
    expect(r.stdout).toMatch(/schedule:hs\s+corrective/);
  });
});
