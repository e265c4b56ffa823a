// Bundles the CLI into dist/bundle/ (one file per lazily loaded command): Node loads one file
// instead of hundreds of module files, which is most of tsalt's start-up time.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');

/**
 * zod re-exports every language's error messages (300 KB of source V8 would parse at every
 * start); tsalt's messages are English, so `z.locales` keeps only `en`.
 */
const zodEnglishOnly = {
  name: 'zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${path.sep}zod${path.sep}`) ? { path: 'zod-locales-en', namespace: 'tsalt-stub', pluginData: path.dirname(args.importer) } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'tsalt-stub' }, (args) => ({
      contents: `export { default as en } from ${JSON.stringify(path.join(args.pluginData, '../locales/en.js'))};`,
      resolveDir: args.pluginData,
    }));
  },
};
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
  // smaller source is less for V8 to parse at every start (zod alone is most of the bundle)
  minify: true,
  keepNames: false,
  // native addon and optional watchers stay outside the bundle
  external: ['better-sqlite3', 'chokidar', 'fsevents'],
  banner: { js: "import { createRequire as __tsaltCreateRequire } from 'node:module'; const require = __tsaltCreateRequire(import.meta.url);" },
  plugins: [zodEnglishOnly],
  logLevel: 'warning',
});
