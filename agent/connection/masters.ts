/**
 * The masters an agent may talk to (Salt's `master:` as one name or a list, each `host`,
 * `host:port` or `[v6]:port`), in the order it tries them, and the key pinned for each: from
 * master_finger (one fingerprint for all, or a map per master) or learnt on first use and kept
 * in the TOFU file, one line per master (`<fingerprint> <host:port>`).
 */
import fs from 'node:fs';
import { normaliseFingerprint } from '../../core/identity.js';

export interface MasterEndpoint {
  /** as written in the config (`m1`, `m2:4507`) */
  name: string;
  host: string;
  port: number;
  /** `host:port` (brackets around an IPv6 address): the key of a pin in the TOFU file */
  addr: string;
  url: string;
}

/** One `master:` entry. A port written in it overrides master_port, as in Salt. */
export function parseMasterEntry(entry: string, defaultPort: number): MasterEndpoint {
  const name = entry.trim();
  let host = name;
  let port = defaultPort;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(name);
  if (v6) {
    host = v6[1]!;
    if (v6[2] !== undefined) port = Number(v6[2]);
  } else {
    const hp = /^([^:]+):(\d+)$/.exec(name);
    if (hp) {
      host = hp[1]!;
      port = Number(hp[2]);
    }
    // more than one colon and no brackets: a bare IPv6 address, no port
  }
  if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`master '${entry}': expected host, host:port or [v6address]:port`);
  const bracketed = host.includes(':') ? `[${host}]` : host;
  return { name, host, port, addr: `${bracketed}:${port}`, url: `wss://${bracketed}:${port}/` };
}

/**
 * The order the masters are tried in. random_master shuffles them (spreading agents over the
 * masters); with master_failback the first stays first, only the others are shuffled (Salt's rule).
 */
export function masterOrder(entries: readonly string[], o: { port: number; random: boolean; failback: boolean }, rnd = Math.random): MasterEndpoint[] {
  const list = entries.map((e) => parseMasterEntry(e, o.port));
  const seen = new Set<string>();
  for (const m of list) {
    if (seen.has(m.addr)) throw new Error(`master '${m.name}' is listed twice`);
    seen.add(m.addr);
  }
  if (!o.random || list.length < 2) return list;
  const head = o.failback ? list.slice(0, 1) : [];
  const rest = o.failback ? list.slice(1) : list.slice();
  for (let i = rest.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [rest[i], rest[j]] = [rest[j]!, rest[i]!];
  }
  return [...head, ...rest];
}

/**
 * The key pinned for each master. master_finger as one value pins every master to that key
 * (masters sharing one key pair, as Salt's multi-master setups do); as a map, each master its
 * own (keyed by the entry as written or by host:port). Masters without a configured pin are
 * learnt on first use when tofu is on, and remembered in the TOFU file.
 */
export class PinBook {
  private readonly configured = new Map<string, string>();
  private readonly learnt = new Map<string, string>();

  constructor(
    private readonly masters: readonly MasterEndpoint[],
    finger: string | Record<string, string> | undefined,
    private readonly tofuFile: string | undefined,
    /** where the config came from, for error messages */
    private readonly source: string,
  ) {
    if (typeof finger === 'string') {
      for (const m of masters) this.configured.set(m.addr, normaliseFingerprint(finger));
    } else if (finger) {
      const known = new Set(masters.flatMap((m) => [m.name, m.addr]));
      for (const k of Object.keys(finger)) {
        if (!known.has(k)) throw new Error(`${source}: master_finger names '${k}', which is not in master (${masters.map((m) => m.name).join(', ')})`);
      }
      for (const m of masters) {
        const fp = finger[m.name] ?? finger[m.addr];
        if (fp !== undefined) this.configured.set(m.addr, normaliseFingerprint(fp));
      }
    }
    if (tofuFile && fs.existsSync(tofuFile)) this.readTofu(tofuFile);
    const unpinned = masters.filter((m) => !this.get(m));
    if (unpinned.length && !tofuFile) {
      throw new Error(`${source}: set master_finger (printed by tsalt master at start-up) or tofu: true` + (masters.length > 1 ? ` (no pin for ${unpinned.map((m) => m.name).join(', ')})` : ''));
    }
  }

  /** A TOFU file line is `<fingerprint> <host:port>`; a bare fingerprint (one-master agents before lists) is the first master's. */
  private readTofu(file: string): void {
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const [fp, addr] = line.trim().split(/\s+/);
      if (!fp) continue;
      this.learnt.set(addr ?? this.masters[0]!.addr, normaliseFingerprint(fp));
    }
  }

  get(m: MasterEndpoint): string | undefined {
    return this.configured.get(m.addr) ?? this.learnt.get(m.addr);
  }

  /** Whether a master's key may be learnt on first use (none pinned, tofu on). */
  canLearn(m: MasterEndpoint): boolean {
    return !this.get(m) && this.tofuFile !== undefined;
  }

  /**
   * Pin a master's key learnt on first use; the whole file is rewritten atomically. Throws when
   * the file cannot be written (a full or read-only disk), and then pins nothing, not even in
   * memory: a pin that would not survive a restart is not first-use trust (the next start would
   * trust whichever key it met then).
   */
  learn(m: MasterEndpoint, fp: string): string {
    if (!this.tofuFile) throw new Error('trust on first use is off');
    const text = [...this.learnt, [m.addr, fp] as const].map(([addr, f]) => `${f} ${addr}\n`).join('');
    const tmp = `${this.tofuFile}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, this.tofuFile);
    this.learnt.set(m.addr, fp);
    return this.tofuFile;
  }
}
