/**
 * sysctl.present against this machine's kernel: vm.swappiness (harmless: no swap here) and
 * net.ipv4.ip_local_port_range (a tab-separated value). Original values are restored after.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runState, tempDir } from '../helpers/harness.js';
import { exec, execOk } from '../../engine/run/exec.js';
import { DEFAULT_CONFIG } from '../../engine/states/sysctl.js';

const live = async (k: string) => (await execOk(['sysctl', '-n', k])).stdout.trim();
const original: Record<string, string> = {};
const KEYS = ['vm.swappiness', 'net.ipv4.ip_local_port_range'];
let dir: string;
let defaultConfigExisted = false;

beforeAll(async () => {
  for (const k of KEYS) original[k] = await live(k);
  dir = tempDir('tsalt-sysctl-');
  defaultConfigExisted = fs.existsSync(DEFAULT_CONFIG);
});
afterAll(async () => {
  for (const k of KEYS) if (original[k] !== undefined) await exec(['sysctl', '-w', `${k}=${original[k]}`]);
  if (!defaultConfigExisted) fs.rmSync(DEFAULT_CONFIG, { force: true });
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

const run = (args: Record<string, unknown>, test = false) => runState('sysctl.present', args, { test });

async function converges(args: Record<string, unknown>) {
  const predicted = await run(args, true);
  expect(predicted.result, predicted.comment).toBeNull();
  const applied = await run(args);
  expect(applied.result, applied.comment).toBe(true);
  expect(Object.keys(applied.changes)).toEqual(Object.keys(predicted.changes));
  expect(await run(args)).toMatchObject({ result: true, changes: {} });
  expect(await run(args, true)).toMatchObject({ result: true, changes: {} });
  return applied;
}

describe('sysctl.present', () => {
  it('sets the value live and persists it; a rerun changes nothing', async () => {
    const config = path.join(dir, '90-tsalt.conf');
    fs.writeFileSync(config, '# kept\nkernel.unrelated = 1\nvm.swappiness=3\n');
    const want = original['vm.swappiness'] === '17' ? 18 : 17;
    const r = await converges({ name: 'vm.swappiness', value: want, config });
    expect(r).toMatchObject({ changes: { 'vm.swappiness': String(want) }, comment: `Updated sysctl value vm.swappiness = ${want}` });
    expect(await live('vm.swappiness')).toBe(String(want));
    expect(fs.readFileSync(config, 'utf8')).toBe(`# kept\nkernel.unrelated = 1\nvm.swappiness = ${want}\n`);
  });

  it('a value set live but not persisted: only the file changes (Salt\'s wording in test mode)', async () => {
    const config = path.join(dir, 'only-file.conf');
    const cur = await live('vm.swappiness');
    const t = await run({ name: 'vm.swappiness', value: cur, config }, true);
    expect(t.result).toBeNull();
    expect(t.comment).toContain('currently set on the running system but not in a config file');
    await converges({ name: 'vm.swappiness', value: cur, config });
    expect(fs.readFileSync(config, 'utf8')).toBe(`vm.swappiness = ${cur}\n`);
  });

  it('multi-word values compare word by word (tabs from the kernel, spaces in the tree)', async () => {
    const config = path.join(dir, 'range.conf');
    const value = original['net.ipv4.ip_local_port_range'] === '32768\t60998' ? '32768 60997' : '32768 60998';
    await converges({ name: 'net.ipv4.ip_local_port_range', value, config });
    expect((await live('net.ipv4.ip_local_port_range')).split(/\s+/).join(' ')).toBe(value);
  });

  it('default config is /etc/sysctl.d/99-salt.conf', async () => {
    const want = (await live('vm.swappiness')) === '21' ? 22 : 21;
    await converges({ name: 'vm.swappiness', value: want });
    expect(fs.readFileSync(DEFAULT_CONFIG, 'utf8')).toContain(`vm.swappiness = ${want}\n`);
  });

  it('a value the kernel refuses fails clearly and leaves the file alone', async () => {
    const config = path.join(dir, 'refused.conf');
    const before = await live('vm.swappiness');
    const r = await run({ name: 'vm.swappiness', value: 'lots', config });
    expect(r.result).toBe(false);
    expect(r.comment).toMatch(/^Failed to set vm.swappiness to lots: /);
    expect(fs.existsSync(config)).toBe(false);
    expect(await live('vm.swappiness')).toBe(before);
  });

  it('an unknown key fails clearly', async () => {
    const r = await run({ name: 'vm.tsalt_no_such_key', value: 1, config: path.join(dir, 'x.conf') });
    expect(r.result).toBe(false);
    expect(r.comment).toContain('vm.tsalt_no_such_key');
  });
});
