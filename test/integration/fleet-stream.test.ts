/**
 * Which state results an agent streams, and how often the master writes each (issue 14: a no-op
 * job is one frame each way per agent). A run that ends within the agent's mark
 * (agent/result-hold.ts STREAM_AFTER_MS) streams nothing: its return carries every result and
 * the store writes each once. A run that lasts streams: what it did so far is in the store
 * before its return, and the return writes none of those again, on either store and when the
 * streamed ones were stored by another master (the pair, an agent failing over mid-run).
 *
 * Writes are counted by the test's own triggers on state_results (an insert, or an update when
 * a row is written again), on SQLite and on PostgreSQL alike. Both agent paths: `w1` runs jobs
 * in its job worker, `i1` in its own process (multiprocessing: False).
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, newPgDatabase, TEST_STORE, waitFor } from './fleet-harness.js';

const states = {
  'fast.sls': 'first:\n  test.succeed_without_changes: []\nsecond:\n  test.succeed_without_changes: []\n',
  // 'early' ends at once, then a state that outlasts the mark, then one more
  'lasting.sls': 'early:\n  test.succeed_with_changes: []\nwait:\n  cmd.run:\n    - name: sleep 3\nlate:\n  test.succeed_without_changes: []\n',
  'lasting-long.sls': 'early:\n  test.succeed_with_changes: []\nwait:\n  cmd.run:\n    - name: sleep 6\nlate:\n  test.succeed_without_changes: []\n',
};

/** The test's write log of state_results: one row per insert and per update of a result. */
async function countWrites(fleet: Fleet): Promise<void> {
  if (/^postgres/.test(String(fleet.masterCfg.store ?? ''))) {
    await fleet.storeExec(`
      CREATE TABLE test_result_writes (jid text, agent_id text, run_num int, op text);
      CREATE FUNCTION test_result_write() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO test_result_writes VALUES (NEW.jid, NEW.agent_id, NEW.run_num, lower(TG_OP)); RETURN NULL; END $$;
      CREATE TRIGGER test_result_write AFTER INSERT OR UPDATE ON state_results FOR EACH ROW EXECUTE FUNCTION test_result_write();`);
    return;
  }
  await fleet.storeExec(`
    CREATE TABLE test_result_writes (jid TEXT, agent_id TEXT, run_num INTEGER, op TEXT);
    CREATE TRIGGER test_result_insert AFTER INSERT ON state_results BEGIN INSERT INTO test_result_writes VALUES (NEW.jid, NEW.agent_id, NEW.run_num, 'insert'); END;
    CREATE TRIGGER test_result_update AFTER UPDATE ON state_results BEGIN INSERT INTO test_result_writes VALUES (NEW.jid, NEW.agent_id, NEW.run_num, 'update'); END;`);
}

/** Each write of job `jid`'s results: `agent/run_num op`, sorted. */
async function writesOf(fleet: Fleet, jid: string): Promise<string[]> {
  const rows = await fleet.storeQuery(`SELECT agent_id, run_num, op FROM test_result_writes WHERE jid = '${jid}'`);
  return rows.map((r) => `${String(r.agent_id)}/${Number(r.run_num)} ${String(r.op)}`).sort();
}

/** Each agent's `n` results inserted once and never written again. */
const once = (ids: string[], n: number) => ids.flatMap((id) => Array.from({ length: n }, (_, i) => `${id}/${i} insert`)).sort();

/** The stored 'early' result of each agent of job `jid`, with the agent's run status then. */
const earlyOf = (jid: string) =>
  `SELECT s.agent_id, j.status FROM state_results s JOIN job_agents j ON j.jid = s.jid AND j.agent_id = s.agent_id WHERE s.jid = '${jid}' AND s.state_id = 'early'`;

interface Ev {
  type: string;
  jid?: string;
  agent?: string;
  result?: { id: string };
  body?: { kind: string; report?: { results: { id: string; run_num: number }[] } };
}

/** An apply through the CLI socket, every event the CLI would get. */
function applyEvents(sock: string, target: string, sls: string[]): Promise<Ev[]> {
  return new Promise((resolve, reject) => {
    const c = net.connect(sock);
    let text = '';
    c.setEncoding('utf8');
    c.on('connect', () => c.write(JSON.stringify({ type: 'apply', target, tgt_type: 'list', sls, test: false, user: 'stream-test' }) + '\n'));
    c.on('data', (s: string) => (text += s));
    c.on('error', reject);
    c.on('close', () => resolve(text.trim().split('\n').map((l) => JSON.parse(l) as Ev)));
  });
}

describe('fleet: state results are streamed only by a run that lasts, and stored once', () => {
  let fleet: Fleet;
  const ids = ['w1', 'i1'];

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    fleet.startAgent('w1');
    fleet.startAgent('i1', { cfg: { multiprocessing: false } });
    await fleet.acceptAll(ids);
    await countWrites(fleet);
    // the first job starts w1's job worker (and loads the engine in both): not the run measured
    const warm = await fleet.json<{ code: number }>(['apply', 'w1,i1', '-L', 'fast']);
    expect(warm.code).toBe(0);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a run that ends within the mark streams nothing; its return stores every result, each once', async () => {
    const events = await applyEvents(fleet.sock, 'w1,i1', ['fast']);
    const jid = events.find((e) => e.type === 'job_started')!.jid!;
    expect(events.at(-1)).toEqual({ type: 'end', code: 0 });
    expect(events.filter((e) => e.type === 'state_result')).toEqual([]);
    // the agents' outputs have every state all the same
    for (const id of ids) {
      const done = events.find((e) => e.type === 'agent_done' && e.agent === id)!;
      expect(done.body!.report!.results.map((r) => r.id), id).toEqual(['first', 'second']);
    }
    expect(await writesOf(fleet, jid)).toEqual(once(ids, 2));
    const shown = await fleet.json<{ agents: { agent_id: string; results: { id: string }[] }[] }>(['jobs', jid]);
    for (const a of shown.agents) expect(a.results.map((r) => r.id), a.agent_id).toEqual(['first', 'second']);

    // `tsalt apply` prints every state of each agent (its highstate), no progress line per state
    const human = await fleet.cli(['apply', 'w1,i1', '-L', 'fast']);
    expect(human.code, human.stderr).toBe(0);
    for (const id of ids) expect(human.stdout).toMatch(new RegExp(`${id}:\\n[^]*ID: first\\n[^]*ID: second\\n[^]*Summary for ${id}`));
    expect(human.stderr).not.toMatch(/test\.succeed_without_changes/);
  });

  it('a run that lasts streams: its results are in the store before its return, and written once', async () => {
    const from = fleet.agents.map((a) => a.out.length);
    const cli = fleet.cli(['apply', 'w1,i1', '-L', 'lasting']);
    const jid = (await fleet.agents[0]!.waitOutput(/job (\d{20}): apply lasting/, 20_000, from[0]))[1]!;
    // 'early' is stored while the runs are still in 'wait' (their returns not in)
    const seen = await waitFor('early results stored mid-run', async () => {
      const rows = await fleet.storeQuery(earlyOf(jid));
      return rows.length === ids.length ? rows : undefined;
    });
    expect(seen.map((r) => String(r.status))).toEqual(['running', 'running']);
    const r = await cli;
    expect(r.code, r.stderr).toBe(0);
    // the CLI printed each state as it came, then the highstates
    for (const id of ids) {
      for (const line of ['test.succeed_with_changes early: changed', 'cmd.run wait: changed', 'test.succeed_without_changes late: ok']) {
        expect(r.stderr).toContain(`  ${id}: ${line}\n`);
      }
      expect(r.stdout).toMatch(new RegExp(`${id}:\\n[^]*ID: early\\n[^]*ID: wait\\n[^]*ID: late\\n`));
    }
    expect(await writesOf(fleet, jid)).toEqual(once(ids, 3));
  });
});

// two masters on PostgreSQL of its own: in the fleet project only (the fleet-pg rerun runs the
// cases above on its pair of masters already)
describe.skipIf(TEST_STORE === 'postgres')('fleet: results streamed to one master, the return to the other (two masters, one PostgreSQL)', () => {
  let fleet: Fleet;
  const ids = ['fw1', 'fi1'];

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { store: await newPgDatabase(), master_heartbeat_s: 1 } });
    await fleet.startMaster();
    if (!fleet.master2) await fleet.startMaster2();
    const m1 = `127.0.0.1:${fleet.port}`;
    const m2 = `127.0.0.1:${fleet.port2}`;
    // held by the first master; the second takes them when it is killed
    const cfg = { master: [m1, m2], master_type: 'failover', master_finger: { [m1]: fleet.fingerprint, [m2]: fleet.fingerprint2 } };
    fleet.startAgent('fw1', { cfg });
    fleet.startAgent('fi1', { cfg: { ...cfg, multiprocessing: false } });
    await fleet.acceptAll(ids);
    await countWrites(fleet);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a master killed after storing what was streamed: the other stores the return without writing those again', async () => {
    for (const [i, id] of ids.entries()) await fleet.agents[i]!.waitOutput(new RegExp(`agent ${id}: connected to wss://127.0.0.1:${fleet.port}/`));
    // started on the second master, so that the job's owner lives on
    const cli = fleet.cli(['apply', 'fw1,fi1', '-L', 'lasting-long', '--timeout', '120'], 180_000, fleet.sock2);
    const jid = (await fleet.agents[0]!.waitOutput(/job (\d{20}): apply lasting-long/))[1]!;
    const seen = await waitFor('early results stored by the first master', async () => {
      const rows = await fleet.storeQuery(earlyOf(jid));
      return rows.length === ids.length ? rows : undefined;
    });
    await fleet.master!.kill('SIGKILL');
    // streamed mid-run (the runs go on, on the agents)
    expect(seen.map((r) => String(r.status))).toEqual(['running', 'running']);
    const r = await cli;
    expect(r.code, r.stderr).toBe(0);
    const job = await fleet.cli(['jobs', jid, '--json'], 60_000, fleet.sock2);
    const shown = JSON.parse(job.stdout) as { agents: { agent_id: string; status: string; results: { id: string }[] }[] };
    expect(shown.agents.map((a) => a.agent_id).sort()).toEqual([...ids].sort());
    for (const a of shown.agents) {
      expect(a.status, a.agent_id).toBe('done');
      expect(a.results.map((x) => x.id), a.agent_id).toEqual(['early', 'wait', 'late']);
    }
    expect(await writesOf(fleet, jid)).toEqual(once(ids, 3));
  });
});
