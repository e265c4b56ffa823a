// Bundles the CLI into dist/bundle/ (one file per lazily loaded command): Node loads one file
// instead of hundreds of module files, which is most of tsalt's start-up time.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
// stale chunks from earlier builds would pile up (and ship): start from an empty directory
fs.rmSync(path.join(root, 'dist/bundle'), { recursive: true, force: true });
await build({
  entryPoints: [path.join(root, 'cli/main.ts')],
  outdir: path.join(root, 'dist/bundle'),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  minifyWhitespace: true,
  minifySyntax: true,
  // native addon and optional watchers stay outside the bundle
  external: ['better-sqlite3', 'chokidar', 'fsevents'],
  banner: { js: "import { createRequire as __tsaltCreateRequire } from 'node:module'; const require = __tsaltCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});
