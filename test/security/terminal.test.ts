/**
 * Text agents send (grains, state ids, comments, changes, command output, errors) cannot drive
 * the operator's terminal: human output shows control characters as visible escapes, JSON output
 * keeps the data. Real master and agent, the real CLI.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet } from '../integration/fleet-harness.js';

const ESC = '\x1b';
// retitle the window, clear the screen, a C1 CSI, a carriage return that hides what came before, a bidi override
const EVIL = `${ESC}]0;pwned\x07${ESC}[2J\u009b31m\rfake\u202e`;
const VISIBLE = '\\x1b]0;pwned\\x07\\x1b[2J\\x9b31m\\x0dfake\\u202e';

const states = {
  'top.sls': "base:\n  '*':\n    - evil\n",
  // YAML double-quoted escapes put the raw characters into the state id and comment
  'evil.sls':
    '"id\\u001b[2Jclear":\n  test.configurable_test_state:\n    - changes: True\n    - result: True\n    - comment: "\\e]0;pwned\\a\\e[2J\\x9B31m\\rfake\\u202E"\n' +
    "out:\n  cmd.run:\n    - name: printf '\\033]0;pwned\\007\\033[2J'\n",
};

const controls = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/;

describe('security: terminal escapes from agents', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
    fleet.startAgent('t1', { grains: { os: EVIL, roles: [EVIL, 'web'] } });
    await fleet.acceptAll(['t1']);
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('tsalt agents: grains shown escaped; --json keeps them', async () => {
    const r = await fleet.cli(['agents']);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(controls);
    expect(r.stdout).toContain(VISIBLE);
    const j = await fleet.json<{ id: string; os: string; roles: string[] }[]>(['agents']);
    // the os column is "os osrelease"
    expect(j.find((a) => a.id === 't1')!.os.startsWith(EVIL)).toBe(true);
    expect(j.find((a) => a.id === 't1')!.roles).toContain(EVIL);
  });

  let jid = '';
  it('tsalt apply: state ids, comments and output shown escaped, on stdout and stderr', async () => {
    const r = await fleet.cli(['apply', 't1']);
    expect(r.stdout + r.stderr).not.toMatch(controls);
    expect(r.stdout).toContain(VISIBLE);
    expect(r.stdout).toContain('id\\x1b[2Jclear');
    expect(r.stdout).toContain('\\x1b]0;pwned\\x07\\x1b[2J');
    jid = /job (\d{20})/.exec(r.stderr)![1]!;
    const j = await fleet.json<{ agents: Record<string, { body: { report: { results: { id: string; comment: string }[] } } }> }>(['apply', 't1']);
    const results = j.agents.t1!.body.report.results;
    expect(results.map((x) => x.id)).toContain(`id${ESC}[2Jclear`);
    expect(results.find((x) => x.id.startsWith('id'))!.comment).toBe(EVIL);
  });

  it('tsalt jobs JID and tsalt run: escaped', async () => {
    const j = await fleet.cli(['jobs', jid]);
    expect(j.code).toBe(0);
    expect(j.stdout).not.toMatch(controls);
    expect(j.stdout).toContain(VISIBLE);
    const list = await fleet.cli(['jobs']);
    expect(list.stdout).not.toMatch(controls);
    const r = await fleet.cli(['run', 't1', "printf 'a\\033]0;pwned\\007b\\r\\n'"]);
    expect(r.code).toBe(0);
    expect(r.stdout).not.toMatch(controls);
    expect(r.stdout).toContain('a\\x1b]0;pwned\\x07b\\x0d');
    const rj = await fleet.json<{ agents: Record<string, { body: { stdout: string } }> }>(['run', 't1', "printf 'a\\033]0;x\\007'"]);
    expect(rj.agents.t1!.body.stdout).toBe(`a${ESC}]0;x\x07`);
  });

  it("tsalt grains and tsalt call (Salt's nested output): escaped, bidi overrides too", async () => {
    for (const argv of [['grains', 't1', 'os'], ['call', 't1', 'grains.get', 'os'], ['grains', 't1']]) {
      const r = await fleet.cli(argv);
      expect(r.code, argv.join(' ')).toBe(0);
      expect(r.stdout, argv.join(' ')).not.toMatch(controls);
      expect(r.stdout, argv.join(' ')).toContain(VISIBLE);
    }
  });
});
