/**
 * dnf/rpm provider. Takes an optional install root (`--installroot` / `rpm --root`) so a whole
 * RPM system can be managed inside a directory: that is how the tests run it on a Debian host.
 */
import path from 'node:path';
import { exec, operands, type ExecResult } from '../../run/exec.js';
import type { FactCache } from '../../run/facts.js';
import type { HostEnv } from '../host.js';
import { YumRepoFiles } from './yum-repos.js';
import { markRefreshed } from './refresh-once.js';
import { PkgError, type ChangeMap, type PackageFile, type PkgDb, type PkgProvider, type PkgTarget, type TxOptions } from './types.js';
import { compareRpm } from './version.js';

export interface DnfOptions {
  /** absolute path: manage the RPM system below it instead of the machine's */
  installroot?: string;
  /** `$releasever`; needed with an install root that has no release package yet */
  releasever?: string;
}

// read at each call, not at load: a process started from a startup snapshot (bin/tsalt) must see
// its own environment, not the build's
const env = () => ({ ...process.env, LC_ALL: 'C' });
const TX_TIMEOUT = 30 * 60_000;
const QF = '%{name}\t%{epoch}\t%{version}\t%{release}\t%{arch}\n';

/** Salt's rpm version string: epoch only when non-zero. */
export function rpmVersion(epoch: string | undefined, version: string, release: string): string {
  const e = epoch && epoch !== '0' && epoch !== '(none)' ? `${epoch}:` : '';
  return `${e}${version}-${release}`;
}

function parseQf(out: string): Array<{ name: string; version: string; arch: string }> {
  const rows: Array<{ name: string; version: string; arch: string }> = [];
  for (const line of out.split('\n')) {
    const [name, epoch, version, release, arch] = line.split('\t');
    if (!name || version === undefined || release === undefined) continue;
    rows.push({ name, version: rpmVersion(epoch, version, release), arch: arch ?? '' });
  }
  return rows;
}

/** dnf's `Error:` lines (and `No match for argument` notes), else the tail of its output. */
function dnfMessage(r: ExecResult): string {
  const lines = `${r.stdout}\n${r.stderr}`.split('\n').map((l) => l.trim());
  const picked = lines.filter((l) => /^(Error|No match for argument|Problem)/.test(l));
  return (picked.length ? [...new Set(picked)] : lines.filter(Boolean).slice(-3)).join('\n');
}

export class DnfProvider implements PkgProvider {
  readonly repos: YumRepoFiles;
  readonly fileExt = '.rpm';
  private readonly keyPrefix: string;

  protected readonly facts: FactCache;

  constructor(
    protected readonly host: HostEnv,
    protected readonly o: DnfOptions = {},
    readonly name: string = 'dnf',
  ) {
    this.facts = host.facts;
    this.repos = new YumRepoFiles(path.join(o.installroot ?? '/', 'etc/yum.repos.d'));
    this.keyPrefix = `pkg:${name}:${o.installroot ?? '/'}`;
  }

  /** The package manager's argv prefix: same root and repos for every call. */
  protected base(): string[] {
    const a = [this.name, '-y'];
    if (this.o.installroot) {
      a.push('--installroot', this.o.installroot, `--setopt=reposdir=${this.repos.dir}`);
    }
    if (this.o.releasever) a.push('--releasever', this.o.releasever);
    if (this.refreshed) a.push('--refresh');
    return a;
  }

  private refreshed = false;

  private tx(o: TxOptions): string[] {
    const f: string[] = [];
    if (o.fromrepo) f.push('--disablerepo=*', `--enablerepo=${o.fromrepo}`);
    if (o.skipVerify) f.push('--nogpgcheck');
    if (o.installRecommends !== undefined) f.push(`--setopt=install_weak_deps=${o.installRecommends ? 'True' : 'False'}`);
    return f;
  }

  installed(): Promise<PkgDb> {
    return this.facts.get(`${this.keyPrefix}:installed`, async () => {
      const root = this.o.installroot ? ['--root', this.o.installroot] : [];
      const r = await this.host.exec(['rpm', ...root, '-qa', '--qf', QF], { env: env() });
      if (r.code !== 0) throw new PkgError(`rpm -qa failed: ${r.stderr.trim()}`);
      const db: PkgDb = { installed: new Map(), configOnly: new Map() };
      for (const p of parseQf(r.stdout)) {
        if (p.name === 'gpg-pubkey') continue; // imported keys, not packages
        const prev = db.installed.get(p.name);
        // several versions at once (kernels): report the newest, as `pkg.version` does
        if (!prev || compareRpm(p.version, prev.version) > 0) db.installed.set(p.name, p);
      }
      return db;
    });
  }

  refresh(force = false): Promise<void> {
    const key = `${this.keyPrefix}:refresh`;
    if (force) this.facts.invalidate(key);
    return this.facts.get(key, async () => {
      const r = await this.host.exec([...this.base(), 'makecache', '--refresh'], { env: env(), timeoutMs: TX_TIMEOUT });
      if (r.code !== 0) throw new PkgError(`${this.name} makecache failed: ${dnfMessage(r)}`);
      // later queries of this run must not trust metadata fetched before the refresh either
      this.refreshed = true;
      markRefreshed(this.host, this.metadataKey);
    });
  }

  get metadataKey(): string {
    return this.keyPrefix;
  }

  /** dnf fetches missing or expired metadata by itself before any query. */
  async hasMetadata(): Promise<boolean> {
    return true;
  }

  /** One repository query per state for its packages (all versions). */
  async available(names: string[], o: TxOptions): Promise<Map<string, string[]>> {
    const key = `${this.keyPrefix}:available:${o.fromrepo ?? ''}:${[...names].sort().join(',')}`;
    return this.facts.get(key, async () => {
      const out = new Map<string, string[]>();
      if (!names.length) return out;
      const r = await this.host.exec([...this.base(), '-q', ...this.tx(o), ...this.queryCmd(), ...operands('package', names)], { env: env(), timeoutMs: TX_TIMEOUT });
      if (r.code !== 0) throw new PkgError(`${this.name} query failed: ${dnfMessage(r)}`);
      for (const p of this.parseAvailable(r.stdout)) {
        const list = out.get(p.name) ?? [];
        if (!list.includes(p.version)) list.push(p.version);
        out.set(p.name, list);
      }
      for (const l of out.values()) l.sort((a, b) => compareRpm(b, a));
      return out;
    });
  }

  protected queryCmd(): string[] {
    return ['repoquery', '--available', '--qf', QF];
  }

  protected parseAvailable(out: string): Array<{ name: string; version: string }> {
    return parseQf(out);
  }

  async candidates(names: string[], o: TxOptions): Promise<Map<string, string>> {
    const all = await this.available(names, o);
    const out = new Map<string, string>();
    for (const [n, versions] of all) if (versions[0]) out.set(n, versions[0]);
    return out;
  }

  /** Targets only: dnf has no dry run we can parse reliably, so dependencies are not predicted. */
  async planInstall(targets: PkgTarget[], o: TxOptions): Promise<ChangeMap> {
    const avail = await this.available(
      targets.map((t) => t.name),
      o,
    );
    const db = await this.installed();
    const missing = targets.filter((t) => !avail.has(t.name)).map((t) => t.name);
    if (missing.length) throw new PkgError(`No match for argument: ${missing.join(', ')}`, missing);
    const changes: ChangeMap = {};
    for (const t of targets) {
      const versions = avail.get(t.name) ?? [];
      const want = t.version ? versions.find((v) => compareRpm(v, t.version!) === 0) : versions[0];
      if (!want) throw new PkgError(`No match for argument: ${t.name}-${t.version}`, []);
      changes[t.name] = { old: db.installed.get(t.name)?.version ?? '', new: want };
    }
    return changes;
  }

  async install(targets: PkgTarget[], o: TxOptions): Promise<void> {
    // `install` of an explicit older version downgrades in dnf, so one transaction serves all
    await this.run(targets.map((t) => (t.version ? `${t.name}-${t.version}` : t.name)), o);
  }

  private async run(specs: string[], o: TxOptions): Promise<void> {
    try {
      // dnf's argparse does not take `--` before a subcommand's operands: operands() is the guard
      const r = await this.host.exec([...this.base(), ...this.tx(o), 'install', ...operands('package', specs)], { env: env(), timeoutMs: TX_TIMEOUT });
      if (r.code !== 0) throw new PkgError(dnfMessage(r), this.missingFrom(r));
    } finally {
      this.facts.invalidate(`${this.keyPrefix}:installed`);
    }
  }

  async readPackageFile(file: string): Promise<PackageFile> {
    // --nomanifest: rpm would otherwise read a non-package file as a list of package paths
    const r = await this.host.exec(['rpm', '-qp', '--nomanifest', '--nosignature', '--qf', QF, '--', file], { env: env() });
    const row = r.code === 0 ? parseQf(r.stdout)[0] : undefined;
    if (!row) throw new PkgError(r.stderr.trim() || `${file} is not an RPM package`);
    return { path: file, ...row };
  }

  /** From the files' own headers: like planInstall, dependencies are not predicted. */
  async planInstallFiles(files: PackageFile[]): Promise<ChangeMap> {
    const db = await this.installed();
    const changes: ChangeMap = {};
    for (const f of files) changes[f.name] = { old: db.installed.get(f.name)?.version ?? '', new: f.version };
    return changes;
  }

  /** dnf takes arguments ending in .rpm as local files and resolves their dependencies from the repos. */
  installFiles(files: PackageFile[], o: TxOptions): Promise<void> {
    return this.run(files.map((f) => f.path), o);
  }

  private missingFrom(r: ExecResult): string[] {
    return [...`${r.stdout}\n${r.stderr}`.matchAll(/No match for argument: (\S+)/g)].map((m) => m[1]!);
  }

  async planRemove(names: string[]): Promise<ChangeMap> {
    const db = await this.installed();
    const changes: ChangeMap = {};
    for (const n of names) {
      const v = db.installed.get(n)?.version;
      if (v) changes[n] = { old: v, new: '' };
    }
    return changes;
  }

  /** rpm has no config-only state: purge is remove (Salt's yumpkg.purge does the same). */
  async remove(names: string[]): Promise<void> {
    try {
      const r = await this.host.exec([...this.base(), 'remove', ...operands('package', names)], { env: env(), timeoutMs: TX_TIMEOUT });
      if (r.code !== 0) throw new PkgError(dnfMessage(r));
    } finally {
      this.facts.invalidate(`${this.keyPrefix}:installed`);
    }
  }

  compareVersions(a: string, b: string): number {
    return compareRpm(a, b);
  }

  holds(): Promise<Set<string>> {
    return this.facts.get(`${this.keyPrefix}:holds`, async () => {
      const r = await this.host.exec([...this.base(), '-q', 'versionlock', 'list'], { env: env() });
      if (r.code !== 0) {
        throw new PkgError(`holding packages needs the ${this.name} versionlock plugin: ${dnfMessage(r)}`);
      }
      const out = new Set<string>();
      for (const raw of r.stdout.split('\n')) {
        // entries look like `name-0:1.0-1.*` (dnf) or `0:name-1.0-1.*` (yum)
        const m = /^(?:\d+:)?(.+)-(?:\d+:)?[^-]+-[^-]+$/.exec(raw.trim());
        if (m) out.add(m[1]!);
      }
      return out;
    });
  }

  async setHold(names: string[], hold: boolean): Promise<void> {
    try {
      const r = await this.host.exec([...this.base(), 'versionlock', hold ? 'add' : 'delete', ...operands('package', names)], { env: env() });
      if (r.code !== 0) throw new PkgError(`${this.name} versionlock ${hold ? 'add' : 'delete'} failed: ${dnfMessage(r)}`);
    } finally {
      this.facts.invalidate(`${this.keyPrefix}:holds`);
    }
  }
}
