/**
 * file.serialize: data (from the SLS or pillar) written as JSON or YAML, with the same atomic
 * write, ownership and diff reporting as file.managed. Salt's defaults are kept: YAML unless
 * `formatter: json`, keys sorted, JSON indented by 2; `merge_if_exists` deep-merges the
 * dataset over what the file already holds.
 */
import fs from 'node:fs';
import { dumpSaltYaml, loadSaltYaml } from '../../render/salt-yaml.js';
import * as z from 'zod/mini';
import { traverse, deepMerge } from '../../render/salt-functions.js';
import { boolArg, defineState, modeArg, principalArg, StateFailure } from '../define.js';
import { applyFile, planFile } from './core.js';
import { resolveOwner } from './ownership.js';
import { requireAbsolute } from './paths.js';

const serializeArgs = z.object({
  name: z.string(),
  dataset: z.optional(z.unknown()),
  dataset_pillar: z.nullish(z.string()),
  formatter: z.pipe(
    z._default(z.enum(['json', 'yaml', 'JSON', 'YAML']), 'yaml'),
    z.transform((f) => f.toLowerCase() as 'json' | 'yaml'),
  ),
  merge_if_exists: z._default(boolArg, false),
  user: z.nullish(principalArg),
  group: z.nullish(principalArg),
  mode: z.nullish(modeArg),
  makedirs: z._default(boolArg, false),
  create: z._default(boolArg, true),
  backup: z.nullish(z.string()),
  show_changes: z._default(boolArg, true),
  follow_symlinks: z._default(boolArg, true),
  check_cmd: z.nullish(z.string()),
  serializer_opts: z.nullish(z.array(z.record(z.string(), z.unknown()))),
});

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object' && !(v instanceof Date)) {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  }
  return v;
}

function serialize(data: unknown, formatter: 'json' | 'yaml', opts: Record<string, unknown>): string {
  if (formatter === 'json') {
    const indent = typeof opts.indent === 'number' ? opts.indent : 2;
    return JSON.stringify(opts.sort_keys === false ? data : sortKeys(data), null, indent) + '\n';
  }
  return dumpSaltYaml(data, { sortKeys: opts.sort_keys !== false, flowLevel: opts.default_flow_style === true ? 0 : -1, lineWidth: -1 });
}

function parseExisting(text: string, formatter: 'json' | 'yaml', name: string): unknown {
  try {
    return formatter === 'json' ? JSON.parse(text) : loadSaltYaml(text);
  } catch (e) {
    throw new StateFailure(`merge_if_exists: ${name} is not valid ${formatter}: ${(e as Error).message.split('\n')[0]}`);
  }
}

export const serialize_ = defineState({
  args: serializeArgs,
  async check(ctx, a) {
    requireAbsolute(a.name);
    if ((a.dataset === undefined) === (a.dataset_pillar === undefined || a.dataset_pillar === null)) {
      throw new StateFailure("Only one of 'dataset' and 'dataset_pillar' is permitted (and one is required)");
    }
    let data: unknown = a.dataset;
    if (a.dataset_pillar) {
      data = traverse(ctx.pillar, a.dataset_pillar);
      if (typeof data === 'symbol') throw new StateFailure(`pillar key ${a.dataset_pillar} is not set`);
    }
    const opts = Object.assign({}, ...(a.serializer_opts ?? [])) as Record<string, unknown>;
    if (a.merge_if_exists) {
      let existing: string | undefined;
      try {
        existing = fs.readFileSync(ctx.path(a.name), 'utf8');
      } catch {
        existing = undefined;
      }
      const old = existing === undefined ? undefined : parseExisting(existing, a.formatter, a.name);
      if (old && typeof old === 'object' && !Array.isArray(old) && data && typeof data === 'object' && !Array.isArray(data)) {
        data = deepMerge(structuredClone(old) as Record<string, unknown>, structuredClone(data) as Record<string, unknown>);
      }
    }
    const owner = await resolveOwner(ctx, a.user ?? undefined, a.group ?? undefined);
    const plan = await planFile(ctx, {
      name: a.name,
      content: Buffer.from(serialize(data, a.formatter, opts), 'utf8'),
      owner,
      mode: a.mode ?? undefined,
      replace: true,
      create: a.create,
      makedirs: a.makedirs,
      followSymlinks: a.follow_symlinks,
      showChanges: a.show_changes,
      backup: a.backup || undefined,
      checkCmd: a.check_cmd ?? undefined,
    });
    if (plan.notCreated) return { comment: `File ${a.name} is not present and is not set for creation` };
    if (Object.keys(plan.changes).length === 0) return { comment: `The file ${a.name} is in the correct state` };
    return { changes: plan.changes, plan, comment: `Dataset will be serialized and stored into ${a.name}` };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure('internal: file.serialize applied without a plan');
    await applyFile(ctx, plan);
    return { changes: plan.changes, comment: `File ${a.name} updated` };
  },
});
