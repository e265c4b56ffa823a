import { describe, expect, it } from 'vitest';
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { writeTree } from '../helpers/tree.js';

const BIN = path.resolve(import.meta.dirname, '../../bin/tsalt.js');

function tsalt(args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

describe('tsalt local', () => {
  const tree = writeTree({
    'top.sls': "base:\n  '*':\n    - ok\n",
    'ok.sls': 'hello:\n  test.succeed_with_changes: []\nquiet:\n  test.nop:\n    - require:\n      - hello\n',
    'bad.sls': 'boom:\n  test.fail_without_changes: []\nafter:\n  test.nop:\n    - require:\n      - boom\n',
    'broken.sls': 'x:\n  test.nop:\n    - require:\n      - y\ny:\n  test.nop:\n    - require:\n      - x\n',
    'pil.sls': "shown_{{ pillar['app']['version'] }}_{{ pillar['app']['port'] }}:\n  test.nop: []\n",
    'slow.sls': 'first:\n  test.succeed_with_changes: []\nsleepy:\n  cmd.run:\n    - name: "sleep 46.75; echo done"\nlater:\n  test.nop: []\n',
  });
  const common = ['--states', tree, '--pillar', '/nonexistent', '--id', 'h1', '--grains-file', '/nonexistent'];

  it('applies the highstate, prints Salt-style output, exits 0', () => {
    const r = tsalt(['local', 'apply', ...common]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^h1:\n/);
    expect(r.out).toMatch(/ {10}ID: hello\n {4}Function: test.succeed_with_changes\n {8}Name: hello\n {6}Result: True/);
    expect(r.out).toMatch(/Succeeded: 2 \(changed=1\)\nFailed: {4}0/);
    expect(r.out).not.toMatch(/\x1b\[/); // no colour when not a TTY
  });

  it('--json gives every state with id, function, name, result, changes, comment, start, duration_ms and the counts', () => {
    const r = tsalt(['local', 'apply', ...common, '--json']);
    const j = JSON.parse(r.out);
    expect(j.counts).toEqual({ total: 2, succeeded: 2, changed: 1, failed: 0 });
    expect(Object.keys(j.results[0]).sort()).toEqual(['changes', 'comment', 'duration_ms', 'function', 'id', 'name', 'result', 'run_num', 'sls', 'start'].sort());
    expect(j.results[0]).toMatchObject({ id: 'hello', function: 'test.succeed_with_changes', result: true });
  });

  it('--test reports result None for pending changes', () => {
    const j = JSON.parse(tsalt(['local', 'apply', ...common, '--json', '--test']).out);
    expect(j.results.map((x: { result: unknown }) => x.result)).toEqual([null, true]);
  });

  it('exits 2 when a state fails, 1 on a compile error (and prints where)', () => {
    const bad = tsalt(['local', 'apply', 'bad', ...common]);
    expect(bad.code).toBe(2);
    expect(bad.out).toMatch(/One or more requisite failed: bad.boom/);
    const broken = tsalt(['local', 'apply', 'broken', ...common]);
    expect(broken.code).toBe(1);
    expect(broken.err).toMatch(/did not compile.*nothing was applied/s);
    expect(broken.err).toMatch(/broken.sls:1, state 'x': requisite cycle: x \(test.nop\) -> y \(test.nop\) -> x/);
  });

  it('show prints the low states in execution order without running them', () => {
    const r = tsalt(['local', 'show', ...common, '--json']);
    expect(r.code).toBe(0);
    const rows = JSON.parse(r.out);
    expect(rows.map((x: { id: string }) => x.id)).toEqual(['hello', 'quiet']);
    expect(rows[1]).toMatchObject({ function: 'test.nop', sls: 'ok', requisites: [{ kind: 'require', target: 'hello' }] });
  });
  it('Ctrl-C stops the run: the running program and its children end, later states say they did not run', async () => {
    const child = spawn(process.execPath, [BIN, 'local', 'apply', 'slow', ...common, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b));
    child.stderr.on('data', (b: Buffer) => (err += b));
    const sleeping = () => spawnSync('pgrep', ['-f', 'sleep 46.75']).status === 0;
    for (let i = 0; i < 200 && !sleeping(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(sleeping()).toBe(true);
    child.kill('SIGINT');
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(code).toBe(2);
    expect(err).toMatch(/SIGINT: stopping the run/);
    const j = JSON.parse(out);
    const by = Object.fromEntries(j.results.map((x: { id: string }) => [x.id, x]));
    expect(by.first.result).toBe(true);
    expect(by.sleepy.result).toBe(false);
    expect(by.later).toMatchObject({ result: false, comment: 'Not run: the run was stopped before this state (tsalt jobs kill, or an interrupt)' });
    expect(sleeping()).toBe(false);
  });
  it("pillar='{...}' is merged over the rendered pillar for this run; a bad one is a usage error", () => {
    const r = tsalt(['local', 'apply', 'pil', ...common, '--json', 'pillar={"app": {"version": "1.2", "port": 8080}}']);
    expect(r.code, r.err).toBe(0);
    expect(JSON.parse(r.out).results.map((x: { id: string }) => x.id)).toEqual(['shown_1.2_8080']);
    const bad = tsalt(['local', 'apply', 'pil', ...common, 'pillar=[1]']);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/pillar=\.\.\. must be a mapping/);
  });
});
