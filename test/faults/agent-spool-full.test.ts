/**
 * The agent's disk full when it spools a return (its cache_dir on a small real tmpfs). The
 * return still reaches the master (the agent neither crashes nor loses it), the journal keeps no
 * piece of the line that did not fit (the next line would run into it, and every later offset
 * would be wrong); once there is room again returns are spooled and delivered as before, and a
 * restarted agent finds its journal whole.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from '../integration/fleet-harness.js';

interface RunJson {
  code: number;
  agents: Record<string, { status: string; body?: { stdout?: string } }>;
}

/** Fills the file system of `file` but for about `leave` bytes. */
function fill(file: string, leave: number): void {
  const fd = fs.openSync(file, 'w');
  const chunk = Buffer.alloc(64 * 1024, 1);
  try {
    for (;;) fs.writeSync(fd, chunk);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOSPC') throw e;
  }
  fs.ftruncateSync(fd, Math.max(0, fs.fstatSync(fd).size - leave));
  fs.closeSync(fd);
}

describe('faults: the agent spools a return on a full disk', () => {
  let fleet: Fleet;
  let cache: string;
  let mounted = false;
  const journal = () => path.join(cache, 'spool', 'returns.jsonl');
  const journalLines = () => {
    const text = fs.existsSync(journal()) ? fs.readFileSync(journal(), 'utf8') : '';
    return { text, lines: text.split('\n').filter(Boolean) };
  };

  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states: { 'top.sls': "base:\n  '*': []\n" } });
    await fleet.startMaster();
    cache = path.join(fleet.dir, 'agents', 's1', 'cache');
    fs.mkdirSync(cache, { recursive: true });
    const m = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', cache], { encoding: 'utf8' });
    if (m.status !== 0) throw new Error(`mount tmpfs: ${m.stderr}`);
    mounted = true;
    fleet.startAgent('s1');
    await fleet.acceptAll(['s1']);
  }, 120_000);
  afterAll(async () => {
    // the agent off the tmpfs, the tmpfs off the fleet's directory, then the fleet removed
    await Promise.all((fleet?.agents ?? []).map((a) => a.kill('SIGKILL')));
    if (mounted) spawnSync('umount', ['-l', cache]);
    await fleet?.stop();
  });

  it('the return reaches the master anyway, no piece of it stays in the journal, and spooling resumes with room', async () => {
    const agent = fleet.agents[0]!;
    const filler = path.join(cache, 'filler');
    // room for a piece of the return's line, not for all of it
    fill(filler, 48 * 1024);
    const big = await fleet.json<RunJson>(['run', 's1', 'head -c 150000 /dev/zero | tr "\\0" x']);
    expect(big.agents.s1!.status).toBe('done');
    expect(big.agents.s1!.body!.stdout).toHaveLength(150_000);
    expect(agent.out).toMatch(/the return could not be spooled \(ENOSPC[^)]*\); sent without a copy on disk/);
    expect(agent.running).toBe(true);
    // the journal holds whole lines only (or nothing)
    const after = journalLines();
    expect(after.text === '' || after.text.endsWith('\n')).toBe(true);
    for (const l of after.lines) expect(() => JSON.parse(l)).not.toThrow();

    // room again: the next return is spooled (a line, then its acknowledgement) and delivered
    fs.rmSync(filler);
    const small = await fleet.json<RunJson>(['run', 's1', 'echo room again']);
    expect(small.agents.s1).toMatchObject({ status: 'done', body: { stdout: 'room again\n' } });
    expect(journalLines().lines.some((l) => l.includes('room again'))).toBe(true);

    // a restarted agent reads its journal whole: nothing set aside, nothing left to deliver
    await agent.kill('SIGTERM');
    const again = fleet.startAgent('s1');
    await fleet.waitConnected(['s1']);
    const third = await fleet.json<RunJson>(['run', 's1', 'echo third']);
    expect(third.agents.s1!.status).toBe('done');
    expect(again.out).not.toMatch(/unreadable|moved aside|delivering spooled return/);
    expect(fs.existsSync(`${journal()}.bad`)).toBe(false);
  });
});
