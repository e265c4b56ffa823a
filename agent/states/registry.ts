/**
 * Maps Salt module names to their implementation files. Modules load lazily, so a run pays
 * only for the modules its states use (start-up is part of the speed budget).
 * Add a module: create agent/states/<name>.ts default-exporting a StateModule, add a line here.
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

const loaded = new Map<string, Promise<StateModule>>();

export function knownModules(): string[] {
  return Object.keys(loaders).sort();
}

/** The definition for `module.function`, or an explanation of why there is none. */
export async function lookupState(
  mod: string,
  fun: string,
): Promise<{ def: StateDefinition } | { error: string }> {
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
