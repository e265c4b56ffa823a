import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import tls from 'node:tls';
import { commonName, fingerprintOf, loadOrCreateIdentity, normaliseFingerprint, peerIdentity } from '../../core/identity.js';
import { tempDir } from '../helpers/harness.js';

describe('identities', () => {
  it('creates a key (0600) and a self-signed certificate at first start, then reuses them', async () => {
    const dir = path.join(tempDir(), 'pki');
    const a = await loadOrCreateIdentity(dir, 'agent', 'web1');
    expect(a.created).toBe(true);
    expect(fs.statSync(path.join(dir, 'agent.key')).mode & 0o777).toBe(0o600);
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    const cert = new crypto.X509Certificate(a.certPem);
    expect(commonName(cert)).toBe('web1');
    expect(cert.verify(cert.publicKey)).toBe(true); // self-signed
    expect(a.fingerprint).toMatch(/^[0-9a-f]{64}$/);
    const b = await loadOrCreateIdentity(dir, 'agent', 'web1');
    expect(b.created).toBe(false);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.certPem).toBe(a.certPem);
  });

  it('a new id re-issues the certificate for the same key: the fingerprint is the key', async () => {
    const dir = tempDir();
    const a = await loadOrCreateIdentity(dir, 'agent', 'old-name');
    const b = await loadOrCreateIdentity(dir, 'agent', 'new-name');
    expect(commonName(new crypto.X509Certificate(b.certPem))).toBe('new-name');
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(b.keyPem).toBe(a.keyPem);
  });

  it('different key pairs have different fingerprints', async () => {
    const a = await loadOrCreateIdentity(tempDir(), 'agent', 'x');
    const b = await loadOrCreateIdentity(tempDir(), 'agent', 'x');
    expect(a.fingerprint).not.toBe(b.fingerprint);
    expect(fingerprintOf(a.certPem)).toBe(a.fingerprint);
  });

  it('a certificate that does not belong to the key is an error, not silently used', async () => {
    const d1 = tempDir();
    const d2 = tempDir();
    await loadOrCreateIdentity(d1, 'agent', 'x');
    await loadOrCreateIdentity(d2, 'agent', 'x');
    fs.copyFileSync(path.join(d2, 'agent.crt'), path.join(d1, 'agent.crt'));
    await expect(loadOrCreateIdentity(d1, 'agent', 'x')).rejects.toThrow(/does not belong to/);
  });

  it('fingerprints may be typed with colons and capitals', () => {
    expect(normaliseFingerprint('AB:cd:EF')).toBe('abcdef');
  });

  it('fingerprints stay per key when certificates are seen again and again (the memo is by whole certificate)', async () => {
    const a = await loadOrCreateIdentity(tempDir(), 'agent', 'a');
    const dir = tempDir();
    const b = await loadOrCreateIdentity(dir, 'agent', 'b');
    const b2 = await loadOrCreateIdentity(dir, 'agent', 'b-renamed'); // same key, another certificate
    const spki = (pem: string) => crypto.createHash('sha256').update(new crypto.X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' })).digest('hex');
    for (let i = 0; i < 3; i++) {
      expect(fingerprintOf(a.certPem)).toBe(spki(a.certPem));
      expect(fingerprintOf(new crypto.X509Certificate(b.certPem))).toBe(spki(b.certPem));
      expect(fingerprintOf(Buffer.from(new crypto.X509Certificate(b2.certPem).raw))).toBe(spki(b.certPem));
    }
    expect(fingerprintOf(a.certPem)).not.toBe(fingerprintOf(b.certPem));
  });

  it('peerIdentity reads the CN and key fingerprint of a real TLS peer, and null without a certificate', async () => {
    const srv = await loadOrCreateIdentity(tempDir(), 'master', 'tsalt-master');
    const cli = await loadOrCreateIdentity(tempDir(), 'agent', 'web7');
    const seen: (ReturnType<typeof peerIdentity> | 'twice-differs')[] = [];
    const server = tls.createServer({ key: srv.keyPem, cert: srv.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (s) => {
      const p = peerIdentity(s);
      seen.push(peerIdentity(s) === p ? p : 'twice-differs');
      s.end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const connect = (opts: tls.ConnectionOptions) =>
      new Promise<void>((resolve, reject) => {
        const c = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts }, () => c.on('end', () => resolve()).resume());
        c.on('error', reject);
      });
    try {
      await connect({ key: cli.keyPem, cert: cli.certPem });
      await connect({});
      await connect({ secureContext: tls.createSecureContext({ key: cli.keyPem, cert: cli.certPem }) });
    } finally {
      server.close();
    }
    expect(seen).toEqual([{ name: 'web7', fingerprint: cli.fingerprint }, null, { name: 'web7', fingerprint: cli.fingerprint }]);
  });
});
