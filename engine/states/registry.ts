/**
 * Maps Salt module names to their implementation files. Modules load lazily, so a run pays
 * only for the modules its states use (start-up is part of the speed budget).
 * Add a module: create engine/states/<name>.ts default-exporting a StateModule, add a line here.
 */
import type { StateDefinition, StateModule } from './define.js';

const loaders: Record<string, () => Promise<{ default: StateModule }>> = {
  test: () => import('./test.js'),
  pkg: () => import('./pkg.js'),
  pkgrepo: () => import('./pkgrepo.js'),
  cmd: () => import('./cmd.js'),
  user: () => import('./user.js'),
  group: () => import('./group.js'),
  file: () => import('./file.js'),
  service: () => import('./service.js'),
  sysctl: () => import('./sysctl.js'),
  archive: () => import('./archive.js'),
  cron: () => import('./cron.js'),
  git: () => import('./git.js'),
  npm: () => import('./npm.js'),
  host: () => import('./host.js'),
  mount: () => import('./mount.js'),
  ssh_auth: () => import('./ssh_auth.js'),
  mysql_database: () => import('./mysql_database.js'),
  mysql_user: () => import('./mysql_user.js'),
  mysql_grants: () => import('./mysql_grants.js'),
  grains: () => import('./grains.js'),
  alternatives: () => import('./alternatives.js'),
  timezone: () => import('./timezone.js'),
  locale: () => import('./locale.js'),
};

type FunctionLoader = () => Promise<StateDefinition>;

/**
 * `file` has many functions, each with its own schemas: they load one by one, so a run that
 * uses file.managed and file.directory does not build blockreplace's or serialize's schemas.
 * (file.ts still exports them all, for the docs generator.)
 */
const functionLoaders: Record<string, Record<string, FunctionLoader>> = {
  file: {
    managed: () => import('./file/managed.js').then((m) => m.managed),
    directory: () => import('./file/directory.js').then((m) => m.directory),
    absent: () => import('./file/simple.js').then((m) => m.absent),
    exists: () => import('./file/simple.js').then((m) => m.exists),
    missing: () => import('./file/simple.js').then((m) => m.missing),
    touch: () => import('./file/simple.js').then((m) => m.touch),
    symlink: () => import('./file/symlink.js').then((m) => m.symlink),
    copy: () => import('./file/copy.js').then((m) => m.copy),
    recurse: () => import('./file/recurse.js').then((m) => m.recurse),
    line: () => import('./file/edit.js').then((m) => m.line),
    replace: () => import('./file/edit.js').then((m) => m.replace),
    append: () => import('./file/edit.js').then((m) => m.append),
    serialize: () => import('./file/serialize.js').then((m) => m.serialize_),
    blockreplace: () => import('./file/block.js').then((m) => m.blockreplace),
    accumulated: () => import('./file/block.js').then((m) => m.accumulated),
    comment: () => import('./file/comment.js').then((m) => m.comment),
    uncomment: () => import('./file/comment.js').then((m) => m.uncomment),
    prepend: () => import('./file/prepend.js').then((m) => m.prepend),
    keyvalue: () => import('./file/keyvalue.js').then((m) => m.keyvalue),
  },
};

const loaded = new Map<string, Promise<StateModule>>();
const loadedFunctions = new Map<string, Promise<StateDefinition>>();

export function knownModules(): string[] {
  return Object.keys(loaders).sort();
}

/** The definition for `module.function`, or an explanation of why there is none. */
export async function lookupState(
  mod: string,
  fun: string,
): Promise<{ def: StateDefinition } | { error: string }> {
  const table = Object.prototype.hasOwnProperty.call(functionLoaders, mod) ? functionLoaders[mod] : undefined;
  if (table) {
    const loadFn = Object.prototype.hasOwnProperty.call(table, fun) ? table[fun] : undefined;
    if (!loadFn) return { error: `'${mod}.${fun}' is not a state function (${mod} has: ${Object.keys(table).sort().join(', ')})` };
    const key = `${mod}.${fun}`;
    let p = loadedFunctions.get(key);
    if (!p) {
      p = loadFn();
      loadedFunctions.set(key, p);
    }
    return { def: await p };
  }
  const load = loaders[mod];
  if (!load) return { error: `unknown state module '${mod}' (known: ${knownModules().join(', ')})` };
  let p = loaded.get(mod);
  if (!p) {
    p = load().then((m) => m.default);
    loaded.set(mod, p);
  }
  const m = await p;
  const def = Object.prototype.hasOwnProperty.call(m, fun) ? m[fun] : undefined;
  if (!def) {
    return { error: `'${mod}.${fun}' is not a state function (${mod} has: ${Object.keys(m).sort().join(', ')})` };
  }
  return { def };
}
