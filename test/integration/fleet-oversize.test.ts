/**
 * Output bigger than the master accepts in one frame: the agent shortens it to its
 * max_return_bytes instead of being disconnected (and re-sending it forever), the job finishes,
 * and the agent takes the next job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from './fleet-harness.js';

const BIG = "head -c 3000000 /dev/zero | tr '[:cntrl:]' x; echo; echo LAST-LINE";
const states = {
  'big.sls': ['loud:', '  cmd.run:', `    - name: "${BIG}"`, 'after:', '  test.succeed_without_changes: []'].join('\n') + '\n',
};

describe('fleet: returns over the master frame limit', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    // the master takes frames up to 1 MiB; the agent keeps what it sends under 512 KiB
    fleet = new Fleet({ states, master: { max_frame_bytes: 1024 * 1024 } });
    await fleet.startMaster();
    fleet.startAgent('o1', { cfg: { max_return_bytes: 512 * 1024 } });
    await fleet.acceptAll(['o1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('a command printing 3 MB returns shortened, head and tail kept', async () => {
    const r = await fleet.cli(['run', 'o1', BIG, '--json'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { agents: Record<string, { status: string; body: { stdout: string } }> };
    const a = out.agents.o1!;
    expect(a.status).toBe('done');
    expect(a.body.stdout.length).toBeLessThan(512 * 1024);
    expect(a.body.stdout.startsWith('xxxx')).toBe(true);
    expect(a.body.stdout.trimEnd().endsWith('LAST-LINE')).toBe(true);
    expect(a.body.stdout).toMatch(/characters cut by tsalt/);
  });

  it('a state with 3 MB of output: the run completes with a warning on that state', async () => {
    const r = await fleet.cli(['apply', 'o1', 'big', '--json'], 60_000);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { agents: Record<string, { body: { report: { results: { id: string; warnings?: string[] }[] } } }> };
    const results = out.agents.o1!.body.report.results;
    expect(results.map((x) => x.id)).toEqual(['loud', 'after']);
    expect(results[0]!.warnings?.join(' ')).toMatch(/output shortened by \d+ characters to fit max_return_bytes/);
    const next = await fleet.cli(['run', 'o1', 'echo still-here']);
    expect(next.code).toBe(0);
    expect(next.stdout).toContain('still-here');
  });
});
