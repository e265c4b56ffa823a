/**
 * Salt's `cmd` states: run a shell command (salt/states/cmd.py).
 *
 * - cmd.run: check always reports `{cmd: name}` "would have been executed" (a command's effect
 *   is unknowable; unless/onlyif/creates are the runner's job, see run/guards.ts); apply runs
 *   it: changes {pid, retcode, stdout, stderr}, result false on a non-zero exit.
 * - `stateful`: the command reports its own changes (cmd/stateful.ts); with
 *   `stateful: [{test_name: ...}]` test mode runs test_name to predict them.
 * - cmd.wait / cmd.watch: do nothing themselves; their mod_watch runs the command.
 * - cmd.script: fetch a script from the tree (optionally Jinja-rendered) and run it.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as z from 'zod/mini';
import { accountNameArg, boolArg, defineState, listArg, StateFailure, type ApplyOutcome, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { CommandExecutionError, envArg, getpwnam, normaliseEnv, runShellCommand } from '../run/shell-command.js';
import { reinterpret } from './cmd/stateful.js';

const statefulArg = z.union([boolArg, z.array(z.looseObject({ test_name: z.string() }))]);

const umaskArg = z.pipe(
  z.union([z.string(), z.number().check(z.int())]),
  z.transform((v, ctx) => {
    const s = String(v).trim();
    if (!/^[0-7]{1,4}$/.test(s)) {
      // zod/mini's transform has no ctx.addIssue: the issue classic's addIssue would push
      ctx.issues.push({ code: 'custom', message: `umask must be octal digits like '022', got ${JSON.stringify(v)}`, input: v });
      return z.NEVER;
    }
    return s;
  }),
);

const common = {
  name: z.string().check(z.minLength(1)),
  cwd: z.optional(z.string()),
  runas: z.optional(z.union([z.literal(''), accountNameArg('runas user')])),
  shell: z.optional(z.string()),
  env: z.optional(envArg),
  prepend_path: z.optional(z.string()),
  umask: z.optional(umaskArg),
  stateful: z._default(statefulArg, false),
  timeout: z.optional(z.number().check(z.positive())),
  ignore_timeout: z._default(boolArg, false),
  success_retcodes: z.optional(listArg(z.number().check(z.int()))),
  hide_output: z._default(boolArg, false),
  // accepted for compatibility; tsalt has no per-command log levels or VT
  output_loglevel: z.optional(z.string()),
  use_vt: z.optional(boolArg),
};

const runArgs = z.object(common);
type RunArgs = z.output<typeof runArgs>;

function testName(a: { stateful: boolean | { test_name: string }[] }): string | undefined {
  return Array.isArray(a.stateful) ? a.stateful[0]?.test_name : undefined;
}
function isStateful(a: { stateful: boolean | { test_name: string }[] }): boolean {
  return Array.isArray(a.stateful) ? true : a.stateful;
}

/** Run `cmd` with the state's options; returns the state outcome as Salt's cmd.run builds it. */
async function execute(a: RunArgs, cmd: string, runComment: string): Promise<ApplyOutcome> {
  if (a.cwd) {
    const st = await fs.promises.stat(a.cwd).catch(() => undefined);
    if (!st?.isDirectory()) throw new StateFailure(`Desired working directory "${a.cwd}" is not available`);
  }
  let r;
  try {
    r = await runShellCommand({
      cmd,
      shell: a.shell,
      cwd: a.cwd,
      runas: a.runas,
      env: normaliseEnv(a.env),
      prependPath: a.prepend_path,
      umask: a.umask,
      timeoutSec: a.timeout,
      successRetcodes: a.success_retcodes,
    });
  } catch (e) {
    if (e instanceof CommandExecutionError) throw new StateFailure(e.message);
    throw e;
  }
  let retcode = r.retcode;
  if (a.ignore_timeout && r.timedOut) retcode = 0; // nohup-style commands: Salt's ignore_timeout
  const changes = {
    pid: r.pid,
    retcode,
    stdout: a.hide_output ? '' : r.stdout,
    stderr: a.hide_output ? '' : r.stderr,
  };
  const result = retcode === 0;
  if (!isStateful(a)) return { changes, comment: runComment, result };
  const re = reinterpret({ pid: r.pid, retcode, stdout: r.stdout, stderr: r.stderr });
  if (re.error) return { changes: re.changes, comment: re.error, result: false };
  return { changes: re.changes, comment: re.comment, result };
}

/** Test mode with `stateful: [{test_name}]`: run the read-only test command to predict changes. */
async function predict(ctx: RunContext, a: RunArgs, wouldComment: string) {
  const tn = testName(a);
  if (ctx.test && tn) {
    const out = await execute(a, tn, wouldComment);
    if (out.result === false) throw new StateFailure(out.comment || `test_name command "${tn}" failed`, out.changes);
    return { changes: out.changes, comment: out.comment || wouldComment };
  }
  return { changes: { cmd: a.name }, comment: ctx.test ? wouldComment : '' };
}

const run = defineState({
  args: runArgs,
  async check(ctx, a) {
    return predict(ctx, a, `Command "${a.name}" would have been executed`);
  },
  async apply(_ctx, a) {
    return execute(a, a.name, `Command "${a.name}" run`);
  },
  // Salt's cmd.mod_watch: run the command again (report only under test)
  async modWatch(ctx, a) {
    if (ctx.test) return predict(ctx, a, `Command "${a.name}" would have been executed`);
    return execute(a, a.name, `Command "${a.name}" run`);
  },
});

/** cmd.wait: deprecated in Salt in favour of cmd.run + onchanges; only its mod_watch acts. */
const wait = defineState({
  args: runArgs,
  async check() {
    return { comment: '' };
  },
  async apply() {
    return { changes: {}, comment: '' };
  },
  modWatch: run.modWatch,
});

// ---- cmd.script ----

const scriptArgs = z.object({
  ...common,
  source: z.optional(z.string()),
  args: z.optional(z.pipe(z.union([z.string(), z.number()]), z.transform(String))),
  template: z.optional(z.enum(['jinja'])),
  defaults: z.optional(z.record(z.string(), z.unknown())),
  context: z.optional(z.record(z.string(), z.unknown())),
});
type ScriptArgs = z.output<typeof scriptArgs>;

function scriptSource(a: ScriptArgs): { source: string; args: string | undefined } {
  // Salt: name is "salt://script arg1 arg2", or a label when `source:` is given; words after
  // the first are the arguments unless `args:` is set
  const [first, ...rest] = a.name.split(' ');
  return { source: a.source ?? first!, args: a.args ?? (rest.length ? rest.join(' ') : undefined) };
}

/** Single-quote for sh: the script path and args are ours to place in the command line. */
function shQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

async function runScript(ctx: RunContext, a: ScriptArgs): Promise<ApplyOutcome> {
  const { source, args } = scriptSource(a);
  if (!source.startsWith('salt://')) throw new StateFailure(`cmd.script: source must be a salt:// path, got '${source}'`);
  let text: Buffer;
  try {
    text = await ctx.tree.read(source);
  } catch (e) {
    throw new StateFailure(`Unable to cache script ${source} from saltenv 'base': ${(e as Error).message}`);
  }
  let body: string | Buffer = text;
  if (a.template === 'jinja') body = ctx.renderTemplate(text.toString('utf8'), { ...a.defaults, ...a.context }, source);
  const dir = await fs.promises.mkdtemp(path.join(os.tmpdir(), 'tsalt-script-'));
  try {
    const file = path.join(dir, path.basename(source.replace(/\?.*$/, '')) || 'script');
    await fs.promises.writeFile(file, body, { mode: 0o700 });
    if (a.runas) {
      const pw = await getpwnam(a.runas);
      if (!pw) throw new StateFailure(`User '${a.runas}' is not available`);
      await fs.promises.chmod(dir, 0o755);
      await fs.promises.chown(file, pw.uid, pw.gid);
    }
    // Salt runs "<script> <args>" through the shell: args are shell words as written
    const cmd = args ? `${shQuote(file)} ${args}` : shQuote(file);
    return await execute(a, cmd, `Command '${a.name}' run`);
  } finally {
    await fs.promises.rm(dir, { recursive: true, force: true });
  }
}

const script = defineState({
  args: scriptArgs,
  async check(ctx, a) {
    const tn = testName(a);
    if (ctx.test && tn) return predict(ctx, a, `Command '${a.name}' would have been executed`);
    return { changes: { cmd: a.name }, comment: ctx.test ? `Command '${a.name}' would have been executed` : '' };
  },
  async apply(ctx, a) {
    return runScript(ctx, a);
  },
  async modWatch(ctx, a) {
    if (ctx.test) return { changes: { cmd: a.name }, comment: `Command '${a.name}' would have been executed` };
    return runScript(ctx, a);
  },
});

export default {
  run,
  wait,
  watch: wait,
  script,
} satisfies StateModule;
