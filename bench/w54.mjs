/**
 * W54 (bench/ansible/w54.yml, WORKLOAD.md): first converge once, then the no-op run N times,
 * for tsalt (`tsalt local apply`, whole process), the bare-Node floor script and Ansible, in
 * one script so the ratios come from one machine state. Every timed run is checked: the
 * no-op must report 54 states and zero changes, or the figure would measure something else.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync } from 'node:child_process';
import { generate } from './w54/gen.mjs';
import { timeOnce, timeMany, tail } from './lib/measure.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..');
export const TSALT = path.join(REPO, 'bin', 'tsalt.js');
export const FLOOR = path.join(HERE, 'floor', 'w54_check.cjs');
const PLAYBOOK = path.join(HERE, 'ansible', 'w54.yml');
export const USER = 'w54user';

/** The argv of `tsalt local apply` for a generated tree. */
export function tsaltApply(tree, extra = []) {
  return [process.execPath, TSALT, 'local', 'apply', '--states', tree.states, '--pillar', tree.pillar, '--id', 'bench', '--no-color', ...extra];
}

/** Removes the bench user so a first converge really creates it (it is the bench's own user). */
export function dropUser() {
  try {
    execFileSync('getent', ['passwd', USER], { stdio: 'ignore' });
  } catch {
    return;
  }
  execFileSync('userdel', [USER], { stdio: 'ignore' });
  try {
    execFileSync('getent', ['group', USER], { stdio: 'ignore' });
    execFileSync('groupdel', [USER], { stdio: 'ignore' });
  } catch {
    /* no group of that name left: nothing to do */
  }
}

/** Parses the highstate summary; throws unless all `want` states succeeded with `changed`. */
export function expectSummary(stdout, want, changed) {
  const ok = /Succeeded: (\d+)(?: \(changed=(\d+)\))?/.exec(stdout);
  const failed = /Failed:\s+(\d+)/.exec(stdout);
  const got = { ok: Number(ok?.[1]), changed: Number(ok?.[2] ?? 0), failed: Number(failed?.[1]) };
  if (got.ok !== want || got.failed !== 0 || (changed !== undefined && got.changed !== changed)) {
    throw new Error(`tsalt run: want ${want} ok, ${changed ?? 'any'} changed, 0 failed; got ${JSON.stringify(got)}\n${tail(stdout, 30)}`);
  }
  return got;
}

/** Fresh scratch tree + root for `states` states. */
export function prepare(scratch, states = 54) {
  const dir = path.join(scratch, `tsalt-${states}`);
  fs.rmSync(dir, { recursive: true, force: true });
  return generate({ dir: path.join(dir, 'tree'), root: path.join(dir, 'root'), states });
}

/**
 * tsalt's first converge, from nothing. `work` is the time the states that changed spent in
 * their own check+apply (useradd, file writes, commands): the rest of the wall is tsalt's.
 */
export async function tsaltFirst(tree, expectStates) {
  dropUser();
  const r = await timeOnce(tsaltApply(tree, ['--json']));
  if (r.code !== 0) throw new Error(`tsalt first converge exited ${r.code}:\n${tail(r.stdout)}\n${tail(r.stderr)}`);
  const report = JSON.parse(r.stdout);
  const results = report.results ?? [];
  const changed = results.filter((s) => s.changes && Object.keys(s.changes).length);
  const work = changed.reduce((a, s) => a + (s.duration_ms ?? 0), 0);
  const states = results.reduce((a, s) => a + (s.duration_ms ?? 0), 0);
  if (results.length !== expectStates || results.some((s) => s.result !== true)) {
    throw new Error(`tsalt first converge: want ${expectStates} successful states, got ${results.length} (${results.filter((s) => s.result !== true).length} not ok)`);
  }
  return { wallMs: r.wallMs, rssKiB: r.rssKiB, cpuMs: r.cpuMs, changed: changed.length, workMs: work, statesMs: states, overheadMs: r.wallMs - work };
}

export async function tsaltNoop(tree, runs, expectStates, extra = []) {
  return timeMany('tsalt local apply', tsaltApply(tree, extra), {
    runs,
    check: (r) => expectSummary(r.stdout, expectStates, 0),
  });
}

export async function floorNoop(tree, runs) {
  return timeMany('floor (bare Node)', [process.execPath, FLOOR], {
    runs,
    env: { ...process.env, W54_ROOT: tree.root },
    check: (r) => {
      if (!/54 ok, 0 drifted/.test(r.stdout)) throw new Error(`floor: ${r.stdout}${r.stderr}`);
    },
  });
}

// ---------------------------------------------------------------- Ansible

const ANSIBLE_ENV = {
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_RETRY_FILES_ENABLED: '0',
  ANSIBLE_LOCALHOST_WARNING: 'False',
  ANSIBLE_INVENTORY_UNPARSED_WARNING: 'False',
  // An explicit interpreter skips discovery: the configuration most favourable to Ansible.
  ANSIBLE_PYTHON_INTERPRETER: '/usr/bin/python3',
};

export function ansibleAvailable() {
  return fs.existsSync('/usr/bin/ansible-playbook');
}

function ansibleArgv(root) {
  return ['/usr/bin/ansible-playbook', '-i', 'localhost,', PLAYBOOK, '-e', `w54_root=${root}`];
}

/** "localhost : ok=54 changed=0 ..." from the play recap. */
function ansibleRecap(stdout) {
  const m = /localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/.exec(stdout);
  if (!m) throw new Error(`ansible: no play recap:\n${tail(stdout)}`);
  return { ok: Number(m[1]), changed: Number(m[2]), unreachable: Number(m[3]), failed: Number(m[4]) };
}

export async function ansibleFirst(root) {
  dropUser();
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const r = await timeOnce(ansibleArgv(root), { env: { ...process.env, ...ANSIBLE_ENV }, cwd: path.dirname(PLAYBOOK) });
  if (r.code !== 0) throw new Error(`ansible first converge exited ${r.code}:\n${tail(r.stdout)}\n${tail(r.stderr)}`);
  const recap = ansibleRecap(r.stdout);
  if (recap.ok !== 54 || recap.failed) throw new Error(`ansible first converge: ${JSON.stringify(recap)}`);
  return { wallMs: r.wallMs, rssKiB: r.rssKiB, cpuMs: r.cpuMs, changed: recap.changed };
}

export async function ansibleNoop(root, runs) {
  return timeMany('ansible-playbook', ansibleArgv(root), {
    runs,
    env: { ...process.env, ...ANSIBLE_ENV },
    cwd: path.dirname(PLAYBOOK),
    check: (r) => {
      const recap = ansibleRecap(r.stdout);
      if (recap.ok !== 54 || recap.changed !== 0 || recap.failed) throw new Error(`ansible no-op run: ${JSON.stringify(recap)}`);
    },
  });
}

/**
 * The whole W54 workload. Ansible converges its own root (the user is shared: each first
 * converge starts without it). Returns the figures for the report.
 */
export async function runW54({ scratch, runs, ansible, log }) {
  const tree = prepare(scratch, 54);
  const out = { tree };
  log('W54: tsalt first converge');
  out.tsaltFirst = await tsaltFirst(tree, 54);
  await floorNoop(tree, 1);
  if (ansible) {
    log('W54: ansible first converge');
    out.ansibleFirst = await ansibleFirst(path.join(scratch, 'ansible-root'));
    // Both tools must have made the same 54 things, byte for byte: the floor script checks.
    await floorNoop({ root: path.join(scratch, 'ansible-root') }, 1);
  }
  // Converge tsalt once more: Ansible's first run re-created the user, which must look the same.
  await timeOnce(tsaltApply(tree));
  log(`W54: tsalt no-op x${runs}`);
  out.tsalt = await tsaltNoop(tree, runs, 54);
  log(`W54: floor x${runs}`);
  out.floor = await floorNoop(tree, runs);
  if (ansible) {
    log(`W54: ansible no-op x${runs} (about a minute each on 2 cores)`);
    out.ansible = await ansibleNoop(path.join(scratch, 'ansible-root'), runs);
  }
  return out;
}
