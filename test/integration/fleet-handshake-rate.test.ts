/**
 * max_handshake_rate (issue 14): TLS handshakes started per second are capped by a token bucket;
 * sockets beyond it are held, their TLS not started, and then admitted in turn (none dropped,
 * so their agents do not back off further). A real master; real TLS clients on loopback.
 */
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, waitFor } from './fleet-harness.js';

const RATE = 2;
const CLIENTS = 16;
const connectedCount = async (fleet: Fleet) => (await fleet.json<{ connected: boolean }[]>(['agents'])).filter((a) => a.connected).length;

/** A TLS client that sends its ClientHello at once; resolves when the handshake completed. */
function handshake(port: number): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, minVersion: 'TLSv1.3' });
    s.once('secureConnect', () => resolve(s));
    s.once('error', reject);
    s.once('close', () => reject(new Error('closed before the handshake finished')));
  });
}

describe('fleet: the TLS handshake rate cap', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({
      states: { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' },
      // held sockets wait at most tls_handshake_timeout_s: long enough for 16 at 2 a second
      master: { auto_accept: true, max_handshake_rate: RATE, tls_handshake_timeout_s: 120, heartbeat_s: 10, lost_after_s: 30 },
    });
    await fleet.startMaster();
  }, 60_000);
  afterAll(async () => {
    await fleet?.stop();
  });

  it(`${CLIENTS} sockets at once at ${RATE}/s: the ones over the bucket are held, then every handshake completes`, async () => {
    const socks = await Promise.all(Array.from({ length: CLIENTS }, () => handshake(fleet.port)));
    expect(socks).toHaveLength(CLIENTS);
    for (const s of socks) s.destroy();
    const out = fleet.master!.out;
    // held, not refused: a bucket of RATE lets RATE start at once, the others waited their turn
    const peaks = [...out.matchAll(/tls handshakes waiting for their turn: new peak (\d+)/g)].map((m) => Number(m[1]));
    expect(Math.max(0, ...peaks)).toBeGreaterThanOrEqual(CLIENTS / 2);
    expect(out).not.toMatch(/dropped .*its agent retries|handshake cap reached .*refused/);
  }, 120_000);

  it('agents reconnecting together after a master restart all come back through the held queue', async () => {
    const ids = Array.from({ length: 12 }, (_, i) => `rate${i}`);
    fleet.startAgents(ids.map((id) => fleet.agentConfig(id, { cfg: { heartbeat_s: 10, backoff_min_s: 0.5, backoff_max_s: 5 } })));
    await waitFor('all connected', async () => ((await connectedCount(fleet)) === ids.length ? true : undefined), 120_000);
    await fleet.master!.kill('SIGTERM');
    await fleet.startMaster();
    await waitFor('all back', async () => ((await connectedCount(fleet)) === ids.length ? true : undefined), 120_000);
    expect(fleet.master!.out).not.toMatch(/dropped .*its agent retries/);
  }, 240_000);
});
