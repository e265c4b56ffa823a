/**
 * alternatives.* for real with this machine's update-alternatives, on a throwaway group whose
 * link and targets live in a temp dir (the group's entries in /etc/alternatives and the admin
 * dir are removed in afterAll). Tests run in order: each builds on the group the last left.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { runState, tempDir } from '../helpers/harness.js';
import { convergeTwice } from './states-file-helpers.js';
import { parseDisplay, parseQuery, queryGroup } from '../../engine/states/alternatives.js';

const NAME = `tsalt-test-alt-${process.pid}`;
let dir: string;
let a: string;
let b: string;
let link: string;

function cleanup(): void {
  spawnSync('update-alternatives', ['--remove-all', NAME], { stdio: 'ignore' });
}

beforeAll(() => {
  cleanup();
  dir = tempDir('tsalt-alt-');
  a = path.join(dir, 'tool-a');
  b = path.join(dir, 'tool-b');
  for (const p of [a, b]) fs.writeFileSync(p, `#!/bin/sh\necho ${path.basename(p)}\n`, { mode: 0o755 });
  link = path.join(dir, 'tool');
});

afterAll(() => {
  cleanup();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('alternatives (update-alternatives on a throwaway group)', () => {
  it('parses --query output, slaves included', () => {
    const g = parseQuery(
      'Name: editor\nLink: /usr/bin/editor\nSlaves:\n editor.1.gz /usr/share/man/man1/editor.1.gz\nStatus: manual\nBest: /bin/nano\nValue: /usr/bin/vim.basic\n\n' +
        'Alternative: /bin/nano\nPriority: 40\nSlaves:\n editor.1.gz /usr/share/man/man1/nano.1.gz\n\nAlternative: /usr/bin/vim.basic\nPriority: 30\n',
    );
    expect(g).toEqual({
      name: 'editor',
      link: '/usr/bin/editor',
      status: 'manual',
      best: '/bin/nano',
      value: '/usr/bin/vim.basic',
      alternatives: [
        { path: '/bin/nano', priority: 40 },
        { path: '/usr/bin/vim.basic', priority: 30 },
      ],
    });
    expect(parseQuery('Name: x\nLink: /x\nStatus: manual\nBest: /a\nValue: none\n\nAlternative: /a\nPriority: 1\n').value).toBeNull();
  });

  it("parses RedHat's alternatives --display (no --query there), follower and slave lines skipped", () => {
    const rhel9 =
      'java - status is manual.\n link currently points to /usr/lib/jvm/java-11-openjdk/bin/java\n' +
      '/usr/lib/jvm/java-17-openjdk/bin/java - family java-17-openjdk.x86_64 priority 17000010\n follower jre: /usr/lib/jvm/java-17-openjdk\n' +
      '/usr/lib/jvm/java-11-openjdk/bin/java - family java-11-openjdk.x86_64 priority 11000010\n follower jre: /usr/lib/jvm/java-11-openjdk\n' +
      "Current `best' version is /usr/lib/jvm/java-17-openjdk/bin/java.\n";
    expect(parseDisplay(rhel9, 'java', '/usr/bin/java')).toEqual({
      name: 'java',
      link: '/usr/bin/java',
      status: 'manual',
      best: '/usr/lib/jvm/java-17-openjdk/bin/java',
      value: '/usr/lib/jvm/java-11-openjdk/bin/java',
      alternatives: [
        { path: '/usr/lib/jvm/java-17-openjdk/bin/java', priority: 17000010 },
        { path: '/usr/lib/jvm/java-11-openjdk/bin/java', priority: 11000010 },
      ],
    });
    const el7 = 'python - status is auto.\n link currently points to /usr/bin/python2\n/usr/bin/python2 - priority 1\n slave python.1.gz: /x\nCurrent `best\' version is /usr/bin/python2.\n';
    expect(parseDisplay(el7, 'python', '')).toMatchObject({ status: 'auto', value: '/usr/bin/python2', alternatives: [{ path: '/usr/bin/python2', priority: 1 }] });
  });

  it('install registers alternatives; the highest priority wins in auto mode', async () => {
    const predicted = await runState('alternatives.install', { name: NAME, link, path: a, priority: 10 }, { test: true });
    expect(predicted.comment).toBe(`Alternative will be set for ${NAME} to ${a} with priority 10`);
    const first = await convergeTwice('alternatives.install', { name: NAME, link, path: a, priority: 10 });
    expect(first.changes).toEqual({ name: NAME, link, path: a, priority: 10 });
    expect(first.comment).toBe(`Alternative for ${NAME} set to path ${a} with priority 10`);
    expect(fs.readlinkSync(link)).toBe(`/etc/alternatives/${NAME}`);
    expect(fs.realpathSync(link)).toBe(a);

    const second = await convergeTwice('alternatives.install', { name: NAME, link, path: b, priority: '20' });
    expect(second.changes).toEqual({ name: NAME, link, path: b, priority: 20 });
    expect((await queryGroup(NAME))?.value).toBe(b);
    const again = await runState('alternatives.install', { name: NAME, link, path: b, priority: 20 });
    expect(again.comment).toBe(`Alternative ${b} for ${NAME} is already registered`);

    // a registered path with another priority is re-registered
    await convergeTwice('alternatives.install', { name: NAME, link, path: a, priority: 5 });
    const g = await queryGroup(NAME);
    expect(g?.alternatives).toEqual([
      { path: a, priority: 5 },
      { path: b, priority: 20 },
    ]);
  });

  it('install of a missing target fails in a real run and is predicted in a test run', async () => {
    const missing = path.join(dir, 'not-there');
    const t = await runState('alternatives.install', { name: NAME, link, path: missing, priority: 1 }, { test: true });
    expect(t.result).toBeNull();
    const r = await runState('alternatives.install', { name: NAME, link, path: missing, priority: 1 });
    expect([r.result, r.comment]).toEqual([false, `Alternative for ${NAME} not installed: alternative path ${missing} doesn't exist`]);
    expect((await queryGroup(NAME))?.alternatives.map((c) => c.path)).toEqual([a, b]);
  });

  it('set picks an alternative (manual mode), auto goes back to the best', async () => {
    const predicted = await runState('alternatives.set', { name: NAME, path: a }, { test: true });
    expect(predicted.comment).toBe(`Alternative for ${NAME} will be set to path ${a}`);
    const set = await convergeTwice('alternatives.set', { name: NAME, path: a });
    expect(set.changes).toEqual({ path: a });
    expect(set.comment).toBe(`Alternative for ${NAME} set to path ${a}`);
    expect(await queryGroup(NAME)).toMatchObject({ status: 'manual', value: a });
    expect(fs.realpathSync(link)).toBe(a);
    const same = await runState('alternatives.set', { name: NAME, path: a });
    expect(same.comment).toBe(`Alternative for ${NAME} already set to ${a}`);

    const bad = await runState('alternatives.set', { name: NAME, path: path.join(dir, 'tool-c') });
    expect([bad.result, bad.comment]).toEqual([false, `Alternative ${path.join(dir, 'tool-c')} for ${NAME} doesn't exist`]);

    const auto = await convergeTwice('alternatives.auto', { name: NAME });
    expect(Object.keys(auto.changes)).toEqual(['result']);
    expect(await queryGroup(NAME)).toMatchObject({ status: 'auto', value: b });
    const again = await runState('alternatives.auto', { name: NAME });
    expect(again.comment).toBe(`${NAME} already in auto mode`);
  });

  it('remove falls back to the remaining alternative, then removes the group', async () => {
    await convergeTwice('alternatives.set', { name: NAME, path: a });
    const predicted = await runState('alternatives.remove', { name: NAME, path: a }, { test: true });
    expect(predicted.comment).toBe(`Alternative for ${NAME} will be removed`);
    expect(predicted.changes).toEqual({ path: b });
    const first = await convergeTwice('alternatives.remove', { name: NAME, path: a });
    expect(first.changes).toEqual({ path: b });
    expect(first.comment).toBe(`Alternative for ${NAME} removed. Falling back to path ${b}`);
    const other = await runState('alternatives.remove', { name: NAME, path: a });
    expect(other.comment).toBe(`Alternative for ${NAME} is set to its default path ${b}`);

    const last = await runState('alternatives.remove', { name: NAME, path: b }, { test: true });
    expect(last.changes).toEqual({ path: null });
    const gone = await convergeTwice('alternatives.remove', { name: NAME, path: b });
    expect(gone.changes).toEqual({ path: null });
    expect(gone.comment).toBe(`Alternative for ${NAME} removed`);
    expect(await queryGroup(NAME)).toBeUndefined();
    expect(fs.existsSync(link)).toBe(false);
    const none = await runState('alternatives.remove', { name: NAME, path: b });
    expect([none.result, none.changes, none.comment]).toEqual([true, {}, `Alternative for ${NAME} doesn't exist`]);
  });

  it('auto and set on a missing group fail in a real run, predict in a test run; bad names are refused', async () => {
    for (const [fun, args] of [
      ['alternatives.auto', { name: NAME }],
      ['alternatives.set', { name: NAME, path: a }],
    ] as const) {
      expect((await runState(fun, args, { test: true })).result).toBeNull();
      const r = await runState(fun, args);
      expect(r.result).toBe(false);
      expect(r.comment).toMatch(/doesn't exist/);
    }
    await expect(runState('alternatives.auto', { name: 'a/b' })).rejects.toThrow(/without slashes/);
    await expect(runState('alternatives.install', { name: NAME, link: 'rel/link', path: a, priority: 1 })).rejects.toThrow(
      /absolute path/,
    );
    await expect(runState('alternatives.install', { name: NAME, link, path: a, priority: 'high' })).rejects.toThrow(/priority/);
    expect(await queryGroup(NAME)).toBeUndefined();
  });
});
