/**
 * Jobs end to end: every target form, pillar rendered per agent and never leaked, revision
 * pinning, exit codes, batches, test mode, the job history, one state run at
 * a time. Three agents in two processes plus a hand-driven one.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, waitFor } from './fleet-harness.js';

const states = {
  'top.sls': [
    'base:',
    "  '*':",
    '    - common',
    "  'roles:web':",
    '    - match: grain',
    '    - web',
  ].join('\n') + '\n',
  'common.sls': [
    // the pillar value shows in the state id: the result proves which pillar the agent got
    "secret_{{ pillar.get('secret', 'none') }}:",
    '  test.succeed_without_changes: []',
    "rev_{{ pillar.get('marker', 'x') }}_{{ grains['id'] }}:",
    '  test.succeed_with_changes: []',
  ].join('\n') + '\n',
  'web.sls': 'web_thing:\n  test.succeed_with_changes: []\n',
  'broken.sls': 'will_fail:\n  test.fail_without_changes: []\nfine:\n  test.succeed_without_changes: []\n',
  'slow.sls': 'sleepy:\n  cmd.run:\n    - name: sleep 3\n',
  'v.sls': 'version_one:\n  test.succeed_without_changes: []\n',
};
const pillar = {
  'top.sls': ["base:", "  'a1':", '    - a1', "  'b1':", '    - b1', "  'evil':", '    - evil', "  '*':", '    - common'].join('\n') + '\n',
  'a1.sls': 'secret: alpha\n',
  'b1.sls': 'secret: bravo\n',
  'evil.sls': 'secret: evilsown\n',
  'common.sls': 'marker: m1\nrole_from_pillar: db\n',
};

interface ApplyJson {
  jid: string;
  code: number;
  errors: string[];
  offline: { id: string }[];
  agents: Record<string, { status: string; body?: { kind: string; report?: { results: { id: string; result: boolean | null }[] }; stdout?: string } }>;
}

describe('fleet: jobs', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, pillar, master: { nodegroups: { webs: 'G@roles:web', pair: ['a1', 'c1'] } } });
    await fleet.startMaster();
    // two agents in one process, one in another
    fleet.startAgents([fleet.agentConfig('a1', { grains: { roles: ['web'] } }), fleet.agentConfig('b1', { grains: { roles: ['db'] } })]);
    fleet.startAgent('c1', { grains: { roles: ['web', 'cache'] } });
    await fleet.acceptAll(['a1', 'b1', 'c1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  const ids = (r: ApplyJson) => Object.keys(r.agents).sort();

  it('applies the highstate everywhere, with each agent its own pillar', async () => {
    const r = await fleet.json<ApplyJson>(['apply', '*']);
    expect(r.code).toBe(0);
    expect(ids(r)).toEqual(['a1', 'b1', 'c1']);
    const stateIds = (id: string) => r.agents[id]!.body!.report!.results.map((s) => s.id).sort();
    expect(stateIds('a1')).toEqual(['rev_m1_a1', 'secret_alpha', 'web_thing']);
    expect(stateIds('b1')).toEqual(['rev_m1_b1', 'secret_bravo']);
    expect(stateIds('c1')).toEqual(['rev_m1_c1', 'secret_none', 'web_thing']);
  });

  it("pillar='{...}' overrides each agent's pillar for that job only, and is not stored", async () => {
    const r = await fleet.json<ApplyJson>(['apply', 'a1,b1', '-L', 'common', 'pillar={"marker": "m9", "secret": "given"}']);
    expect(r.code).toBe(0);
    const stateIds = (id: string) => r.agents[id]!.body!.report!.results.map((s) => s.id).sort();
    expect(stateIds('a1')).toEqual(['rev_m9_a1', 'secret_given']);
    expect(stateIds('b1')).toEqual(['rev_m9_b1', 'secret_given']);
    const job = await fleet.json<{ job: { args: Record<string, unknown> } }>(['jobs', r.jid]);
    expect(job.job.args.pillar_keys).toEqual(['marker', 'secret']);
    expect(JSON.stringify(job.job.args)).not.toContain('given');
    const after = await fleet.json<ApplyJson>(['apply', 'a1', 'common']);
    expect(after.agents.a1!.body!.report!.results.map((s) => s.id).sort()).toEqual(['rev_m1_a1', 'secret_alpha']);
  });

  it('prints the highstate per agent and a summary', async () => {
    const r = await fleet.cli(['apply', 'a1']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/a1:\n/);
    expect(r.stdout).toMatch(/ID: web_thing/);
    expect(r.stdout).toMatch(/Summary for a1/);
    expect(r.stdout).toMatch(/1 targeted, 1 succeeded, 0 failed, 0 did not return/);
    // a run this short streams no result (its highstate above has every state): no progress
    // line per state on stderr (a run that lasts prints them: fleet-stream.test.ts)
    expect(r.stderr).not.toMatch(/a1: test.succeed_with_changes web_thing/);
  });

  it.each([
    [['a*'], ['a1']],
    [['-L', 'a1,c1'], ['a1', 'c1']],
    [['-G', 'roles:web'], ['a1', 'c1']],
    [['-G', 'roles:cache'], ['c1']],
    [['-E', '(a|b)1'], ['a1', 'b1']],
    [['-I', 'secret:bravo'], ['b1']],
    [['-C', 'G@roles:web and not c1'], ['a1']],
    [['-C', 'I@secret:alpha or b*'], ['a1', 'b1']],
    [['-N', 'webs'], ['a1', 'c1']],
    [['-N', 'pair'], ['a1', 'c1']],
  ])('targets %j -> %j', async (target, want) => {
    const [flag, expr] = target.length === 2 ? target : [undefined, target[0]!];
    const r = await fleet.json<ApplyJson>(['apply', expr!, 'v', ...(flag ? [flag] : [])]);
    expect(r.code).toBe(0);
    expect(ids(r)).toEqual(want);
  });

  it('a target that matches nothing is an error, not everyone', async () => {
    const r = await fleet.cli(['apply', 'nosuch*']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/matched no accepted agent/);
    const ng = await fleet.cli(['apply', '-N', 'nogroup']);
    expect(ng.code).toBe(1);
    expect(ng.stderr).toMatch(/no nodegroup 'nogroup'/);
  });

  it('a failing state makes the exit code non-zero and is stored', async () => {
    const r = await fleet.cli(['apply', 'b1', 'broken']);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/Result: False/);
    expect(r.stdout).toMatch(/failed:\s+b1/);
    const jid = /job (\d{20})/.exec(r.stderr)![1]!;
    const job = await fleet.json<{ agents: { agent_id: string; status: string; results: { id: string; result: boolean }[] }[] }>(['jobs', jid]);
    expect(job.agents[0]!.status).toBe('failed');
    expect(job.agents[0]!.results.map((x) => [x.id, x.result])).toEqual([
      ['will_fail', false],
      ['fine', true],
    ]);
    const text = await fleet.cli(['jobs', jid]);
    expect(text.stdout).toMatch(/\[failed\] b1:/);
  });

  it('a tree that does not compile is reported per agent as an error, nothing runs', async () => {
    const r = await fleet.json<ApplyJson>(['apply', 'a1', 'does.not.exist']);
    expect(r.code).toBe(2);
    expect(r.agents.a1!.status).toBe('failed');
    expect(r.agents.a1!.body!.kind).toBe('error');
  });

  it('test mode predicts the changes without result true', async () => {
    const r = await fleet.json<ApplyJson>(['apply', 'a1', 'web', '--test']);
    expect(r.code).toBe(0);
    expect(r.agents.a1!.body!.report!.results.map((s) => s.result)).toEqual([null]);
    const salty = await fleet.json<ApplyJson>(['apply', 'a1', 'web', 'test=True']);
    expect(salty.agents.a1!.body!.report!.results.map((s) => s.result)).toEqual([null]);
  });

  it('jobs pin the committed revision; agents record the revision they applied', async () => {
    fleet.writeTree('states', { 'v.sls': 'version_two:\n  test.succeed_without_changes: []\n' });
    // not committed yet: the job still runs the committed tree
    let r = await fleet.json<ApplyJson & { revision: string }>(['apply', 'a1', 'v']);
    expect(r.agents.a1!.body!.report!.results.map((s) => s.id)).toEqual(['version_one']);
    const rev = fleet.commit('v2');
    r = await fleet.json<ApplyJson & { revision: string }>(['apply', 'a1', 'v']);
    expect(r.revision).toBe(rev);
    expect(r.agents.a1!.body!.report!.results.map((s) => s.id)).toEqual(['version_two']);
    const agents = await fleet.json<{ id: string; revision_applied: string; roles: string[] }[]>(['agents']);
    expect(agents.find((a) => a.id === 'a1')!.revision_applied).toBe(rev);
    expect(agents.find((a) => a.id === 'c1')!.roles).toEqual(['web', 'cache']);
  });

  it('--revision rolls back to an earlier revision (and forward again); a bad one is refused', async () => {
    const before = fleet.commit('rollback base'); // v.sls has version_two here
    fleet.writeTree('states', { 'v.sls': 'version_three:\n  test.succeed_without_changes: []\n' });
    const three = fleet.commit('v3');
    let r = await fleet.json<ApplyJson & { revision: string }>(['apply', 'a1', 'v']);
    expect([r.revision, r.agents.a1!.body!.report!.results.map((s) => s.id)]).toEqual([three, ['version_three']]);
    r = await fleet.json<ApplyJson & { revision: string }>(['apply', 'a1', 'v', '--revision', 'HEAD~1']);
    expect([r.revision, r.agents.a1!.body!.report!.results.map((s) => s.id)]).toEqual([before, ['version_two']]);
    const agents = await fleet.json<{ id: string; revision_applied: string }[]>(['agents']);
    expect(agents.find((a) => a.id === 'a1')!.revision_applied).toBe(before);
    r = await fleet.json<ApplyJson & { revision: string }>(['apply', 'a1', 'v', '--revision', three.slice(0, 10)]);
    expect(r.revision).toBe(three);
    const bad = await fleet.cli(['apply', 'a1', 'v', '--revision', 'no-such-rev']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown revision 'no-such-rev'/);
    const injected = await fleet.cli(['apply', 'a1', 'v', '--revision=--output=/tmp/x']);
    expect(injected.code).toBe(1);
  });

  it('batches: --batch 1 runs one agent at a time', async () => {
    const r = await fleet.json<ApplyJson>(['run', '*', 'date +%s%N; sleep 0.5; date +%s%N', '--batch', '1']);
    expect(r.code).toBe(0);
    const spans = Object.values(r.agents)
      .map((a) => a.body!.stdout!.trim().split('\n').map(Number) as [number, number])
      .sort((x, y) => x[0] - y[0]);
    expect(spans).toHaveLength(3);
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1]);
  });

  it('one state run at a time per agent: a second is refused with a clear message', async () => {
    const first = fleet.cli(['apply', 'c1', 'slow', '--json']);
    await waitFor('slow run started', () => /job \d{20}: apply slow/.test(fleet.agents[1]!.out) || undefined);
    const second = await fleet.json<ApplyJson & { agents: Record<string, { body?: { error?: string } }> }>(['apply', 'c1', 'v']);
    expect(second.code).toBe(2);
    expect(second.agents.c1!.body!.error).toMatch(/a state run is already in progress on c1/);
    const r = JSON.parse((await first).stdout) as ApplyJson;
    expect(r.code).toBe(0);
  });

  it('pillar isolation: an agent gets its own pillar only and cannot fetch anything else', async () => {
    const pending = await RawAgent.connect(fleet, 'evil');
    await pending.waitMsg('key_status');
    pending.hello({ roles: ['web'] });
    await fleet.cli(['keys', 'accept', 'evil']);
    // accepted while connected: the master asks it to reconnect (for the accepted frame limit)
    await pending.closed;
    const evil = await RawAgent.connect(fleet, 'evil');
    evil.hello({ roles: ['web'] });
    await fleet.waitConnected(['evil']);
    // the job sent to `evil` carries evil's pillar and nothing of the others'
    const run = fleet.cli(['apply', '*', '--timeout', '5', '--json']);
    const job = await evil.waitMsg('job');
    const spec = job.spec as { pillar: Record<string, unknown>; bundle: string };
    expect(spec.pillar).toEqual({ secret: 'evilsown', marker: 'm1', role_from_pillar: 'db' });
    expect(JSON.stringify(job)).not.toMatch(/alpha|bravo/);
    // the offered bundle holds the state tree and no pillar file
    evil.send({ type: 'bundle_get', jid: job.jid, hash: spec.bundle });
    const bundle = await evil.waitMsg('bundle');
    const files = (bundle.files as { path: string; data: string }[]).map((f) => f.path);
    expect(files).toContain('top.sls');
    expect(files.some((f) => /a1\.sls|b1\.sls/.test(f))).toBe(false);
    expect(Buffer.from(JSON.stringify(bundle)).toString()).not.toMatch(/alpha|bravo/);
    // a bundle it was not offered is denied; asking for another agent's pillar closes the connection
    evil.send({ type: 'bundle_get', jid: job.jid, hash: 'f'.repeat(64) });
    await evil.waitMsg('denied');
    // a return for a job of another agent is acknowledged and never stored
    const jobs = await fleet.json<{ jid: string; target: string }[]>(['jobs']);
    const b1job = jobs.find((j) => j.target === 'b1')!.jid;
    evil.send({ type: 'job_return', jid: b1job, body: { kind: 'run', retcode: 0, stdout: 'forged', stderr: '' } });
    await waitFor('return_ack', () => evil.messages.find((m) => m.type === 'return_ack' && m.jid === b1job));
    const b1 = await fleet.json<{ agents: { agent_id: string }[] }>(['jobs', b1job]);
    expect(JSON.stringify(b1)).not.toMatch(/forged/);
    expect(b1.agents.map((m) => m.agent_id)).toEqual(['b1']);
    const r = JSON.parse((await run).stdout) as ApplyJson;
    expect(r.agents.evil!.status).toBe('timeout');
    expect(r.code).toBe(3);
    evil.send({ type: 'pillar', id: 'a1' });
    expect((await evil.closed).code).toBe(4400);
    await fleet.cli(['keys', 'delete', 'evil']);
  });

  it('lists jobs with who started them and their outcome', async () => {
    const r = await fleet.cli(['jobs']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^JID\s+KIND\s+TARGET\s+SLS\s+TEST\s+BY\s+INTENT\s+REVISION\s+CHANGED\s+RESULT/);
    expect(r.stdout).toMatch(/\d{20}\s+apply\s+b1\s+\S+\s+no\s+\S+@cli\s+intentional\s+[0-9a-f]{12}\s+\d+\s+failed=1/);
  });
});
