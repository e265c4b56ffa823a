/**
 * Key pairs and self-signed certificates for the master and agents, and the fingerprints that
 * bind an identity to a public key. Keys come from node:crypto (WebCrypto), certificates from
 * @peculiar/x509: no home-made crypto. The fingerprint is over the public key (SPKI), not the
 * certificate, so a re-issued certificate for the same key keeps its identity.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';

/**
 * The certificate library, loaded only when a certificate is made (first start): a running
 * agent verifies with node:crypto alone and does not keep x509/asn1 code in memory.
 */
async function x509Lib(): Promise<typeof import('@peculiar/x509')> {
  await import('reflect-metadata'); // @peculiar/x509's dependency injection needs the Reflect polyfill
  const x509 = await import('@peculiar/x509');
  x509.cryptoProvider.set(crypto.webcrypto as unknown as Crypto);
  return x509;
}

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface Identity {
  keyPem: string;
  certPem: string;
  fingerprint: string;
  /** the certificate's common name: the agent id (or `tsalt-master`) */
  name: string;
}

/**
 * Key fingerprints of certificates seen, by the certificate's own sha256 (computed natively
 * from its DER). A fleet reconnecting after a master restart presents the same certificates
 * again: exporting each public key anew was a third of the master's CPU per reconnect. Bounded:
 * emptied when full.
 */
const seenFingerprints = new Map<string, string>();
const SEEN_MAX = 65_536;

/** Lowercase hex sha256 of a certificate's SubjectPublicKeyInfo. */
export function fingerprintOf(cert: string | Buffer | crypto.X509Certificate): string {
  const c = cert instanceof crypto.X509Certificate ? cert : new crypto.X509Certificate(cert);
  const whole = c.fingerprint256;
  const known = seenFingerprints.get(whole);
  if (known) return known;
  const spki = c.publicKey.export({ type: 'spki', format: 'der' });
  const fp = crypto.createHash('sha256').update(spki).digest('hex');
  if (seenFingerprints.size >= SEEN_MAX) seenFingerprints.clear();
  seenFingerprints.set(whole, fp);
  return fp;
}

/** The peer's certificate: id (CN) and key fingerprint; read once per socket. */
export interface PeerIdentity {
  name: string | null;
  fingerprint: string;
}
const peers = new WeakMap<TLSSocket, PeerIdentity | null>();

/** Who the peer of a TLS socket is by its certificate, or null without one. */
export function peerIdentity(sock: TLSSocket): PeerIdentity | null {
  if (peers.has(sock)) return peers.get(sock)!;
  // getPeerX509Certificate: no detour through getPeerCertificate's plain object and a re-parse
  const cert = sock.getPeerX509Certificate?.();
  const p = cert ? { name: commonName(cert), fingerprint: fingerprintOf(cert) } : null;
  peers.set(sock, p);
  return p;
}

/** The CN of a certificate's subject, or null. */
export function commonName(cert: crypto.X509Certificate): string | null {
  for (const line of cert.subject.split('\n')) {
    if (line.startsWith('CN=')) return line.slice(3);
  }
  return null;
}

/** `ab12cd...` -> `ab:12:cd...` for people; both forms are accepted wherever one is typed. */
export function normaliseFingerprint(fp: string): string {
  return fp.replace(/[:\s]/g, '').toLowerCase();
}

async function generate(name: string, keyPemExisting?: string): Promise<{ keyPem: string; certPem: string }> {
  let keys: CryptoKeyPair;
  if (keyPemExisting) {
    // re-issue a certificate (new name) for the key we already have: identity is the key
    const priv = crypto.createPrivateKey(keyPemExisting);
    const pub = crypto.createPublicKey(priv);
    const subtle = crypto.webcrypto.subtle;
    keys = {
      privateKey: (await subtle.importKey('pkcs8', priv.export({ type: 'pkcs8', format: 'der' }), ALG, true, ['sign'])) as unknown as CryptoKey,
      publicKey: (await subtle.importKey('spki', pub.export({ type: 'spki', format: 'der' }), ALG, true, ['verify'])) as unknown as CryptoKey,
    };
  } else {
    keys = (await crypto.webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as unknown as CryptoKeyPair;
  }
  const x509 = await x509Lib();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: crypto.randomBytes(8).toString('hex').replace(/^[89a-f]/, '1'),
    name: `CN=${name}`,
    notBefore: new Date(Date.now() - 60_000),
    notAfter: new Date(Date.now() + 100 * 365 * 86400_000),
    signingAlgorithm: ALG,
    keys,
  });
  const der = Buffer.from(await crypto.webcrypto.subtle.exportKey('pkcs8', keys.privateKey as unknown as crypto.webcrypto.CryptoKey));
  const keyPem = keyPemExisting ?? crypto.createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { keyPem, certPem: cert.toString('pem') + '\n' };
}

function writeSecret(file: string, data: string, mode: number): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

/**
 * Load `<dir>/<base>.key` + `.crt`, creating them at first start. The key file is 0600 and
 * the directory 0700. A certificate whose CN no longer matches `name` is re-issued for the
 * same key.
 */
export async function loadOrCreateIdentity(dir: string, base: string, name: string): Promise<Identity & { created: boolean }> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const keyFile = path.join(dir, `${base}.key`);
  const certFile = path.join(dir, `${base}.crt`);
  let created = false;
  let keyPem = fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8') : undefined;
  let certPem = keyPem && fs.existsSync(certFile) ? fs.readFileSync(certFile, 'utf8') : undefined;
  if (certPem && commonName(new crypto.X509Certificate(certPem)) !== name) certPem = undefined;
  if (!keyPem || !certPem) {
    const g = await generate(name, keyPem);
    if (!keyPem) {
      writeSecret(keyFile, g.keyPem, 0o600);
      created = true;
    }
    writeSecret(certFile, g.certPem, 0o644);
    keyPem = g.keyPem;
    certPem = g.certPem;
  }
  const cert = new crypto.X509Certificate(certPem);
  if (!cert.checkPrivateKey(crypto.createPrivateKey(keyPem))) {
    throw new Error(`${certFile} does not belong to ${keyFile}; remove the certificate to re-issue it`);
  }
  return { keyPem, certPem, fingerprint: fingerprintOf(cert), name, created };
}
