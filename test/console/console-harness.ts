/**
 * A real master with the console on, real agents on loopback (test/integration/fleet-harness),
 * and, for the browser tests, Debian's Chromium driven headless by playwright-core with a fresh
 * profile. The console's port is read from the master's log (it listens on port 0).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Fleet, type Proc } from '../integration/fleet-harness.js';
import { ReleaseFleet } from '../integration/release-harness.js';

export const TOKEN = 'console-test-token-0123456789abcdef';
export const CHROMIUM = '/usr/bin/chromium';

/** The console of a fleet's master: its port is read from the master's log. */
export class ConsoleClient {
  port = 0;

  async attach(master: Proc): Promise<void> {
    const m = await master.waitOutput(/console on http:\/\/127\.0\.0\.1:(\d+)\//);
    this.port = Number(m[1]);
  }

  url(p: string): string {
    return `http://127.0.0.1:${this.port}${p}`;
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

const CONSOLE_CFG = { console: { interface: '127.0.0.1', port: 0, token: TOKEN } };

export class ConsoleFleet extends Fleet {
  readonly console = new ConsoleClient();

  constructor(o: { states: Record<string, string>; pillar?: Record<string, string>; master?: Record<string, unknown> }) {
    super({ ...o, master: { ...CONSOLE_CFG, ...o.master } });
  }

  override async startMaster() {
    const p = await super.startMaster();
    await this.console.attach(p);
    return p;
  }

  url(p: string): string {
    return this.console.url(p);
  }
  get(p: string, o: Parameters<ConsoleClient['get']>[1] = {}): Promise<Response> {
    return this.console.get(p, o);
  }
  text(p: string): Promise<string> {
    return this.console.text(p);
  }
}

/** A fleet serving a bare config repository (releases), with the console on. */
export class ConsoleReleaseFleet extends ReleaseFleet {
  readonly console = new ConsoleClient();

  constructor(o: { files: Record<string, string>; master?: Record<string, unknown> }) {
    super({ ...o, master: { ...CONSOLE_CFG, ...o.master } });
  }

  override async startMaster() {
    const p = await super.startMaster();
    await this.console.attach(p);
    return p;
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
