/**
 * Salt's `sysctl.present`: the kernel parameter set live (`sysctl -w`) and persisted in a
 * sysctl.d file (default /etc/sysctl.d/99-salt.conf, as Salt's linux_sysctl uses).
 * Order for a real run: set live first, then persist; when the kernel refuses the value the
 * config file is never touched, and a failed write of the file restores the old live value.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { defineState, StateFailure, type StateModule } from './define.js';
import { exec } from '../run/exec.js';
import { tempName } from './file/atomic-write.js';
import { refuseSpecial } from './file/paths.js';

export const DEFAULT_CONFIG = '/etc/sysctl.d/99-salt.conf';

const args = z.object({
  // dotted (net.ipv4.ip_forward) or slashed (net/ipv4/ip_forward), as sysctl(8) takes them
  name: z.string().check(z.regex(/^[A-Za-z0-9_][A-Za-z0-9_.:/@-]*$/, 'a sysctl key like net.ipv4.ip_forward')),
  value: z.pipe(
    z.union([
      z.string(),
      z.number(),
      z.pipe(
        z.boolean(),
        z.transform((b) => (b ? 1 : 0)),
      ),
    ]),
    z.transform(String),
  ),
  config: z.optional(z.string().check(z.regex(/^\//, 'config must be an absolute path'))),
});

/** Kernel values print tab-separated lists (ip_local_port_range); compare word by word. */
export function normalise(v: string): string {
  return v.trim().split(/\s+/).join(' ');
}

/** Value of `key` in sysctl.conf text: the last assignment wins, as when sysctl reads it. */
export function configuredValue(text: string, key: string): string | undefined {
  let found: string | undefined;
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (!t || t.startsWith('#') || t.startsWith(';')) continue;
    const eq = t.indexOf('=');
    if (eq < 0) continue;
    const k = t.slice(0, eq).trim().replace(/^-/, '');
    if (sameKey(k, key)) found = t.slice(eq + 1).trim();
  }
  return found;
}

function sameKey(a: string, b: string): boolean {
  return a.replaceAll('/', '.') === b.replaceAll('/', '.');
}

/** The config text with `key = value`: existing assignments replaced in place, else appended. */
export function withSetting(text: string, key: string, value: string): string {
  let replaced = false;
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  for (const line of lines) {
    const t = line.trim();
    const eq = t.indexOf('=');
    const isKey = t && !t.startsWith('#') && !t.startsWith(';') && eq > 0 && sameKey(t.slice(0, eq).trim().replace(/^-/, ''), key);
    if (!isKey) out.push(line);
    else if (!replaced) {
      out.push(`${key} = ${value}`);
      replaced = true;
    } // later duplicates dropped: they would override the value we just wrote
  }
  if (!replaced) out.push(`${key} = ${value}`);
  return out.join('\n') + '\n';
}

async function liveValue(name: string): Promise<string> {
  const r = await exec(['sysctl', '-n', '--', name]);
  if (r.code !== 0) throw new StateFailure(`Failed to read sysctl ${name}: ${(r.stderr || r.stdout).trim()}`);
  return r.stdout.replace(/\n$/, '');
}

async function setLive(name: string, value: string): Promise<void> {
  const r = await exec(['sysctl', '-w', '--', `${name}=${value}`]);
  if (r.code !== 0) throw new Error((r.stderr || r.stdout).trim() || `sysctl -w exited ${r.code}`);
}

function readConfig(file: string): string | undefined {
  // a device, FIFO or socket (or a link to one: /etc/x -> /dev/null) is never read nor replaced
  refuseSpecial(file);
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new StateFailure(`Failed to read ${file}: ${(e as Error).message}`);
  }
}

function writeAtomic(file: string, text: string): void {
  refuseSpecial(file);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = tempName(file);
  try {
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}

interface Plan {
  live: string;
  setLive: boolean;
  persist: boolean;
  config: string;
}

const present = defineState<typeof args, Plan>({
  args,
  async check(ctx, a) {
    const config = a.config ?? DEFAULT_CONFIG;
    const live = await ctx.facts.get(`sysctl:${a.name}`, () => liveValue(a.name));
    const text = readConfig(config);
    const configured = text === undefined ? undefined : configuredValue(text, a.name);
    const want = normalise(a.value);
    const plan: Plan = { live, config, setLive: normalise(live) !== want, persist: configured === undefined || normalise(configured) !== want };
    if (!plan.setLive && !plan.persist) return { comment: `Sysctl value ${a.name} = ${a.value} is already set` };
    // Salt's test-mode wording for the two partial cases
    const comment = !plan.setLive
      ? `Sysctl value is currently set on the running system but not in a config file. Sysctl option ${a.name} set to be changed to ${a.value} in config file.`
      : !plan.persist
        ? `Sysctl value ${a.name} is present in configuration file but is not present in the running config. The value ${a.name} is set to be changed to ${a.value}`
        : `Sysctl option ${a.name} would be changed to ${a.value}`;
    return { changes: { [a.name]: a.value }, comment, plan };
  },
  async apply(ctx, a, plan) {
    if (!plan) throw new StateFailure(`Failed to set ${a.name} to ${a.value}: no plan`);
    ctx.facts.invalidate(`sysctl:${a.name}`);
    if (plan.setLive) {
      try {
        await setLive(a.name, a.value);
      } catch (e) {
        throw new StateFailure(`Failed to set ${a.name} to ${a.value}: ${(e as Error).message}`);
      }
      // the kernel may accept a write and keep another value (clamping): that is not success
      const now = await liveValue(a.name);
      if (normalise(now) !== normalise(a.value)) {
        await setLive(a.name, plan.live).catch(() => {});
        throw new StateFailure(`Failed to set ${a.name} to ${a.value}: the kernel kept ${now}`);
      }
    }
    if (plan.persist) {
      try {
        writeAtomic(plan.config, withSetting(readConfig(plan.config) ?? '', a.name, a.value));
      } catch (e) {
        if (plan.setLive) await setLive(a.name, plan.live).catch(() => {});
        throw new StateFailure(`Failed to persist ${a.name} = ${a.value} in ${plan.config}: ${(e as Error).message}`);
      }
    }
    return { changes: { [a.name]: a.value }, comment: `Updated sysctl value ${a.name} = ${a.value}` };
  },
});

export default { present } satisfies StateModule;
