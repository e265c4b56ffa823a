/** The console's pieces that need no master: escaping templates, the token gate, its config, diff rendering. */
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { html, href } from '../../master/console/html.js';
import { ConsoleAuth } from '../../master/console/auth.js';
import { ConsoleConfigSchema } from '../../master/console/config.js';
import { MasterConfigSchema } from '../../master/config.js';
import { renderChanges } from '../../master/console/views/changes.js';
import { serveConsole } from '../../master/console/server.js';
import { ConsoleLive } from '../../master/console/live.js';
import { SqliteStore as Store } from '../../master/store-sqlite.js';
import { silentLogger } from '../../core/log.js';
import { freePort } from '../helpers/net.js';

const req = (headers: Record<string, string> = {}) => ({ headers: Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])) }) as unknown as http.IncomingMessage;
const u = (p: string) => new URL(p, 'http://console.invalid');

describe('console: html templates', () => {
  it('escapes every interpolated string, in lists too, and keeps nested templates', async () => {
    const evil = `<script>x</script>"'&`;
    expect(html`<p title="${evil}">${[evil, html`<b>${evil}</b>`]}</p>`.text).toBe(
      '<p title="&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;">&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;<b>&lt;script&gt;x&lt;/script&gt;&quot;&#39;&amp;</b></p>',
    );
    expect(html`${null}${undefined}${false}${0}`.text).toBe('0');
  });
  it('encodes path parts and query values of links', async () => {
    expect(href(['agents', 'a/b?c'], { tgt: 'G@x:y z', none: undefined })).toBe('/agents/a%2Fb%3Fc?tgt=G%40x%3Ay+z');
  });
});

describe('console: token gate', () => {
  const T = 'x'.repeat(24);
  it('accepts the Bearer token, refuses others and nothing', async () => {
    const a = new ConsoleAuth(T, 'c');
    expect(a.check(req({ Authorization: `Bearer ${T}` }), u('/agents')).kind).toBe('ok');
    expect(a.check(req({ Authorization: `Bearer ${T}x` }), u('/agents')).kind).toBe('refused');
    expect(a.check(req({ Authorization: `Basic ${T}` }), u('/agents')).kind).toBe('refused');
    expect(a.check(req(), u('/agents')).kind).toBe('refused');
  });
  it('turns ?token= into a session that ends after 12 idle hours', async () => {
    let now = 0;
    const a = new ConsoleAuth(T, 'c', () => now);
    const login = a.check(req(), u(`/jobs/1?token=${T}&x=1`));
    expect(login.kind).toBe('login');
    if (login.kind !== 'login') return;
    expect(login.location).toBe('/jobs/1?x=1');
    const cookie = login.cookie.split(';')[0]!;
    expect(a.check(req({ Cookie: `other=1; ${cookie}` }), u('/agents')).kind).toBe('ok');
    now += 11 * 3600_000;
    expect(a.check(req({ Cookie: cookie }), u('/agents')).kind).toBe('ok');
    now += 12 * 3600_000 + 1;
    expect(a.check(req({ Cookie: cookie }), u('/agents')).kind).toBe('refused');
    expect(a.check(req(), u('/agents?token=nope')).kind).toBe('refused');
  });
});

describe('console: config', () => {
  it('is off unless configured, on 127.0.0.1 by default, with a token that cannot be guessed', async () => {
    expect(MasterConfigSchema.parse({}).console).toBeUndefined();
    const c = MasterConfigSchema.parse({ console: { token: 'a'.repeat(16) } }).console!;
    expect(c.interface).toBe('127.0.0.1');
    expect(() => ConsoleConfigSchema.parse({ token: 'short' })).toThrow(/at least 16 characters/);
    expect(() => ConsoleConfigSchema.parse({})).toThrow();
    expect(() => ConsoleConfigSchema.parse({ token: 'a'.repeat(16), tokn: 1 })).toThrow(/tokn/);
  });
});

describe('console: changes', () => {
  it('shows a unified diff line by line, and only a note for show_changes: False', async () => {
    const d = renderChanges({ diff: '--- \n+++ \n@@ -1 +1 @@\n-old <i>\n+new\n', mode: '0644' }).text;
    expect(d).toContain('<span class="del">-old &lt;i&gt;</span>');
    expect(d).toContain('<span class="add">+new</span>');
    expect(d).toContain('<span class="hunk">@@ -1 +1 @@</span>');
    const hidden = renderChanges({ diff: '<show_changes=False>' }).text;
    expect(hidden).toContain('diff not shown (show_changes: False)');
    expect(hidden).not.toContain('show_changes=False&gt;');
  });
});

describe('console: start', () => {
  it('fails the start with a clear error when its port is taken', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tsalt-console-'));
    const store = new Store(path.join(dir, 'master.db'));
    const port = await freePort();
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.1', () => r()));
    try {
      const src = { store, connected: async () => new Set<string>(), head: async () => undefined, schedules: () => [], nodegroups: {} };
      await expect(serveConsole({ interface: '127.0.0.1', port, keepalive_s: 15, token: 'x'.repeat(16) }, src, new ConsoleLive(), silentLogger)).rejects.toThrow(
        `console 127.0.0.1:${port}: listen EADDRINUSE`,
      );
    } finally {
      blocker.close();
      await store.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('console: state tree changes between revisions', () => {
  it('lists added, removed and changed files with diffs', async () => {
    const { treeChanges } = await import('../../master/console/tree-diff.js');
    const e = (p: string, s: string, executable = false) => ({ path: p, data: Buffer.from(s), executable });
    const c = treeChanges([e('a.sls', 'x: 1\n'), e('gone.sls', 'g\n'), e('run.sh', 'echo\n')], [e('a.sls', 'x: 2\n'), e('new.sls', 'n\n'), e('run.sh', 'echo\n', true)]);
    expect(c.map((x) => [x.path, x.change])).toEqual([
      ['a.sls', 'changed'],
      ['gone.sls', 'removed'],
      ['new.sls', 'added'],
      ['run.sh', 'changed'],
    ]);
    expect(c[0]!.diff).toContain('-x: 1\n+x: 2');
    expect(c[1]!.diff).toContain('-g');
    expect(c[2]!.diff).toContain('+n');
    expect(c[3]).toMatchObject({ diff: '', executable: { from: false, to: true } });
  });
});
