/**
 * The contract between the pkg/pkgrepo state modules and an OS package manager. States decide
 * *what* should change (Salt's semantics); a provider knows *how* one package manager queries
 * and changes the system. One provider per package manager, chosen by select.ts from grains.
 */

export interface InstalledPkg {
  /** Salt's version string: `[epoch:]version-release` (rpm) or the Debian version. */
  version: string;
  arch: string;
}

/** A package file on local disk (pkg.installed `sources`) and the package it holds. */
export interface PackageFile {
  path: string;
  name: string;
  /** Salt's version string, as `installed()` reports it for the same package */
  version: string;
  arch: string;
}

/** What one installed-set query returns (one dpkg-query / rpm -qa per run). */
export interface PkgDb {
  installed: Map<string, InstalledPkg>;
  /** Removed but not purged (Debian's "rc" state): purge targets, version kept for changes. */
  configOnly: Map<string, string>;
}

/** A package to install; `version` is an exact version the provider can ask for, or absent. */
export interface PkgTarget {
  name: string;
  version?: string;
}

export interface TxOptions {
  /** Salt's `fromrepo`: apt target release / dnf repo id that alone is enabled. */
  fromrepo?: string;
  /** Salt's `skip_verify`: install unsigned/unauthenticated packages. */
  skipVerify?: boolean;
  /**
   * Salt's `install_recommends`: false leaves out Recommends (apt) / weak dependencies (dnf),
   * true asks for them; absent, the package manager's own setting decides.
   */
  installRecommends?: boolean;
}

export interface Change {
  old: string;
  new: string;
}
export type ChangeMap = Record<string, Change>;

import { ProviderError } from '../host.js';

/** A failure the package manager reported, message fit for a state comment. */
export class PkgError extends ProviderError {
  constructor(
    message: string,
    /** packages the package manager does not know, for Salt's "not found" comment */
    readonly missing: string[] = [],
  ) {
    super(message);
    this.name = 'PkgError';
  }
}

/** A repository definition file change, computed read-only and applied by the state. */
export interface FileWrite {
  path: string;
  /** null: delete the file */
  content: string | Buffer | null;
  mode?: number;
}

export interface RepoPlan {
  changes: Record<string, unknown>;
  comment: string;
  writes: FileWrite[];
}

/** Salt's pkgrepo arguments after validation; which ones matter depends on the backend. */
export interface RepoArgs {
  name: string;
  humanname?: string;
  baseurl?: string;
  mirrorlist?: string;
  metalink?: string;
  gpgcheck?: boolean;
  gpgkey?: string;
  enabled?: boolean;
  file?: string;
  clean_file: boolean;
  /** key bytes already fetched by the state (key_url), for apt */
  key?: { url: string; data: Buffer };
  /** other yum repo options (priority, sslverify, ...) Salt writes as given */
  extra: Record<string, string>;
}

/** How a package manager's repositories are configured on disk (yum .repo files, apt sources). */
export interface RepoBackend {
  planManaged(args: RepoArgs): Promise<RepoPlan>;
  planAbsent(args: RepoArgs): Promise<RepoPlan>;
}

export interface PkgProvider {
  readonly name: string;
  /** Installed set, memoised for the run (the provider holds the run's FactCache). */
  installed(): Promise<PkgDb>;
  /** Refresh the package metadata once per run (`apt-get update`, `dnf makecache`); `force`: again. */
  refresh(force?: boolean): Promise<void>;
  /** Which package database this is (apt lists dir, dnf install root): refresh-once is per key. */
  readonly metadataKey: string;
  /** Is there repository metadata to install from (false on a fresh host: no apt lists)? */
  hasMetadata(): Promise<boolean>;
  /** Every version the repositories offer for `names`, newest first; unknown names absent. */
  available(names: string[], o: TxOptions): Promise<Map<string, string[]>>;
  /** The version an install without a version would choose (apt pinning / dnf newest). */
  candidates(names: string[], o: TxOptions): Promise<Map<string, string>>;
  /** Read-only prediction of the changes installing `targets` makes. Throws PkgError. */
  planInstall(targets: PkgTarget[], o: TxOptions): Promise<ChangeMap>;
  /** One transaction; invalidates the installed set. Throws PkgError with the tool's message. */
  install(targets: PkgTarget[], o: TxOptions): Promise<void>;
  /** File name ending the package manager installs from (`.deb`, `.rpm`). */
  readonly fileExt: string;
  /** Name and version inside a package file (read-only). Throws PkgError when it is not one. */
  readPackageFile(file: string): Promise<PackageFile>;
  /** Read-only prediction of the changes installing these package files makes. Throws PkgError. */
  planInstallFiles(files: PackageFile[], o: TxOptions): Promise<ChangeMap>;
  /** Package files in one transaction (dependencies from the repositories); invalidates the installed set. */
  installFiles(files: PackageFile[], o: TxOptions): Promise<void>;
  planRemove(names: string[], purge: boolean): Promise<ChangeMap>;
  remove(names: string[], purge: boolean): Promise<void>;
  /** <0, 0, >0 like the package manager's own comparison. */
  compareVersions(a: string, b: string): number;
  /** Held (version-locked) package names, memoised for the run. */
  holds(): Promise<Set<string>>;
  setHold(names: string[], hold: boolean): Promise<void>;
  readonly repos: RepoBackend;
}

/** Salt's changes dict: every package whose version differs between two installed sets. */
export function diffDb(before: PkgDb, after: PkgDb): ChangeMap {
  const out: ChangeMap = {};
  const names = new Set([...before.installed.keys(), ...after.installed.keys(), ...before.configOnly.keys()]);
  for (const n of [...names].sort()) {
    const o = before.installed.get(n)?.version ?? '';
    const nw = after.installed.get(n)?.version ?? '';
    if (o !== nw) out[n] = { old: o, new: nw };
    else if (!o && before.configOnly.has(n) && !after.configOnly.has(n)) {
      // purged leftovers: Salt reports the removed-package version going away
      out[n] = { old: before.configOnly.get(n) ?? '', new: '' };
    }
  }
  return out;
}
