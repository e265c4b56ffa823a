/**
 * The command line itself, through the real CLI against a real master and agent: bad options are
 * one line and the usage (never a parseArgs stack), a short option's value is its own word
 * (`-rf` is not `--revision f`), printing commands end quietly when their reader goes away
 * (`| head`), and a job without --timeout gets the master's timeout_s.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, REPO, type CliResult } from './fleet-harness.js';

const BIN = path.join(REPO, 'bin/tsalt.js');

const states = {
  'top.sls': "base:\n  '*':\n    - ok\n",
  'ok.sls': 'one:\n  test.succeed_without_changes: []\n',
  // enough output to fill a pipe several times over
  'many.sls': "{% for i in range(600) %}state_number_{{ i }}_with_a_long_name:\n  test.succeed_with_changes: []\n{% endfor %}\n",
};

/** `bash -c` with the socket in the environment (so it can be anywhere on the line). */
function sh(script: string, sock: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/bash', ['-c', script], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1', TSALT_SOCKET: sock, TSALT: `${process.execPath} ${BIN}` } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const noTrace = (r: CliResult) => {
  expect(r.stderr).not.toMatch(/TypeError|ERR_PARSE_ARGS|^\s+at /m);
  expect(r.stdout).not.toMatch(/TypeError|^\s+at /m);
};

describe('fleet: command-line options', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { timeout_s: 7 } });
    await fleet.startMaster();
    fleet.startAgent('a1');
    await fleet.acceptAll(['a1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('an unknown option is one line naming it, then the usage; exit 1, for every command', async () => {
    for (const cmd of ['apply a1', 'run a1 true', 'jobs', 'keys', 'agents', 'schedule', 'local show', 'master', 'agent', 'demo']) {
      const r = await fleet.cli([...cmd.split(' '), '--bogus']);
      expect(r.code, cmd).toBe(1);
      noTrace(r);
      const [first, second] = r.stderr.split('\n');
      expect(first, cmd).toBe(`tsalt ${cmd.split(' ')[0]}: unknown option '--bogus' (an argument starting with '-' goes after '--')`);
      expect(second, cmd).toMatch(/^usage: tsalt /);
    }
  });

  it('a missing value, a value given to a flag, an unexpected word, a bad number: one line each', async () => {
    const cases: [string[], RegExp][] = [
      [['apply', 'a1', '--revision'], /^tsalt apply: option '--revision' needs a value \(one starting with '-' is written --revision=VALUE\)$/],
      [['apply', 'a1', '-r'], /^tsalt apply: option '--revision' needs a value \(one starting with '-' is written --revision=VALUE\)$/],
      [['apply', 'a1', '--test=yes'], /^tsalt apply: option '--test' does not take an argument$/],
      [['apply', 'a1', '--timeout', 'soon'], /^tsalt apply: --timeout takes a positive number, not 'soon'$/],
      [['apply', 'a1', '--batch', 'x'], /^tsalt apply: --batch takes N or N%, not 'x'$/],
      [['apply', 'a1', '-L', '-G'], /^tsalt apply: only one target type flag at a time \(got -L -G\)$/],
      [['apply'], /^tsalt apply: give a target$/],
      [['run', 'a1'], /^tsalt run: give the command to run$/],
      [['jobs', '-n', '0'], /^tsalt jobs: --limit takes a whole number above 0, not '0'$/],
      [['jobs', 'notajid'], /^tsalt jobs: 'notajid' is not a job id \(20 digits\)$/],
      [['agents', 'extra'], /^tsalt agents: unexpected argument 'extra'$/],
      [['keys', 'frob'], /^tsalt keys: unknown action 'frob'$/],
      [['keys', 'accept'], /^tsalt keys: accept: name the key ids \(or --all\)$/],
      [['apply', 'a1', "pillar=[1"], /^tsalt apply: pillar=\.\.\. is not valid YAML\/JSON/],
    ];
    for (const [args, re] of cases) {
      const r = await fleet.cli(args);
      expect(r.code, args.join(' ')).toBe(1);
      noTrace(r);
      expect(r.stderr.split('\n')[0], args.join(' ')).toMatch(re);
      expect(r.stderr.split('\n')[1], args.join(' ')).toMatch(/^usage: tsalt /);
    }
  });

  it('a missing value at the end of the line; tsalt local', async () => {
    for (const script of ['$TSALT apply a1 -r', '$TSALT apply a1 --revision', '$TSALT jobs -n']) {
      const r = await sh(script, fleet.sock);
      expect(r.code, script).toBe(1);
      noTrace(r);
      expect(r.stderr.split('\n')[0], script).toMatch(/^tsalt (apply|jobs): option '--(revision|limit)' needs a value$/);
    }
    // tsalt local takes no --socket: its own mistakes
    for (const [script, re] of [
      ['$TSALT local frob', /^tsalt local: unknown action 'frob'$/],
      ['$TSALT local', /^tsalt local: apply or show\?$/],
      ['$TSALT local show --states', /^tsalt local: option '--states' needs a value$/],
    ] as const) {
      const r = await sh(script, fleet.sock);
      expect(r.code, script).toBe(1);
      noTrace(r);
      expect(r.stderr.split('\n')[0], script).toMatch(re);
      expect(r.stderr.split('\n')[1], script).toMatch(/^usage: tsalt local/);
    }
  });

  it("'-rf' is not read as '--revision f': no job starts", async () => {
    const before = await fleet.json<unknown[]>(['jobs']);
    for (const args of [['apply', 'a1', '-rf'], ['apply', 'a1', '-Lb2'], ['jobs', '-n5']]) {
      const r = await fleet.cli(args);
      expect(r.code, args.join(' ')).toBe(1);
      noTrace(r);
      expect(r.stderr.split('\n')[0]).toMatch(/^tsalt (apply|jobs): '-(rf|Lb2|n5)': give the value of -[rbn] as its own word \(-[rbn] \w+\) or write --(revision|batch|limit)=\w+$/);
    }
    expect(await fleet.json<unknown[]>(['jobs'])).toEqual(before);
    // the spelled-out forms work
    expect((await fleet.cli(['jobs', '-n', '5'])).code).toBe(0);
    expect((await fleet.cli(['jobs', '--limit=5'])).code).toBe(0);
  });

  it('a command with options of its own runs when written after --', async () => {
    const r = await sh('$TSALT run a1 --json -- ls -d /', fleet.sock);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { agents: Record<string, { body: { stdout: string } }> };
    expect(out.agents.a1!.body.stdout).toBe('/\n');
  });

  it("without --timeout a job gets the master's timeout_s; --timeout overrides it", async () => {
    const a = await fleet.json<{ jid: string; code: number }>(['apply', 'a1']);
    expect(a.code).toBe(0);
    const r = await fleet.json<{ jid: string }>(['run', 'a1', 'true']);
    const t = await fleet.json<{ jid: string }>(['apply', 'a1', '--timeout', '30']);
    const args = async (jid: string) => (await fleet.json<{ job: { args: { timeout_s: number } } }>(['jobs', jid])).job.args.timeout_s;
    expect(await args(a.jid)).toBe(7);
    expect(await args(r.jid)).toBe(7);
    expect(await args(t.jid)).toBe(30);
  });

  it('printing into a pipe that closes early ends quietly (tsalt jobs JID | head)', async () => {
    const job = await fleet.json<{ jid: string; code: number }>(['apply', 'a1', 'many']);
    expect(job.code).toBe(0);
    const full = await fleet.cli(['jobs', job.jid]);
    expect(full.stdout.length).toBeGreaterThan(256 * 1024); // more than a pipe holds
    for (const script of [`$TSALT jobs ${job.jid} | head -n 2`, `$TSALT jobs ${job.jid} --json | head -c 100`, `$TSALT apply a1 many | head -n 1`]) {
      // pipefail: the exit code of tsalt itself, not head's
      const r = await sh(`set -o pipefail; ${script}; echo "status=$?" >&2`, fleet.sock);
      noTrace(r);
      expect(r.stderr, script).not.toMatch(/EPIPE|Error/);
      expect(r.stderr, script).toMatch(/status=0\n$/);
      expect(r.stdout.length, script).toBeGreaterThan(0);
    }
  });
});
