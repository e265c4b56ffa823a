/**
 * alternatives.install / remove / auto / set: the alternatives system, as
 * salt.states.alternatives (with salt.modules.alternatives underneath) does it.
 *
 * Debian's `update-alternatives` and the `alternatives` of the RedHat family share the command
 * line, so whichever exists is used (update-alternatives first). The state of a group is read
 * with `--query NAME` (Link, Status, Value and each Alternative with its Priority), which the
 * tool answers from its own admin directory; paths are matched exactly, not by prefix as Salt
 * does. Alternatives are the machine's: --root does not apply (as for packages).
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { defineState, StateFailure, type Changes, type StateModule } from './define.js';
import { exec } from '../run/exec.js';

// ---- the tool ----

const BINARIES = ['update-alternatives', 'alternatives'];
// the agent may run with a short PATH; the tools live in sbin on some systems
const EXTRA_DIRS = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

function findTool(): string {
  const dirs = [...(process.env.PATH ?? '').split(':').filter(Boolean), ...EXTRA_DIRS];
  for (const bin of BINARIES) {
    for (const dir of dirs) {
      const p = path.join(dir, bin);
      try {
        fs.accessSync(p, fs.constants.X_OK);
        return p;
      } catch {
        /* next */
      }
    }
  }
  throw new StateFailure('alternatives: neither update-alternatives nor alternatives is installed');
}

interface Choice {
  path: string;
  priority: number;
}

export interface AltGroup {
  name: string;
  link: string;
  status: 'auto' | 'manual';
  best: string | null;
  /** where the link points now (Salt's show_current), null when it points nowhere */
  value: string | null;
  alternatives: Choice[];
}

/** `--query` output: a header block, then one block per alternative; indented lines are slaves. */
export function parseQuery(text: string): AltGroup {
  const blocks = text.split(/\n\s*\n/).map((b) =>
    b
      .split('\n')
      .filter((l) => l !== '' && !/^\s/.test(l))
      .map((l) => {
        const i = l.indexOf(':');
        return i < 0 ? ([l.trim(), ''] as const) : ([l.slice(0, i).trim(), l.slice(i + 1).trim()] as const);
      }),
  );
  const field = (b: (readonly [string, string])[], k: string) => b.find(([key]) => key === k)?.[1];
  const head = blocks[0] ?? [];
  const none = (v: string | undefined) => (v === undefined || v === '' || v === 'none' ? null : v);
  const alternatives: Choice[] = [];
  for (const b of blocks.slice(1)) {
    const p = field(b, 'Alternative');
    if (p === undefined) continue;
    alternatives.push({ path: p, priority: Number(field(b, 'Priority') ?? 0) });
  }
  return {
    name: field(head, 'Name') ?? '',
    link: field(head, 'Link') ?? '',
    status: field(head, 'Status') === 'manual' ? 'manual' : 'auto',
    best: none(field(head, 'Best')),
    value: none(field(head, 'Value')),
    alternatives,
  };
}

/**
 * RedHat's `alternatives` (chkconfig) has no --query: its `--display` says the mode, where the
 * link points and each path with its priority; the link itself is the second line of
 * /var/lib/alternatives/NAME.
 *
 *   java - status is auto.
 *    link currently points to /usr/lib/jvm/java-17/bin/java
 *   /usr/lib/jvm/java-17/bin/java - family java-17-openjdk.x86_64 priority 17000010
 *    follower jre: /usr/lib/jvm/java-17
 *   Current `best' version is /usr/lib/jvm/java-17/bin/java.
 */
export function parseDisplay(text: string, name: string, link: string): AltGroup {
  const lines = text.split('\n');
  const status = /status is manual/.test(lines[0] ?? '') ? 'manual' : 'auto';
  const value = /^\s+link currently points to (.+?)\s*$/m.exec(text)?.[1] ?? null;
  const best = /^Current `best' version is (.+?)\.?\s*$/m.exec(text)?.[1] ?? null;
  const alternatives: Choice[] = [];
  for (const l of lines) {
    const m = /^(\/\S+) - (?:family \S+ )?priority (-?\d+)\s*$/.exec(l);
    if (m) alternatives.push({ path: m[1]!, priority: Number(m[2]) });
  }
  return { name, link, status, best, value, alternatives };
}

/** The group, or undefined when the tool knows no alternatives for `name`. */
async function query(tool: string, name: string): Promise<AltGroup | undefined> {
  if (path.basename(tool) === 'alternatives') {
    const r = await exec([tool, '--display', name]);
    const msg = (r.stderr || r.stdout).trim();
    if (r.code !== 0) {
      if (/cannot access|no such file|no alternatives/i.test(msg)) return undefined;
      throw new StateFailure(`alternatives --display ${name} failed: ${msg || `exit code ${r.code}`}`);
    }
    let link = '';
    try {
      link = (fs.readFileSync(path.join('/var/lib/alternatives', name), 'utf8').split('\n')[1] ?? '').trim();
    } catch {
      /* no admin file: the link stays unknown and install re-registers */
    }
    return parseDisplay(r.stdout, name, link);
  }
  const r = await exec([tool, '--query', name]);
  if (r.code === 0) return parseQuery(r.stdout);
  const msg = (r.stderr || r.stdout).trim();
  if (/no alternatives for/i.test(msg)) return undefined;
  throw new StateFailure(`${path.basename(tool)} --query ${name} failed: ${msg || `exit code ${r.code}`}`);
}

/** Run a change; a failure becomes `prefix: <the tool's message>`. Returns the tool's output. */
async function run(argv: string[], prefix: string): Promise<string> {
  const r = await exec(argv);
  const out = r.stdout.trim() || r.stderr.trim();
  if (r.code !== 0) throw new StateFailure(`${prefix}: ${(r.stderr || r.stdout).trim() || `exit code ${r.code}`}`);
  return out;
}

/** What the tool picks in auto mode: highest priority, the current one on a tie, else the first. */
function bestOf(choices: Choice[], current: string | null): string | null {
  let best = choices.find((c) => c.path === current) ?? choices[0];
  for (const c of choices) if (best && c.priority > best.priority) best = c;
  return best?.path ?? null;
}

// ---- arguments ----

/** the master name of the link group (e.g. pager); the tool refuses slashes and spaces */
const nameArg = z
  .string()
  .check(z.regex(/^[^/\s-][^/\s]*$/, "must be an alternatives group name without slashes or spaces, not starting with '-'"));
const absPath = z.string().check(z.refine((p) => path.isAbsolute(p), 'must be an absolute path'));

const installArgs = z.object({
  name: nameArg,
  /** the generic symlink, e.g. /usr/bin/pager (points to /etc/alternatives/<name>) */
  link: absPath,
  /** the alternative's target, which must exist, e.g. /usr/bin/less */
  path: absPath,
  /** higher wins in auto mode */
  priority: z.pipe(
    z.union([z.number().check(z.int()), z.string().check(z.regex(/^-?\d+$/))]),
    z.transform((v) => Number(v)),
  ),
});

const removeArgs = z.object({ name: nameArg, path: absPath });
const autoArgs = z.object({ name: nameArg });
const setArgs = z.object({ name: nameArg, path: absPath });

interface Plan {
  tool: string;
  changes: Changes;
}

// ---- the states ----

const install = defineState<typeof installArgs, Plan>({
  args: installArgs,
  async check(ctx, a) {
    const tool = findTool();
    const g = await query(tool, a.name);
    const cur = g?.alternatives.find((c) => c.path === a.path);
    if (cur && cur.priority === a.priority && g!.link === a.link) {
      return { comment: `Alternative ${a.path} for ${a.name} is already registered` };
    }
    // an earlier state of this run may create the target; a real run needs it now
    if (!ctx.test && !fs.existsSync(a.path)) {
      throw new StateFailure(`Alternative for ${a.name} not installed: alternative path ${a.path} doesn't exist`);
    }
    // unlike Salt, a registered path with another priority or link is re-registered
    const comment = cur
      ? `Alternative ${a.path} for ${a.name} will be re-registered with link ${a.link} and priority ${a.priority}`
      : `Alternative will be set for ${a.name} to ${a.path} with priority ${a.priority}`;
    return {
      changes: { name: a.name, link: a.link, path: a.path, priority: a.priority },
      comment,
      plan: { tool, changes: { name: a.name, link: a.link, path: a.path, priority: a.priority } },
    };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new Error('alternatives.install: apply without a plan');
    const prefix = `Alternative for ${a.name} not installed`;
    await run([plan.tool, '--install', a.link, a.name, a.path, String(a.priority)], prefix);
    const g = await query(plan.tool, a.name);
    if (!g?.alternatives.some((c) => c.path === a.path)) throw new StateFailure(`${prefix}: not registered after --install`);
    return {
      changes: plan.changes,
      comment:
        g.value === a.path
          ? `Alternative for ${a.name} set to path ${a.path} with priority ${a.priority}`
          : `Alternative ${a.path} for ${a.name} registered with priority ${a.priority} and not set to default`,
    };
  },
});

const remove = defineState<typeof removeArgs, Plan>({
  args: removeArgs,
  async check(_ctx, a) {
    const tool = findTool();
    const g = await query(tool, a.name);
    if (!g?.alternatives.some((c) => c.path === a.path)) {
      // Salt fails when the whole group is gone; absent is absent, so a second run succeeds
      if (g?.value) return { comment: `Alternative for ${a.name} is set to its default path ${g.value}` };
      return { comment: g ? `Alternative ${a.path} for ${a.name} is not registered` : `Alternative for ${a.name} doesn't exist` };
    }
    const rest = g.alternatives.filter((c) => c.path !== a.path);
    // the link stays where it is unless it pointed to the removed path; then auto mode picks
    const next = !rest.length ? null : g.value !== a.path && g.value !== null ? g.value : bestOf(rest, null);
    return {
      changes: { path: next },
      comment: `Alternative for ${a.name} will be removed`,
      plan: { tool, changes: {} },
    };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new Error('alternatives.remove: apply without a plan');
    await run([plan.tool, '--remove', a.name, a.path], `Alternative ${a.path} for ${a.name} not removed`);
    const g = await query(plan.tool, a.name);
    const current = g?.value ?? null;
    // Salt reports nothing when the last alternative goes; the group is gone, which is a change
    return {
      changes: { path: current },
      comment: current ? `Alternative for ${a.name} removed. Falling back to path ${current}` : `Alternative for ${a.name} removed`,
    };
  },
});

const auto = defineState<typeof autoArgs, Plan>({
  args: autoArgs,
  async check(ctx, a) {
    const tool = findTool();
    const g = await query(tool, a.name);
    if (g?.status === 'auto') return { comment: `${a.name} already in auto mode` };
    // an earlier install of this run may create the group; a real run needs it now
    if (!g && !ctx.test) throw new StateFailure(`Alternative for ${a.name} doesn't exist`);
    const target = g ? bestOf(g.alternatives, g.value) : null;
    return {
      // Salt's changes hold the tool's output under `result`
      changes: { result: target ? `${a.name} will point to ${target} in auto mode` : `${a.name} will be put in auto mode` },
      comment: `${a.name} will be put in auto mode${g ? '' : ` (no alternatives for ${a.name} yet)`}`,
      plan: { tool, changes: {} },
    };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new Error('alternatives.auto: apply without a plan');
    const out = await run([plan.tool, '--auto', a.name], `${a.name} not put in auto mode`);
    const g = await query(plan.tool, a.name);
    if (g?.status !== 'auto') throw new StateFailure(`${a.name} not put in auto mode: status is ${g?.status ?? 'gone'}`);
    return { changes: { result: out }, comment: `${a.name} is in auto mode, pointing to ${g.value ?? 'nothing'}` };
  },
});

const set = defineState<typeof setArgs, Plan>({
  args: setArgs,
  async check(ctx, a) {
    const tool = findTool();
    const g = await query(tool, a.name);
    if (g?.value === a.path) return { comment: `Alternative for ${a.name} already set to ${a.path}` };
    const registered = g?.alternatives.some((c) => c.path === a.path) ?? false;
    // test mode predicts (an earlier install of this run may register it); a real run fails
    if (!registered && !ctx.test) throw new StateFailure(`Alternative ${a.path} for ${a.name} doesn't exist`);
    return {
      changes: { path: a.path },
      comment: `Alternative for ${a.name} will be set to path ${a.path}${registered ? '' : ' (not registered yet)'}`,
      plan: { tool, changes: { path: a.path } },
    };
  },
  async apply(_ctx, a, plan) {
    if (!plan) throw new Error('alternatives.set: apply without a plan');
    await run([plan.tool, '--set', a.name, a.path], `Alternative for ${a.name} not updated`);
    const g = await query(plan.tool, a.name);
    if (g?.value !== a.path) throw new StateFailure(`Alternative for ${a.name} not updated (it points to ${g?.value ?? 'nothing'})`);
    return { changes: plan.changes, comment: `Alternative for ${a.name} set to path ${a.path}` };
  },
});

export default { install, remove, auto, set } satisfies StateModule;

/** The group as the states see it (tests read it back with this). */
export function queryGroup(name: string): Promise<AltGroup | undefined> {
  return query(findTool(), name);
}
