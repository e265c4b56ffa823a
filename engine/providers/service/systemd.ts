/**
 * systemd service provider: everything through `systemctl`, optionally aimed at another
 * machine (`-M`) or run through a command prefix (nsenter into a container).
 *
 * Reads: one `systemctl show -p ... '*'` per run answers for every loaded unit; a unit systemd
 * has not loaded (disabled and stopped, or missing) costs one `systemctl show <unit>` more.
 * Before acting on a unit whose file changed on disk since systemd read it
 * (NeedDaemonReload=yes) we run `daemon-reload`, as Salt's systemd_service module does.
 */
import { exec, type ExecResult } from '../../run/exec.js';
import type { HostEnv } from '../host.js';
import { commandError, serviceOpts, TIMED_OUT, withTimeout, type ActionOptions, type ServiceProvider, type ServiceStatus } from './types.js';

const PROPS = ['Id', 'LoadState', 'ActiveState', 'SubState', 'UnitFileState', 'NeedDaemonReload'] as const;
export type UnitInfo = Partial<Record<(typeof PROPS)[number], string>>;

const UNIT_SUFFIXES = ['service', 'socket', 'target', 'device', 'mount', 'automount', 'swap', 'timer', 'path', 'slice', 'scope'];

/** `nginx` -> `nginx.service`, as systemctl itself mangles names; `x.socket` stays. */
export function unitName(name: string): string {
  const dot = name.lastIndexOf('.');
  if (dot > 0 && UNIT_SUFFIXES.includes(name.slice(dot + 1))) return name;
  return `${name}.service`;
}

/** `systemctl show` output: blocks of `Key=Value` lines separated by blank lines. */
export function parseShow(text: string): UnitInfo[] {
  const out: UnitInfo[] = [];
  let cur: Record<string, string> | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (cur) out.push(cur);
      cur = undefined;
      continue;
    }
    const eq = line.indexOf('=');
    if (eq < 0) continue;
    cur ??= {};
    cur[line.slice(0, eq)] = line.slice(eq + 1);
  }
  if (cur) out.push(cur);
  return out;
}

/** Verbs that only edit unit file links: a failure is explained by systemctl itself, not the journal. */
const UNIT_FILE_VERBS = new Set(['enable', 'disable', 'mask', 'unmask']);
/** Where `systemctl mask --runtime` puts its /dev/null link. */
const RUNTIME_UNIT_DIR = '/run/systemd/system';

/** `systemctl is-enabled` exits 0 for these: Salt counts them as enabled. */
const ENABLED_STATES = new Set(['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated', 'linked', 'linked-runtime']);
/** enable/disable cannot change these (no [Install] section, or not a file we own). */
const FIXED_STATES = new Set(['static', 'generated', 'transient', 'indirect', 'alias']);

export function statusFromUnit(u: UnitInfo): ServiceStatus {
  const load = u.LoadState ?? 'not-found';
  const ufs = u.UnitFileState ?? '';
  return {
    available: load !== 'not-found',
    // `activating` also covers a unit stuck in an auto-restart loop: not running
    running: u.ActiveState === 'active' || u.ActiveState === 'reloading',
    enabled: ENABLED_STATES.has(ufs),
    togglable: !FIXED_STATES.has(ufs),
  };
}

export class SystemdProvider implements ServiceProvider {
  readonly name = 'systemd';
  private readonly prefix: string[];
  private readonly systemctl: string[];
  private readonly machine: string | undefined;
  private readonly key: string;

  constructor(private readonly ctx: HostEnv) {
    const o = serviceOpts(ctx);
    this.prefix = o.service_command_prefix ?? [];
    this.machine = o.service_machine;
    this.systemctl = ['systemctl', ...(o.service_machine ? ['-M', o.service_machine] : [])];
    // facts are per run; the key still names the target so two targets never share answers
    this.key = `service:systemd:${[...this.prefix, ...this.systemctl].join('\u0000')}`;
  }

  private run(args: string[], timeoutMs?: number): Promise<ExecResult> {
    const [pre, cmd] = [this.prefix, [...this.systemctl, ...args]];
    return this.ctx.exec([...pre, ...withTimeout(cmd, timeoutMs)], { env: { ...process.env, SYSTEMD_PAGER: '', LC_ALL: 'C' } });
  }

  private async show(units: string[]): Promise<UnitInfo[]> {
    const r = await this.run(['show', '--no-pager', '-p', PROPS.join(','), '--', ...units]);
    if (r.code !== 0) throw new Error(`systemctl show failed: ${commandError(r.stdout, r.stderr, r.code)}`);
    return parseShow(r.stdout);
  }

  /** Every loaded unit, once per run. */
  private loaded(): Promise<Map<string, UnitInfo>> {
    return this.ctx.facts.get(`${this.key}:loaded`, async () => {
      const m = new Map<string, UnitInfo>();
      for (const u of await this.show(['*'])) if (u.Id) m.set(u.Id, u);
      return m;
    });
  }

  /** Units this run acted on: the snapshot is stale for them, they are asked one by one. */
  private touched(): Promise<Set<string>> {
    return this.ctx.facts.get(`${this.key}:touched`, async () => new Set<string>());
  }

  private async unit(name: string): Promise<UnitInfo> {
    const id = unitName(name);
    const hit = (await this.touched()).has(id) ? undefined : (await this.loaded()).get(id);
    // not-found in the snapshot may be stale: an earlier state of this run may have written the unit
    if (hit && hit.LoadState !== 'not-found') return hit;
    const key = `${this.key}:unit:${id}`;
    const u = await this.ctx.facts.get(key, async () => (await this.show([id]))[0] ?? {});
    // a missing unit is not remembered: a later state of the run may create it
    if ((u.LoadState ?? 'not-found') === 'not-found') this.ctx.facts.invalidate(key);
    return u;
  }

  private async forget(name: string): Promise<void> {
    const id = unitName(name);
    (await this.touched()).add(id);
    this.ctx.facts.invalidate(`${this.key}:unit:${id}`);
  }

  async status(name: string): Promise<ServiceStatus> {
    return statusFromUnit(await this.unit(name));
  }

  /** Asked fresh, not from the run cache: a state earlier in this run may have changed the file. */
  private async daemonReloadIfNeeded(id: string): Promise<void> {
    const [u] = await this.show([id]);
    if (u?.NeedDaemonReload !== 'yes') return;
    const r = await this.run(['daemon-reload']);
    if (r.code !== 0) throw new Error(`systemctl daemon-reload failed: ${commandError(r.stdout, r.stderr, r.code)}`);
  }

  private async act(verb: string, name: string, o: ActionOptions = {}, flags: string[] = []): Promise<void> {
    const id = unitName(name);
    try {
      await this.daemonReloadIfNeeded(id);
      const r = await this.run([...(o.noBlock ? ['--no-block'] : []), verb, ...flags, '--', id], o.timeoutMs);
      if (r.code === TIMED_OUT && o.timeoutMs) throw new Error(`systemctl ${verb} ${id} did not finish within ${o.timeoutMs / 1000}s`);
      if (r.code !== 0) {
        let msg = commandError(r.stdout, r.stderr, r.code);
        if (!UNIT_FILE_VERBS.has(verb)) msg += await this.recentStatus(id);
        throw new Error(msg);
      }
    } finally {
      await this.forget(name);
    }
  }

  /** The tail of `systemctl status` (journal lines included) so a failure explains itself. */
  private async recentStatus(id: string): Promise<string> {
    const r = await this.run(['status', '--no-pager', '-n', '5', '--', id]);
    const text = r.stdout.trim();
    return text ? `\n${text}` : '';
  }

  start(name: string, o?: ActionOptions) {
    return this.act('start', name, o);
  }
  stop(name: string, o?: ActionOptions) {
    return this.act('stop', name, o);
  }
  restart(name: string, o?: ActionOptions) {
    return this.act('restart', name, o);
  }
  reload(name: string, o?: ActionOptions) {
    return this.act('reload', name, o);
  }
  enable(name: string, o?: ActionOptions) {
    return this.act('enable', name, o);
  }
  disable(name: string, o?: ActionOptions) {
    return this.act('disable', name, o);
  }

  /**
   * From the snapshot's UnitFileState. /etc is searched before /run, so a unit masked both
   * ways shows `masked`; only then is the runtime link itself read (Salt reads it every time).
   */
  async masked(name: string, runtime: boolean): Promise<boolean> {
    const ufs = (await this.unit(name)).UnitFileState ?? '';
    if (!runtime) return ufs === 'masked';
    if (ufs === 'masked-runtime') return true;
    return ufs === 'masked' && (await this.runtimeMaskLink(unitName(name)));
  }

  private async runtimeMaskLink(id: string): Promise<boolean> {
    if (this.machine) {
      // `-M` reaches the machine's systemd, not its files
      throw new Error(`${id} has an indefinite mask; whether it also has a runtime mask cannot be read through systemctl -M`);
    }
    const r = await this.ctx.exec([...this.prefix, 'readlink', '--', `${RUNTIME_UNIT_DIR}/${id}`], { env: { ...process.env, LC_ALL: 'C' } });
    return r.code === 0 && r.stdout.trim() === '/dev/null';
  }

  mask(name: string, runtime: boolean, o?: ActionOptions) {
    return this.act('mask', name, o, runtime ? ['--runtime'] : []);
  }
  unmask(name: string, runtime: boolean, o?: ActionOptions) {
    return this.act('unmask', name, o, runtime ? ['--runtime'] : []);
  }
}
