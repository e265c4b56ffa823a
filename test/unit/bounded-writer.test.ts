/**
 * BoundedWriter over a real Unix socket with a real reader: one that stops reading is dropped
 * once past the cap it takes nothing for the stall time (with the log line), one that reads
 * slower than its producer writes is not dropped short of the hard cap, one that reads slowly
 * but keeps up is never dropped and gets every byte in order, and one big answer is not mistaken
 * for a stalled reader.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BoundedWriter, HARD_CAP_FACTOR, MAX_PENDING_BYTES, STALL_MS } from '../../master/bounded-writer.js';
import { makeLogger } from '../../core/log.js';

const CAP = 1024 * 1024;
const HARD = 4 * CAP;
const CHUNK = 64 * 1024;
const STALL = 300;

let dir: string | undefined;
let server: net.Server | undefined;
afterEach(() => {
  server?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
  server = dir = undefined;
});

/** A connected pair over a Unix socket: the master's side and the reader's. */
async function pair(): Promise<{ out: net.Socket; reader: net.Socket }> {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-bw-'));
  const file = path.join(dir, 's.sock');
  const accepted = new Promise<net.Socket>((resolve) => {
    server = net.createServer(resolve);
    server.listen(file);
  });
  await new Promise((r) => server!.once('listening', r));
  const reader = net.connect(file);
  reader.on('error', () => {});
  const out = await accepted;
  out.on('error', () => {});
  return { out, reader };
}

function writer(out: net.Socket, lines: string[], cap = CAP): BoundedWriter {
  return new BoundedWriter(out, { name: () => 'test reader #1', log: makeLogger('debug', 'test', (l) => lines.push(l)), cap, hardCap: HARD, stallMs: STALL, hint: () => 'the work goes on' });
}

const turn = () => new Promise((r) => setImmediate(r));

const chunk = (i: number, size = CHUNK) => `${String(i).padStart(8, '0')}${'x'.repeat(size - 9)}\n`;

describe('BoundedWriter: what waits for a reader the master does not control', () => {
  it('the default cap is a few MiB; a reader past it has seconds to show it reads, and may fall some caps behind', () => {
    expect(MAX_PENDING_BYTES).toBe(8 * 1024 * 1024);
    expect(STALL_MS).toBe(10_000);
    expect(HARD_CAP_FACTOR).toBe(8);
  });

  it('a reader that stopped reading: past the cap and nothing taken for the stall time, dropped once, with a log line', async () => {
    const { out, reader } = await pair();
    reader.pause(); // connected, never reads
    const lines: string[] = [];
    const w = writer(out, lines);
    const closed = new Promise((r) => out.once('close', r));
    let maxPending = 0;
    let i = 0;
    // a job's events up to just past the cap (a loop turn at a time, so the kernel's buffers
    // fill as they would), then nothing more: the clock decides, not the bytes
    while (w.pending <= CAP) {
      expect(w.write(chunk(i++))).toBe(true);
      maxPending = Math.max(maxPending, w.pending);
      if (i % 16 === 0) await turn();
      expect(i).toBeLessThan(10_000);
    }
    const t0 = Date.now();
    expect(w.dropped).toBe(false);
    await closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(STALL - 20);
    expect(w.dropped).toBe(true);
    expect(maxPending).toBeLessThanOrEqual(CAP + CHUNK);
    expect(w.write('more\n')).toBe(false);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/warn +test: test reader #1: stopped reading with (\d+) bytes \(1\.\d MiB\) waiting for it, over the cap of 1\.0 MiB and nothing read for 0\.3 s; dropped it; the work goes on/);
    const pending = Number(lines[0]!.match(/with (\d+) bytes/)![1]);
    expect(pending).toBeGreaterThan(CAP);
    expect(pending).toBeLessThanOrEqual(CAP + CHUNK);
    reader.destroy();
  });

  it('a reader slower than its producer (a busy CLI, a big job): past the cap but still reading, never dropped, every byte in order', async () => {
    const { out, reader } = await pair();
    const lines: string[] = [];
    const w = writer(out, lines);
    // the reader takes a little, then pauses a while, again and again: slower than the job
    let got = '';
    reader.setEncoding('utf8');
    reader.on('data', (t: string) => {
      got += t;
      reader.pause();
      setTimeout(() => reader.resume(), 5);
    });
    const N = 48; // 3 MiB: three caps, under the hard cap
    let maxPending = 0;
    for (let i = 0; i < N; i++) {
      expect(w.write(chunk(i))).toBe(true); // the producer never waits (a job's events)
      maxPending = Math.max(maxPending, w.pending);
    }
    expect(maxPending).toBeGreaterThan(CAP); // it did fall behind past the cap
    const ended = new Promise((r) => reader.once('end', r));
    w.end();
    await ended;
    expect(w.dropped).toBe(false);
    expect(lines).toEqual([]);
    const seqs = got.trim().split('\n').map((l) => Number(l.slice(0, 8)));
    expect(seqs).toEqual(Array.from({ length: N }, (_, i) => i));
  });

  it('a slow reader that keeps up, with a producer that waits for it: never dropped, every byte in order', async () => {
    const { out, reader } = await pair();
    const lines: string[] = [];
    const w = writer(out, lines);
    const total = 48 * CAP; // far more than the cap
    let got = '';
    let bytes = 0;
    let bad = 0;
    let next = 0;
    reader.setEncoding('latin1');
    // reads a little, then nothing for a while: slow, but it goes on reading
    reader.on('data', (s: string) => {
      got += s;
      bytes += s.length;
      let nl: number;
      while ((nl = got.indexOf('\n')) >= 0) {
        if (Number(got.slice(0, 8)) !== next++) bad++;
        got = got.slice(nl + 1);
      }
      reader.pause();
      setTimeout(() => reader.resume(), 1);
    });
    const ended = new Promise((r) => reader.once('end', r));
    let i = 0;
    let maxPending = 0;
    await new Promise<void>((done) => {
      const produce = () => {
        while (!w.behind && i * CHUNK < total) {
          w.write(chunk(i++));
          maxPending = Math.max(maxPending, w.pending);
        }
        if (i * CHUNK >= total) return done();
        w.whenDrained(produce);
      };
      produce();
    });
    w.end();
    await ended;
    expect(w.dropped).toBe(false);
    expect(lines).toEqual([]);
    expect(bad).toBe(0);
    expect(bytes).toBe(total);
    expect(maxPending).toBeLessThanOrEqual(CAP);
  });

  it('one answer bigger than the cap, then its end line: not a stalled reader', async () => {
    const { out, reader } = await pair();
    const lines: string[] = [];
    const w = writer(out, lines);
    let bytes = 0;
    reader.on('data', (b: Buffer) => (bytes += b.length));
    const ended = new Promise((r) => reader.once('end', r));
    expect(w.write(chunk(0, 5 * CAP))).toBe(true);
    expect(w.write('{"type":"end","code":0}\n')).toBe(true);
    w.end();
    await ended;
    expect(w.dropped).toBe(false);
    expect(lines).toEqual([]);
    expect(bytes).toBe(5 * CAP + 24);
  });

  it('a reader that falls behind by more than the hard cap while the producer goes on is dropped at once, not waited for', async () => {
    const { out, reader } = await pair();
    const lines: string[] = [];
    const w = writer(out, lines);
    reader.pause();
    let i = 0;
    // a burst larger than the hard cap in one loop turn: the kernel takes some, the rest is over
    while (w.write(chunk(i))) i++;
    expect(w.dropped).toBe(true);
    expect(i * CHUNK).toBeLessThanOrEqual(HARD + 4 * CHUNK);
    expect(i * CHUNK).toBeGreaterThan(HARD - 4 * CHUNK);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/test reader #1: fell more than 4\.0 MiB behind with \d+ bytes .* dropped it/);
    reader.destroy();
  });
});
