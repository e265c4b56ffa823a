/**
 * npm.installed / npm.removed (salt.states.npm): node packages in a project directory (`dir`)
 * or global. What is installed is read with one `npm ls --json` per directory per run.
 */
import fs from 'node:fs';
import * as z from 'zod/mini';
import {
  accountNameArg,
  boolArg,
  defineState,
  listArg,
  nameUnless,
  programName,
  StateFailure,
  type StateModule,
} from './define.js';
import type { RunContext } from './context.js';
import { exec, operands, type ExecOptions } from '../run/exec.js';
import { runAsOptions } from './runas.js';

/** Salt's `env` is a dict, or a list of one-key dicts (cmd.run style). */
const envArg = z.pipe(
  z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown()))]),
  z.transform((v) => {
    const out: Record<string, string> = {};
    for (const d of Array.isArray(v) ? v : [v]) for (const [k, val] of Object.entries(d)) out[k] = String(val);
    return out;
  }),
);

const common = {
  dir: z.optional(z.string()),
  user: z.optional(accountNameArg('user')),
  env: z.optional(envArg),
};

/** 'lodash@4.17.21' -> [lodash, 4.17.21]; '@scope/pkg@1' -> [@scope/pkg, 1]; no version -> undefined. */
export function splitSpec(spec: string): [string, string | undefined] {
  const at = spec.indexOf('@', spec.startsWith('@') ? 1 : 0);
  if (at <= 0) return [spec, undefined];
  return [spec.slice(0, at), spec.slice(at + 1) || undefined];
}

type Installed = Map<string, string>;

function where(dir: string | undefined): string {
  return dir === undefined ? 'global' : dir;
}

async function npmOptions(user: string | undefined, env: Record<string, string> | undefined): Promise<ExecOptions> {
  const o = await runAsOptions(user, env);
  // npm/npx export npm_config_* (cache, prefix, userconfig of the user who started us) to
  // children; they would point another user's npm at our cache. The state's own env wins.
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(o.env ?? {})) if (!k.startsWith('npm_') || (env && k in env)) clean[k] = v;
  return { ...o, env: clean, timeoutMs: 10 * 60_000 };
}

function scope(dir: string | undefined): string[] {
  // --prefix pins the project: without it npm walks up to the nearest package.json
  return dir === undefined ? ['-g'] : ['--prefix', dir];
}

/** npm's own explanation, without its log-file pointer and blank padding. */
function npmError(stderr: string, stdout: string): string {
  const lines = (stderr || stdout)
    .split('\n')
    .map((l) => l.replace(/^npm (error|ERR!) ?/, '').trim())
    .filter((l) => l && !/^A complete log of this run/.test(l) && !/^(404|enoent)$/.test(l));
  return lines.slice(0, 6).join('\n');
}

async function installed(ctx: RunContext, dir: string | undefined, user: string | undefined, env: Record<string, string> | undefined): Promise<Installed> {
  return ctx.facts.get(`npm:ls:${where(dir)}:${user ?? ''}`, async () => {
    if (dir !== undefined && !fs.existsSync(dir)) throw new StateFailure(`Directory ${dir} does not exist`);
    // `npm ls` exits 1 on extraneous/missing packages but still prints the tree
    const r = await exec(['npm', 'ls', '--json', '--depth=0', ...scope(dir)], await npmOptions(user, env));
    let data: { dependencies?: Record<string, { version?: string; missing?: boolean }>; error?: { summary?: string } };
    try {
      data = JSON.parse(r.stdout || '{}');
    } catch {
      throw new StateFailure(`npm ls failed in ${where(dir)}: ${npmError(r.stderr, r.stdout)}`);
    }
    if (data.error && !data.dependencies) throw new StateFailure(`npm ls failed in ${where(dir)}: ${data.error.summary ?? 'unknown error'}`);
    const m: Installed = new Map();
    for (const [name, d] of Object.entries(data.dependencies ?? {})) if (d.version && !d.missing) m.set(name, d.version);
    return m;
  });
}

const npmName = programName('npm package');

const installedArgs = nameUnless(
  z.object({
    name: z.string(),
    pkgs: z.optional(listArg(npmName)),
    ...common,
    registry: z.optional(z.string()),
    force_reinstall: z._default(boolArg, false),
  }),
  npmName,
  ['pkgs'],
);

const installedState = defineState({
  args: installedArgs,
  async check(ctx, a) {
    // Salt: pkgs, when given, replaces name
    const list = a.pkgs?.length ? a.pkgs : [a.name];
    const have = await installed(ctx, a.dir, a.user, a.env);
    const toInstall: string[] = [];
    const satisfied: string[] = [];
    for (const spec of list) {
      const [n, ver] = splitSpec(spec);
      const v = have.get(n);
      // Salt compares an explicit version literally: a range in the tree reinstalls each run
      if (v !== undefined && !a.force_reinstall && (ver === undefined || ver === v)) satisfied.push(`${n}@${v}`);
      else toInstall.push(spec);
    }
    if (!toInstall.length) return { comment: `Package(s) '${list.join(', ')}' satisfied by ${satisfied.join(', ')}` };
    return {
      changes: { old: [], new: toInstall },
      comment: `NPM package(s) '${toInstall.join(', ')}' are set to be installed`,
      plan: toInstall,
    };
  },
  async apply(ctx, a, plan) {
    const pkgs = plan ?? [];
    const argv = ['npm', 'install', '--no-audit', '--no-fund', '--loglevel=error', ...scope(a.dir)];
    if (a.registry) argv.push('--registry', a.registry);
    // one npm run for all packages, as Salt does
    const r = await exec([...argv, '--', ...operands('npm package', pkgs)], await npmOptions(a.user, a.env));
    ctx.facts.invalidate(`npm:ls:${where(a.dir)}:${a.user ?? ''}`);
    if (r.code !== 0) throw new StateFailure(`Error installing '${pkgs.join(', ')}': ${npmError(r.stderr, r.stdout)}`);
    return { changes: { old: [], new: pkgs }, comment: `Package(s) '${pkgs.join(', ')}' successfully installed` };
  },
});

const removedArgs = z.object({ name: npmName, ...common });

const removed = defineState({
  args: removedArgs,
  async check(ctx, a) {
    const [n, ver] = splitSpec(a.name);
    const v = (await installed(ctx, a.dir, a.user, a.env)).get(n);
    if (v === undefined || (ver !== undefined && ver !== v)) return { comment: `Package '${a.name}' is not installed` };
    return { changes: { [a.name]: 'Removed' }, comment: `Package '${a.name}' is set to be removed` };
  },
  async apply(ctx, a) {
    const [n] = splitSpec(a.name);
    const r = await exec(
      ['npm', 'uninstall', '--no-audit', '--no-fund', '--loglevel=error', ...scope(a.dir), '--', ...operands('npm package', [n])],
      await npmOptions(a.user, a.env),
    );
    ctx.facts.invalidate(`npm:ls:${where(a.dir)}:${a.user ?? ''}`);
    if (r.code !== 0) throw new StateFailure(`Error removing package '${a.name}': ${npmError(r.stderr, r.stdout)}`);
    return { changes: { [a.name]: 'Removed' }, comment: `Package '${a.name}' was successfully removed` };
  },
});

export default { installed: installedState, removed } satisfies StateModule;
