/**
 * What the CLI's V8 startup snapshot holds beyond the bundle's top level (scripts/snapshot.mjs
 * builds it, bin/tsalt starts from it): the modules `tsalt local apply|show` and the common
 * state modules evaluate, already evaluated. A run from the snapshot then neither compiles nor
 * initialises them (Nunjucks, js-yaml, zod and every schema built at load).
 *
 * Only modules that read nothing of the machine or the environment at load belong here: their
 * load-time values are the build's (test/integration/launcher.test.ts runs the same commands
 * both ways and checks the environment is the run's).
 */
import { lookupState } from '../engine/states/registry.js';

/** state functions most trees use; each loads its module (and its schemas) */
const COMMON_STATES: [string, string][] = [
  ['file', 'managed'],
  ['file', 'directory'],
  ['file', 'absent'],
  ['file', 'symlink'],
  ['file', 'recurse'],
  ['file', 'line'],
  ['file', 'blockreplace'],
  ['file', 'comment'],
  ['pkg', 'installed'],
  ['pkgrepo', 'managed'],
  ['cmd', 'run'],
  ['user', 'present'],
  ['group', 'present'],
  ['service', 'running'],
  ['test', 'nop'],
];

export async function preloadForSnapshot(): Promise<void> {
  await Promise.all([
    import('./commands/local.js'),
    import('../engine/tree/local.js'),
    import('../engine/grains/core.js'),
    import('../engine/compile/errors.js'),
    import('../engine/engine.js'),
    import('../engine/compile/pillar.js'),
    import('../engine/render/salt-functions.js'),
    import('../engine/run/output.js'),
    import('../engine/run/guards.js'),
  ]);
  for (const [mod, fun] of COMMON_STATES) {
    const found = await lookupState(mod, fun);
    if ('error' in found) throw new Error(`snapshot preload: ${found.error}`);
  }
}
