// Writes docs/config.md and docs/examples/{master,agent}.yaml from the zod schemas of
// master.yaml and agent.yaml: every key with its type and default (z.toJSONSchema) and its
// meaning (the /** */ comment on the key in the schema's source, read with the TypeScript
// parser, so the schema file stays the one place to say it). A key without a comment is an error.
// Run after `npm run build`: node scripts/gen-config-docs.mjs
// With --check it writes nothing and exits 1 when a file is out of date (a test runs it).
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { z } from 'zod';

const root = path.resolve(import.meta.dirname, '..');
const dist = (f) => import(path.join(root, 'dist', f));
const { MasterConfigSchema, GitConfigSchema } = await dist('master/config.js');
const { AgentConfigSchema } = await dist('agent/connection/config.js');
const { RolloutConfigSchema } = await dist('master/rollout.js');
const { MetricsConfigSchema } = await dist('master/metrics.js');
const { ScheduleEntrySchema } = await dist('master/schedule.js');

/** Every object literal's keys and their JSDoc text in one source file. */
function commentsOf(file) {
  const text = fs.readFileSync(path.join(root, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const objects = [];
  const visit = (n) => {
    if (ts.isObjectLiteralExpression(n)) {
      const m = new Map();
      for (const p of n.properties) {
        if (!p.name) continue;
        const key = p.name.getText(sf).replace(/^['"]|['"]$/g, '');
        const doc = ts.getJSDocCommentsAndTags(p).filter(ts.isJSDoc).map((d) => (typeof d.comment === 'string' ? d.comment : '')).join(' ');
        m.set(key, doc.replace(/\s+/g, ' ').trim());
      }
      objects.push(m);
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return objects;
}

/** The comments of the object literal that declares exactly these keys. */
function meanings(file, keys) {
  const obj = commentsOf(file).find((m) => keys.every((k) => m.has(k)));
  if (!obj) throw new Error(`${file}: no object literal declares ${keys.join(', ')}`);
  return obj;
}

function typeOf(s) {
  if (!s || Object.keys(s).length === 0) return 'any';
  if (s.enum) return s.enum.map((v) => `\`${v}\``).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' or ');
  if (s.type === 'array') return `list of ${typeOf(s.items)}`;
  if (s.type === 'object') return s.additionalProperties && s.propertyNames ? `map of ${typeOf(s.additionalProperties)}` : 'mapping';
  let t = s.type;
  const lo = s.minimum ?? (s.exclusiveMinimum !== undefined ? `>${s.exclusiveMinimum}` : undefined);
  const hi = s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER ? s.maximum : undefined;
  if (lo !== undefined && hi !== undefined) t += ` ${lo}–${hi}`;
  else if (lo !== undefined) t += ` ${typeof lo === 'string' ? lo : `≥${lo}`}`;
  if (s.pattern) t += ` matching \`${s.pattern}\``;
  return t;
}

const show = (v) => (v === undefined ? '(none)' : `\`${JSON.stringify(v)}\``);

/** One table of a schema's keys; nested objects listed for their own sections. */
function section(title, intro, schema, file) {
  const js = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' });
  const props = js.properties;
  const keys = Object.keys(props);
  const doc = meanings(file, keys);
  const missing = keys.filter((k) => !doc.get(k));
  if (missing.length) throw new Error(`${file}: no /** comment */ saying what ${missing.join(', ')} mean(s)`);
  const lines = [title, '', intro, '', '| key | type | default | meaning |', '|---|---|---|---|'];
  for (const k of keys) {
    const p = props[k];
    const type = p.type === 'object' && p.properties ? 'mapping (below)' : typeOf(p);
    lines.push(`| \`${k}\` | ${type} | ${show(p.default)} | ${doc.get(k).replace(/\|/g, '\\|')} |`);
  }
  lines.push('');
  return { lines, js, doc };
}

/** An example file: every key, set to its default, its meaning above it; optional ones commented. */
function example(header, parts) {
  const out = [...header.map((l) => `# ${l}`.trimEnd()), ''];
  for (const { js, doc, prefix = '', sample = {}, skip = [] } of parts) {
    for (const [k, p] of Object.entries(js.properties)) {
      if (skip.includes(k)) continue; // written as its own block
      out.push(`${prefix}# ${doc.get(k)}`);
      const v = sample[k] ?? p.default;
      const line = `${k}: ${v === undefined ? '' : JSON.stringify(v)}`.trimEnd();
      out.push(v === undefined || (sample[k] === undefined && js.required?.includes(k) === false && p.default === undefined) ? `${prefix}# ${line}` : `${prefix}${line}`);
    }
  }
  return out.join('\n') + '\n';
}

const master = section('## master.yaml', 'Read from `/etc/tsalt/master.yaml` (or `tsalt master --config FILE`). Every key is optional; an unknown key is an error naming it. Relative paths are relative to the file.', MasterConfigSchema, 'master/config.ts');
const git = section('### git', 'Present: states and pillar come from one git repository (bare or a clone), read from git objects at one commit per job; not together with `state_tree`/`pillar_tree`. See [fleet.md](fleet.md).', GitConfigSchema, 'master/config.ts');
const rollout = section('### rollout', 'Present: each revision pushed (descending from the desired one) is rolled out group by group, batch by batch, with verify checks; see [fleet.md](fleet.md).', RolloutConfigSchema, 'master/rollout.ts');
const metrics = section('### metrics', 'Present (even empty): the Prometheus endpoint `GET /metrics`; see [fleet.md](fleet.md).', MetricsConfigSchema, 'master/metrics.ts');
const schedule = section('### schedule.NAME', "Salt's `schedule`: each entry is a job the master starts every interval (`seconds`, `minutes`, `hours`, `days` add up).", ScheduleEntrySchema, 'master/schedule.ts');
const agent = section('## agent.yaml', 'Read from `/etc/tsalt/agent.yaml` (or `tsalt agent --config FILE`). Every key is optional; an unknown key is an error naming it. Names follow Salt\'s minion config where one exists.', AgentConfigSchema, 'agent/connection/config.ts');

const md = [
  '# Configuration',
  '',
  'Generated from the zod schemas by `node scripts/gen-config-docs.mjs` (a test fails when this file',
  'falls behind them). Complete example files: [examples/master.yaml](examples/master.yaml),',
  '[examples/agent.yaml](examples/agent.yaml). YAML is read as Salt reads it.',
  '',
  ...master.lines,
  ...git.lines,
  ...rollout.lines,
  ...metrics.lines,
  ...schedule.lines,
  ...agent.lines,
].join('\n');

const masterYaml =
  example(['tsalt master configuration: every key, at its default (generated by scripts/gen-config-docs.mjs).', 'Keys shown commented out are unset by default.'], [{ js: master.js, doc: master.doc, skip: ['git', 'rollout', 'metrics', 'schedule'] }]) +
  '\n# ' + master.doc.get('git') + '\n# git:\n' + example([], [{ js: git.js, doc: git.doc, prefix: '#   ', sample: { repo: '/srv/tsalt/config.git' } }]).replace(/^\n/, '') +
  '\n# ' + master.doc.get('rollout') + '\n# rollout:\n' + example([], [{ js: rollout.js, doc: rollout.doc, prefix: '#   ' }]).replace(/^\n/, '') +
  '\n# ' + master.doc.get('metrics') + '\n# metrics:\n' + example([], [{ js: metrics.js, doc: metrics.doc, prefix: '#   ' }]).replace(/^\n/, '') +
  '\n# ' + master.doc.get('schedule') + '\n# schedule:\n#   highstate_hourly:\n' + example([], [{ js: schedule.js, doc: schedule.doc, prefix: '#     ', sample: { function: 'state.highstate', hours: 1 } }]).replace(/^\n/, '');
const agentYaml = example(['tsalt agent configuration: every key, at its default (generated by scripts/gen-config-docs.mjs).', 'Keys shown commented out are unset by default.'], [{ js: agent.js, doc: agent.doc }]);

const files = { 'docs/config.md': md + '\n', 'docs/examples/master.yaml': masterYaml, 'docs/examples/agent.yaml': agentYaml };
if (process.argv.includes('--check')) {
  const stale = Object.entries(files).filter(([f, t]) => !fs.existsSync(path.join(root, f)) || fs.readFileSync(path.join(root, f), 'utf8') !== t).map(([f]) => f);
  if (stale.length) {
    console.error(`${stale.join(', ')} out of date: run \`npm run build && node scripts/gen-config-docs.mjs\``);
    process.exit(1);
  }
  console.log('docs/config.md and the example files are up to date');
} else {
  for (const [f, t] of Object.entries(files)) fs.writeFileSync(path.join(root, f), t);
  console.log(`wrote ${Object.keys(files).join(', ')}`);
}
