/**
 * Run one state function through the real engine path (registry -> validate -> check/apply),
 * for module tests. Whole-tree tests use the engine (engine/engine.ts) instead.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll } from 'vitest';
import { lookupState } from '../../engine/states/registry.js';
import { validateArgs, invokeState, invokeModWatch, type InvokeOutcome } from '../../engine/run/invoke.js';
import { makeRunBase, makeRunContext, type RunBase } from '../../engine/run/context.js';
import { LocalTree } from '../../engine/tree/local.js';

export interface HarnessOptions {
  test?: boolean;
  root?: string;
  /** state tree directory for salt:// sources; an empty temp dir when absent */
  treeDir?: string;
  grains?: Record<string, unknown>;
  pillar?: Record<string, unknown>;
  /** minion options (provider overrides such as `service_command_prefix`) */
  opts?: Record<string, unknown>;
  /** share facts between calls, like states of one run */
  base?: RunBase;
}

const made = new Set<string>();

/** Remove every directory tempDir made (TSALT_KEEP=1 keeps them, for a look after a failure). */
function removeTempDirs(): void {
  if (process.env.TSALT_KEEP) return;
  for (const d of made) fs.rmSync(d, { recursive: true, force: true });
  made.clear();
  emptyTree = undefined;
}

// registered while the importing test file is collected: runs when that file's tests are done
afterAll(removeTempDirs);

/** A new directory under the temp dir, removed after the test file that made it. */
export function tempDir(prefix = 'tsalt-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.add(d);
  return d;
}

let emptyTree: string | undefined;

export function harnessBase(o: HarnessOptions = {}): RunBase {
  // one shared empty tree per test process: a new temp dir per call litters /tmp
  emptyTree ??= tempDir('tsalt-tree-');
  return makeRunBase({
    test: o.test ?? false,
    root: o.root,
    tree: new LocalTree(o.treeDir ?? emptyTree),
    grains: o.grains ?? { os_family: 'Debian', init: 'systemd', id: 'testhost' },
    pillar: o.pillar ?? {},
    opts: o.opts,
  });
}

/** `runState('file.managed', {name: '/tmp/x', contents: 'hi'})` -> { result, changes, comment, warnings } */
export async function runState(
  fun: string,
  args: Record<string, unknown>,
  o: HarnessOptions = {},
): Promise<InvokeOutcome & { warnings: string[] }> {
  const [mod, f] = fun.split('.') as [string, string];
  const found = await lookupState(mod, f);
  if ('error' in found) throw new Error(found.error);
  const v = validateArgs(found.def, args);
  const base = o.base ? { ...o.base, test: o.test ?? o.base.test } : harnessBase(o);
  const ctx = makeRunContext(base, String(args.name ?? 'test-state'), 'test');
  const out = await invokeState(ctx, found.def, v.args, v.extra);
  return { ...out, warnings: v.warnings };
}

export async function runModWatch(fun: string, args: Record<string, unknown>, o: HarnessOptions = {}) {
  const [mod, f] = fun.split('.') as [string, string];
  const found = await lookupState(mod, f);
  if ('error' in found) throw new Error(found.error);
  const v = validateArgs(found.def, args);
  const base = o.base ?? harnessBase(o);
  return invokeModWatch(makeRunContext(base, String(args.name), 'test'), found.def, v.args, v.extra);
}
