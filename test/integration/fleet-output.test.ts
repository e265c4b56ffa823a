/**
 * What `tsalt apply` and `tsalt jobs` print, through the real CLI against a real master and
 * agents: Salt's --state-output / --state-verbose / --out, live progress on a terminal only,
 * the job list's filters and columns, killed jobs, and list targets naming unknown ids.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, REPO, waitFor, type CliResult } from './fleet-harness.js';

const BIN = path.join(REPO, 'bin/tsalt.js');
const states = {
  'top.sls': "base:\n  '*':\n    - ok\n",
  'ok.sls': 'changed:\n  test.succeed_with_changes: []\nsame:\n  test.succeed_without_changes: []\n',
  'mixed.sls': 'changed:\n  test.succeed_with_changes: []\nsame:\n  test.succeed_without_changes: []\nbroken:\n  test.fail_without_changes: []\n',
  'slow.sls': 'sleepy:\n  cmd.run:\n    - name: sleep 3\n',
};

function sh(script: string, sock: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', TSALT_SOCKET: sock, TSALT: `${process.execPath} ${BIN}`, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const FULL_BLOCK = /^----------$/m;
const terse = (name: string, fun: string, result: string) => new RegExp(`^  Name: ${name} - Function: ${fun} - Result: ${result} - Started: \\d\\d:\\d\\d:\\d\\d\\.\\d{3} - Duration: \\d+\\.\\d{3} ms$`, 'm');

describe('fleet: apply output and the job history', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    fleet.startAgents([fleet.agentConfig('a1'), fleet.agentConfig('b1')]);
    fleet.startAgent('p1');
    await fleet.acceptAll(['a1', 'b1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('--state-output terse: one line per state, Salt\'s words', async () => {
    const r = await fleet.cli(['apply', 'a1', 'mixed', '--state-output', 'terse']);
    expect(r.code).toBe(2);
    expect(r.stdout).not.toMatch(FULL_BLOCK);
    expect(r.stdout).toMatch(terse('changed', 'test.succeed_with_changes', 'Changed'));
    expect(r.stdout).toMatch(terse('same', 'test.succeed_without_changes', 'Clean'));
    expect(r.stdout).toMatch(terse('broken', 'test.fail_without_changes', 'Failed'));
    expect(r.stdout).toMatch(/^Summary for a1$/m);
    const t = await fleet.cli(['apply', 'a1', 'ok', '--test', '--state-output=terse']);
    expect(t.stdout).toMatch(terse('changed', 'test.succeed_with_changes', 'Differs'));
  });

  it('--state-output mixed: full only for failures; changes: full for changed or failed', async () => {
    const mixed = await fleet.cli(['apply', 'a1', 'mixed', '--state-output', 'mixed']);
    expect(mixed.stdout.match(/^ {10}ID: (\S+)$/gm)).toEqual(['          ID: broken']);
    expect(mixed.stdout).toMatch(terse('changed', 'test.succeed_with_changes', 'Changed'));
    const changes = await fleet.cli(['apply', 'a1', 'mixed', '--state-output', 'changes']);
    expect(changes.stdout.match(/^ {10}ID: (\S+)$/gm)).toEqual(['          ID: changed', '          ID: broken']);
    expect(changes.stdout).toMatch(terse('same', 'test.succeed_without_changes', 'Clean'));
    const full = await fleet.cli(['apply', 'a1', 'mixed']);
    expect(full.stdout.match(/^ {10}ID: (\S+)$/gm)).toHaveLength(3);
  });

  it('--state-verbose=False hides the states that succeeded without changes', async () => {
    const r = await fleet.cli(['apply', 'a1', 'mixed', '--state-verbose=False']);
    expect(r.stdout.match(/^ {10}ID: (\S+)$/gm)).toEqual(['          ID: changed', '          ID: broken']);
    const t = await fleet.cli(['apply', 'a1', 'mixed', '--state-verbose', 'false', '--state-output', 'terse']);
    expect(t.stdout).not.toMatch(/Name: same/);
  });

  it("--out json / yaml: Salt's return dicts per agent", async () => {
    const r = await fleet.cli(['apply', 'a1,b1', '-L', '--out', 'json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.stdout) as Record<string, Record<string, { result: boolean; changes: object; __id__: string; __sls__: string }>>;
    expect(Object.keys(j).sort()).toEqual(['a1', 'b1']);
    expect(Object.keys(j.a1!).sort()).toEqual(['test_|-changed_|-changed_|-succeed_with_changes', 'test_|-same_|-same_|-succeed_without_changes']);
    expect(j.a1!['test_|-changed_|-changed_|-succeed_with_changes']).toMatchObject({ result: true, __id__: 'changed', __sls__: 'ok' });
    const y = await fleet.cli(['apply', 'a1', '--out', 'yaml']);
    expect(Object.keys((loadSaltYaml(y.stdout) as Record<string, object>).a1!)).toHaveLength(2);
  });

  it('bad output options are one line and the usage', async () => {
    for (const [args, re] of [
      [['apply', 'a1', '--state-output', 'loud'], /^tsalt apply: --state-output takes full, terse, mixed, changes, not 'loud'$/],
      [['apply', 'a1', '--state-verbose=maybe'], /^tsalt apply: --state-verbose takes True or False, not 'maybe'$/],
      [['apply', 'a1', '--out', 'xml'], /^tsalt apply: --out takes highstate, json, yaml, not 'xml'$/],
      [['jobs', '--since', 'yesterday'], /^tsalt jobs: --since takes an ISO date\/time or an age like 30m, 2h, 7d; not 'yesterday'$/],
    ] as const) {
      const r = await fleet.cli([...args]);
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n')[0]).toMatch(re);
    }
  });

  it('live progress on a terminal, nothing extra in a pipe', async () => {
    // script(1) gives the CLI a terminal
    const tty = await sh(`script -qfec "$TSALT apply a1 slow" /dev/null`, fleet.sock);
    expect(tty.stdout).toMatch(/0\/1 agents returned, \d+s elapsed/);
    expect(tty.stdout).toMatch(/Summary for a1/);
    const piped = await sh('$TSALT apply a1 slow 2>&1 | cat', fleet.sock);
    expect(piped.stdout).not.toMatch(/agents returned/);
    expect(piped.stdout).not.toContain('\x1b[K');
  });

  it('a list target naming an unknown or unaccepted id says which, and runs nothing', async () => {
    const before = (await fleet.json<unknown[]>(['jobs', '-n', '1000'])).length;
    const r = await fleet.cli(['apply', '-L', 'a1,agnet2,p1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^tsalt apply: the target list names ids that match no accepted agent: agnet2 \(no such agent\), p1 \(key pending\); nothing was run$/m);
    const run = await fleet.cli(['run', '-L', 'a1,agnet2', 'true']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/agnet2 \(no such agent\)/);
    const compound = await fleet.cli(['apply', '-C', 'G@os:* and L@a1,agnet3']);
    expect(compound.code).toBe(1);
    expect(compound.stderr).toMatch(/an id that matches no accepted agent: agnet3 \(no such agent\)/);
    const call = await fleet.cli(['call', '-L', 'a1,agnet2', 'test.ping']);
    expect(call.code).toBe(1);
    const grains = await fleet.cli(['grains', '-L', 'agnet2']);
    expect(grains.stderr).toMatch(/an id that match(es)? no accepted agent: agnet2/);
    expect((await fleet.json<unknown[]>(['jobs', '-n', '1000'])).length).toBe(before);
    // a compound whose list names only accepted agents runs
    expect((await fleet.cli(['run', '-C', 'L@a1,b1 or G@roles:none', 'true'])).code).toBe(0);
  });

  it('tsalt jobs: filters by target, who, failure, test runs, time and count; SLS, TEST and CHANGED columns', async () => {
    const mk = async (args: string[], env: Record<string, string> = {}) => {
      const r = await sh(`$TSALT ${args.map((a) => `'${a}'`).join(' ')} --json`, fleet.sock, env);
      return (JSON.parse(r.stdout) as { jid: string }).jid;
    };
    const real = await mk(['apply', 'b1', 'ok'], { SUDO_USER: 'alice' });
    const test = await mk(['apply', 'b1', 'ok', '--test']);
    const failed = await mk(['apply', 'b1', 'mixed']);
    const cmd = await mk(['run', 'b1', 'true']);
    type Row = { jid: string; test: boolean; sls: string[] | null; changed: number };
    const list = async (...args: string[]) => (await fleet.json<Row[]>(['jobs', ...args])).map((j) => j.jid);
    expect((await list('--target', 'b1')).slice(0, 4)).toEqual([cmd, failed, test, real]);
    expect(await list('--by', 'alice')).toEqual([real]);
    expect(await list('--by', 'alice (sudo root)@cli')).toEqual([real]);
    expect((await list('--failed', '--target', 'b1'))[0]).toBe(failed);
    expect(await list('--failed', '--target', 'b1')).not.toContain(real);
    expect((await list('--test'))[0]).toBe(test);
    expect(await list('--test')).not.toContain(real);
    expect(await list('--limit', '2')).toEqual([cmd, failed]);
    expect(await list('--since', '1h', '--target', 'b1', '-n', '4')).toEqual([cmd, failed, test, real]);
    expect(await list('--since', '2999-01-01')).toEqual([]);
    const rows = await fleet.json<Row[]>(['jobs', '--target', 'b1', '-n', '4']);
    expect(rows.map((r) => [r.sls, r.test, r.changed])).toEqual([[null, false, 0], [['mixed'], false, 1], [['ok'], true, 0], [['ok'], false, 1]]);
    const text = await fleet.cli(['jobs', '--target', 'b1', '-n', '4']);
    const lines = text.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^JID\s+KIND\s+TARGET\s+SLS\s+TEST\s+BY\s+INTENT\s+REVISION\s+CHANGED\s+RESULT$/);
    expect(lines[1]).toMatch(new RegExp(`^${cmd}\\s+run\\s+b1\\s+-\\s+no\\s`));
    expect(lines[2]).toMatch(new RegExp(`^${failed}\\s+apply\\s+b1\\s+mixed\\s+no\\s.*\\s1\\s+failed=1$`));
    expect(lines[3]).toMatch(new RegExp(`^${test}\\s+apply\\s+b1\\s+ok\\s+yes\\s.*\\s-\\s+done=1$`));
    expect(lines[4]).toMatch(new RegExp(`^${real}\\s+apply\\s+b1\\s+ok\\s+no\\s+alice \\(sudo \\S+\\)@cli\\s+intentional\\s`));
  });

  it('a killed job says killed, in the list and in its detail; tsalt jobs JID takes the output options', async () => {
    const cli = fleet.cli(['apply', 'a1', 'slow']);
    const jid = await waitFor('the slow job', async () => (await fleet.json<{ jid: string; counts: { running: number } }[]>(['jobs', '-n', '1'])).find((j) => j.counts.running > 0)?.jid);
    expect((await fleet.cli(['jobs', 'kill', jid])).code).toBe(0);
    await cli;
    const list = await fleet.cli(['jobs', '-n', '1']);
    expect(list.stdout.split('\n')[1]).toMatch(new RegExp(`^${jid}\\s.*KILLED`));
    const detail = await fleet.cli(['jobs', jid]);
    expect(detail.stdout).toMatch(/^KILLED by \S+ at \d{4}-/m);
    const done = (await fleet.json<{ jid: string }[]>(['jobs', '--target', 'b1', '-n', '3']))[1]!.jid; // the 'mixed' run
    const t = await fleet.cli(['jobs', done, '--state-output', 'terse']);
    expect(t.stdout).toMatch(terse('broken', 'test.fail_without_changes', 'Failed'));
    expect(t.stdout).not.toMatch(/KILLED/);
    const j = JSON.parse((await fleet.cli(['jobs', done, '--out', 'json'])).stdout) as Record<string, object>;
    expect(Object.keys(j.b1!)).toHaveLength(3);
    const bad = await fleet.cli(['jobs', done, '--failed']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/--failed filters the job list; it does not go with a JID/);
  });
});
