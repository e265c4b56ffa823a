/**
 * Safe rollouts on a small stack (two load balancers, two web servers), pushed to a bare
 * repository: group by group with the pair of each role split over batches (issue 8, failure
 * 6); a push that passes the states but fails verify stops after the first batch with the
 * second load balancer untouched and is rolled back; a push with a failing state stops at the
 * threshold and rolls back every agent it touched; a failed run is not shown as the agent's
 * revision (failure 7).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, waitFor } from './fleet-harness.js';
import { ReleaseFleet } from './release-harness.js';

interface JobSummary {
  jid: string;
  target: string;
  started_by: string;
  revision: string;
}
interface Status {
  desired: string;
  last_rollout: { revision: string; status: string; message: string | null; agents: string[] } | null;
  rollout_batches: {
    batch: number;
    group_name: string;
    agents: string[];
    jid: string | null;
    status: string;
    verify: { name: string; outcome: string; attempts: number; message: string | null; started: string; finished: string | null }[];
  }[];
  agents: { id: string; revision_applied: string | null; revision_attempted: string | null; attempt_status: string | null; sync: string }[];
}

const ROLES: Record<string, string> = { lb1: 'haproxy', lb2: 'haproxy', web1: 'nginx', web2: 'nginx' };

const tree = (tag: string, o: { failOn?: string } = {}) => ({
  'states/top.sls': "base:\n  '*':\n    - site\n",
  'states/site.sls':
    `/etc/site:\n  file.managed:\n    - makedirs: True\n    - contents: "${tag}"\n` +
    (o.failOn ? `{% if '${o.failOn}' in grains['roles'] %}\nbroken:\n  test.fail_without_changes: []\n{% endif %}\n` : ''),
});

describe('fleet: safe rollouts (groups, pairs, verify, thresholds, rollback)', () => {
  let fleet: ReleaseFleet;
  let health = 200;
  let server: http.Server;
  let v1: string;
  const flag = () => path.join(fleet.dir, 'verify-fail');
  const status = () => fleet.json<Status>(['status']);
  const jobs = async () => (await fleet.json<JobSummary[]>(['jobs', '--limit', '500'])).reverse();
  const rolloutJobs = async (rev: string) => (await jobs()).filter((j) => j.revision === rev && j.started_by === 'rollout');
  const lastRollout = (rev: string, want: string) =>
    waitFor(`rollout of ${rev.slice(0, 12)} ${want}`, async () => {
      const s = await status();
      return s.last_rollout?.revision === rev && s.last_rollout.status === want ? s : undefined;
    }, 60_000);
  const site = (id: string) => fleet.agentFileText(id);

  beforeAll(async () => {
    buildOnce();
    server = http.createServer((_req, res) => {
      res.statusCode = health;
      res.end('ok');
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/healthz`;
    fleet = new ReleaseFleet({
      files: tree('v1'),
      master: {
        rollout: {
          groups: ['G@roles:haproxy', 'G@roles:nginx'],
          batch: '100%',
          max_fail_percent: 0,
          on_failure: 'rollback',
          verify: [
            { http: url, status: 200, retries: 1, delay_s: 0.2, timeout_s: 5 },
            { command: `test ! -e ${'VERIFY_FLAG'}`, retries: 0 },
            { agent_command: 'true', timeout_s: 30 },
          ],
        },
      },
    });
    // the flag file lives in the fleet's temp dir, known only now
    const cfg = fleet.masterCfg.rollout as { verify: { command?: string }[] };
    cfg.verify[1]!.command = `test ! -e ${path.join(fleet.dir, 'verify-fail')}`;
    v1 = fleet.git(fleet.work, 'rev-parse', 'HEAD');
    await fleet.startMaster();
    fleet.startAgents(Object.keys(ROLES).map((id) => fleet.agentConfig(id, { grains: { roles: [ROLES[id]] } })));
    await fleet.acceptAll(Object.keys(ROLES));
    await waitFor('all on v1', async () => ((await status()).agents.every((a) => a.revision_applied === v1) && (await status()).agents.length === 4) || undefined, 60_000);
  });
  afterAll(async () => {
    if (process.env.TSALT_DEBUG) console.log(fleet?.master?.out);
    await fleet?.stop();
    server?.close();
  });

  it('a push rolls out group by group, one host of each pair at a time', async () => {
    const v2 = fleet.push('v2', tree('v2'));
    await lastRollout(v2, 'succeeded');
    // one job per batch, in this order: the load balancers one by one, then the web servers
    expect((await rolloutJobs(v2)).map((j) => j.target)).toEqual(['lb1', 'lb2', 'web1', 'web2']);
    for (const id of Object.keys(ROLES)) expect(site(id)).toBe('v2');
    // every batch stored as done, each with its three checks passed on the first try
    const s = await status();
    expect(s.rollout_batches.map((b) => [b.agents, b.status, b.verify.map((v) => [v.outcome, v.attempts])])).toEqual(
      ['lb1', 'lb2', 'web1', 'web2'].map((id) => [[id], 'done', [['passed', 1], ['passed', 1], ['passed', 1]]]),
    );
  });

  it('a push that fails verify stops after the first batch: the second load balancer is untouched, the first rolled back', async () => {
    const v2 = (await status()).desired;
    health = 503;
    const v3 = fleet.push('v3: backends on the wrong port', tree('v3'));
    const s = await lastRollout(v3, 'rolled_back');
    health = 200;
    expect(s.last_rollout!.message).toMatch(/verify GET http:\/\/127\.0\.0\.1:\d+\/healthz failed: status 503, expected 200/);
    expect(s.last_rollout!.agents).toEqual(['lb1']);
    expect(s.desired).toBe(v2);
    expect((await rolloutJobs(v3)).map((j) => j.target)).toEqual(['lb1']);
    expect(site('lb1')).toBe('v2'); // rolled back
    expect(site('lb2')).toBe('v2'); // never touched
    const revs = await fleet.json<{ sha: string; outcome: string }[]>(['revisions']);
    expect(revs.find((r) => r.sha === v3)!.outcome).toBe('rolled_back');
    expect(fleet.master!.out).toMatch(/warn .*rollout [0-9a-f]{12}: batch 1\/4 \(lb1\) failed: verify GET/);
    // the stored record of each batch: lb1's batch ran its job and failed verify (the GET, both
    // tries, why), the checks after it never ran, and the other batches were never started
    const batches = s.rollout_batches;
    expect(batches.map((b) => [b.batch, b.group_name, b.agents, b.status])).toEqual([
      [1, 'G@roles:haproxy', ['lb1'], 'failed'],
      [2, 'G@roles:haproxy', ['lb2'], 'not_run'],
      [3, 'G@roles:nginx', ['web1'], 'not_run'],
      [4, 'G@roles:nginx', ['web2'], 'not_run'],
    ]);
    expect(batches[0]!.jid).toBe((await rolloutJobs(v3))[0]!.jid);
    expect(batches[0]!.verify).toHaveLength(1);
    expect(batches[0]!.verify[0]).toMatchObject({ outcome: 'failed', attempts: 2, message: 'status 503, expected 200' });
    expect(batches[0]!.verify[0]!.name).toMatch(/^GET http:\/\/127\.0\.0\.1:\d+\/healthz$/);
    expect(batches[0]!.verify[0]!.finished).not.toBeNull();
    expect(batches[1]!.jid).toBeNull();
    // and in the human output: one line per batch, the failed check with its tries and why
    const human = (await fleet.cli(['status'])).stdout;
    if (process.env.TSALT_DEBUG) console.log(human);
    expect(human).toMatch(/^BATCH\s+GROUP\s+AGENTS\s+JOB\s+STATUS\s+VERIFY$/m);
    expect(human).toMatch(new RegExp(`^1/4\\s+G@roles:haproxy\\s+lb1\\s+${batches[0]!.jid}\\s+failed\\s+GET http://127\\.0\\.0\\.1:\\d+/healthz: failed after 2 tries \\(status 503, expected 200\\)$`, 'm'));
    expect(human).toMatch(/^2\/4\s+G@roles:haproxy\s+lb2\s+-\s+not run\s+-$/m);
  });

  it('a master-side verify command failing counts the same', async () => {
    fs.writeFileSync(flag(), '');
    const v4 = fleet.push('v4', tree('v4'));
    const s = await lastRollout(v4, 'rolled_back');
    fs.rmSync(flag());
    expect(s.last_rollout!.message).toMatch(/verify command "test ! -e .*verify-fail" failed: exit 1/);
    // the GET passed, the command failed on its only try; the agent check after it never ran
    expect(s.rollout_batches[0]!.verify.map((v) => [v.outcome, v.attempts])).toEqual([['passed', 1], ['failed', 1]]);
    expect(s.rollout_batches[0]!.verify[1]!.message).toBe('exit 1');
    expect(site('lb2')).toBe('v2');
  });

  it('a push with a failing state stops at the threshold and rolls back every agent it touched', async () => {
    const v2 = (await status()).desired;
    const v5 = fleet.push('v5: breaks the web servers', tree('v5', { failOn: 'nginx' }));
    const s = await lastRollout(v5, 'rolled_back');
    expect(s.last_rollout!.agents).toEqual(['lb1', 'lb2', 'web1']);
    expect((await rolloutJobs(v5)).map((j) => j.target)).toEqual(['lb1', 'lb2', 'web1']);
    for (const id of Object.keys(ROLES)) expect(site(id)).toBe('v2');
    expect(s.desired).toBe(v2);
    // the failed run is web1's last attempt, not its revision
    const agents = await fleet.json<{ id: string; revision_applied: string }[]>(['agents']);
    expect(agents.find((a) => a.id === 'web1')!.revision_applied).toBe(v2);
    const web1 = (await status()).agents.find((a) => a.id === 'web1')!;
    expect(web1.revision_applied).toBe(v2);
    // then the rollback re-applied v2 to it successfully
    expect(web1.sync).toBe('in_sync');
  });
});
