/**
 * What one refused attempt to reach a master costs an agent, the two ways it can be made: a
 * websocket (ws: an HTTPS request, a TLS socket, a random key, the errors) as the agent made it
 * until the sixth pass of issue 14, and the bare TCP connect it makes first now (TLS and the
 * websocket are built only on a connected socket). While a master restarts, every agent of the
 * fleet retries every 1-2 s: 5,000 agents make ~3,300 attempts a second.
 *
 * usage: node bench/agent-dial.mjs [--attempts 5000] [--rounds 3]
 */
import net from 'node:net';
import { parseArgs } from 'node:util';
import { WebSocket } from 'ws';

const { values: o } = parseArgs({ options: { attempts: { type: 'string', default: '5000' }, rounds: { type: 'string', default: '3' } } });
const N = Number(o.attempts);

/** a port nothing listens on: bound, then closed */
async function refusedPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const port = s.address().port;
  await new Promise((r) => s.close(r));
  return port;
}

async function round(kind, port) {
  const c0 = process.cpuUsage();
  const w0 = performance.now();
  let left = N;
  await new Promise((done) => {
    const one = () => {
      if (--left === 0) done();
    };
    for (let i = 0; i < N; i++) {
      if (kind === 'websocket') {
        const ws = new WebSocket(`wss://127.0.0.1:${port}/`, { rejectUnauthorized: false, handshakeTimeout: 15000, perMessageDeflate: false });
        ws.on('error', () => {});
        ws.on('close', one);
      } else {
        const s = net.connect({ host: '127.0.0.1', port });
        s.on('error', () => {});
        s.on('close', one);
      }
    }
  });
  const c = process.cpuUsage(c0);
  return { cpuMs: (c.user + c.system) / 1000 / N, wallMs: performance.now() - w0 };
}

const port = await refusedPort();
const rows = { websocket: [], tcp: [] };
for (let r = 0; r < Number(o.rounds); r++) for (const kind of ['websocket', 'tcp']) rows[kind].push(await round(kind, port));
const med = (a) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
console.log(`refused attempts, ${N} at once, ${o.rounds} rounds alternated (median; CPU of this process per attempt):`);
for (const kind of ['websocket', 'tcp']) {
  const cpu = rows[kind].map((x) => x.cpuMs);
  console.log(`  ${kind.padEnd(9)} ${med(cpu).toFixed(3)} ms CPU per attempt (${cpu.map((x) => x.toFixed(3)).join(', ')}), ${Math.round(med(rows[kind].map((x) => x.wallMs)))} ms for all`);
}
