/**
 * apt/dpkg provider: the real machine's package database (no install root: apt has no
 * equivalent of dnf's --installroot that would keep the host untouched).
 */
// node:fs/promises is loaded on first use (fs.promises), not by every run that imports this
import fs from 'node:fs';
import { exec, operands, type ExecResult } from '../../run/exec.js';
import type { FactCache } from '../../run/facts.js';
import type { HostEnv } from '../host.js';
import { AptSources } from './apt-sources.js';
import { dpkgAdmindir, dpkgDbState } from './db-answer-cache.js';
import { markRefreshed } from './refresh-once.js';
import { PkgError, type ChangeMap, type PackageFile, type PkgDb, type PkgProvider, type PkgTarget, type TxOptions } from './types.js';
import { compareDeb } from './version.js';

// C locale: we parse apt's output; noninteractive: no debconf prompts on a headless agent.
// Read per call: APT_CONFIG (another apt configuration) may be set after this module loads.
const env = () => ({ ...process.env, DEBIAN_FRONTEND: 'noninteractive', APT_LISTCHANGES_FRONTEND: 'none', LC_ALL: 'C' });
// Wait for another apt/dpkg instead of failing at once (unattended-upgrades, other states).
const LOCK = ['-o', 'DPkg::Lock::Timeout=600'];
// Keep locally changed config files without asking, as Salt does.
const DPKG_OPTS = ['-o', 'DPkg::Options::=--force-confold', '-o', 'DPkg::Options::=--force-confdef'];
const TX_TIMEOUT = 30 * 60_000;

const KEY_DB = 'pkg:apt:installed';
const DB_QUERY = ['dpkg-query', '-W', '-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n'];
const KEY_HOLDS = 'pkg:apt:holds';

function txFlags(o: TxOptions): string[] {
  const f: string[] = [];
  if (o.fromrepo) f.push('-o', `APT::Default-Release=${o.fromrepo}`);
  if (o.skipVerify) f.push('--allow-unauthenticated');
  // Salt's aptpkg.install: both spellings, so a state can also turn them on against apt.conf
  if (o.installRecommends === false) f.push('--no-install-recommends');
  if (o.installRecommends === true) f.push('--install-recommends');
  return f;
}

/** The lists directory of the apt configuration in force (APT_CONFIG may point elsewhere), per process. */
const listsDirs = new Map<string, Promise<string>>();
function listsDir(): Promise<string> {
  const key = process.env.APT_CONFIG ?? '';
  let p = listsDirs.get(key);
  if (!p) {
    p = exec(['apt-config', 'shell', 'D', 'Dir::State::lists/d'], { env: env() }).then((r) => {
      const m = /^D='(.*)'$/m.exec(r.stdout);
      return m ? m[1]! : '/var/lib/apt/lists/';
    });
    listsDirs.set(key, p);
  }
  return p;
}

/** apt's own error lines (`E: ...`), else the tail of its output. */
function aptMessage(r: ExecResult): string {
  const text = `${r.stderr}\n${r.stdout}`;
  const errors = text.split('\n').filter((l) => /^E: /.test(l));
  return (errors.length ? errors : text.trim().split('\n').slice(-3)).join('\n').trim();
}

function missingFrom(msg: string): string[] {
  return [...msg.matchAll(/^E: Unable to locate package (\S+)/gm)].map((m) => m[1]!);
}

const stripArch = (n: string) => n.replace(/:[a-z0-9-]+$/, '');

export class AptProvider implements PkgProvider {
  readonly name = 'apt';
  readonly fileExt = '.deb';
  readonly repos = new AptSources('/etc/apt');

  private readonly facts: FactCache;

  constructor(private readonly host: HostEnv) {
    this.facts = host.facts;
  }

  installed(): Promise<PkgDb> {
    return this.facts.get(KEY_DB, async () => {
      const run = () => this.host.exec(DB_QUERY, { env: env() });
      // across runs: read back while dpkg's database is as it was (./db-answer-cache.ts)
      const cache = this.host.pkgDbCache;
      const r = cache ? await cache.answer(DB_QUERY, () => dpkgDbState(dpkgAdmindir()), run) : await run();
      if (r.code !== 0) throw new PkgError(`dpkg-query failed: ${r.stderr.trim()}`);
      const db: PkgDb = { installed: new Map(), configOnly: new Map() };
      for (const line of r.stdout.split('\n')) {
        const [status, name, version, arch] = line.split('\t');
        if (!status || !name || version === undefined) continue;
        // second letter of the abbreviated status: i = installed, c = only config files left
        if (status[1] === 'i') db.installed.set(name, { version, arch: arch ?? '' });
        else if (status[1] === 'c') db.configOnly.set(name, version);
      }
      return db;
    });
  }

  refresh(force = false): Promise<void> {
    if (force) this.facts.invalidate('pkg:apt:refresh');
    return this.facts.get('pkg:apt:refresh', async () => {
      const r = await this.host.exec(['apt-get', '-q', ...LOCK, 'update'], { env: env(), timeoutMs: TX_TIMEOUT });
      if (r.code !== 0) throw new PkgError(`apt-get update failed: ${aptMessage(r)}`);
      markRefreshed(this.host, this.metadataKey);
    });
  }

  get metadataKey(): string {
    return `apt:${process.env.APT_CONFIG ?? ''}`;
  }

  /** A fresh host (or `rm -r /var/lib/apt/lists/*`) has no Packages index: apt knows no package. */
  async hasMetadata(): Promise<boolean> {
    const entries = await fs.promises.readdir(await listsDir()).catch(() => [] as string[]);
    return entries.some((e) => /_Packages(\.\w+)?$/.test(e));
  }

  async available(names: string[]): Promise<Map<string, string[]>> {
    const key = `pkg:apt:madison:${[...names].sort().join(',')}`;
    return this.facts.get(key, async () => {
      const out = new Map<string, string[]>();
      if (!names.length) return out;
      const r = await this.host.exec(['apt-cache', 'madison', '--', ...operands('package', names)], { env: env() });
      for (const line of r.stdout.split('\n')) {
        const parts = line.split('|').map((s) => s.trim());
        if (parts.length < 3 || !/ Packages$/.test(parts[2]!)) continue;
        const list = out.get(parts[0]!) ?? [];
        if (!list.includes(parts[1]!)) list.push(parts[1]!);
        out.set(parts[0]!, list);
      }
      for (const l of out.values()) l.sort((a, b) => compareDeb(b, a));
      return out;
    });
  }

  async candidates(names: string[], o: TxOptions): Promise<Map<string, string>> {
    const key = `pkg:apt:policy:${o.fromrepo ?? ''}:${[...names].sort().join(',')}`;
    return this.facts.get(key, async () => {
      const out = new Map<string, string>();
      if (!names.length) return out;
      const r = await this.host.exec(['apt-cache', ...txFlags({ fromrepo: o.fromrepo }), 'policy', '--', ...operands('package', names)], { env: env() });
      let current: string | undefined;
      for (const line of r.stdout.split('\n')) {
        const head = /^(\S+):$/.exec(line);
        if (head) current = stripArch(head[1]!);
        const cand = /^\s+Candidate: (\S+)/.exec(line);
        if (cand && current && cand[1] !== '(none)') out.set(current, cand[1]!);
      }
      return out;
    });
  }

  private installArgv(specs: string[], o: TxOptions, simulate: boolean, downgrade: boolean): string[] {
    return [
      'apt-get',
      '-q',
      '-y',
      ...(simulate ? ['-s', '-o', 'Debug::NoLocking=1'] : LOCK),
      ...DPKG_OPTS,
      ...txFlags(o),
      // an explicit older version (or package file) is a downgrade the user asked for
      ...(downgrade ? ['--allow-downgrades'] : []),
      'install',
      '--',
      ...operands('package', specs),
    ];
  }

  private targetArgv(targets: PkgTarget[], o: TxOptions, simulate: boolean): string[] {
    const specs = targets.map((t) => (t.version ? `${t.name}=${t.version}` : t.name));
    return this.installArgv(specs, o, simulate, targets.some((t) => t.version));
  }

  /** apt reads an argument as a file when it has a slash and ends in .deb (our paths are absolute and do). */
  private fileArgv(files: PackageFile[], o: TxOptions, simulate: boolean): string[] {
    return this.installArgv(files.map((f) => f.path), o, simulate, true);
  }

  private fail(r: ExecResult): never {
    const msg = aptMessage(r);
    throw new PkgError(msg, missingFrom(msg));
  }

  async planInstall(targets: PkgTarget[], o: TxOptions): Promise<ChangeMap> {
    return this.simulate(this.targetArgv(targets, o, true));
  }

  /** apt's simulation resolves dependencies exactly as the real run will, read-only. */
  private async simulate(argv: string[]): Promise<ChangeMap> {
    const r = await this.host.exec(argv, { env: env() });
    if (r.code !== 0) this.fail(r);
    const db = await this.installed();
    const changes: ChangeMap = {};
    for (const line of r.stdout.split('\n')) {
      const inst = /^Inst (\S+)(?: \[([^\]]*)\])? \((\S+)/.exec(line);
      if (inst) {
        const n = stripArch(inst[1]!);
        changes[n] = { old: db.installed.get(n)?.version ?? inst[2] ?? '', new: inst[3]! };
      }
      const rm = /^(?:Remv|Purg) (\S+)/.exec(line);
      if (rm) {
        const n = stripArch(rm[1]!);
        const old = db.installed.get(n)?.version;
        if (old) changes[n] = { old, new: '' };
      }
    }
    return changes;
  }

  async install(targets: PkgTarget[], o: TxOptions): Promise<void> {
    await this.run(this.targetArgv(targets, o, false));
  }

  private async run(argv: string[]): Promise<void> {
    try {
      const r = await this.host.exec(argv, { env: env(), timeoutMs: TX_TIMEOUT });
      if (r.code !== 0) this.fail(r);
    } finally {
      this.facts.invalidate(KEY_DB);
    }
  }

  async readPackageFile(file: string): Promise<PackageFile> {
    const r = await this.host.exec(['dpkg-deb', '-f', '--', file, 'Package', 'Version', 'Architecture'], { env: env() });
    if (r.code !== 0) throw new PkgError((r.stderr || r.stdout).trim() || `dpkg-deb -f ${file} failed`);
    const field = (k: string) => new RegExp(`^${k}: *(\\S+)`, 'm').exec(r.stdout)?.[1];
    const name = field('Package');
    const version = field('Version');
    if (!name || !version) throw new PkgError(`${file} has no Package/Version in its control file`);
    // the Version field carries the epoch (`1:2.0-1`) exactly as dpkg-query reports it
    return { path: file, name, version, arch: field('Architecture') ?? '' };
  }

  planInstallFiles(files: PackageFile[], o: TxOptions): Promise<ChangeMap> {
    return this.simulate(this.fileArgv(files, o, true));
  }

  /** `apt-get install /x/a.deb /x/b.deb`: one transaction, dependencies resolved (dpkg -i would not). */
  installFiles(files: PackageFile[], o: TxOptions): Promise<void> {
    return this.run(this.fileArgv(files, o, false));
  }

  async planRemove(names: string[], purge: boolean): Promise<ChangeMap> {
    const r = await this.host.exec(['apt-get', '-q', '-y', '-s', '-o', 'Debug::NoLocking=1', purge ? 'purge' : 'remove', '--', ...operands('package', names)], { env: env() });
    if (r.code !== 0) this.fail(r);
    const db = await this.installed();
    const changes: ChangeMap = {};
    for (const line of r.stdout.split('\n')) {
      const m = /^(?:Remv|Purg) (\S+)/.exec(line);
      if (!m) continue;
      const n = stripArch(m[1]!);
      const old = db.installed.get(n)?.version ?? db.configOnly.get(n);
      if (old !== undefined) changes[n] = { old, new: '' };
    }
    return changes;
  }

  async remove(names: string[], purge: boolean): Promise<void> {
    try {
      const r = await this.host.exec(['apt-get', '-q', '-y', ...LOCK, ...DPKG_OPTS, purge ? 'purge' : 'remove', '--', ...operands('package', names)], {
        env: env(),
        timeoutMs: TX_TIMEOUT,
      });
      if (r.code !== 0) this.fail(r);
    } finally {
      this.facts.invalidate(KEY_DB);
    }
  }

  compareVersions(a: string, b: string): number {
    return compareDeb(a, b);
  }

  holds(): Promise<Set<string>> {
    return this.facts.get(KEY_HOLDS, async () => {
      const r = await this.host.exec(['apt-mark', 'showhold'], { env: env() });
      if (r.code !== 0) throw new PkgError(`apt-mark showhold failed: ${aptMessage(r)}`);
      return new Set(r.stdout.split('\n').map((s) => stripArch(s.trim())).filter(Boolean));
    });
  }

  async setHold(names: string[], hold: boolean): Promise<void> {
    try {
      const r = await this.host.exec(['apt-mark', hold ? 'hold' : 'unhold', '--', ...operands('package', names)], { env: env() });
      if (r.code !== 0) throw new PkgError(`apt-mark ${hold ? 'hold' : 'unhold'} failed: ${aptMessage(r)}`);
    } finally {
      this.facts.invalidate(KEY_HOLDS);
    }
  }
}
