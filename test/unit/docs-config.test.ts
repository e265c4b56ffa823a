/**
 * docs/config.md and docs/examples/{master,agent}.yaml are generated from the config schemas
 * (scripts/gen-config-docs.mjs): they must not fall behind them, and the example files must load
 * (every key at its default, and with every commented block switched on).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { loadMasterConfig } from '../../master/config.js';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { MasterConfigSchema } from '../../master/config.js';
import { AgentConfigSchema } from '../../agent/connection/config.js';
import { tempDir } from '../helpers/harness.js';

const root = path.resolve(import.meta.dirname, '../..');

it('docs/config.md and the example files are what the schemas generate', () => {
  const r = spawnSync(process.execPath, [path.join(root, 'scripts/gen-config-docs.mjs'), '--check'], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
});

/**
 * Every mapping in a schema, at any depth (a key's mapping, a list of them, a map of names to
 * them, each form of a union), as `path -> keys`; walked here apart from the generator's own walk
 * so that a kind of nesting the generator skips shows up as a missing section.
 */
type Def = { type: string; [k: string]: unknown };
const defOf = (s: unknown): Def => (s as { _zod: { def: Def } })._zod.def;
function mappings(s: unknown, at: string, out: Map<string, string[]>): Map<string, string[]> {
  const d = defOf(s);
  switch (d.type) {
    case 'default': case 'prefault': case 'optional': case 'nullable': case 'readonly': case 'catch': case 'nonoptional':
      return mappings(d.innerType, at, out);
    case 'pipe': // preprocess is pipe(transform, S), .transform() is pipe(S, transform)
      return mappings(defOf(d.in).type === 'transform' ? d.out : d.in, at, out);
    case 'array':
      return mappings(d.element, `${at}[]`, out);
    case 'record':
      return mappings(d.valueType, `${at}.NAME`, out);
    case 'union': {
      const forms = (d.options as unknown[]).filter((o) => mappings(o, '', new Map()).size > 0);
      forms.forEach((o, i) => mappings(o, forms.length > 1 ? `${at} (form ${i + 1} of ${forms.length})` : at, out));
      return out;
    }
    case 'object': {
      const shape = d.shape as Record<string, unknown>;
      out.set(at, Object.keys(shape));
      for (const [k, v] of Object.entries(shape)) mappings(v, at ? `${at}.${k}` : k, out);
      return out;
    }
    default:
      return out;
  }
}

/** The key column of each section's table: `## title` / `### path` -> keys. */
function docSections(md: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let at = '';
  for (const line of md.split('\n')) {
    const h = /^#{2,3} (.+)$/.exec(line);
    if (h) out.set((at = h[1]!), []);
    const row = /^\| `([^`]+)` \|/.exec(line);
    if (row && at) out.get(at)!.push(row[1]!);
  }
  return out;
}

it('docs/config.md has a section for every mapping of master.yaml and agent.yaml, and a row for each of its keys', () => {
  const doc = docSections(fs.readFileSync(path.join(root, 'docs/config.md'), 'utf8'));
  for (const [file, schema] of [['master.yaml', MasterConfigSchema], ['agent.yaml', AgentConfigSchema]] as const) {
    const want = mappings(schema, '', new Map());
    expect(want.size).toBeGreaterThan(0);
    for (const [at, keys] of want) expect({ section: at || file, keys: doc.get(at || file) }).toEqual({ section: at || file, keys });
  }
  // the nestings that exist today, so the walk itself cannot quietly find nothing
  const master = mappings(MasterConfigSchema, '', new Map());
  expect([...master.keys()]).toEqual(expect.arrayContaining(['git', 'rollout', 'rollout.verify[]', 'metrics', 'schedule.NAME', 'console']));
});

it('docs/config.md shows the defaults under transforms (batch 25%, git dirs, schedule {})', () => {
  const md = fs.readFileSync(path.join(root, 'docs/config.md'), 'utf8');
  expect(md).toMatch(/^\| `batch` \| [^|]+ \| `"25%"` \|/m);
  expect(md).toMatch(/^\| `states_dir` \| [^|]+ \| `"states"` \|/m);
  expect(md).toMatch(/^\| `schedule` \| [^|]+ \| `\{\}` \|/m);
});

it('the example files load, with their optional blocks switched on too', () => {
  const dir = tempDir();
  const m = fs.readFileSync(path.join(root, 'docs/examples/master.yaml'), 'utf8');
  fs.writeFileSync(path.join(dir, 'master.yaml'), m);
  expect(loadMasterConfig(path.join(dir, 'master.yaml')).port).toBe(4506);
  const on = m.replace(/^# (git|rollout|metrics|schedule|console):$/gm, '$1:').replace(/^# ( +[^#\s].*)$/gm, '$1');
  fs.writeFileSync(path.join(dir, 'master-on.yaml'), on);
  const cfg = loadMasterConfig(path.join(dir, 'master-on.yaml'));
  expect(cfg.rollout?.batch).toBe('25%');
  expect(cfg.rollout?.verify).toEqual([{ command: 'curl -fsS http://127.0.0.1/healthz', status: 200, timeout_s: 10, retries: 2, delay_s: 2 }]);
  expect(cfg.metrics).toEqual({ interface: '127.0.0.1', port: 9506 });
  expect(cfg.schedule.highstate_hourly).toMatchObject({ function: 'state.highstate', hours: 1 });
  expect(cfg.git).toEqual({ repo: '/srv/tsalt/config.git', branch: 'main', states_dir: 'states', pillar_dir: 'pillar' });
  expect(cfg.console).toMatchObject({ interface: '127.0.0.1', port: 4580 });
  fs.writeFileSync(path.join(dir, 'agent.yaml'), fs.readFileSync(path.join(root, 'docs/examples/agent.yaml'), 'utf8'));
  expect(loadAgentConfig(path.join(dir, 'agent.yaml')).master).toBe('salt');
});
