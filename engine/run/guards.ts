/**
 * Salt's global run-control guards `onlyif`, `unless` and `creates` (requisites docs, "unless",
 * "onlyif", "creates"; salt/state.py `_run_check*`). They apply to every state and are
 * evaluated in test mode too. Semantics, exactly as Salt:
 *
 * - onlyif: the state runs only if EVERY command succeeds (exit 0); the first failing one stops
 *   the evaluation: "onlyif condition is false".
 * - unless: the state is skipped only if EVERY command succeeds ("unless condition is true");
 *   the first failing one means run. (So a list is NOT "skip if any succeeds".)
 * - creates: skipped when the path exists / ALL listed paths exist. Paths are the machine's
 *   real paths, never rebased under --root.
 * - All present guards are evaluated; the state is skipped when any of them says skip, and the
 *   comment lists each guard's verdict, one per line.
 * - A command that cannot be started (e.g. unknown runas user) counts as failed for onlyif
 *   (skip) and as succeeded for unless (skip), as Salt does.
 * - Dict entries (`- fun: file.file_exists` + `path:`/`args:`) call a small set of read-only
 *   functions; anything else is reported as an error instead of being guessed at.
 */
import fs from 'node:fs';
import { CommandExecutionError, normaliseEnv, runShellCommand, type ShellCommandOptions } from './shell-command.js';

export const guardKeys = ['unless', 'onlyif', 'creates'] as const;

export interface Guards {
  unless?: unknown;
  onlyif?: unknown;
  creates?: unknown;
}

/** The state's own arguments that Salt passes on to the guard commands (POSSIBLE_CMD_ARGS). */
export interface GuardOptions {
  cwd?: unknown;
  runas?: unknown;
  env?: unknown;
  shell?: unknown;
  timeout?: unknown;
  success_retcodes?: unknown;
  prepend_path?: unknown;
  umask?: unknown;
}

export type GuardDecision =
  | { run: true }
  /** `error`: the guard itself is malformed; the runner should report result false. */
  | { run: false; comment: string; error?: boolean };

/** Shells that make every guard command fail: a user.present `shell: /sbin/nologin` must not leak in. */
const NO_SHELLS = new Set(['/sbin/nologin', '/usr/sbin/nologin', '/bin/false', '/usr/bin/false']);

/** Pick the options Salt forwards to guard commands from a state's raw arguments. */
export function guardOptions(args: Record<string, unknown>): GuardOptions {
  const o: GuardOptions = {};
  for (const k of ['cwd', 'runas', 'env', 'shell', 'timeout', 'success_retcodes', 'prepend_path', 'umask'] as const) {
    if (args[k] !== undefined && args[k] !== null) o[k] = args[k];
  }
  return o;
}

class GuardError extends Error {}

function shellOptions(opts: GuardOptions): Omit<ShellCommandOptions, 'cmd'> {
  const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
  const shell = str(opts.shell);
  const timeout = typeof opts.timeout === 'number' ? opts.timeout : typeof opts.timeout === 'string' ? Number(opts.timeout) : undefined;
  const codes = opts.success_retcodes;
  const successRetcodes = Array.isArray(codes) ? codes.map(Number) : codes !== undefined ? [Number(codes)] : undefined;
  return {
    shell: shell && !NO_SHELLS.has(shell) ? shell : undefined,
    cwd: str(opts.cwd),
    runas: str(opts.runas),
    prependPath: str(opts.prepend_path),
    umask: opts.umask !== undefined ? String(opts.umask) : undefined,
    timeoutSec: timeout !== undefined && Number.isFinite(timeout) && timeout > 0 ? timeout : undefined,
    successRetcodes,
  };
}

/** Exit code of a guard command; a command that cannot run returns `failCode`. */
async function retcode(cmd: string, base: Omit<ShellCommandOptions, 'cmd'>, env: unknown, failCode: number): Promise<number> {
  try {
    const r = await runShellCommand({ ...base, cmd, env: normaliseEnv(env) });
    return r.retcode;
  } catch (e) {
    if (e instanceof CommandExecutionError) return failCode;
    throw e;
  }
}

const FUNCTIONS: Record<string, (path: string) => boolean> = {
  'file.file_exists': (p) => statOk(p, (s) => s.isFile()),
  'file.directory_exists': (p) => statOk(p, (s) => s.isDirectory()),
  'file.exists': (p) => fs.existsSync(p),
  'file.missing': (p) => !fs.existsSync(p),
  'file.is_link': (p) => lstatOk(p, (s) => s.isSymbolicLink()),
};

function statOk(p: string, f: (s: fs.Stats) => boolean): boolean {
  try {
    return f(fs.statSync(p));
  } catch {
    return false;
  }
}
function lstatOk(p: string, f: (s: fs.Stats) => boolean): boolean {
  try {
    return f(fs.lstatSync(p));
  } catch {
    return false;
  }
}

/** Truthiness of a dict entry (`- fun: file.file_exists` / `path:` or `args: [path]`). */
function callFunction(kind: string, entry: Record<string, unknown>): boolean {
  const fun = entry.fun;
  if (typeof fun !== 'string') throw new GuardError(`no \`fun\` argument in ${kind}: ${JSON.stringify(entry)}`);
  const impl = FUNCTIONS[fun];
  if (!impl) {
    throw new GuardError(
      `${kind}: function '${fun}' is not supported in guards (supported: ${Object.keys(FUNCTIONS).join(', ')}); use a command string instead`,
    );
  }
  const unknown = Object.keys(entry).filter((k) => !['fun', 'path', 'name', 'args'].includes(k));
  if (unknown.length) throw new GuardError(`${kind}: ${fun} does not take ${unknown.join(', ')}`);
  const args = Array.isArray(entry.args) ? entry.args : entry.args !== undefined ? [entry.args] : [];
  const path = entry.path ?? entry.name ?? args[0];
  if (typeof path !== 'string' || path === '') throw new GuardError(`${kind}: ${fun} needs a path (\`path:\` or \`args: [path]\`)`);
  return impl(path);
}

function asList(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

interface Verdict {
  skip: boolean;
  comment: string;
}

async function checkOnlyif(v: unknown, base: Omit<ShellCommandOptions, 'cmd'>, env: unknown): Promise<Verdict> {
  for (const entry of asList(v)) {
    let ok: boolean;
    if (typeof entry === 'string') ok = (await retcode(entry, base, env, 100)) === 0;
    else if (entry && typeof entry === 'object' && !Array.isArray(entry)) ok = callFunction('onlyif', entry as Record<string, unknown>);
    else throw new GuardError(`onlyif execution failed, bad type passed: ${JSON.stringify(entry)}`);
    if (!ok) return { skip: true, comment: 'onlyif condition is false' };
  }
  return { skip: false, comment: 'onlyif condition is true' };
}

async function checkUnless(v: unknown, base: Omit<ShellCommandOptions, 'cmd'>, env: unknown): Promise<Verdict> {
  for (const entry of asList(v)) {
    let ok: boolean;
    if (typeof entry === 'string') ok = (await retcode(entry, base, env, 0)) === 0;
    else if (entry && typeof entry === 'object' && !Array.isArray(entry)) ok = callFunction('unless', entry as Record<string, unknown>);
    else throw new GuardError(`unless condition is false, bad type passed: ${JSON.stringify(entry)}`);
    if (!ok) return { skip: false, comment: 'unless condition is false' };
  }
  return { skip: true, comment: 'unless condition is true' };
}

function checkCreates(v: unknown): Verdict {
  if (typeof v === 'string') {
    return fs.existsSync(v) ? { skip: true, comment: `${v} exists` } : { skip: false, comment: 'Creates files not found' };
  }
  if (Array.isArray(v) && v.every((p) => typeof p === 'string')) {
    return v.every((p) => fs.existsSync(p))
      ? { skip: true, comment: 'All files in creates exist' }
      : { skip: false, comment: 'Creates files not found' };
  }
  throw new GuardError(`creates must be a path or a list of paths, got ${JSON.stringify(v)}`);
}

export async function evaluateGuards(guards: Guards, opts: GuardOptions = {}): Promise<GuardDecision> {
  const base = shellOptions(opts);
  const verdicts: Verdict[] = [];
  try {
    if (guards.onlyif !== undefined) verdicts.push(await checkOnlyif(guards.onlyif, base, opts.env));
    if (guards.unless !== undefined) verdicts.push(await checkUnless(guards.unless, base, opts.env));
    if (guards.creates !== undefined) verdicts.push(checkCreates(guards.creates));
  } catch (e) {
    if (e instanceof GuardError) return { run: false, comment: e.message, error: true };
    return { run: false, comment: `guard evaluation failed: ${e instanceof Error ? e.message : String(e)}`, error: true };
  }
  if (!verdicts.some((v) => v.skip)) return { run: true };
  return { run: false, comment: verdicts.map((v) => v.comment).join('\n') };
}
