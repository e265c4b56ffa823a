/**
 * A CLI that stops reading its answer (suspended with Ctrl-Z, a pager nobody scrolls) must not
 * make the master hold a big job's events without bound: past MAX_PENDING_BYTES, once it has
 * read nothing for STALL_MS, the master drops that client with one log line naming it and what
 * was pending, the job goes on, its results are in the store for `tsalt jobs <jid>`, and the
 * next CLI is served as usual.
 *
 * The job: 3 agents, 8 states each printing 384 KiB: ~9 MiB of state_result events and ~9 MiB
 * of returns on the CLI socket, more than the cap and more than the kernel's socket buffers.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HARD_CAP_FACTOR, MAX_PENDING_BYTES } from '../../master/bounded-writer.js';
import { buildOnce, Fleet, REPO, TEST_MASTERS, waitFor } from './fleet-harness.js';
import { spawn } from 'node:child_process';
import path from 'node:path';

const OUT = 384 * 1024;
const STATES = 8;
// the first state outlasts the agent's mark (agent/result-hold.ts): the run streams every result
const big = Array.from({ length: STATES }, (_, i) => `out${i}:\n  cmd.run:\n    - name: ${i ? '' : 'sleep 1.5; '}head -c ${OUT} /dev/zero | tr '\\0' x\n`).join('');
/** the largest single event: one agent's return, every state's output again */
const LARGEST_EVENT = STATES * OUT + 64 * 1024;
const AGENTS = ['s1', 's2', 's3'];
const APPLY = JSON.stringify({ type: 'apply', target: '*', tgt_type: 'glob', sls: ['big'], test: false, user: 'slow-reader-test' });
const DROPPED = /cli client #\d+ \((apply "\*"), job (\d{20})\): stopped reading with (\d+) bytes .* dropped it; job \2 goes on/;

describe('fleet: a CLI that stops reading is dropped, the job goes on', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'big.sls': big, 'small.sls': 'hi:\n  test.succeed_without_changes: []\n' } });
    await fleet.startMaster();
    fleet.startAgents(AGENTS.map((id) => fleet.agentConfig(id)));
    await fleet.acceptAll(AGENTS);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  /** The job's rows in the store, through a fresh CLI: every agent done, every state's full output. */
  async function expectStored(jid: string): Promise<void> {
    const shown = await fleet.json<{ job: { jid: string }; agents: { agent_id: string; status: string; results: { changes: { stdout?: string } }[] }[] }>(['jobs', jid]);
    expect(shown.job.jid).toBe(jid);
    expect(shown.agents.map((a) => [a.agent_id, a.status]).sort()).toEqual(AGENTS.map((id) => [id, 'done']));
    for (const a of shown.agents) {
      const outs = a.results.map((r) => r.changes.stdout?.length);
      expect(outs, a.agent_id).toEqual(Array(STATES).fill(OUT));
    }
  }

  it('a suspended `tsalt apply` (SIGSTOP): dropped past the cap, job stored, next CLI served', async () => {
    const from = fleet.master!.out.length;
    const cli = spawn(process.execPath, [path.join(REPO, 'bin/tsalt.js'), 'apply', '*', 'big', '--socket', fleet.sock], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    cli.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    cli.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const exited = new Promise<number | null>((r) => cli.on('exit', (code) => r(code)));
    await fleet.master!.waitOutput(/cli: apply/, 20_000, from);
    cli.kill('SIGSTOP'); // Ctrl-Z: the process reads nothing more from the master's socket
    try {
      const m = await fleet.master!.waitOutput(DROPPED, 60_000, from);
      const pending = Number(m[3]);
      // dropped over the cap, and never more than the hard cap and one event waited for it
      expect(pending).toBeGreaterThan(MAX_PENDING_BYTES);
      expect(pending).toBeLessThanOrEqual(HARD_CAP_FACTOR * MAX_PENDING_BYTES + LARGEST_EVENT);
      const jid = m[2]!;
      await fleet.master!.waitOutput(new RegExp(`job ${jid}: complete \\(exit 0\\)`), 60_000, from);
      expect(fleet.master!.out.slice(from).match(/stopped reading with/g)).toHaveLength(1);
      await expectStored(jid);
      // the next client is served as usual
      const next = await fleet.cli(['apply', '*', 'small']);
      expect(next.code, next.stderr).toBe(0);
      for (const id of AGENTS) expect(next.stdout).toContain(`${id}:`);
    } finally {
      cli.kill('SIGCONT');
    }
    // resumed, it reads what the kernel had and then the end of a cut-off answer
    expect(await exited).not.toBe(0);
    expect(stderr).toMatch(/dropped this client for not reading its answer/);
    expect(stdout).not.toMatch(/^Summary for s3$/m);
  });

  it('a raw client whose socket is paused: same, and a second raw client gets the whole answer', async () => {
    const from = fleet.master!.out.length;
    const stalled = net.connect(fleet.sock);
    let got = 0;
    const closed = new Promise<void>((r) => stalled.on('close', () => r()));
    stalled.on('error', () => {});
    stalled.on('connect', () => stalled.write(APPLY + '\n'));
    // the first event read, then nothing more: the socket stays open, unread
    stalled.once('data', (b: Buffer) => {
      got += b.length;
      stalled.pause();
    });
    const m = await fleet.master!.waitOutput(DROPPED, 60_000, from).catch((e: Error) => {
      throw new Error(`${e.message}\n${fleet.master!.out.slice(from).slice(-3000)}`);
    });
    expect(Number(m[3])).toBeLessThanOrEqual(HARD_CAP_FACTOR * MAX_PENDING_BYTES + LARGEST_EVENT);
    const jid = m[2]!;
    await fleet.master!.waitOutput(new RegExp(`job ${jid}: complete \\(exit 0\\)`), 60_000, from);
    await expectStored(jid);

    // a client that reads: the whole stream, ending with the end event
    const reader = net.connect(fleet.sock);
    let text = '';
    reader.setEncoding('utf8');
    reader.on('connect', () => reader.write(APPLY + '\n'));
    reader.on('data', (s: string) => (text += s));
    await new Promise<void>((r) => reader.on('close', () => r()));
    type Ev = { type: string; code?: number; agent?: string; result?: { run_num: number }; body?: { report?: { results: { run_num: number }[] } } };
    const events = text.trim().split('\n').map((l) => JSON.parse(l) as Ev);
    expect(events.at(-1)).toEqual({ type: 'end', code: 0 });
    // every result of every agent: each as a state_result event (progress) or, at the latest, in
    // the agent's agent_done (its return). On the pair, a progress event of an agent on the
    // other master whose return overtook it is not sent (master/jobs.ts remoteProgress): the
    // return holds it. On one master, every result is also a state_result event.
    const streamed = events.filter((e) => e.type === 'state_result');
    for (const id of AGENTS) {
      const runs = new Set(streamed.filter((e) => e.agent === id).map((e) => e.result!.run_num));
      for (const r of events.find((e) => e.type === 'agent_done' && e.agent === id)?.body?.report?.results ?? []) runs.add(r.run_num);
      expect(runs.size, id).toBe(STATES);
    }
    if (TEST_MASTERS === 1) expect(streamed).toHaveLength(AGENTS.length * STATES);
    expect(text.length).toBeGreaterThan(MAX_PENDING_BYTES * 2);

    // the stalled one, resumed, reads what its kernel buffer held, then the master's close
    stalled.on('data', (b: Buffer) => (got += b.length));
    stalled.resume();
    await closed;
    expect(got).toBeLessThan(text.length);
    await waitFor('no more drops', () => (fleet.master!.out.slice(from).match(/stopped reading with/g)?.length === 1 ? true : undefined));
  });
});
