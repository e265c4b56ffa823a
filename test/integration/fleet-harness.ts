/**
 * A real fleet on loopback for integration tests: `node bin/tsalt.js master` and agent
 * processes (several agents per process where asked), temp dirs, a fixed random port (so a
 * restarted master is found again), CLI calls over the master's socket.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll } from 'vitest';
import { dumpSaltYaml } from '../../core/salt-yaml.js';
import { startPostgres, type Postgres } from '../helpers/postgres.js';

export const REPO = path.resolve(import.meta.dirname, '../..');
const BIN = path.join(REPO, 'bin/tsalt.js');

/** test/global-setup.ts builds dist/ (tsc + bundle) once per vitest run; make sure it did. */
export function buildOnce(): void {
  if (!fs.existsSync(path.join(REPO, 'dist/bundle/tsalt.cjs')) && !fs.existsSync(path.join(REPO, 'dist/cli/main.js'))) {
    throw new Error('dist/ is missing: run `npm run build` (vitest\'s global setup does it)');
  }
}

import { freePort } from '../helpers/net.js';
import { samples } from '../helpers/prometheus.js';
export { freePort };

export async function waitFor<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The store the fleet's masters use: SQLite (master.db in the fleet's dir, the default) or, with
 * TSALT_TEST_STORE=postgres (the fleet-pg vitest project), PostgreSQL: one server per test
 * file, started on first use and stopped after the file, and a fresh database per Fleet.
 */
export const TEST_STORE: 'sqlite' | 'postgres' = process.env.TSALT_TEST_STORE === 'postgres' ? 'postgres' : 'sqlite';

let pgServer: Promise<Postgres> | undefined;
let pgDatabases = 0;
// registered while the importing test file is collected: runs after that file's own afterAll hooks
afterAll(async () => {
  const s = pgServer;
  pgServer = undefined;
  if (s) await (await s).stop();
});

/** A new database on this test file's PostgreSQL (started on the first call); its URL. */
export async function newPgDatabase(): Promise<string> {
  pgServer ??= startPostgres();
  return (await pgServer).createDatabase(`fleet_${++pgDatabases}`);
}

/**
 * TSALT_TEST_MASTERS=2 (set with TSALT_TEST_STORE=postgres in the fleet-pg project): every
 * Fleet runs a pair of masters on its one store, serving the same state tree. The second
 * master (`master2`, its own key, port and CLI socket) is where agents connect first: they list
 * `[m2, m1]`, with a pin for each, while the CLI talks to the first. So each fleet test goes
 * across masters: its jobs are routed from m1 to the agents on m2, keys accepted on m1 count
 * on m2. Killing `fleet.master` (m1) leaves the agents on m2.
 */
export const TEST_MASTERS = process.env.TSALT_TEST_MASTERS === '2' ? 2 : 1;
if (TEST_MASTERS === 2 && TEST_STORE !== 'postgres') throw new Error('TSALT_TEST_MASTERS=2 needs TSALT_TEST_STORE=postgres: masters share a store only on PostgreSQL');

export class Proc {
  out = '';
  exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stdout?.on('data', (b: Buffer) => (this.out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (this.out += b.toString()));
    this.exited = new Promise((r) => child.on('exit', (code) => r(code)));
  }
  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }
  /** First match of `re` in the output from offset `from` on (default: all of it). */
  waitOutput(re: RegExp, ms = 20_000, from = 0): Promise<RegExpMatchArray> {
    return waitFor(`${re} in output`, () => this.out.slice(from).match(re) ?? undefined, ms);
  }
  async kill(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (!this.running) return;
    this.child.kill(sig);
    await this.exited;
  }
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class Fleet {
  readonly dir: string;
  readonly sock: string;
  port = 0;
  fingerprint = '';
  master: Proc | undefined;
  /** pair mode (TSALT_TEST_MASTERS=2): the second master, where agents connect first */
  master2: Proc | undefined;
  port2 = 0;
  fingerprint2 = '';
  readonly agents: Proc[] = [];

  constructor(o: { states: Record<string, string>; pillar?: Record<string, string>; master?: Record<string, unknown>; git?: boolean }) {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-fleet-'));
    this.sock = path.join(this.dir, 'master.sock');
    this.writeTree('states', o.states);
    this.writeTree('pillar', o.pillar ?? {});
    if (o.git !== false) this.commit('initial');
    this.masterCfg = {
      interface: '127.0.0.1',
      pki_dir: 'pki/master',
      db: 'master.db',
      socket: 'master.sock',
      state_tree: 'states',
      pillar_tree: 'pillar',
      heartbeat_s: 2,
      lost_after_s: 4,
      ...o.master,
    };
  }

  masterCfg: Record<string, unknown>;

  writeTree(which: 'states' | 'pillar', files: Record<string, string>): void {
    for (const [rel, text] of Object.entries(files)) {
      const f = path.join(this.dir, which, rel);
      fs.mkdirSync(path.dirname(f), { recursive: true });
      fs.writeFileSync(f, text);
    }
    fs.mkdirSync(path.join(this.dir, which), { recursive: true });
  }

  commit(msg: string): string {
    const git = (...a: string[]) =>
      spawnSync('git', ['-C', path.join(this.dir, 'states'), '-c', 'user.name=t', '-c', 'user.email=t@t.invalid', '-c', 'init.defaultBranch=main', ...a], {
        encoding: 'utf8',
      });
    if (!fs.existsSync(path.join(this.dir, 'states/.git'))) git('init', '-q');
    git('add', '-A');
    git('commit', '-q', '--allow-empty', '-m', msg);
    return git('rev-parse', 'HEAD').stdout.trim();
  }

  /** A revision of the states work tree (`HEAD`, `HEAD~1`) as a commit id. */
  gitRev(expr: string): string {
    return spawnSync('git', ['-C', path.join(this.dir, 'states'), 'rev-parse', expr], { encoding: 'utf8' }).stdout.trim();
  }

  /** /etc/site-like files an agent's states wrote under its scratch root (trimmed), or undefined. */
  agentFileText(id: string, p = 'etc/site'): string | undefined {
    const f = path.join(this.dir, 'agents', id, 'root', p);
    return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').trim() : undefined;
  }

  /** where the master's store is: master.yaml's `store:` when set, else its SQLite file */
  private storeSpec(): string {
    const store = this.masterCfg.store as string | undefined;
    return store ?? path.resolve(this.dir, String(this.masterCfg.db ?? 'master.db'));
  }

  /** Rows of a read-only query on the master's store, whichever it is (portable SQL, no parameters). */
  async storeQuery(sql: string): Promise<Record<string, unknown>[]> {
    const spec = this.storeSpec();
    if (/^postgres(ql)?:\/\//.test(spec)) {
      const c = new pg.Client({ connectionString: spec });
      await c.connect();
      try {
        return (await c.query(sql)).rows as Record<string, unknown>[];
      } finally {
        await c.end();
      }
    }
    const db = new Database(spec, { readonly: true });
    try {
      return db.prepare(sql).all() as Record<string, unknown>[];
    } finally {
      db.close();
    }
  }

  /**
   * Run statements on the master's store, whichever it is (a test's own tables and triggers
   * beside the master's: several statements in one text).
   */
  async storeExec(sql: string): Promise<void> {
    const spec = this.storeSpec();
    if (/^postgres(ql)?:\/\//.test(spec)) {
      const c = new pg.Client({ connectionString: spec });
      await c.connect();
      try {
        await c.query(sql);
      } finally {
        await c.end();
      }
      return;
    }
    const db = new Database(spec);
    try {
      db.pragma('busy_timeout = 5000'); // the master writes meanwhile
      db.exec(sql);
    } finally {
      db.close();
    }
  }

  /** Whether `text` is anywhere in the master's store: its SQLite files' bytes, or any row of any PostgreSQL table. */
  async storeContains(text: string): Promise<boolean> {
    const spec = this.storeSpec();
    if (/^postgres(ql)?:\/\//.test(spec)) {
      const tables = await this.storeQuery("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'");
      for (const { table_name } of tables) {
        const rows = await this.storeQuery(`SELECT t::text AS row FROM ${pg.escapeIdentifier(String(table_name))} t`);
        if (rows.some((r) => String(r.row).includes(text))) return true;
      }
      return false;
    }
    const dir = path.dirname(spec);
    return fs.readdirSync(dir).filter((f) => f.startsWith(path.basename(spec))).some((f) => fs.readFileSync(path.join(dir, f)).includes(text));
  }

  async startMaster(): Promise<Proc> {
    if (!this.port) this.port = await freePort();
    // one database per Fleet: a restarted master finds its store again
    if (TEST_STORE === 'postgres' && this.masterCfg.store === undefined) this.masterCfg.store = await newPgDatabase();
    const p = await this.spawnMaster('master.yaml', { ...this.masterCfg, port: this.port });
    this.master = p.proc;
    this.fingerprint = p.fingerprint;
    if (TEST_MASTERS === 2 && !this.master2?.running) await this.startMaster2();
    return p.proc;
  }

  /** Pair mode: the second master on the same store and state tree, its own key, port and socket. */
  async startMaster2(): Promise<Proc> {
    if (!this.port2) this.port2 = await freePort();
    const cfg: Record<string, unknown> = { ...this.masterCfg, port: this.port2, pki_dir: 'pki/master2', socket: 'master2.sock', db: 'master2.db' };
    // a listener the test gave a fixed port: the second master takes a free one
    for (const k of ['metrics', 'console']) if (cfg[k] && typeof cfg[k] === 'object') cfg[k] = { ...(cfg[k] as object), port: 0 };
    const p = await this.spawnMaster('master2.yaml', cfg);
    this.master2 = p.proc;
    this.fingerprint2 = p.fingerprint;
    return p.proc;
  }

  private async spawnMaster(file: string, cfg: Record<string, unknown>): Promise<{ proc: Proc; fingerprint: string }> {
    fs.writeFileSync(path.join(this.dir, file), dumpSaltYaml(cfg));
    const p = new Proc(spawn(process.execPath, [BIN, 'master', '--config', path.join(this.dir, file), '--log-level', 'debug'], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const m = await p.waitOutput(/master fingerprint ([0-9a-f]{64})/);
    await p.waitOutput(/cli socket/);
    // the fleet-pg project must really run on PostgreSQL: the master made its tables there
    if (TEST_STORE === 'postgres' && !(await this.storeQuery('SELECT version FROM schema_version')).length) throw new Error(`the master did not migrate ${String(this.masterCfg.store)}`);
    return { proc: p, fingerprint: m[1]! };
  }

  /** What an agent's config says about its masters: one, or in pair mode `[m2, m1]` with a pin each. */
  mastersForAgent(): Record<string, unknown> {
    if (TEST_MASTERS !== 2) return { master: '127.0.0.1', master_port: this.port, master_finger: this.fingerprint };
    const m1 = `127.0.0.1:${this.port}`;
    const m2 = `127.0.0.1:${this.port2}`;
    return { master: [m2, m1], master_type: 'failover', master_finger: { [m2]: this.fingerprint2, [m1]: this.fingerprint } };
  }

  /** Write an agent config; returns its path. */
  agentConfig(id: string, o: { grains?: Record<string, unknown>; cfg?: Record<string, unknown> } = {}): string {
    const d = path.join(this.dir, 'agents', id);
    fs.mkdirSync(d, { recursive: true });
    const file = path.join(d, 'agent.yaml');
    fs.writeFileSync(
      file,
      dumpSaltYaml({
        id,
        ...this.mastersForAgent(),
        pki_dir: 'pki',
        cache_dir: 'cache',
        grains_file: 'grains',
        root: 'root',
        grains: o.grains ?? {},
        backoff_min_s: 0.2,
        backoff_max_s: 1,
        heartbeat_s: 2,
        ...o.cfg,
      }),
    );
    return file;
  }

  /** One agent process running the given configs. */
  startAgents(configs: string[]): Proc {
    const args = [BIN, 'agent', '--log-level', 'debug', ...configs.flatMap((c) => ['--config', c])];
    const p = new Proc(spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] }));
    this.agents.push(p);
    return p;
  }

  startAgent(id: string, o: { grains?: Record<string, unknown>; cfg?: Record<string, unknown> } = {}): Proc {
    return this.startAgents([this.agentConfig(id, o)]);
  }

  /**
   * Every running master's /metrics URL (master.yaml `metrics:`; the second master's port is
   * read from its log). Each master exports what it sees itself (its own connections, the jobs
   * it owns, the results its agents sent): a Prometheus server scrapes them all and sums.
   */
  async metricsUrls(): Promise<string[]> {
    const urls: string[] = [];
    for (const m of [this.master, this.master2]) {
      if (!m?.running) continue;
      const [, url] = await m.waitOutput(/metrics on (http:\/\/\S+\/metrics)/);
      urls.push(url!);
    }
    return urls;
  }

  /** Every master's scrape, each series summed over the masters (PromQL `sum by (labels)`). */
  async scrapeSum(): Promise<Map<string, number>> {
    const sum = new Map<string, number>();
    for (const url of await this.metricsUrls()) {
      const text = await (await fetch(url)).text();
      for (const [k, v] of samples(text)) sum.set(k, (sum.get(k) ?? 0) + v);
    }
    return sum;
  }

  /**
   * The master the agents connect to first and its port, key and key directory: the second
   * master in pair mode (agents list `[m2, m1]`), else the one master.
   */
  get agentSide(): { proc: Proc | undefined; port: number; fingerprint: string; pki: string } {
    return TEST_MASTERS === 2
      ? { proc: this.master2, port: this.port2, fingerprint: this.fingerprint2, pki: path.join(this.dir, 'pki/master2') }
      : { proc: this.master, port: this.port, fingerprint: this.fingerprint, pki: path.join(this.dir, 'pki/master') };
  }

  /**
   * Stop every master (pair mode: both, so that the agents have no master to fail over to, as a
   * test of "the master is down" means); startMaster() starts them all again on their ports.
   */
  async killMasters(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await Promise.all([this.master?.kill(sig), this.master2?.kill(sig)]);
  }

  /** Every master's log so far (pair mode: a leased job such as a rollout runs on either master). */
  get mastersOut(): string {
    return [this.master, this.master2].map((m) => m?.out ?? '').join('\n');
  }

  /** pair mode: the second master's CLI socket */
  get sock2(): string {
    return path.join(this.dir, 'master2.sock');
  }

  cli(args: string[], timeoutMs = 60_000, sock = this.sock): Promise<CliResult> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [BIN, ...args, '--socket', sock], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
      child.on('exit', (code) => {
        clearTimeout(t);
        resolve({ code: code ?? -1, stdout, stderr });
      });
    });
  }

  async json<T>(args: string[]): Promise<T> {
    const r = await this.cli([...args, '--json']);
    try {
      return JSON.parse(r.stdout) as T;
    } catch {
      throw new Error(`tsalt ${args.join(' ')} --json: exit ${r.code}, stdout ${r.stdout}, stderr ${r.stderr}`);
    }
  }

  async keys(): Promise<{ master_fingerprint: string; keys: { id: string; state: string; fingerprint: string; connected: boolean }[] }> {
    return this.json(['keys', 'list']);
  }

  /** Wait until these ids are pending, accept them, wait until they are connected. */
  async acceptAll(ids: string[]): Promise<void> {
    await waitFor(`keys of ${ids.join(',')}`, async () => {
      const k = await this.keys();
      return ids.every((id) => k.keys.some((x) => x.id === id)) || undefined;
    }, 60_000);
    const r = await this.cli(['keys', 'accept', ...ids]);
    if (r.code !== 0) throw new Error(r.stderr);
    await this.waitConnected(ids);
  }

  async waitConnected(ids: string[], ms = 60_000): Promise<void> {
    await waitFor(`${ids.length} agents connected`, async () => {
      const a = await this.json<{ id: string; connected: boolean }[]>(['agents']);
      return ids.every((id) => a.some((x) => x.id === id && x.connected)) || undefined;
    }, ms);
  }

  async stop(): Promise<void> {
    await Promise.all(this.agents.map((a) => a.kill('SIGKILL')));
    await this.master?.kill('SIGTERM');
    await this.master2?.kill('SIGTERM');
    if (!process.env.TSALT_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A hand-driven agent connection (the test plays a misbehaving or curious agent). */
export class RawAgent {
  readonly messages: Record<string, unknown>[] = [];
  closed: Promise<{ code: number; reason: string }>;
  constructor(readonly ws: import('ws').WebSocket) {
    ws.on('message', (d) => {
      try {
        this.messages.push(JSON.parse(d.toString()) as Record<string, unknown>);
      } catch {
        this.messages.push({ unparsable: d.toString() });
      }
    });
    this.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('error', () => {});
  }
  static async connect(fleet: Fleet, id: string): Promise<RawAgent> {
    return RawAgent.connectTo(path.join(fleet.dir, 'raw'), fleet.port, id);
  }
  /** A hand-driven agent with one key (kept under `keyDir`) connecting to the master at `port`. */
  static async connectTo(keyDir: string, port: number, id: string): Promise<RawAgent> {
    const { WebSocket } = await import('ws');
    const { loadOrCreateIdentity } = await import('../../core/identity.js');
    const ident = await loadOrCreateIdentity(path.join(keyDir, id), 'agent', id);
    const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { key: ident.keyPem, cert: ident.certPem, rejectUnauthorized: false });
    const raw = new RawAgent(ws);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return raw;
  }
  /**
   * A new agent `id` admitted: its first connection to `port` says hello and waits, pending, until
   * `via` (any master of the store) accepts its key, which closes it; returns the next connection,
   * not greeted yet (the caller sends `hello`, after attaching whatever answers the master).
   */
  static async admitted(via: Fleet, keyDir: string, port: number, id: string): Promise<RawAgent> {
    const pending = await RawAgent.connectTo(keyDir, port, id);
    pending.hello();
    await waitFor(`${id} pending`, async () => (await via.keys()).keys.some((k) => k.id === id) || undefined);
    const r = await via.cli(['keys', 'accept', id]);
    if (r.code !== 0) throw new Error(`keys accept ${id}: exit ${r.code}: ${r.stderr}`);
    await pending.closed;
    return RawAgent.connectTo(keyDir, port, id);
  }
  send(m: unknown): void {
    this.ws.send(typeof m === 'string' || Buffer.isBuffer(m) ? m : JSON.stringify(m));
  }
  hello(grains: Record<string, unknown> = {}): void {
    this.send({ type: 'hello', version: 1, grains, running: [], spooled: [] });
  }
  waitMsg(type: string, ms = 20_000): Promise<Record<string, unknown>> {
    return waitFor(`message ${type}`, () => this.messages.find((m) => m.type === type), ms);
  }
}
