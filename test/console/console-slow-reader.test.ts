/**
 * A console page whose reader stopped reading (a suspended laptop, a stalled proxy) must not
 * make the master hold its event stream without bound. The console's real HTTP server on a real
 * store, fed job changes as the JobManager feeds them (many more than a test fleet could run),
 * read by a real TCP client with a small receive buffer that stops reading after the headers:
 * the events wait as one (not one per change), the stream is dropped with one log line once it
 * stays behind a keepalive interval, the producer never blocks, and the next reader is served.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveConsole, type ConsoleServer } from '../../master/console/server.js';
import { ConsoleLive } from '../../master/console/live.js';
import { SqliteStore as Store } from '../../master/store-sqlite.js';
import { makeLogger } from '../../core/log.js';
import { waitFor } from '../integration/fleet-harness.js';

const TOKEN = 'slow-reader-token-0123456789';
const JID = '20261206000000000001';

// a reader with a 2 KiB receive buffer: the kernel holds little for it, so what it does not read
// stays in the master, where it can be seen
const STALLED_READER = `
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
s.connect(('127.0.0.1', int(sys.argv[1])))
s.sendall(b'GET /live/jobs HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Bearer ${TOKEN}\\r\\n\\r\\n')
print(s.recv(12).decode(), flush=True)
sys.stdin.read()  # reads nothing more from the console until the test says so
n = 0
while True:
    try:
        b = s.recv(65536)
    except ConnectionResetError:
        break
    if not b:
        break
    n += len(b)
print('read', n, flush=True)
`;

describe('console: a live page that stops reading', () => {
  let dir: string;
  let store: Store;
  let server: ConsoleServer;
  const live = new ConsoleLive();
  const lines: string[] = [];
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-console-slow-'));
    store = new Store(path.join(dir, 'master.db'));
    const src = { store, connected: async () => new Set<string>(), head: async () => undefined, schedules: () => [], nodegroups: {} };
    server = await serveConsole({ interface: '127.0.0.1', port: 0, keepalive_s: 0.2, token: TOKEN }, src, live, makeLogger('info', 'master', (l) => lines.push(l)));
  });
  afterAll(async () => {
    await server?.close();
    await store?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('waits as one event, is dropped with a log line, the producer goes on, the next page is served', async () => {
    const py = spawn('python3', ['-c', STALLED_READER, String(server.port)], { stdio: ['pipe', 'pipe', 'inherit'] });
    let out = '';
    py.stdout.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise((r) => py.on('exit', r));
    try {
      await waitFor('the stream opened', () => out.includes('HTTP/1.1 200') || undefined);
      // a fleet's worth of job changes, a loop turn at a time, until the master gives up on the reader
      let told = 0;
      await waitFor('the stalled page dropped', async () => {
        for (let i = 0; i < 20_000; i++, told++) live.agentDone(JID, 'done');
        await new Promise((r) => setImmediate(r));
        return lines.some((l) => /stopped reading/.test(l)) || undefined;
      }, 60_000);
      const dropped = lines.filter((l) => /stopped reading/.test(l));
      expect(dropped).toHaveLength(1);
      const m = dropped[0]!.match(/warn +master: console GET \/live\/jobs from 127\.0\.0\.1:\d+: stopped reading \(behind for 0\.2 s\) with (\d+) bytes \(0\.0 MiB\) waiting for it; dropped it\n?$/);
      expect(m, dropped[0]).not.toBeNull();
      // behind, the stream holds the socket's high-water mark and one event, not one per change
      expect(Number(m![1])).toBeLessThan(32 * 1024);
      expect(told * 50).toBeGreaterThan(Number(m![1]) * 4);
      // the producer goes on: more changes after the drop cost nothing and break nothing
      for (let i = 0; i < 1000; i++) live.agentDone(JID, 'done');
    } finally {
      py.stdin.end();
    }
    await exited;
    expect(out).toMatch(/^read \d+$/m);

    // the next reader is served as usual: a page, and a live stream that hears the next change
    const page = await fetch(`http://127.0.0.1:${server.port}/jobs`, { headers: { Authorization: `Bearer ${TOKEN}` } });
    expect(page.status).toBe(200);
    const ac = new AbortController();
    const stream = await fetch(`http://127.0.0.1:${server.port}/live/jobs`, { headers: { Authorization: `Bearer ${TOKEN}` }, signal: ac.signal });
    const reader = stream.body!.getReader();
    live.jobCompleted(JID);
    let text = '';
    while (!text.includes(`"jid":"${JID}"`)) text += new TextDecoder().decode((await reader.read()).value);
    ac.abort();
    expect(text).toMatch(/^retry: 2000\n\nevent: jobs\ndata: \{"jid":"\d{20}"\}\n\n/);
  });
});
