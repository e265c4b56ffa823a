/**
 * State logic with recorded facts in, commands out, as pyinfra's operation fixtures do: each
 * test/unit/fixtures/states/*.json names a state, its arguments and grains, the output of every
 * command the providers may ask (in order, per command line), and the exact commands the run
 * starts. Runs the real state module and the real provider (apt, dnf, systemd) with a recording
 * exec: no root, no package manager, no init system. The real-host tests (test/integration/pkg-*,
 * service-*) remain the proof that the recorded outputs are what the programs print.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecResult } from '../../engine/run/exec.js';
import type { Exec } from '../../engine/providers/host.js';
import { runState, type HarnessOptions } from '../helpers/harness.js';
import { makeRunBase } from '../../engine/run/context.js';
import { LocalTree } from '../../engine/tree/local.js';
import { tempDir } from '../helpers/harness.js';

interface Reply {
  stdout?: string;
  stderr?: string;
  code?: number;
}

interface Fixture {
  /** what the case shows */
  doc: string;
  state: string;
  args: Record<string, unknown>;
  grains: Record<string, unknown>;
  test?: boolean;
  /** what this process already did once (e.g. the package database refreshed) */
  memory?: string[];
  /** command line (argv joined by spaces) -> its output; a list: one reply per call, in order */
  facts: Record<string, Reply | Reply[]>;
  /** every command the run starts, in order */
  commands: string[][];
  result: { result: boolean | null; changes?: Record<string, unknown>; comment?: string };
}

const DIR = path.join(import.meta.dirname, 'fixtures/states');

/** Replays `facts`, records each argv; an unrecorded command fails the test with its argv. */
function recorder(facts: Fixture['facts']) {
  const ran: string[][] = [];
  const used = new Map<string, number>();
  const exec: Exec = async (argv) => {
    ran.push([...argv]);
    const key = argv.join(' ');
    const rec = facts[key];
    if (rec === undefined) throw new Error(`unrecorded command: ${JSON.stringify(argv)}`);
    const n = used.get(key) ?? 0;
    used.set(key, n + 1);
    const r = Array.isArray(rec) ? rec[Math.min(n, rec.length - 1)]! : rec;
    return { code: r.code ?? 0, signal: null, stdout: r.stdout ?? '', stderr: r.stderr ?? '' } satisfies ExecResult;
  };
  return { exec, ran };
}

const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();

describe('state fixtures: recorded facts in, commands out', () => {
  it('there are fixtures for pkg (apt, dnf) and service (systemd)', () => {
    const states = files.map((f) => (JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as Fixture).state.split('.')[0]);
    expect(new Set(states)).toEqual(new Set(['pkg', 'service']));
  });

  for (const f of files) {
    const fx = JSON.parse(fs.readFileSync(path.join(DIR, f), 'utf8')) as Fixture;
    it(`${f}: ${fx.doc}`, async () => {
      const { exec, ran } = recorder(fx.facts);
      const base = makeRunBase({
        test: fx.test ?? false,
        tree: new LocalTree(tempDir('tsalt-fixture-tree-')),
        grains: fx.grains,
        pillar: {},
        exec,
        memory: new Set(fx.memory ?? []),
      });
      const o: HarnessOptions = { base, test: fx.test ?? false };
      const r = await runState(fx.state, fx.args, o);
      expect(ran).toEqual(fx.commands);
      expect(r.result, r.comment).toBe(fx.result.result);
      if (fx.result.changes !== undefined) expect(r.changes).toEqual(fx.result.changes);
      if (fx.result.comment !== undefined) expect(r.comment).toBe(fx.result.comment);
    });
  }
});
