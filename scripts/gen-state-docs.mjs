// Writes docs/states.md from the state registry: every module, function and argument the
// zod schemas accept. Run after `npm run build`: node scripts/gen-state-docs.mjs
// With --check it writes nothing and exits 1 when docs/states.md is out of date (a test runs it).
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const { knownModules, lookupState } = await import(path.join(root, 'dist/engine/states/registry.js'));
const { knownKeys } = await import(path.join(root, 'dist/engine/states/define.js'));

const lines = [
  '# State modules',
  '',
  'Generated from the argument schemas by `node scripts/gen-state-docs.mjs`; every function',
  'follows the check/apply contract (a `--test` run reports what the real run would change).',
  'Requisites, `order`, `failhard`, `unless`/`onlyif`/`creates` and `names` work on every state',
  '(see [sls.md](sls.md)).',
  '',
];
for (const mod of knownModules()) {
  const m = (await import(path.join(root, `dist/engine/states/${mod}.js`))).default;
  lines.push(`## ${mod}`, '');
  for (const fun of Object.keys(m).sort()) {
    const found = await lookupState(mod, fun);
    const keys = knownKeys(found.def.args);
    const args = keys ? [...keys].filter((k) => k !== 'name').sort().map((k) => `\`${k}\``).join(', ') : '(any)';
    const extra = found.def.passUnknownArgs ? ' Other keyword arguments become template variables.' : '';
    const watch = found.def.modWatch ? ' Reacts to `watch`.' : '';
    lines.push(`- **${mod}.${fun}**: ${args || '(name only)'}.${extra}${watch}`);
  }
  lines.push('');
}
const file = path.join(root, 'docs/states.md');
const text = lines.join('\n');
if (process.argv.includes('--check')) {
  if (fs.readFileSync(file, 'utf8') !== text) {
    console.error('docs/states.md is out of date: run `npm run build && node scripts/gen-state-docs.mjs`');
    process.exit(1);
  }
  console.log(`docs/states.md is up to date (${knownModules().length} modules)`);
} else {
  fs.writeFileSync(file, text);
  console.log(`wrote docs/states.md (${knownModules().length} modules)`);
}
