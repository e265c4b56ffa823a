/**
 * Releases through a real bare repository and real `git push`: the master serves `git:`, a push
 * becomes the desired revision and is rolled out; pillar comes from the pushed commit; a
 * force-push of another history is refused; `tsalt rollback` holds through scheduled runs;
 * `tsalt revisions` and `tsalt status` show it all (issue 8, failures 1, 2, 5, 7). A rollout
 * the store fails mid-way (the test's trigger, on either store) ends failed with the reason,
 * never left rolling out; a push the store fails to make desired is failed with the reason and
 * tried again, never taken as dealt with, also by the master acting on pushes after the one that
 * failed it died (restarted, or the other master of a pair).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, waitFor } from './fleet-harness.js';
import { ReleaseFleet } from './release-harness.js';

interface RevisionLine {
  sha: string;
  subject: string;
  author: string;
  outcome: string;
  desired: boolean;
  detail: string | null;
  agents_applied: number;
  agents_failed: number;
}
interface Status {
  desired: string;
  head: string;
  last_rollout: { revision: string; status: string; reason: string } | null;
  agents: { id: string; revision: string; revision_applied: string | null; revision_attempted: string | null; attempt_status: string | null; sync: string }[];
}
interface JobSummary {
  jid: string;
  started_by: string;
  revision: string;
  intent: string;
}

const files = (tag: string, port: number) => ({
  'states/top.sls': "base:\n  '*':\n    - app\n",
  'states/app.sls': `/etc/app.conf:\n  file.managed:\n    - makedirs: True\n    - contents: "release=${tag} port={{ pillar['app']['port'] }}"\n`,
  'pillar/top.sls': "base:\n  '*':\n    - app\n",
  'pillar/app.sls': `app:\n  port: ${port}\n`,
});

/**
 * The test's faults: SQL triggers by which the store refuses a write, on either store. `batches`:
 * a rollout's batch plan (after the rollout's row is created); `desired`: moving the desired
 * revision (after the push is recorded).
 */
const FAULTS = {
  batches: { op: 'INSERT', table: 'rollout_batches', when: undefined, message: 'batches refused by the test' },
  desired: { op: 'UPDATE', table: 'meta', when: "NEW.key = 'desired.revision'", message: 'desired revision refused by the test' },
} as const;
type Fault = keyof typeof FAULTS;

/** The SQL that makes the store refuse (`on`) or no longer refuse (dropped if it is there) as `fault` says. */
function faultSql(fault: Fault, pg: boolean, on: boolean): string {
  const { op, table, when, message } = FAULTS[fault];
  const name = `test_refuse_${fault}`;
  if (!on) return pg ? `DROP TRIGGER IF EXISTS ${name} ON ${table}; DROP FUNCTION IF EXISTS ${name}();` : `DROP TRIGGER IF EXISTS ${name};`;
  if (pg) {
    return `CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '${message}'; END $$;
      CREATE TRIGGER ${name} BEFORE ${op} ON ${table} FOR EACH ROW${when ? ` WHEN (${when})` : ''} EXECUTE FUNCTION ${name}();`;
  }
  return `CREATE TRIGGER ${name} BEFORE ${op} ON ${table}${when ? ` WHEN ${when}` : ''}
    BEGIN SELECT RAISE(ABORT, '${message}'); END;`;
}

describe('fleet: releases from a bare repository', () => {
  let fleet: ReleaseFleet;
  let v1: string;
  const revisions = () => fleet.json<RevisionLine[]>(['revisions']);
  const status = () => fleet.json<Status>(['status']);
  const inSync = (rev: string) =>
    waitFor(`every agent in sync on ${rev.slice(0, 12)}`, async () => {
      const s = await status();
      return s.desired === rev && s.agents.length === 2 && s.agents.every((a) => a.sync === 'in_sync' && a.revision_applied === rev) ? s : undefined;
    }, 40_000);

  beforeAll(async () => {
    buildOnce();
    fleet = new ReleaseFleet({
      files: files('v1', 8001),
      master: { rollout: { target: 'r*', batch: 1 } },
    });
    v1 = fleet.git(fleet.work, 'rev-parse', 'HEAD');
    await fleet.startMaster();
    fleet.startAgents([fleet.agentConfig('r1'), fleet.agentConfig('r2')]);
    await fleet.acceptAll(['r1', 'r2']);
  });
  // the store refuses while a case says so, and never past it: a case that fails does not leave
  // its fault to the next ones
  const faults = new Set<Fault>();
  const onPg = () => /^postgres/.test(String(fleet.masterCfg.store ?? ''));
  const refuse = async (fault: Fault) => {
    faults.add(fault);
    await fleet.storeExec(faultSql(fault, onPg(), true));
  };
  const allow = async (fault: Fault) => {
    await fleet.storeExec(faultSql(fault, onPg(), false));
    faults.delete(fault);
  };
  afterEach(async (ctx) => {
    for (const f of [...faults]) await allow(f);
    // a case that failed half way can leave its push desired and the agents held off it (a
    // rollout refused mid-way): the fleet is put back in sync on the desired revision, so the
    // next cases (each starts from "every agent in sync") test their own thing, not this one's failure
    if (ctx.task.result?.state === 'fail') {
      const { desired } = await status();
      if (desired) await fleet.cli(['rollout', desired, '--force'], 60_000);
      if (desired) await inSync(desired);
    }
  });
  afterAll(async () => {
    if (process.env.TSALT_DEBUG) console.log(fleet?.master?.out, fleet?.agents.map((a) => a.out).join('\n'));
    await fleet?.stop();
  });

  it('the first revision pushed is desired; agents that connect get it, states and pillar of that commit', async () => {
    await inSync(v1);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v1 port=8001');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v1 port=8001');
  });

  it('a git push is rolled out; pillar comes from the pushed commit, not from a work tree', async () => {
    const v2 = fleet.push('v2: port 8002', files('v2', 8002));
    // an uncommitted edit in the operator's clone is never read
    fleet.edit({ 'pillar/app.sls': 'app:\n  port: 9999\n' });
    await inSync(v2);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
    const jobs = (await fleet.json<JobSummary[]>(['jobs'])).filter((j) => j.revision === v2);
    expect(jobs.length).toBeGreaterThan(0);
    expect(jobs.every((j) => j.intent === 'intentional')).toBe(true);
    fleet.edit({ 'pillar/app.sls': 'app:\n  port: 8002\n' });
  });

  it('--revision of an older commit uses that commit\'s pillar, once; a plain apply stays on the desired one', async () => {
    const r = await fleet.cli(['apply', 'r1', '--revision', v1]);
    expect(r.code, r.stderr).toBe(0);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v1 port=8001');
    const s = await status();
    expect(s.agents.find((a) => a.id === 'r1')).toMatchObject({ revision_applied: v1, sync: 'behind' });
    const r2 = await fleet.cli(['apply', 'r1']);
    expect(r2.code, r2.stderr).toBe(0);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
  });

  it('a force-push of another history is recorded, refused, and rolled out only with --force', async () => {
    const before = (await status()).desired;
    // another history: a new root commit pushed over the branch
    fleet.git(fleet.work, 'checkout', '-q', '--orphan', 'other');
    const other = fleet.push('another history', files('other', 7000), { force: true });
    const refused = await waitFor('the push refused', async () => (await revisions()).find((r) => r.sha === other && r.outcome === 'refused'));
    expect(refused.detail).toMatch(/does not descend from the desired revision/);
    expect((await status()).desired).toBe(before);
    // a plain apply gives the desired revision, never the newer branch head
    const plain = await fleet.cli(['apply', '*']);
    expect(plain.code, plain.stderr).toBe(0);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
    const no = await fleet.cli(['rollout', other]);
    expect(no.code).toBe(1);
    expect(no.stderr).toMatch(/does not descend from the desired revision .*--force/);
    const yes = await fleet.cli(['rollout', other, '--force']);
    expect(yes.code, yes.stderr).toBe(0);
    expect(yes.stdout).toMatch(/batch 2\/2/);
    await inSync(other);
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=other port=7000');
  });

  it('a pushed commit without top.sls is refused with the reason; the next good push goes out', async () => {
    const before = (await status()).desired;
    const bad = fleet.push('oops: top.sls deleted', { 'states/top.sls': null });
    const r = await waitFor('the push refused', async () => (await revisions()).find((x) => x.sha === bad && x.outcome === 'refused'));
    expect(r.detail).toMatch(/revision [0-9a-f]{12} has no top\.sls in states\/ of .*config\.git/);
    expect((await status()).desired).toBe(before);
    expect(fleet.master!.out).toMatch(/warn .*pushed revision [0-9a-f]{12} refused: revision [0-9a-f]{12} has no top\.sls/);
    const fixed = fleet.push('top.sls back', { 'states/top.sls': files('other', 7000)['states/top.sls'] });
    await inSync(fixed);
  });

  it('tsalt rollback puts the exact files and pillar of an older commit back and makes it desired', async () => {
    const v2 = (await revisions()).find((x) => x.subject === 'v2: port 8002')!.sha;
    const r = await fleet.cli(['rollback', v2]);
    expect(r.code, r.stderr).toBe(0);
    await inSync(v2);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
    const revs = await revisions();
    expect(revs.find((x) => x.sha === v2)).toMatchObject({ desired: true, agents_applied: 2 });
    expect(revs.find((x) => x.subject === 'top.sls back')).toMatchObject({ desired: false, outcome: 'rolled_back' });
  });

  it('tsalt rollback REV TARGET holds those agents on REV; the desired revision stays; a bad revision is a clear error', async () => {
    const desired = (await status()).desired;
    const r = await fleet.cli(['rollback', v1, 'r1']);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const s = await status();
    expect(s.desired).toBe(desired);
    expect(s.agents.find((a) => a.id === 'r1')).toMatchObject({ revision: v1, revision_applied: v1, sync: 'held' });
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v1 port=8001');
    // a plain apply keeps it there
    expect((await fleet.cli(['apply', '*'])).code).toBe(0);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v1 port=8001');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v2 port=8002');
    const bad = await fleet.cli(['rollback', 'nosuchrev']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown revision 'nosuchrev' in .*config\.git/);
    // back to the desired revision for everyone
    expect((await fleet.cli(['rollback', desired])).code).toBe(0);
    await inSync(desired);
  });

  it('tsalt revisions and tsalt status print tables', async () => {
    const r = await fleet.cli(['revisions']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^REVISION\s+DATE\s+AUTHOR\s+OUTCOME\s+AGENTS\s+SUBJECT/);
    expect(r.stdout).toMatch(/Op <op@example.invalid>\s+desired.*2 ok\s+v2: port 8002/);
    expect(r.stdout).toMatch(/refused\s+0 ok\s+oops: top\.sls deleted/);
    expect(r.stdout).toMatch(/rolled back, head\s+0 ok\s+top\.sls back/);
    const s = await fleet.cli(['status']);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^AGENT\s+CONNECTED\s+REVISION\s+APPLIED\s+ATTEMPTED\s+RESULT\s+SYNC$/m);
    expect(s.stdout).toMatch(/^r1\s+yes\s+[0-9a-f]{12}\s+[0-9a-f]{12}\s+[0-9a-f]{12}\s+done\s+in sync$/m);
    // bad flags and arguments: a one-line error, exit 1, no stack trace
    for (const args of [['status', '--bogus'], ['revisions', '-n', 'x'], ['rollout', 'a', 'b'], ['rollback']]) {
      const bad = await fleet.cli(args);
      expect(bad.code, args.join(' ')).toBe(1);
      expect(bad.stderr, args.join(' ')).not.toMatch(/\n\s+at /);
      expect(bad.stderr, args.join(' ')).toMatch(/tsalt (status|revisions): |usage: tsalt (rollout|rollback)/);
    }
  });

  it('tsalt revisions shows a commit subject with terminal escapes as visible text; --json keeps it', async () => {
    const subject = 'evil \x1b]0;pwned\x07\x1b[2J\u202esubject';
    const sha = fleet.push(subject, {});
    await waitFor('the evil commit seen', async () => (await revisions()).find((r) => r.sha === sha));
    expect((await revisions()).find((r) => r.sha === sha)!.subject).toBe(subject);
    const r = await fleet.cli(['revisions']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
    expect(r.stdout).toContain('evil \\x1b]0;pwned\\x07\\x1b[2J\\u202esubject');
  });

  it('a rollout the store fails in the middle of is failed with the reason, not left rolling out; the master stays up, the next push goes out', async () => {
    // the last push dealt with (refused: the clone is on the force-pushed history); back on the desired revision's
    await waitFor('the last push dealt with', async () => (['seen', 'rolling_out'].includes((await revisions())[0]?.outcome ?? 'seen') ? undefined : true));
    const desired = await inSync((await status()).desired);
    fleet.git(fleet.work, 'checkout', '-q', '-B', 'main', desired.desired);
    const before = fleet.agentFile('r1', 'etc/app.conf');
    // the store refuses the rollout's batch plan (after its row is created), the test's own trigger on either store
    await refuse('batches');
    const v3 = fleet.push('v3: port 8003', files('v3', 8003), { force: true });
    const failed = await waitFor('the push failed', async () => (await revisions()).find((r) => r.sha === v3 && r.outcome !== 'rolling_out' && r.outcome !== 'seen'));
    // desired: false was seen in 2 of 13 runs on a loaded machine: `tsalt revisions` read the desired
    // revision before the push was acted on and the outcomes after (the store reads them at once now,
    // releaseSnapshot()); should it recur, the masters' release lines say what moved it
    const why = () => `${JSON.stringify(failed)}\n${fleet.mastersOut.split('\n').filter((l) => /rollout|desired|revision|push/i.test(l)).slice(-60).join('\n')}`;
    expect(failed, failed.desired ? undefined : why()).toMatchObject({ outcome: 'failed', desired: true });
    expect(failed.detail).toMatch(/^the rollout did not finish: .*batches refused by the test/);
    // its rollout is closed as failed, not left running
    const s = await status();
    expect(s.last_rollout).toMatchObject({ revision: v3, status: 'failed', reason: 'push' });
    const listed = await fleet.cli(['revisions']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${v3.slice(0, 12)}: the rollout did not finish: `);
    // an operator's `tsalt rollout` that the store fails: an error, and the revision is failed again, not rolling out
    const again = await fleet.cli(['rollout', v3]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/batches refused by the test/);
    expect((await revisions()).find((r) => r.sha === v3)).toMatchObject({ outcome: 'failed', detail: expect.stringMatching(/batches refused by the test/) });
    expect(fleet.master!.running).toBe(true);
    if (fleet.master2) expect(fleet.master2.running).toBe(true);
    expect(fleet.agentFile('r1', 'etc/app.conf')).toBe(before);
    // the store is back: the next push rolls out as any
    await allow('batches');
    const v4 = fleet.push('v4: port 8004', files('v4', 8004));
    await inSync(v4);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v4 port=8004');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v4 port=8004');
    const revs = await revisions();
    expect(revs.find((r) => r.sha === v4)).toMatchObject({ outcome: 'rolled_out', desired: true });
    expect(revs.find((r) => r.sha === v3)).toMatchObject({ outcome: 'failed' });
    expect((await status()).last_rollout).toMatchObject({ revision: v4, status: 'succeeded' });
  });

  it('a push the store fails to make desired is failed with the reason, not taken as dealt with; tried again, it goes out once the store is back', async () => {
    const desired = (await inSync((await status()).desired)).desired;
    const before = fleet.agentFile('r1', 'etc/app.conf');
    // the store refuses to move the desired revision (after the push is recorded), the test's own trigger on either store
    await refuse('desired');
    const v5 = fleet.push('v5: port 8005', files('v5', 8005));
    const failed = await waitFor('the push failed', async () => (await revisions()).find((r) => r.sha === v5 && r.outcome === 'failed'));
    expect(failed).toMatchObject({ desired: false });
    expect(failed.detail).toMatch(/^the push could not be acted on: .*desired revision refused by the test/);
    const listed = await fleet.cli(['revisions']);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain(`${v5.slice(0, 12)}: the push could not be acted on: `);
    // tried again (and failing again): still failed, still not desired, nothing rolled out
    const logs = () => `${fleet.master!.out}${fleet.master2?.out ?? ''}`;
    await waitFor('the push tried again', async () => (/pushed revision [0-9a-f]{12} the push could not be acted on: .*try 3\//.test(logs()) ? true : undefined));
    expect((await revisions()).find((r) => r.sha === v5)).toMatchObject({ outcome: 'failed', desired: false });
    expect((await status()).desired).toBe(desired);
    expect(fleet.agentFile('r1', 'etc/app.conf')).toBe(before);
    expect(fleet.master!.running).toBe(true);
    if (fleet.master2) expect(fleet.master2.running).toBe(true);
    // the store is back: the push is acted on, without another push or an operator's command
    await allow('desired');
    await inSync(v5);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v5 port=8005');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v5 port=8005');
    expect((await revisions()).find((r) => r.sha === v5)).toMatchObject({ outcome: 'rolled_out', desired: true, detail: null });
    expect((await status()).last_rollout).toMatchObject({ revision: v5, status: 'succeeded', reason: 'push' });
  });

  it('a push failed by the master acting on pushes, which then dies: the master acting on pushes next (the other one, or the same one restarted) tries it again', async () => {
    const desired = (await inSync((await status()).desired)).desired;
    await refuse('desired');
    const v6 = fleet.push('v6: port 8006', files('v6', 8006));
    // the master holding the releases lease (either, in pair mode) failed it and will try it again
    const failedOn = new RegExp(`pushed revision ${v6.slice(0, 12)} the push could not be acted on: .*desired revision refused by the test; trying again`);
    const holder = await waitFor('the push failed', () => [fleet.master, fleet.master2].find((m) => m && failedOn.test(m.out)));
    expect((await revisions()).find((r) => r.sha === v6)).toMatchObject({ outcome: 'failed', desired: false });
    // it dies before its next try (its timer with it); then the store answers again
    await holder.kill('SIGKILL');
    await allow('desired');
    expect((await fleet.storeQuery('SELECT value FROM meta WHERE key = \'desired.revision\''))[0]?.value).toBe(desired);
    // one master: it restarts; a pair: the other master takes the releases lease over (after its TTL); the CLI asks a live one
    const next = fleet.master2 ? (holder === fleet.master ? fleet.master2 : fleet.master)! : await fleet.startMaster();
    const sock = next === fleet.master2 ? fleet.sock2 : fleet.sock;
    const via = async <T>(args: string[]): Promise<T> => JSON.parse((await fleet.cli([...args, '--json'], 60_000, sock)).stdout) as T;
    await next.waitOutput(new RegExp(`pushed revision ${v6.slice(0, 12)} could not be acted on \\(\\d+ tr(y|ies), the last at [^)]+\\): trying again`), 60_000);
    await waitFor('v6 rolled out', async () => {
      const s = await via<Status>(['status']);
      return s.desired === v6 && s.agents.length === 2 && s.agents.every((a) => a.sync === 'in_sync' && a.revision_applied === v6) ? s : undefined;
    }, 60_000);
    expect(fleet.agentFile('r1', 'etc/app.conf')?.trim()).toBe('release=v6 port=8006');
    expect(fleet.agentFile('r2', 'etc/app.conf')?.trim()).toBe('release=v6 port=8006');
    expect((await via<RevisionLine[]>(['revisions'])).find((r) => r.sha === v6)).toMatchObject({ outcome: 'rolled_out', desired: true, detail: null });
    expect((await via<Status>(['status'])).last_rollout).toMatchObject({ revision: v6, status: 'succeeded', reason: 'push' });
    // the pair whole again
    if (fleet.master2 && !holder.running) await (holder === fleet.master ? fleet.startMaster() : fleet.startMaster2());
  });
});
