/**
 * A real master with the console on, real agents on loopback (test/integration/fleet-harness),
 * and, for the browser tests, Debian's Chromium driven headless by playwright-core with a fresh
 * profile. The console's port is read from the master's log (it listens on port 0).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Fleet } from '../integration/fleet-harness.js';

export const TOKEN = 'console-test-token-0123456789abcdef';
export const CHROMIUM = '/usr/bin/chromium';

export class ConsoleFleet extends Fleet {
  consolePort = 0;

  constructor(o: { states: Record<string, string>; pillar?: Record<string, string>; master?: Record<string, unknown> }) {
    super({ ...o, master: { console: { interface: '127.0.0.1', port: 0, token: TOKEN }, ...o.master } });
  }

  override async startMaster() {
    const p = await super.startMaster();
    const m = await p.waitOutput(/console on http:\/\/127\.0\.0\.1:(\d+)\//);
    this.consolePort = Number(m[1]);
    return p;
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.consolePort}${p}`;
  }

  /** A request with the token as a Bearer header (or none: `token: null`). */
  get(p: string, o: { token?: string | null; method?: string; headers?: Record<string, string> } = {}): Promise<Response> {
    const token = o.token === undefined ? TOKEN : o.token;
    return fetch(this.url(p), {
      method: o.method ?? 'GET',
      redirect: 'manual',
      headers: { ...(token !== null ? { Authorization: `Bearer ${token}` } : {}), ...o.headers },
    });
  }

  async text(p: string): Promise<string> {
    const r = await this.get(p);
    if (r.status !== 200) throw new Error(`GET ${p}: ${r.status} ${await r.text()}`);
    return r.text();
  }
}

/** Chromium, headless, fresh profile, nothing talking to the network but the console. */
export async function launchBrowser(o: { javaScriptEnabled?: boolean } = {}): Promise<{ context: import('playwright-core').BrowserContext; close(): Promise<void> }> {
  const { chromium } = await import('playwright-core');
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 800 },
    javaScriptEnabled: o.javaScriptEnabled ?? true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}
