/**
 * The agent's list of masters (Salt's `master:` list, `host:port` entries, random_master with
 * master_failback) and its pin per master (master_finger as one value or a map; the TOFU file).
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadAgentConfig } from '../../agent/connection/config.js';
import { masterOrder, parseMasterEntry, PinBook } from '../../agent/connection/masters.js';
import { backoffDelay } from '../../agent/connection/client.js';
import { tempDir } from '../helpers/harness.js';

const FP1 = 'a'.repeat(64);
const FP2 = 'b'.repeat(64);

describe('agent: the list of masters', () => {
  it('takes host, host:port and [v6]:port entries; a port written in the entry beats master_port', () => {
    expect(parseMasterEntry('m1', 4506)).toMatchObject({ host: 'm1', port: 4506, addr: 'm1:4506', url: 'wss://m1:4506/' });
    expect(parseMasterEntry('m2:4507', 4506)).toMatchObject({ host: 'm2', port: 4507, url: 'wss://m2:4507/' });
    expect(parseMasterEntry('[2001:db8::1]:1234', 4506)).toMatchObject({ host: '2001:db8::1', port: 1234, url: 'wss://[2001:db8::1]:1234/' });
    expect(parseMasterEntry('2001:db8::1', 4506)).toMatchObject({ host: '2001:db8::1', port: 4506, url: 'wss://[2001:db8::1]:4506/' });
    expect(() => parseMasterEntry('m1:99999', 4506)).toThrow(/master 'm1:99999'/);
  });

  it('the agent config takes one master or a list, Salt\'s master_type names, and refuses an empty list', () => {
    const d = tempDir();
    const f = path.join(d, 'agent.yaml');
    fs.writeFileSync(f, `master: [m1, 'm2:4507']\nmaster_type: failover\nmaster_finger: {m1: '${FP1}', 'm2:4507': '${FP2}'}\n`);
    const c = loadAgentConfig(f);
    expect(c.master).toEqual(['m1', 'm2:4507']);
    expect(c.master_finger).toEqual({ m1: FP1, 'm2:4507': FP2 });
    fs.writeFileSync(f, 'master: []\n');
    expect(() => loadAgentConfig(f)).toThrow(/'master'/);
    fs.writeFileSync(f, 'master: [m1]\nmaster_type: func\n');
    expect(() => loadAgentConfig(f)).toThrow(/'master_type'/);
  });

  it('keeps the listed order; random_master shuffles it, keeping the first first with master_failback', () => {
    const entries = ['m1', 'm2', 'm3', 'm4'];
    expect(masterOrder(entries, { port: 1, random: false, failback: false }).map((m) => m.name)).toEqual(entries);
    const rnd = () => 0; // each swap takes index 0: a rotation, never the identity
    expect(masterOrder(entries, { port: 1, random: true, failback: false }, rnd).map((m) => m.name)).toEqual(['m2', 'm3', 'm4', 'm1']);
    const fb = masterOrder(entries, { port: 1, random: true, failback: true }, rnd).map((m) => m.name);
    expect(fb[0]).toBe('m1');
    expect(fb.slice(1).sort()).toEqual(['m2', 'm3', 'm4']);
    expect(fb).not.toEqual(entries);
    expect(() => masterOrder(['m1', 'm1:1'], { port: 1, random: false, failback: false })).toThrow(/listed twice/);
  });

  it('master_finger as one value pins every master; as a map each its own; a map naming an unlisted master is an error', () => {
    const ms = masterOrder(['m1', 'm2:4507'], { port: 4506, random: false, failback: false });
    const one = new PinBook(ms, FP1.toUpperCase(), undefined, 'agent.yaml');
    expect(ms.map((m) => one.get(m))).toEqual([FP1, FP1]);
    const map = new PinBook(ms, { m1: FP1, 'm2:4507': FP2 }, undefined, 'agent.yaml');
    expect(ms.map((m) => map.get(m))).toEqual([FP1, FP2]);
    // keyed by host:port works too
    expect(new PinBook(ms, { 'm1:4506': FP1, 'm2:4507': FP2 }, undefined, 'a').get(ms[0]!)).toBe(FP1);
    expect(() => new PinBook(ms, { m1: FP1, m3: FP2 }, undefined, 'agent.yaml')).toThrow(/master_finger names 'm3', which is not in master/);
    // a master left without a pin and no tofu: the agent does not start
    expect(() => new PinBook(ms, { m1: FP1 }, undefined, 'agent.yaml')).toThrow(/set master_finger .* or tofu: true \(no pin for m2:4507\)/);
  });

  it('trust on first use keeps one pin per master in the TOFU file; a one-master file is the first master\'s', () => {
    const d = tempDir();
    const file = path.join(d, 'master.fp');
    const ms = masterOrder(['m1', 'm2'], { port: 4506, random: false, failback: false });
    fs.writeFileSync(file, `${FP1}\n`); // written by an agent that had one master
    const book = new PinBook(ms, undefined, file, 'agent.yaml');
    expect(book.get(ms[0]!)).toBe(FP1);
    expect(book.canLearn(ms[0]!)).toBe(false);
    expect(book.canLearn(ms[1]!)).toBe(true);
    book.learn(ms[1]!, FP2);
    expect(fs.readFileSync(file, 'utf8')).toBe(`${FP1} m1:4506\n${FP2} m2:4506\n`);
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    // read back by the next start: both pinned, nothing left to learn
    const again = new PinBook(ms, undefined, file, 'agent.yaml');
    expect(ms.map((m) => again.get(m))).toEqual([FP1, FP2]);
    expect(ms.some((m) => again.canLearn(m))).toBe(false);
    // a configured pin beats a learnt one
    expect(new PinBook(ms, { m2: FP1 }, file, 'agent.yaml').get(ms[1]!)).toBe(FP1);
  });

  it('a pin that cannot be written is not kept in memory either (trust on first use needs it kept)', () => {
    const d = tempDir();
    const file = path.join(d, 'master.fp');
    const ms = masterOrder(['m1'], { port: 4506, random: false, failback: false });
    const book = new PinBook(ms, undefined, file, 'agent.yaml');
    // the temp file's name taken by a directory: the write fails, as on a full or read-only disk
    fs.mkdirSync(`${file}.tmp`);
    expect(() => book.learn(ms[0]!, FP1)).toThrow(/EISDIR/);
    expect(book.get(ms[0]!)).toBeUndefined();
    expect(book.canLearn(ms[0]!)).toBe(true);
    expect(fs.existsSync(file)).toBe(false);
    fs.rmdirSync(`${file}.tmp`);
    book.learn(ms[0]!, FP1);
    expect(book.get(ms[0]!)).toBe(FP1);
  });

  it('backoff stays within its cap', () => {
    for (let n = 0; n < 40; n++) expect(backoffDelay(n, 0.5, 4, () => 1)).toBeLessThanOrEqual(4000);
  });
});
