// Writes docs/config.md and docs/examples/{master,agent}.yaml from the zod schemas of
// master.yaml and agent.yaml: every key with its type and default and its meaning (the /** */
// comment on the key in the schema's source, read with the TypeScript parser, so the schema file
// stays the one place to say it). A key without a comment is an error. The schemas are walked:
// every nested mapping, list of mappings, map of mappings and union of mappings gets its own
// section, so a new one cannot be left out.
// Run after `npm run build`: node scripts/gen-config-docs.mjs
// With --check it writes nothing and exits 1 when a file is out of date (a test runs it).
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { z } from 'zod';
import { nestedOf, sectionsOf, unwrap } from './config-schema-walk.mjs';

const root = path.resolve(import.meta.dirname, '..');
const dist = (f) => import(path.join(root, 'dist', f));
const { MasterConfigSchema } = await dist('master/config.js');
const { AgentConfigSchema } = await dist('agent/connection/config.js');

/** Sources that may declare config schemas: the code, not tests or build output. */
function sourceFiles(dir = root, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name.startsWith('.') || ['node_modules', 'dist', 'test', 'bench', 'vagrant'].includes(e.name)) continue;
    const f = path.join(dir, e.name);
    if (e.isDirectory()) sourceFiles(f, out);
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(f);
  }
  return out;
}

/** Every `z.object({...})`-like literal in the sources: its keys and their JSDoc text. */
const declared = [];
for (const file of sourceFiles()) {
  const text = fs.readFileSync(file, 'utf8');
  if (!/\b(strictObject|object|looseObject)\(/.test(text)) continue;
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const visit = (n) => {
    if (ts.isCallExpression(n) && /(^|\.)(strictObject|object|looseObject)$/.test(n.expression.getText(sf)) && n.arguments[0] && ts.isObjectLiteralExpression(n.arguments[0])) {
      const m = new Map();
      for (const p of n.arguments[0].properties) {
        if (!p.name) continue;
        const key = p.name.getText(sf).replace(/^['"]|['"]$/g, '');
        const doc = ts.getJSDocCommentsAndTags(p).filter(ts.isJSDoc).map((d) => (typeof d.comment === 'string' ? d.comment : '')).join(' ');
        m.set(key, doc.replace(/\s+/g, ' ').trim());
      }
      declared.push({ file: path.relative(root, file), doc: m });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}

/** The comments of the schema literal that declares exactly these keys. */
function meanings(where, keys) {
  const found = declared.filter(({ doc }) => doc.size === keys.length && keys.every((k) => doc.has(k)));
  const distinct = new Map(found.map((f) => [JSON.stringify([...f.doc]), f]));
  if (distinct.size === 0) throw new Error(`${where}: no z.object({...}) in the sources declares exactly ${keys.join(', ')}`);
  if (distinct.size > 1) throw new Error(`${where}: ${[...distinct.values()].map((f) => f.file).join(' and ')} both declare ${keys.join(', ')} with different comments`);
  const { file, doc } = [...distinct.values()][0];
  const missing = keys.filter((k) => !doc.get(k));
  if (missing.length) throw new Error(`${file}: no /** comment */ saying what ${where}.${missing.join(', ')} mean(s)`);
  return doc;
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
  if (s.format === 'uri') t += ' (URL)';
  return t;
}

const show = (v) => (v === undefined ? '(none)' : `\`${JSON.stringify(v)}\``);
const shapeOf = (obj) => obj._zod.def.shape;

/** The words at the top of a section, where the meaning of the key that holds it is not enough. */
const INTROS = {
  rollout: 'Present: every new git revision of `state_tree` is applied automatically, batch by batch.',
  metrics: 'Present (even empty): the Prometheus endpoint `GET /metrics`; see [fleet.md](fleet.md).',
  'schedule.NAME': "Salt's `schedule`: each entry is a job the master starts every interval (`seconds`, `minutes`, `hours`, `days` add up).",
  git: 'Present: states and pillar come from one git repository, and every job is pinned to one of its revisions. Give either `git:` or `state_tree`/`pillar_tree`.',
  'rollout.verify[]': 'Checks after each batch; a failing one fails the batch. Each entry is exactly one of `command`, `http`, `agent_command`, with its timeout and retries.',
  console: 'Present: the read-only web console; see [console.md](console.md).',
};

/** Every section of one config file: a table of its keys, each mapping under it in its own. */
function document(title, intro, schema) {
  const secs = sectionsOf(schema).map((s) => ({ ...s, doc: meanings(s.path || title, Object.keys(shapeOf(s.obj))) }));
  const docOf = new Map(secs.map((s) => [s.path, s.doc]));
  const lines = [];
  for (const s of secs) {
    const said = s.parent ? docOf.get(s.parent.path).get(s.parent.key) : undefined;
    const words = s.path ? (INTROS[s.path] ?? `${said[0].toUpperCase()}${said.slice(1)}.`) : intro;
    lines.push(s.path ? `### ${s.path}` : `## ${title}`, '', words, '', '| key | type | default | meaning |', '|---|---|---|---|');
    for (const [k, v] of Object.entries(shapeOf(s.obj))) {
      const type = typeOf(z.toJSONSchema(v, { io: 'input', unrepresentable: 'any' })) + (nestedOf(v).length ? ' (below)' : '');
      lines.push(`| \`${k}\` | ${type} | ${show(unwrap(v).default)} | ${s.doc.get(k).replace(/\|/g, '\\|')} |`);
    }
    lines.push('');
  }
  return { lines, docOf };
}

/** Values the example files show where a key has no default (or one worth replacing). */
const SAMPLES = {
  git: { repo: '/srv/tsalt/config.git' },
  'rollout.verify[]': { command: 'curl -fsS http://127.0.0.1/healthz' },
  'schedule.NAME': { function: 'state.highstate', hours: 1 },
  console: { token: 'replace-with-openssl-rand-hex-24' },
};
const NAMES = { 'schedule.NAME': 'highstate_hourly' };

/**
 * An example file: every key at its default, its meaning above it; keys without a value are
 * commented out, and so is every mapping at the top level (a block to switch on).
 */
function example(header, schema, docOf) {
  const out = [...header.map((l) => `# ${l}`.trimEnd()), ''];
  const keys = (obj, at, col, block) => {
    const pre = block ? `# ${' '.repeat(col)}` : '';
    for (const [k, v] of Object.entries(shapeOf(obj))) {
      const meaning = docOf.get(at).get(k);
      const path = `${at ? `${at}.` : ''}${k}`;
      const [nested] = nestedOf(v);
      if (nested) {
        if (!block) out.push('');
        out.push(`${pre}# ${meaning}`, `${block ? pre : '# '}${k}:`);
        const inner = block ? col + 2 : 2;
        const sub = path + nested.suffix;
        if (nested.suffix.startsWith('[]')) {
          const first = out.length;
          keys(nested.obj, sub, inner + 2, true);
          const i = out.findIndex((l, j) => j >= first && !l.slice(inner + 4).startsWith('#'));
          out[i] = `# ${' '.repeat(inner)}- ${out[i].slice(inner + 4)}`;
        } else if (nested.suffix.startsWith('.NAME')) {
          out.push(`# ${' '.repeat(inner)}${NAMES[sub] ?? 'NAME'}:`);
          keys(nested.obj, sub, inner + 2, true);
        } else keys(nested.obj, sub, inner, true);
        continue;
      }
      out.push(`${pre}# ${meaning}`);
      const val = SAMPLES[at]?.[k] ?? unwrap(v).default;
      out.push(val === undefined ? `${pre}# ${k}:` : `${pre}${k}: ${JSON.stringify(val)}`);
    }
  };
  keys(schema, '', 0, false);
  return out.join('\n') + '\n';
}

const master = document('master.yaml', 'Read from `/etc/tsalt/master.yaml` (or `tsalt master --config FILE`). Every key is optional; an unknown key is an error naming it. Relative paths are relative to the file.', MasterConfigSchema);
const agent = document('agent.yaml', "Read from `/etc/tsalt/agent.yaml` (or `tsalt agent --config FILE`). Every key is optional; an unknown key is an error naming it. Names follow Salt's minion config where one exists.", AgentConfigSchema);

const md = [
  '# Configuration',
  '',
  'Generated from the zod schemas by `node scripts/gen-config-docs.mjs` (a test fails when this file',
  'falls behind them). Complete example files: [examples/master.yaml](examples/master.yaml),',
  '[examples/agent.yaml](examples/agent.yaml). YAML is read as Salt reads it.',
  '',
  ...master.lines,
  ...agent.lines,
].join('\n');

const header = (what, blocks) => [`tsalt ${what} configuration: every key, at its default (generated by scripts/gen-config-docs.mjs).`, `Keys shown commented out are unset by default${blocks ? '; so are the blocks (uncomment one to switch it on)' : ''}.`];
const masterYaml = example(header('master', true), MasterConfigSchema, master.docOf);
const agentYaml = example(header('agent', false), AgentConfigSchema, agent.docOf);

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
