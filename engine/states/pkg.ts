/**
 * Salt's `pkg` states: installed, latest, removed, purged. What to change follows
 * salt.states.pkg; how to change it is the provider's business (engine/providers/pkg).
 * `names` is expanded by the compiler into one state per name; `pkgs` is ONE state and ONE
 * package-manager transaction for all its packages, and so is `sources` (package files).
 */
import * as z from 'zod/mini';
import { boolArg, defineState, nameUnless, packageNameArg, StateFailure, type StateModule } from './define.js';
import type { RunContext } from './context.js';
import { readSources } from './pkg-sources.js';
import { refreshOnce } from '../providers/pkg/refresh-once.js';
import {
  diffDb,
  PkgError,
  type ChangeMap,
  type PackageFile,
  type PkgDb,
  type PkgProvider,
  type PkgTarget,
  type TxOptions,
} from '../providers/pkg/types.js';
import { satisfies, validSpec } from '../providers/pkg/version.js';

// YAML turns `version: 1.2` into a number; Salt reads it back as text
const versionArg = z.pipe(
  z.union([z.string(), z.number()]),
  z.transform((v) => String(v).trim()),
);

/**
 * Every package name in a `pkgs`/`sources` list, checked after the list's union matched so the
 * message says what is wrong with the name (a union failure only says "Invalid input").
 */
function packageNames(items: Array<string | number | Record<string, unknown>>, ctx: z.core.$RefinementCtx): void {
  items.forEach((item, i) => {
    for (const n of typeof item === 'object' ? Object.keys(item) : [String(item)]) {
      const r = packageNameArg.safeParse(n);
      if (!r.success) ctx.addIssue({ code: 'custom', path: [i], message: r.error.issues[0]!.message });
    }
  });
}

/** `pkgs: [foo, {bar: '1.2'}, {baz: null}]` */
const pkgsArg = z
  .array(
    z.union([z.string(), z.number().check(z.nonnegative()), z.record(z.string(), z.union([z.string(), z.number(), z.null()]))]),
  )
  .check(z.minLength(1, 'pkgs must list at least one package'), z.superRefine(packageNames));

/** `sources: [{foo: salt://foo.deb}, {bar: https://x/bar.rpm}]`, each item one name -> one file */
const sourcesArg = z
  .array(
    z.record(z.string(), z.string().check(z.minLength(1))).check(
      z.refine((o) => Object.keys(o).length === 1, {
        message: 'each sources item maps one package name to its file, like `- foo: salt://pkgs/foo.deb`',
      }),
    ),
  )
  .check(z.minLength(1, 'sources must list at least one package file'), z.superRefine(packageNames));

const common = {
  name: z.string().check(z.minLength(1)),
  pkgs: z.optional(pkgsArg),
  version: z.optional(versionArg),
  refresh: z.optional(boolArg),
  fromrepo: z.optional(z.string()),
  skip_verify: z._default(boolArg, false),
  /** Salt's install_recommends: false = apt --no-install-recommends, dnf install_weak_deps=False */
  install_recommends: z.optional(boolArg),
};

interface Desired {
  name: string;
  /** Salt version spec: exact, `1.2*`, or with `<`, `>`, `<=`, `>=`, `=` */
  spec?: string;
  /** `sources`: the package file, whose exact version is the one wanted */
  file?: PackageFile;
}

/** name/version or pkgs -> packages with their version specs (Salt's _repack_pkgs). */
function desiredOf(a: { name: string; pkgs?: z.output<typeof pkgsArg>; version?: string }): Desired[] {
  const out: Desired[] = [];
  if (a.pkgs) {
    for (const item of a.pkgs) {
      if (typeof item === 'string' || typeof item === 'number') out.push({ name: String(item) });
      else for (const [n, v] of Object.entries(item)) out.push({ name: n, spec: v === null ? undefined : String(v) });
    }
  } else {
    out.push({ name: a.name, spec: a.version || undefined });
  }
  const bad = out.filter((d) => d.spec !== undefined && !validSpec(d.spec));
  if (bad.length) {
    throw new StateFailure(bad.map((d) => `Invalid version specification '${d.spec}' for package '${d.name}'.`).join(' '));
  }
  return out;
}

const tx = (a: { fromrepo?: string; skip_verify: boolean; install_recommends?: boolean }): TxOptions => ({
  fromrepo: a.fromrepo,
  skipVerify: a.skip_verify,
  installRecommends: a.install_recommends,
});
const label = (d: Desired) => (d.spec ? `${d.name}=${d.spec}` : d.name);
const exactSpec = (s: string) => !s.endsWith('*') && !/^[<>=]/.test(s);

/** A package-manager failure as Salt words it, with the tool's own message. */
function failure(e: unknown, doing: string, changes: ChangeMap = {}): never {
  if (e instanceof StateFailure) throw e;
  if (e instanceof PkgError && e.missing.length) {
    throw new StateFailure(
      `The following package(s) were not found, and no possible matches were found in the package db: ` +
        `${[...e.missing].sort().join(', ')}. ${e.message}`,
      changes,
    );
  }
  const msg = e instanceof Error ? e.message : String(e);
  throw new StateFailure(`An error was encountered while ${doing}: ${msg}`, changes);
}

/** The installed-package query every pkg state needs, started before the run reaches them. */
function prefetch(ctx: RunContext): void {
  ctx.providers.pkg(ctx.host)
    .then((p) => p.installed())
    .catch(() => {});
}

/** Install in one transaction; the changes are what the package database says moved. */
async function installAndDiff(p: PkgProvider, before: PkgDb, install: (() => Promise<void>) | undefined): Promise<{ after: PkgDb; changes: ChangeMap }> {
  if (install) {
    try {
      await install();
    } catch (e) {
      const after = await p.installed().catch(() => before);
      failure(e, 'installing package(s)', diffDb(before, after));
    }
  }
  const after = await p.installed();
  return { after, changes: diffDb(before, after) };
}

async function prepare(ctx: RunContext, refresh: boolean | undefined): Promise<{ p: PkgProvider; db: PkgDb }> {
  try {
    const p = await ctx.providers.pkg(ctx.host);
    // refreshing metadata changes no installed package; test mode refreshes too, as Salt does,
    // so that it predicts against the same metadata as the real run
    if (refresh) await p.refresh();
    return { p, db: await p.installed() };
  } catch (e) {
    failure(e, 'reading the package database');
  }
}

/**
 * The state is about to ask the repositories: without `refresh`, Salt's refresh-once applies
 * (refresh-once.ts); `refresh: true` already refreshed in prepare, `refresh: false` never does.
 */
async function needRepositories(ctx: RunContext, p: PkgProvider, refresh: boolean | undefined): Promise<void> {
  if (refresh !== undefined) return;
  await refreshOnce(ctx.host, p).catch((e) => failure(e, 'refreshing the package database'));
}

/**
 * Pick the version to install for a spec that is not one exact version: the newest available
 * one that satisfies it, as Salt's providers resolve `>=1.2` and `1.2*`.
 */
async function resolve(p: PkgProvider, targets: Desired[], o: TxOptions): Promise<PkgTarget[]> {
  const fuzzy = targets.filter((t) => t.spec && !exactSpec(t.spec)).map((t) => t.name);
  const avail = fuzzy.length ? await p.available(fuzzy, o) : new Map<string, string[]>();
  return targets.map((t) => {
    if (!t.spec) return { name: t.name };
    if (exactSpec(t.spec)) return { name: t.name, version: t.spec.replace(/^=+/, '') };
    const versions = avail.get(t.name) ?? [];
    const v = versions.find((x) => satisfies(x, t.spec!, (a, b) => p.compareVersions(a, b)));
    if (!v) {
      throw new StateFailure(
        `No version of package '${t.name}' matching '${t.spec}' is available` +
          (versions.length ? ` (available: ${versions.join(', ')})` : ' (the package is not in any enabled repository)'),
      );
    }
    return { name: t.name, version: v };
  });
}

/**
 * Is `d` installed as wanted? A package file wants exactly its own version (epoch included: the
 * file names a whole version, unlike a version spec written without one).
 */
function met(p: PkgProvider, db: PkgDb, d: Desired): boolean {
  const cur = db.installed.get(d.name)?.version;
  if (cur === undefined) return false;
  if (d.file) return p.compareVersions(cur, d.file.version) === 0;
  return d.spec === undefined || satisfies(cur, d.spec, (a, b) => p.compareVersions(a, b));
}

/** Hold changes merged into package changes the way salt.states.pkg.installed does. */
function mergeHold(changes: ChangeMap, names: string[], hold: boolean): void {
  for (const n of names) {
    const h = hold ? { old: '', new: 'hold' } : { old: 'hold', new: '' };
    const c = changes[n];
    if (!c) changes[n] = h;
    else changes[n] = { old: [c.old, h.old].filter(Boolean).join('\n'), new: [c.new, h.new].filter(Boolean).join('\n') };
  }
}

// ---------------------------------------------------------------- installed

interface InstallPlan {
  desired: Desired[];
  targets: PkgTarget[];
  /** `sources`: the files to install (targets is then empty) */
  files: PackageFile[];
  holdChange: string[];
}

/** Arguments `sources` cannot be combined with, refused before anything is read or fetched. */
function checkSourcesArgs(a: { pkgs?: unknown }): void {
  if (a.pkgs) throw new StateFailure('Only one of "pkgs" and "sources" is permitted.');
  // `version` is ignored with sources, as Salt documents: each file installs its own version
}

/** `sources` instead of name/version/pkgs: the package files, fetched and read in check. */
async function desiredFiles(ctx: RunContext, p: PkgProvider, sources: Array<Record<string, string>>): Promise<Desired[]> {
  const files = await readSources(ctx, p, sources);
  return files.map((f) => ({ name: f.name, file: f }));
}

const installed = defineState({
  prefetch,
  args: nameUnless(z.object({ ...common, sources: z.optional(sourcesArg), hold: z.optional(boolArg) }), packageNameArg, [
    'pkgs',
    'sources',
  ]),
  async check(ctx, a) {
    const fromFiles = a.sources !== undefined;
    if (fromFiles) checkSourcesArgs(a);
    let desired = fromFiles ? [] : desiredOf(a);
    const { p, db } = await prepare(ctx, a.refresh);
    if (a.sources) desired = await desiredFiles(ctx, p, a.sources);
    const wanted = desired.filter((d) => !met(p, db, d));
    let holdChange: string[] = [];
    if (a.hold !== undefined) {
      const held = await p.holds().catch((e) => failure(e, 'reading package holds'));
      holdChange = desired.filter((d) => held.has(d.name) !== a.hold).map((d) => d.name);
    }
    if (!wanted.length && !holdChange.length) {
      const one = desired.length === 1 && !a.pkgs && !fromFiles ? desired[0]! : undefined;
      const comment = one
        ? one.spec
          ? `Version ${one.spec} of package '${one.name}' is already installed`
          : `Package ${one.name} is already installed`
        : `All specified packages are already installed${desired.some((d) => d.spec) ? ' and are at the desired version' : ''}`;
      return { comment };
    }
    const o = tx(a);
    if (wanted.length) await needRepositories(ctx, p, a.refresh);
    const files = wanted.flatMap((d) => (d.file ? [d.file] : []));
    const targets = fromFiles ? [] : await resolve(p, wanted, o);
    let changes: ChangeMap = {};
    if (files.length) changes = await p.planInstallFiles(files, o).catch((e) => failure(e, 'checking package file(s) to install'));
    else if (targets.length) changes = await p.planInstall(targets, o).catch((e) => failure(e, 'checking package(s) to install'));
    if (a.hold !== undefined) mergeHold(changes, holdChange, a.hold);
    const parts: string[] = [];
    if (wanted.length) parts.push(`The following packages would be installed/updated: ${wanted.map(label).join(', ')}`);
    for (const n of holdChange) parts.push(`Package ${n} is set to be ${a.hold ? 'held' : 'unheld'}.`);
    return { changes, comment: parts.join(' '), plan: { desired, targets, files, holdChange } satisfies InstallPlan };
  },
  async apply(ctx, a, plan) {
    const { desired, targets, files, holdChange } = plan!;
    const { p, db: before } = await prepare(ctx, false);
    const comments: string[] = [];
    const o = tx(a);
    const install = files.length ? () => p.installFiles(files, o) : targets.length ? () => p.install(targets, o) : undefined;
    const { after, changes } = await installAndDiff(p, before, install);
    if (a.hold !== undefined && holdChange.length) {
      await p.setHold(holdChange, a.hold).catch((e) => failure(e, a.hold ? 'holding package(s)' : 'unholding package(s)', changes));
      mergeHold(changes, holdChange, a.hold);
      for (const n of holdChange) comments.push(`Package ${n} is ${a.hold ? 'now being held' : 'no longer held'}.`);
    }
    // what the package manager said it did is not enough: the installed set must now match
    const failed = desired.filter((d) => !met(p, after, d));
    if (failed.length) {
      return {
        changes,
        result: false,
        comment: `The following packages failed to install/update: ${failed.map(label).join(', ')}.`,
      };
    }
    const targeted = new Set([...targets, ...files].map((t) => t.name));
    const modified = desired.filter((d) => targeted.has(d.name));
    const already = desired.filter((d) => !targeted.has(d.name));
    if (modified.length) {
      const summary = modified.map(label).join(', ');
      comments.unshift(
        summary.length < 20
          ? `The following packages were installed/updated: ${summary}.`
          : `${modified.length} targeted package${modified.length > 1 ? 's were' : ' was'} installed/updated.`,
      );
    }
    if (already.length && modified.length) {
      comments.push(`The following packages were already installed: ${already.map(label).join(', ')}.`);
    }
    return { changes, comment: comments.join(' ') };
  },
});

// ---------------------------------------------------------------- latest

interface LatestPlan {
  targets: PkgTarget[];
  upToDate: string[];
}

const latest = defineState({
  prefetch,
  args: nameUnless(z.object(common), packageNameArg, ['pkgs']),
  async check(ctx, a) {
    const names = desiredOf({ name: a.name, pkgs: a.pkgs }).map((d) => d.name);
    const { p, db } = await prepare(ctx, a.refresh);
    const o = tx(a);
    await needRepositories(ctx, p, a.refresh);
    const avail = await p.candidates(names, o).catch((e) => failure(e, 'checking the newest available version of package(s)'));
    const targets: PkgTarget[] = [];
    const problems: string[] = [];
    for (const n of names) {
      const cand = avail.get(n);
      const cur = db.installed.get(n)?.version;
      if (!cand) {
        if (!cur) problems.push(`No information found for '${n}'.`);
      } else if (!cur || p.compareVersions(cur, cand) < 0) targets.push({ name: n, version: cand });
    }
    if (problems.length) throw new StateFailure(problems.join(' '));
    const upToDate = names.filter((n) => !targets.some((t) => t.name === n));
    if (!targets.length) {
      return {
        comment:
          names.length > 1 ? `All packages are up-to-date (${[...names].sort().join(', ')}).` : `Package ${names[0]} is already up-to-date`,
      };
    }
    const changes = await p.planInstall(targets, o).catch((e) => failure(e, 'checking package(s) to upgrade'));
    let comment = `The following packages would be installed/upgraded: ${targets.map((t) => t.name).sort().join(', ')}.`;
    if (upToDate.length) {
      comment += ` The following packages are already up-to-date: ${upToDate
        .sort()
        .map((n) => `${n} (${db.installed.get(n)?.version})`)
        .join(', ')}.`;
    }
    return { changes, comment, plan: { targets, upToDate } satisfies LatestPlan };
  },
  async apply(ctx, a, plan) {
    const { targets, upToDate } = plan!;
    const { p, db: before } = await prepare(ctx, false);
    const o = tx(a);
    const { after, changes } = await installAndDiff(p, before, targets.length ? () => p.install(targets, o) : undefined);
    const failed = targets.filter((t) => after.installed.get(t.name)?.version !== t.version).map((t) => t.name);
    const ok = targets.filter((t) => !failed.includes(t.name)).map((t) => t.name);
    const comments: string[] = [];
    if (failed.length) comments.push(`The following packages failed to update: ${failed.sort().join(', ')}.`);
    if (ok.length) comments.push(`The following packages were successfully installed/upgraded: ${ok.sort().join(', ')}.`);
    if (upToDate.length) comments.push(`The following packages were already up-to-date: ${upToDate.sort().join(', ')}.`);
    return { changes, comment: comments.join(' '), result: !failed.length };
  },
});

// ---------------------------------------------------------------- removed / purged

interface RemovePlan {
  targets: string[];
  notInstalled: string[];
}

function uninstall(action: 'remove' | 'purge') {
  const purge = action === 'purge';
  return defineState({
    prefetch,
    args: nameUnless(z.object({ name: common.name, pkgs: common.pkgs, version: common.version }), packageNameArg, ['pkgs']),
    async check(ctx, a) {
      const desired = desiredOf(a);
      const { p, db } = await prepare(ctx, false);
      const cmp = (x: string, y: string) => p.compareVersions(x, y);
      const targets: string[] = [];
      for (const d of desired) {
        // Salt removes only a matching version when one is given
        const cur = db.installed.get(d.name)?.version ?? (purge ? db.configOnly.get(d.name) : undefined);
        if (cur !== undefined && (d.spec === undefined || satisfies(cur, d.spec, cmp))) targets.push(d.name);
      }
      if (!targets.length) {
        const spec = desired.some((d) => d.spec) ? ' (matching specified versions)' : '';
        return { comment: `All specified packages${spec} are already absent` };
      }
      targets.sort();
      const changes = await p.planRemove(targets, purge).catch((e) => failure(e, `checking package(s) to ${action}`));
      const notInstalled = desired.map((d) => d.name).filter((n) => !targets.includes(n)).sort();
      return {
        changes,
        comment: `The following packages will be ${action}d: ${targets.join(', ')}.`,
        plan: { targets, notInstalled } satisfies RemovePlan,
      };
    },
    async apply(ctx, _a, plan) {
      const { targets, notInstalled } = plan!;
      const { p, db: before } = await prepare(ctx, false);
      try {
        await p.remove(targets, purge);
      } catch (e) {
        const after = await p.installed().catch(() => before);
        failure(e, `${action === 'remove' ? 'removing' : 'purging'} package(s)`, diffDb(before, after));
      }
      const after = await p.installed();
      const changes = diffDb(before, after);
      const failed = targets.filter((n) => after.installed.has(n) || (purge && after.configOnly.has(n)));
      if (failed.length) {
        return { changes, result: false, comment: `The following packages failed to ${action}: ${failed.join(', ')}.` };
      }
      const comment = notInstalled.length
        ? `The following packages were not installed: ${notInstalled.join(', ')}. The following packages were ${action}d: ${targets.join(', ')}.`
        : `All targeted packages were ${action}d.`;
      return { changes, comment };
    },
  });
}

export default {
  installed,
  latest,
  removed: uninstall('remove'),
  purged: uninstall('purge'),
} satisfies StateModule;
