/**
 * grains.present / absent / list_present / list_absent / append: static grains in the agent's
 * grains file, as salt.states.grains (with salt.modules.grains underneath) does it.
 *
 * - The file is `opts.grains_file` (the agent's `grains_file` setting), else /etc/tsalt/grains,
 *   through ctx.path() so --root applies. It is read fresh by every state and rewritten whole
 *   (atomically, as YAML, other keys kept; comments are lost, as with Salt's yaml.safe_dump).
 * - A state sees what Salt's grains.get would: the run's grains with the file's top-level keys
 *   over them (the file is the newer truth; the run's grains were read before the run). Keys a
 *   grains state rewrote earlier in this run come from the file alone.
 * - `name` uses `delimiter` (default ':') to address nested dicts, and list items that are
 *   dicts, as Salt's traverse_dict_and_list; the whole top-level grain is written back.
 * - ctx.grains is not updated mid-run: Salt refreshes grains after the state, here the agent's
 *   watch on the file re-reads it and sends it to the master, so later runs (and their Jinja)
 *   see the new values; states later in this run see them only through this module.
 */
import fs from 'node:fs';
import path from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import * as z from 'zod/mini';
import type { RunContext } from './context.js';
import { boolArg, defineState, StateFailure, type Changes, type StateModule } from './define.js';
import { atomicWrite, makeDirs } from './file/atomic-write.js';
import { refuseSpecial } from './file/paths.js';
import { statPerms, type PermState } from './file/ownership.js';
import { loadGrainsFile } from '../grains/core.js';
import { dumpSaltYaml } from '../render/salt-yaml.js';
import { pyOutput } from '../render/pyrepr.js';

const DEFAULT_FILE = '/etc/tsalt/grains';
/** runData key: top-level grains this run has written (their run-start value is stale) */
const WRITTEN = 'grains.written';

type Data = Record<string, unknown>;

// ---- the grains file ----

interface Grains {
  /** the file on disk (--root applied) */
  file: string;
  /** what the file holds */
  data: Data;
  /** what grains.get sees: run grains, file keys over them */
  view: Data;
}

function grainsFile(ctx: RunContext): string {
  const f = ctx.opts.grains_file;
  return ctx.path(typeof f === 'string' && f ? f : DEFAULT_FILE);
}

function written(ctx: RunContext): Set<string> {
  let s = ctx.runData.get(WRITTEN) as Set<string> | undefined;
  if (!s) {
    s = new Set();
    ctx.runData.set(WRITTEN, s);
  }
  return s;
}

function readGrains(ctx: RunContext): Grains {
  const file = grainsFile(ctx);
  // a device, FIFO or socket (or a link to one: /etc/x -> /dev/null) is never read nor replaced
  refuseSpecial(file);
  let data: Data;
  try {
    data = loadGrainsFile(file);
  } catch (e) {
    // Salt would start over from {} here; we refuse rather than drop what the file holds
    throw new StateFailure(`Unable to read existing grains file: ${(e as Error).message}`);
  }
  const stale = written(ctx);
  const view: Data = {};
  for (const [k, v] of Object.entries(ctx.grains)) if (!stale.has(k)) view[k] = v;
  Object.assign(view, data);
  return { file, data, view };
}

async function writeGrains(ctx: RunContext, g: Grains, data: Data, top: string): Promise<void> {
  refuseSpecial(g.file);
  let dest = g.file;
  let perms: PermState;
  try {
    const st = fs.statSync(g.file, { throwIfNoEntry: false });
    if (st) {
      // write through a symlinked grains file, keeping its owner and mode
      dest = fs.realpathSync(g.file);
      perms = statPerms(fs.statSync(dest));
    } else {
      await makeDirs(path.dirname(g.file), { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mode: 0o755 });
      // Salt creates the file with the default umask (0644): grains are not secrets
      perms = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, mode: 0o644 };
    }
    await atomicWrite(dest, Buffer.from(dumpSaltYaml(data)), perms);
  } catch (e) {
    throw new StateFailure(`Unable to write to grains file at ${g.file}: ${(e as Error).message}`);
  }
  written(ctx).add(top);
}

// ---- nested keys (salt.utils.data.traverse_dict_and_list and grains.set) ----

function isDict(v: unknown): v is Data {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The grain a state is about (path and display name) and the grains file as it is now. */
function target(ctx: RunContext, a: { name: string; delimiter: string }): { segs: string[]; name: string; g: Grains } {
  const segs = splitName(a.name, a.delimiter);
  return { segs, name: segs.join(':'), g: readGrains(ctx) };
}

function splitName(name: string, delimiter: string): string[] {
  return name.split(delimiter);
}

type Found = { found: true; value: unknown } | { found: false };

/** grains.get: dict keys, list indexes, or the first dict in a list holding the key. */
function traverse(view: Data, segs: string[]): Found {
  let ptr: unknown = view;
  for (const seg of segs) {
    if (Array.isArray(ptr)) {
      if (/^-?\d+$/.test(seg)) {
        const i = Number(seg);
        const idx = i < 0 ? ptr.length + i : i;
        if (idx < 0 || idx >= ptr.length) return { found: false };
        ptr = ptr[idx];
      } else {
        const d = ptr.find((x) => isDict(x) && Object.prototype.hasOwnProperty.call(x, seg)) as Data | undefined;
        if (!d) return { found: false };
        ptr = d[seg];
      }
    } else if (isDict(ptr) && Object.prototype.hasOwnProperty.call(ptr, seg)) {
      ptr = ptr[seg];
    } else {
      return { found: false };
    }
  }
  return { found: true, value: ptr };
}

function get(view: Data, segs: string[]): unknown {
  const r = traverse(view, segs);
  return r.found ? r.value : undefined;
}

function has(list: unknown[], v: unknown): boolean {
  return list.some((x) => isDeepStrictEqual(x, v));
}

/** Python truthiness, which Salt's `if grain:` tests. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isDict(v)) return Object.keys(v).length > 0;
  return true;
}

function isComplex(v: unknown): boolean {
  return typeof v === 'object' && v !== null;
}

interface Placed {
  top: string;
  /** the file's new content */
  data: Data;
  /** the top-level grain's new value (undefined: removed) */
  topValue: unknown;
}

/**
 * Put `value` at `segs`, building the nested containers upwards from the current values as
 * grains.set does; `remove` drops the key instead (absent with destructive=True).
 */
function place(g: Grains, segs: string[], value: unknown, o: { force: boolean; remove: boolean }): Placed {
  let v: unknown = value;
  for (let i = segs.length - 1; i >= 1; i--) {
    const parentSegs = segs.slice(0, i);
    const rest = segs[i]!;
    const deepest = i === segs.length - 1;
    const cur = traverse(g.view, parentSegs);
    let parent: unknown = cur.found ? structuredClone(cur.value) : {};
    if (isDict(parent)) {
      if (o.remove && deepest) delete parent[rest];
      else parent[rest] = v;
    } else if (Array.isArray(parent)) {
      const list = parent;
      if (/^\d+$/.test(rest) && Number(rest) < list.length) {
        // an index, as grains.get reads it (Salt's set would append {'0': value} every run)
        if (o.remove && deepest) list.splice(Number(rest), 1);
        else list[Number(rest)] = v;
      } else {
        // a list item equal to the key becomes {key: value}; dict items holding the key update
        let updated = false;
        for (let j = list.length - 1; j >= 0; j--) {
          const item = list[j];
          if (item === rest) {
            if (o.remove && deepest) list.splice(j, 1);
            else list[j] = { [rest]: v };
            updated = true;
          } else if (isDict(item) && Object.prototype.hasOwnProperty.call(item, rest)) {
            if (o.remove && deepest) delete item[rest];
            else item[rest] = v;
            updated = true;
          }
        }
        if (!updated && !(o.remove && deepest)) list.push({ [rest]: v });
      }
    } else if (parent === rest || o.force) {
      parent = { [rest]: v };
    } else {
      throw new StateFailure(
        `The key '${parentSegs.join(':')}' value is '${pyOutput(parent)}', which is different from the provided key '${rest}'. Use 'force=True' to overwrite.`,
      );
    }
    v = parent;
  }
  const top = segs[0]!;
  const data = structuredClone(g.data);
  if (o.remove && segs.length === 1) {
    delete data[top];
    return { top, data, topValue: undefined };
  }
  data[top] = v;
  return { top, data, topValue: v };
}

/** grains.set's refusals: complex values are only replaced with force. */
function guardComplex(name: string, cur: Found, value: unknown, force: boolean): void {
  if (force || !cur.found || cur.value === null) return;
  if (isComplex(cur.value)) {
    throw new StateFailure(`The key '${name}' exists but is a dict or a list. Use 'force=True' to overwrite.`);
  }
  if (isComplex(value)) {
    throw new StateFailure(`The key '${name}' exists and the given value is a dict or a list. Use 'force=True' to overwrite.`);
  }
}

function changed(g: Grains, p: Placed): boolean {
  return !isDeepStrictEqual(g.data, p.data);
}

// ---- arguments ----

const required = z.custom<unknown>((v) => v !== undefined, { message: 'is required' });

const base = {
  name: z.string().check(z.minLength(1)),
  /** separates the levels of a nested grain in `name` */
  delimiter: z._default(z.string().check(z.minLength(1)), ':'),
};

const presentArgs = z.object({
  ...base,
  value: required,
  /** replace a list/dict grain, or a scalar with a list/dict, or a scalar parent of a nested key */
  force: z._default(boolArg, false),
});

const absentArgs = z.object({
  ...base,
  /** remove the key itself instead of setting its value to None */
  destructive: z._default(boolArg, false),
  force: z._default(boolArg, false),
});

const listArgs = z.object({
  ...base,
  /** one item or a list of items */
  value: required,
});

const appendArgs = z.object({
  ...base,
  value: required,
  /** turn a grain that is not a list into one (None becomes []) */
  convert: z._default(boolArg, false),
});

interface Plan {
  g: Grains;
  p: Placed;
  changes: Changes;
  comment: string;
}

async function applyPlan(ctx: RunContext, plan: Plan | undefined): Promise<{ changes: Changes; comment: string }> {
  if (!plan) throw new Error('grains: apply without a plan');
  await writeGrains(ctx, plan.g, plan.p.data, plan.p.top);
  return { changes: plan.changes, comment: plan.comment };
}

function listOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [v];
}

/** Items of `want` not yet in `cur`, each once. */
function missing(cur: unknown[], want: unknown[]): unknown[] {
  const out: unknown[] = [];
  for (const w of want) if (!has(cur, w) && !has(out, w)) out.push(w);
  return out;
}

// ---- the states ----

const present = defineState<typeof presentArgs, Plan>({
  args: presentArgs,
  async check(ctx, a) {
    const { segs, name, g } = target(ctx, a);
    const cur = traverse(g.view, segs);
    if (cur.found && isDeepStrictEqual(cur.value, a.value)) return { comment: 'Grain is already set' };
    guardComplex(name, cur, a.value, a.force);
    const p = place(g, segs, a.value, { force: a.force, remove: false });
    if (!changed(g, p)) return { comment: 'Grain is already set' };
    // Salt's real run reports the top-level grain as written (its test run differs; we don't)
    const changes = { [p.top]: p.topValue };
    return {
      changes,
      comment: `Grain ${name} is set to be ${cur.found ? 'changed' : 'added'}`,
      plan: { g, p, changes, comment: `Set grain ${name} to ${pyOutput(a.value)}` },
    };
  },
  apply: (ctx, _a, plan) => applyPlan(ctx, plan),
});

const absent = defineState<typeof absentArgs, Plan>({
  args: absentArgs,
  async check(ctx, a) {
    const { segs, name, g } = target(ctx, a);
    const cur = traverse(g.view, segs);
    if (!cur.found) return { comment: `Grain ${name} does not exist` };
    if (cur.value === null && !a.destructive) return { comment: 'Grain is already set' };
    guardComplex(name, cur, null, a.force);
    const p = place(g, segs, null, { force: a.force, remove: a.destructive });
    if (!changed(g, p)) {
      // only a grain the file holds can be removed; detected and config grains come back
      return { comment: `Grain ${name} is not set in the grains file ${g.file}; nothing to delete there` };
    }
    if (a.destructive) {
      return {
        changes: { deleted: name },
        comment: `Grain ${name} is set to be deleted`,
        plan: { g, p, changes: { deleted: name }, comment: `Grain ${name} was deleted` },
      };
    }
    const changes = { grain: name, value: null };
    return {
      changes,
      comment: `Value for grain ${name} is set to be deleted (None)`,
      plan: { g, p, changes, comment: `Value for grain ${name} was set to None` },
    };
  },
  apply: (ctx, _a, plan) => applyPlan(ctx, plan),
});

const list_present = defineState<typeof listArgs, Plan>({
  args: listArgs,
  async check(ctx, a) {
    const { segs, name, g } = target(ctx, a);
    const grain = get(g.view, segs);
    if (truthy(grain) && !Array.isArray(grain)) throw new StateFailure(`Grain ${name} is not a valid list`);
    // an empty, None or missing grain becomes a new list (Salt's `if grain:`)
    const cur = Array.isArray(grain) ? grain : [];
    const add = missing(cur, listOf(a.value));
    if (!add.length) return { comment: `Value ${pyOutput(a.value)} is already in grain ${name}` };
    // only the missing items are added: Salt appends a whole list value, duplicating items
    const p = place(g, segs, [...cur, ...add], { force: false, remove: false });
    const changes = { new: { [p.top]: p.topValue } };
    return {
      changes,
      comment: truthy(grain)
        ? `Value ${pyOutput(a.value)} is set to be appended to grain ${name}`
        : `Grain ${name} is set to be added`,
      plan: { g, p, changes, comment: `Append value ${pyOutput(a.value)} to grain ${name}` },
    };
  },
  apply: (ctx, _a, plan) => applyPlan(ctx, plan),
});

const list_absent = defineState<typeof listArgs, Plan>({
  args: listArgs,
  async check(ctx, a) {
    const { segs, name, g } = target(ctx, a);
    const grain = get(g.view, segs);
    if (!truthy(grain)) return { comment: `Grain ${name} does not exist` };
    if (!Array.isArray(grain)) throw new StateFailure(`Grain ${name} is not a valid list`);
    const predicted: string[] = [];
    const done: string[] = [];
    const deleted: unknown[] = [];
    for (const v of listOf(a.value)) {
      if (has(deleted, v)) continue;
      if (!has(grain, v)) {
        predicted.push(`Value ${pyOutput(v)} is absent from grain ${name}`);
        done.push(`Value ${pyOutput(v)} is absent from grain ${name}`);
        continue;
      }
      deleted.push(v);
      predicted.push(`Value ${pyOutput(v)} in grain ${name} is set to be deleted`);
      done.push(`Value ${pyOutput(v)} was deleted from grain ${name}`);
    }
    if (!deleted.length) return { comment: predicted.join('\n') };
    // every copy goes (Salt's list.remove takes the first, so duplicates need more runs)
    const p = place(g, segs, grain.filter((x) => !has(deleted, x)), { force: false, remove: false });
    const changes = { deleted };
    return { changes, comment: predicted.join('\n'), plan: { g, p, changes, comment: done.join('\n') } };
  },
  apply: (ctx, _a, plan) => applyPlan(ctx, plan),
});

const append = defineState<typeof appendArgs, Plan>({
  args: appendArgs,
  async check(ctx, a) {
    const { segs, name, g } = target(ctx, a);
    const cur = traverse(g.view, segs);
    // the grain must exist; a None value counts (a grain declared without a value)
    if (!cur.found) throw new StateFailure(`Grain ${name} does not exist`);
    const v = pyOutput(a.value);
    let list: unknown[];
    let comment: string;
    if (Array.isArray(cur.value)) {
      // a list value appends its items, as grains.append does; present when all of them are
      const add = missing(cur.value, listOf(a.value));
      if (!add.length) return { comment: `Value ${v} is already in the list for grain ${name}` };
      list = [...cur.value, ...add];
      comment = `Value ${v} in grain ${name} is set to be added`;
    } else if (a.convert) {
      list = [...(cur.value === null ? [] : [cur.value]), ...listOf(a.value)];
      comment = `Grain ${name} is set to be converted to list and value ${v} will be added`;
    } else {
      throw new StateFailure(`Grain ${name} is not a valid list`);
    }
    const p = place(g, segs, list, { force: false, remove: false });
    const changes = { added: a.value };
    return { changes, comment, plan: { g, p, changes, comment: `Value ${v} was added to grain ${name}` } };
  },
  apply: (ctx, _a, plan) => applyPlan(ctx, plan),
});

export default { present, absent, list_present, list_absent, append } satisfies StateModule;
