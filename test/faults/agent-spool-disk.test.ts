/**
 * An agent whose jobs finish while the master is away keeps their returns in its spool journal
 * only (spool/returns.jsonl), not in its memory too: a long outage with many large returns must
 * not grow the daemon. Measured is what the spool object holds (every string, number and
 * collection reachable from its fields), not the process's RSS. Once the master is back every
 * return is read back from disk, delivered once and stored, and the journal is emptied.
 * A real agent daemon (in this process, so its spool can be looked at) over mutual TLS to a
 * real master process.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { spooledJids } from '../../agent/connection/spool.js';
import { AgentDaemon } from '../../agent/daemon.js';
import { makeLogger } from '../../core/log.js';
import { buildOnce, Fleet, waitFor } from '../integration/fleet-harness.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };
const N = 12;
const OUT_BYTES = 400_000;

/** Bytes of data reachable from `root`'s fields (strings by length, numbers 8), its logger aside. */
function heldBytes(root: object): number {
  const seen = new Set<unknown>();
  const walk = (v: unknown): number => {
    if (typeof v === 'string') return v.length;
    if (typeof v === 'number') return 8;
    if (!v || typeof v !== 'object' || seen.has(v)) return 0;
    seen.add(v);
    if (v instanceof Map) return [...v].reduce((n, [k, x]) => n + walk(k) + walk(x), 0);
    if (v instanceof Set || Array.isArray(v)) return [...v].reduce((n: number, x) => n + walk(x), 0);
    if (Buffer.isBuffer(v)) return v.length;
    return Object.entries(v).reduce((n, [k, x]) => n + (k === 'log' ? 0 : walk(x)), 0);
  };
  return walk(root);
}

describe('faults: returns spooled during an outage stay on disk', () => {
  let fleet: Fleet;
  let agent: AgentDaemon;
  const lines: string[] = [];
  const out = () => lines.join('');
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { heartbeat_s: 30, lost_after_s: 600 } });
    await fleet.startMaster();
    // commands run in the daemon itself (no job worker): the returns are made where they are spooled
    const cfg = loadAgentConfig(fleet.agentConfig('s1', { cfg: { heartbeat_s: 30, multiprocessing: false } }));
    agent = new AgentDaemon(cfg, makeLogger('debug', 'agent s1', (l) => lines.push(l)));
    await agent.start();
    await fleet.acceptAll(['s1']);
  });
  afterAll(async () => {
    await agent?.stop();
    await fleet?.stop();
  });

  it(`${N} large returns finished while the master is away are held on disk only, then delivered once each`, async () => {
    // N commands that finish after the master has gone, each with ~400 KB of output
    const runs = Array.from({ length: N }, (_, n) => fleet.cli(['run', 's1', `sleep 4; printf 'SPOOL-${n}-'; head -c ${OUT_BYTES} /dev/zero | tr '\\0' x`], 60_000));
    const started = await waitFor('every job started on the agent', () => {
      const jids = [...out().matchAll(/job (\d{20}): run command/g)].map((m) => m[1]!);
      return jids.length === N ? jids : undefined;
    }, 30_000);
    await fleet.killMasters('SIGTERM');
    await Promise.all(runs);
    await waitFor('every return spooled', () => (out().match(/finished \(master unreachable; spooled\)/g)?.length === N) || undefined, 30_000);
    const cache = path.join(fleet.dir, 'agents', 's1', 'cache');
    expect(spooledJids(cache).sort()).toEqual([...started].sort());
    const journal = path.join(cache, 'spool', 'returns.jsonl');
    expect(fs.statSync(journal).size).toBeGreaterThan(N * OUT_BYTES);

    // what the spool holds in memory: where each return is, not the returns (N x 400 KB before)
    const spool = (agent as unknown as { spool: object }).spool;
    expect(heldBytes(spool)).toBeLessThan(10_000);

    // the master back: every return read back from disk, delivered once, stored
    const from = out().length;
    await fleet.startMaster();
    await waitFor('the spool emptied', () => spooledJids(cache).length === 0 || undefined, 60_000);
    const outputs = new Set<string>();
    for (const jid of started) {
      const d = await fleet.json<{ agents: { status: string; body: { stdout?: string } | null }[] }>(['jobs', jid]);
      expect(d.agents[0]!.status).toBe('done');
      const stdout = d.agents[0]!.body!.stdout!;
      expect(stdout).toMatch(new RegExp(`^SPOOL-\\d+-x{${OUT_BYTES}}$`));
      outputs.add(stdout.split('-')[1]!);
      expect(out().slice(from).match(new RegExp(`delivering spooled return of job ${jid}`, 'g'))).toHaveLength(1);
    }
    expect(outputs.size).toBe(N); // each job's own output
    // delivered and acknowledged: the journal is emptied
    await waitFor('the journal emptied', () => fs.statSync(journal).size === 0 || undefined, 10_000);
    expect(heldBytes(spool)).toBeLessThan(1000);
  });
});
