// Bundles the CLI into one CommonJS file, dist/bundle/tsalt.cjs, which bin/tsalt.js loads with a
// V8 code cache: Node then neither resolves hundreds of module files nor recompiles the same
// JavaScript at every start, which was most of tsalt's start-up time.
// Dynamic imports stay lazy inside the bundle (esbuild wraps each module), so a command still
// initialises only what it uses.
import { build } from 'esbuild';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const outdir = path.join(root, 'dist/bundle');

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

// stale files from earlier builds (and an old code cache) must not survive a rebuild
fs.rmSync(outdir, { recursive: true, force: true });
// the web console's browser script: built first, then carried inside the CLI bundle as a string
// (master/console/server.ts serves it); also written out for an unbundled master
const consoleClient = await build({
  entryPoints: [path.join(root, 'master/console/client/main.ts')],
  bundle: true,
  write: false,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  minify: true,
  charset: 'ascii',
  logLevel: 'warning',
});
const consoleJs = consoleClient.outputFiles[0].text;
fs.mkdirSync(outdir, { recursive: true });
fs.writeFileSync(path.join(outdir, 'console.js'), consoleJs);
/**
 * The daemon-only bundle has agent/engine-inline.ts (the agent's door to the engine) replaced by
 * agent/engine-inline-daemon.ts, so none of the engine comes in with it.
 */
const daemonWithoutEngine = {
  name: 'daemon-without-engine',
  setup(b) {
    b.onResolve({ filter: /(^|\/)engine-inline\.js$/ }, (args) =>
      path.resolve(args.resolveDir, args.path) === path.join(root, 'agent/engine-inline.js') ? { path: path.join(root, 'agent/engine-inline-daemon.ts') } : undefined,
    );
  },
};

/**
 * What the daemon needs only once in a while sits in bundles of its own next to it, required
 * when first used: `import('x')` in the daemon bundle becomes `require('./<file>')` at the time
 * of the call. (The installed package has no node_modules beyond the SQLite addon.)
 */
const daemonExtras = {
  // making the agent's key and certificate at its first start (core/identity.ts)
  'reflect-metadata': 'x509.cjs',
  '@peculiar/x509': 'x509.cjs',
  // grains, when the job worker cannot detect them (engine/grains/detect.ts)
  systeminformation: 'systeminformation.cjs',
};
const requiredFromExtras = {
  name: 'required-from-extras',
  setup(b) {
    b.onResolve({ filter: /^(reflect-metadata|@peculiar\/x509|systeminformation)$/ }, (args) => ({ path: args.path, namespace: 'tsalt-extra' }));
    b.onResolve({ filter: /^\.\/[a-z0-9]+\.cjs$/, namespace: 'tsalt-extra' }, (args) => ({ path: args.path, external: true }));
    b.onLoad({ filter: /.*/, namespace: 'tsalt-extra' }, (args) => ({
      contents: `module.exports = require(${JSON.stringify(`./${daemonExtras[args.path]}`)})${args.path === 'reflect-metadata' ? '' : `[${JSON.stringify(args.path)}]`};`,
      loader: 'js',
    }));
  },
};

const common = {
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // identifiers stay readable: stack traces in bug reports and profiles name real functions
  minifyWhitespace: true,
  minifySyntax: true,
  // the native addon stays outside; chokidar/fsevents are nunjucks' optional file watchers;
  // pg-native is pg's optional libpq binding (the PostgreSQL store uses pg's JavaScript client)
  external: ['better-sqlite3', 'chokidar', 'fsevents', 'pg-native'],
  // import.meta does not exist in CommonJS; the bundle sits two levels below the repo root,
  // like cli/commands/*.ts, so paths computed from it still work
  define: { 'import.meta.url': '__tsaltBundleUrl', __TSALT_CONSOLE_JS__: JSON.stringify(consoleJs) },
  banner: {
    js: [
      "const __tsaltBundleUrl = require('node:url').pathToFileURL(__filename).href;",
      // see builtinView below; __toESM is esbuild's own helper, hoisted in the same scope
      'const __tsaltBuiltins = new Map();',
      'function __tsaltBuiltin(id) { let v = __tsaltBuiltins.get(id); if (v === undefined) { v = __toESM(require(id), 1); __tsaltBuiltins.set(id, v); } return v; }',
    ].join('\n'),
  },
  plugins: [zodEnglishOnly],
  // pure ASCII: bin/tsalt.js reads it as latin1 and V8 keeps it as a one-byte string (half the
  // memory of the two-byte string one non-ASCII character would force, and a faster start)
  charset: 'ascii',
  logLevel: 'warning',
};
await build({ ...common, entryPoints: [path.join(root, 'cli/main.ts')], outfile: path.join(outdir, 'tsalt.cjs') });
// `tsalt local` (bin/tsalt.js): the engine and the command only, about a third of the CLI's source
// (cli/local-main.ts says why)
await build({ ...common, entryPoints: [path.join(root, 'cli/local-main.ts')], outfile: path.join(outdir, 'local.cjs') });
// `tsalt agent --job-worker` (bin/tsalt.js): the engine and the worker's loop, with the daemon's
// extras (cli/job-worker-main.ts says why)
await build({
  ...common,
  entryPoints: [path.join(root, 'cli/job-worker-main.ts')],
  outfile: path.join(outdir, 'job-worker.cjs'),
  plugins: [zodEnglishOnly, requiredFromExtras],
});
// `tsalt agent` (bin/tsalt.js): the daemon's own bundle, a fifth of the CLI's source. Its job
// worker runs from job-worker.cjs above.
await build({
  ...common,
  entryPoints: [path.join(root, 'cli/agent-daemon.ts')],
  outfile: path.join(outdir, 'agent-daemon.cjs'),
  plugins: [zodEnglishOnly, daemonWithoutEngine, requiredFromExtras],
});
// the extras: plain CommonJS modules, exporting each package under its name (reflect-metadata is
// a polyfill the x509 library needs loaded first)
for (const [file, contents] of [
  ['x509.cjs', "import 'reflect-metadata'; export * as '@peculiar/x509' from '@peculiar/x509';"],
  ['systeminformation.cjs', "export * as systeminformation from 'systeminformation';"],
]) {
  await build({ ...common, banner: undefined, define: {}, sourcemap: false, stdin: { contents, resolveDir: root, sourcefile: file }, outfile: path.join(outdir, file) });
}

/** ASCII only, one view per builtin, stored wrapped as the function bin/tsalt.js compiles. */
function finish(outfile) {
  // esbuild leaves non-ASCII inside regular expression literals (systeminformation has a '°'):
  // \uXXXX means the same there, in strings and in identifiers
  const text = fs.readFileSync(outfile, 'utf8');
  const ascii = text.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  // Each module's `import fs from 'node:fs'` becomes its own `__toESM(require("node:fs"),1)`: a
  // fresh object with one getter closure per export of the builtin (fs has over 100), made again
  // in every one of the ~150 importing modules at start and kept for the life of the process. One
  // shared view per builtin is the same thing (its getters read the live module) for a fraction
  // of the start-up time and of an idle agent's heap.
  const builtinView = /__toESM\(require\("(node:[a-z_/]+)"\),1\)/g;
  const shared = ascii.replace(builtinView, (_m, id) => `__tsaltBuiltin(${JSON.stringify(id)})`);
  if (!/function __tsaltBuiltin/.test(shared) && shared !== ascii) throw new Error('bundle: __tsaltBuiltin helper missing from the banner');
  // The file is stored already wrapped as the function bin/tsalt.js compiles (the same text it
  // built by concatenation before): the launcher hands it to V8 as read, without a 2.5 MB copy
  // whose dead original an idle agent kept until its next full GC. Keep in step with bin/tsalt.js.
  const WRAP_HEAD = '(function (exports, require, module, __filename, __dirname) {';
  fs.writeFileSync(outfile, `${WRAP_HEAD}${shared}\n})`);
}
finish(path.join(outdir, 'tsalt.cjs'));
finish(path.join(outdir, 'agent-daemon.cjs'));
finish(path.join(outdir, 'local.cjs'));
finish(path.join(outdir, 'job-worker.cjs'));

// Warm the code cache with a typical run (a test-mode apply under a scratch root) so the first
// real command already starts fast. The cache holds what that run compiled, and whatever a later
// run needs beyond it is compiled again at every start: so the run is the example tree plus one
// state of each kind most trees use that the example lacks (packages, users, groups), all in
// test mode (checks only, nothing changes). Best effort: a failure only costs speed.
const { spawnSync } = await import('node:child_process');
const os = await import('node:os');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-warm-'));
const warmStates = path.join(scratch, 'states');
fs.cpSync(path.join(root, 'examples/states'), warmStates, { recursive: true });
fs.writeFileSync(
  path.join(warmStates, 'top.sls'),
  fs.readFileSync(path.join(warmStates, 'top.sls'), 'utf8').replace("  '*':\n", "  '*':\n    - warm\n"),
);
fs.writeFileSync(
  path.join(warmStates, 'warm.sls'),
  ['warm_pkg:', '  pkg.installed:', '    - pkgs: [coreutils, bash]', 'warm_user:', '  user.present:', '    - name: root', '    - createhome: False',
    'warm_group:', '  group.present:', '    - name: root', ''].join('\n'),
);
spawnSync(
  process.execPath,
  [path.join(root, 'bin/tsalt.js'), 'local', 'apply', '--test', '--states', warmStates, '--pillar', path.join(root, 'examples/pillar'), '--grains-file', path.join(root, 'examples/grains'), '--id', 'web1', '--root', path.join(scratch, 'root')],
  // TMPDIR: the run's template and YAML caches (<tmp>/tsalt-cache-<uid>) start empty, so the
  // code cache also holds the compile and parse paths that a changed tree takes
  { stdio: 'ignore', env: { ...process.env, TMPDIR: scratch } },
);
fs.rmSync(scratch, { recursive: true, force: true });
