/**
 * Frames made by hand over real TLS, as an attacker's own client would: compressed frames
 * (permessage-deflate is never negotiated, so a "compression bomb" cannot inflate), a message
 * split into many fragments adding up past the limit, and a frame header announcing 2^62
 * bytes. Each is cut off by the master without buffering it; the master carries on.
 */
import crypto from 'node:crypto';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, Fleet, RawAgent, waitFor } from '../integration/fleet-harness.js';
import { loadOrCreateIdentity } from '../../core/identity.js';

const states = { 'top.sls': "base:\n  '*':\n    - common\n", 'common.sls': 'hello:\n  test.succeed_without_changes: []\n' };

/** A masked client frame. */
function frame(opcode: number, payload: Buffer, o: { fin?: boolean; rsv1?: boolean; claimLength?: bigint } = {}): Buffer {
  const b0 = (o.fin === false ? 0 : 0x80) | (o.rsv1 ? 0x40 : 0) | opcode;
  const len = o.claimLength ?? BigInt(payload.length);
  let head: Buffer;
  if (len < 126n) head = Buffer.from([b0, 0x80 | Number(len)]);
  else if (len < 65536n) {
    head = Buffer.alloc(4);
    head[0] = b0;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(Number(len), 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = b0;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(len, 2);
  }
  const mask = crypto.randomBytes(4);
  const body = Buffer.from(payload.map((x, i) => x ^ mask[i % 4]!));
  return Buffer.concat([head, mask, body]);
}

/** A TLS connection that did the websocket upgrade by hand; `closeCode` is the master's close frame, if any. */
class HandClient {
  received = Buffer.alloc(0);
  headers = '';
  closed: Promise<void>;
  private constructor(readonly sock: tls.TLSSocket) {
    this.closed = new Promise((r) => sock.on('close', () => r()));
    sock.on('error', () => {});
    sock.on('data', (d: Buffer) => (this.received = Buffer.concat([this.received, d])));
  }
  static async open(fleet: Fleet, id: string, extensions = 'permessage-deflate; client_max_window_bits'): Promise<HandClient> {
    // RawAgent's identities live under raw/: the same id is the same key
    const ident = await loadOrCreateIdentity(path.join(fleet.dir, 'raw', id), 'agent', id);
    const sock = tls.connect({ host: '127.0.0.1', port: fleet.port, key: ident.keyPem, cert: ident.certPem, rejectUnauthorized: false });
    const c = new HandClient(sock);
    await new Promise<void>((r) => sock.once('secureConnect', () => r()));
    sock.write(
      'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
        `Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: ${extensions}\r\n\r\n`,
    );
    await waitFor('101', () => (c.received.includes('\r\n\r\n') ? true : undefined));
    const end = c.received.indexOf('\r\n\r\n');
    c.headers = c.received.subarray(0, end).toString();
    c.received = c.received.subarray(end + 4);
    return c;
  }
  /** Close code of the master's close frame (server frames are unmasked). */
  get closeCode(): number | undefined {
    let b = this.received;
    while (b.length >= 2) {
      const op = b[0]! & 0x0f;
      let len = b[1]! & 0x7f;
      let off = 2;
      if (len === 126) {
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (op === 8) return len >= 2 ? b.readUInt16BE(off) : 1005;
      b = b.subarray(off + len);
    }
    return undefined;
  }
  write(b: Buffer): boolean {
    return this.sock.destroyed ? false : this.sock.write(b);
  }
}

describe('security: compression and fragmentation bombs', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states, master: { max_frame_bytes: 65536 } });
    await fleet.startMaster();
    // an accepted agent played by hand: accept its key once, then it comes back as accepted
    const raw = await RawAgent.connect(fleet, 'acc1');
    await raw.waitMsg('key_status');
    await fleet.cli(['keys', 'accept', 'acc1']);
    raw.ws.terminate();
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('permessage-deflate is never negotiated; a compressed frame closes the connection (1002)', async () => {
    const c = await HandClient.open(fleet, 'deflate1');
    expect(c.headers).toMatch(/^HTTP\/1\.1 101/);
    expect(c.headers.toLowerCase()).not.toMatch(/sec-websocket-extensions/);
    // a tiny deflate stream that would inflate to megabytes if it were ever inflated
    const bomb = await import('node:zlib').then((z) => z.deflateRawSync(Buffer.alloc(64 * 1024 * 1024)));
    c.write(frame(1, bomb, { rsv1: true }));
    await c.closed;
    expect(c.closeCode).toBe(1002);
  });

  it.each([
    ['a pending key', 'frag-pending', 16 * 1024],
    ['an accepted key', 'acc1', 65536],
  ])('fragments adding up past the limit are refused (1009) for %s', async (_who, id, limit) => {
    const c = await HandClient.open(fleet, id, 'x-none');
    const piece = Buffer.alloc(1024, 0x20);
    c.write(frame(1, Buffer.from('{"type":"hello","grains":{"x":"'), { fin: false }));
    for (let i = 0; i < (limit / 1024) * 2 && !c.sock.destroyed; i++) c.write(frame(0, piece, { fin: false }));
    await c.closed;
    expect(c.closeCode).toBe(1009);
  });

  it('a frame header announcing 2^62 bytes is refused at once (1009), nothing buffered', async () => {
    const c = await HandClient.open(fleet, 'len-bomb', 'x-none');
    c.write(frame(1, Buffer.from('{'), { claimLength: 2n ** 62n }));
    await c.closed;
    expect(c.closeCode).toBe(1009);
    // the master is fine and still serves the CLI
    expect(fleet.master!.running).toBe(true);
    expect((await fleet.cli(['keys', 'list'])).code).toBe(0);
  });
});

describe('security: TLS sessions', () => {
  let fleet: Fleet;
  beforeAll(async () => {
    buildOnce();
    fleet = new Fleet({ states });
    await fleet.startMaster();
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  /** One TLS connection as an agent: the last session the master gave it, and whether it resumed the one offered. */
  async function connect(id: string, session?: Buffer): Promise<{ session: Buffer | undefined; reused: boolean }> {
    const ident = await loadOrCreateIdentity(path.join(fleet.dir, 'raw', id), 'agent', id);
    const sock = tls.connect({ host: '127.0.0.1', port: fleet.port, key: ident.keyPem, cert: ident.certPem, rejectUnauthorized: false, ...(session ? { session } : {}) });
    let last: Buffer | undefined;
    sock.on('session', (s: Buffer) => (last = s));
    sock.on('error', () => {});
    sock.on('data', () => {});
    await new Promise<void>((r) => sock.once('secureConnect', () => r()));
    const reused = sock.isSessionReused();
    // TLS 1.3 sends its session tickets after the handshake: a plain request brings them and an answer
    sock.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
    await new Promise<void>((r) => sock.once('close', () => r()));
    return { session: last, reused };
  }

  it('a reconnect resumes no session: every connection proves its key in a full handshake (and the master keeps no ticket state per connection)', async () => {
    const first = await connect('resume1');
    expect(first.reused).toBe(false);
    // the client may be handed a ticket, but the master never takes one back
    if (first.session) expect((await connect('resume1', first.session)).reused).toBe(false);
  });
});
