/**
 * The console in a real browser (Debian's Chromium, headless, via playwright-core) against a
 * real master and three real agents on loopback: the token gate, the agents page and its
 * target filter, hostile grains shown as text, a job started from the CLI appearing on the
 * list and updating live (agents returning one by one), its file diff, the schedules. The
 * screenshots in docs/console/ are taken here.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, REPO, waitFor } from '../integration/fleet-harness.js';
import { ConsoleFleet, launchBrowser, TOKEN } from './console-harness.js';

const SHOTS = path.join(REPO, 'docs/console');

const pillar = (motd: string, pw: string) => ({
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': `motd: ${JSON.stringify(motd)}\ndb_password: ${JSON.stringify(pw)}\n`,
});

const HOSTILE = {
  roles: ['web'],
  evil_script: '<script>window.__pwned = 1</script>',
  evil_img: '<img src=x onerror="window.__pwned = 2">',
};

describe('console in Chromium', () => {
  let fleet: ConsoleFleet;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let ctx: BrowserContext;
  let gates: string;

  const open = async (p: string): Promise<Page> => {
    const page = await ctx.newPage();
    const r = await page.goto(fleet.url(p));
    expect(r?.status(), p).toBe(200);
    return page;
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });

  beforeAll(async () => {
    buildOnce();
    fs.mkdirSync(SHOTS, { recursive: true });
    fleet = new ConsoleFleet({
      states: {},
      pillar: pillar('hello v1', 'pillar-secret-v1'),
      master: { schedule: { db_drift: { function: 'state.apply', target: 'db1', sls: 'motd', seconds: 20 } } },
    });
    gates = path.join(fleet.dir, 'gates');
    fs.mkdirSync(gates);
    fleet.writeTree('states', {
      'top.sls': "base:\n  '*':\n    - motd\n",
      'motd.sls': [
        'motd:',
        '  file.managed:',
        '    - name: /etc/motd',
        '    - makedirs: True',
        "    - contents: {{ pillar['motd'] | tojson }}",
        'app_secret:',
        '  file.managed:',
        '    - name: /etc/app/secret.conf',
        '    - makedirs: True',
        '    - show_changes: False',
        "    - contents: {{ ('password=' ~ pillar['db_password']) | tojson }}",
      ].join('\n') + '\n',
      // each agent waits for its own gate file: the test decides who returns first
      'gate.sls': `wait_for_gate:\n  cmd.run:\n    - name: while [ ! -e ${gates}/{{ grains['id'] }} ]; do sleep 0.1; done\n`,
    });
    fleet.commit('motd, secret and gate states');
    await fleet.startMaster();
    fleet.startAgent('web1', { grains: HOSTILE });
    fleet.startAgent('web2', { grains: { roles: ['web'] } });
    fleet.startAgent('db1', { grains: { roles: ['db', 'mysql'] } });
    await fleet.acceptAll(['web1', 'web2', 'db1']);
    expect((await fleet.json<{ code: number }>(['apply', 'web*'])).code).toBe(0);
    fleet.writeTree('pillar', pillar('hello v2', 'pillar-secret-v2'));
    browser = await launchBrowser();
    ctx = browser.context;
    // every test starts logged in (the first logs out to see the refusal)
    const login = await ctx.newPage();
    expect((await login.goto(fleet.url(`/agents?token=${TOKEN}`)))?.status()).toBe(200);
    await login.close();
  });
  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  it('refuses the browser without the token; ?token= once logs in and leaves the address bar', async () => {
    await ctx.clearCookies();
    const page = await ctx.newPage();
    const refused = await page.goto(fleet.url('/agents'));
    expect(refused?.status()).toBe(401);
    expect(await page.textContent('h1')).toContain('401');
    expect(await page.content()).not.toContain('web1');
    const ok = await page.goto(fleet.url(`/jobs?token=${TOKEN}`));
    expect(ok?.status()).toBe(200);
    expect(page.url()).toBe(fleet.url('/jobs'));
    // the session cookie is HttpOnly: no script on the page can read it
    expect(await page.evaluate(() => document.cookie)).toBe('');
    await page.close();
  });

  it('lists the agents, and filters them with a compound target', async () => {
    const page = await open('/agents');
    for (const id of ['web1', 'web2', 'db1']) expect(await page.textContent(`tr[data-agent="${id}"]`)).toContain('connected');
    await shot(page, 'agents');
    await page.fill('input[name=tgt]', 'G@roles:web and not web2');
    await page.selectOption('select[name=tgt_type]', 'compound');
    await Promise.all([page.waitForURL(/tgt=/), page.click('button[type=submit]')]);
    expect(await page.$$eval('tr[data-agent]', (rows) => rows.map((r) => r.getAttribute('data-agent')))).toEqual(['web1']);
    await page.close();
  });

  it("shows an agent's hostile grains as text: nothing runs, no element is injected", async () => {
    const page = await ctx.newPage();
    const dialogs: string[] = [];
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    expect((await page.goto(fleet.url('/agents/web1')))?.status()).toBe(200);
    const text = await page.textContent('#grains');
    expect(text).toContain('<script>window.__pwned = 1</script>');
    expect(text).toContain('<img src=x onerror="window.__pwned = 2">');
    expect(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned)).toBeUndefined();
    expect(await page.$$eval('#grains script, #grains img, #grains svg', (els) => els.length)).toBe(0);
    expect(await page.$$eval('script', (els) => els.map((e) => e.getAttribute('src')))).toEqual(['/static/console.js']);
    expect(dialogs).toEqual([]);
    await shot(page, 'agent');
    await page.close();
  });

  it('shows a job started from the CLI as it runs: on the list, then agents returning one by one, then its diffs', async () => {
    const list = await open('/jobs');
    await list.evaluate(() => ((window as unknown as { __stay: number }).__stay = 1));
    const before = await list.$$eval('tr[data-jid]', (r) => r.length);
    const cli = fleet.cli(['apply', 'web*', 'gate,motd']);
    // the new row arrives without a reload
    await list.waitForFunction((n) => document.querySelectorAll('tr[data-jid]').length > n, before);
    const jid = (await list.getAttribute('tr[data-jid]', 'data-jid'))!;
    expect(await list.textContent(`tr[data-jid="${jid}"]`)).toContain('running');

    const job = await open(`/jobs/${jid}`);
    await job.evaluate(() => ((window as unknown as { __stay: number }).__stay = 1));
    expect(await job.textContent('#job-summary')).toContain('running');
    fs.writeFileSync(path.join(gates, 'web1'), '');
    await job.waitForSelector('#agent-web1 h2 .s-done');
    // web1 is back, web2 still waits at its gate
    expect(await job.textContent('#agent-web2 h2')).not.toContain('done');
    expect(await job.textContent('#agent-web1 pre.diff')).toContain('+hello v2');
    await shot(job, 'job-running');
    fs.writeFileSync(path.join(gates, 'web2'), '');
    await job.waitForSelector('#agent-web2 h2 .s-done');
    await job.waitForSelector('#job-summary[data-running="no"]');
    expect((await cli).code).toBe(0);
    // all of it happened on the page first loaded
    expect(await job.evaluate(() => (window as unknown as { __stay?: number }).__stay)).toBe(1);
    await list.waitForFunction((j) => !document.querySelector(`tr[data-jid="${j}"]`)?.textContent?.includes('running'), jid);
    expect(await list.evaluate(() => (window as unknown as { __stay?: number }).__stay)).toBe(1);
    expect(await list.textContent(`tr[data-jid="${jid}"]`)).toContain('2 done');

    // a fresh load of the shared link: the file diff as a diff, the secret nowhere
    const again = await open(`/jobs/${jid}`);
    expect(await again.$$eval('#agent-web2 pre.diff span.del', (s) => s.map((x) => x.textContent))).toContain('-hello v1');
    expect(await again.$$eval('#agent-web2 pre.diff span.add', (s) => s.map((x) => x.textContent))).toContain('+hello v2');
    expect(await again.textContent('#agent-web2')).toContain('diff not shown (show_changes: False)');
    expect(await again.content()).not.toMatch(/pillar-secret/);
    await shot(again, 'job');
    await shot(list, 'jobs');
    for (const p of [list, job, again]) await p.close();
  });

  it('works without JavaScript: login, the filter form, the job list, a job with its diff', async () => {
    const nojs = await launchBrowser({ javaScriptEnabled: false });
    try {
      const page = await nojs.context.newPage();
      expect((await page.goto(fleet.url(`/agents?token=${TOKEN}`)))?.status()).toBe(200);
      await page.fill('input[name=tgt]', 'roles:db');
      await page.selectOption('select[name=tgt_type]', 'grain');
      await Promise.all([page.waitForURL(/tgt_type=grain/), page.click('button[type=submit]')]);
      expect(await page.$$eval('tr[data-agent]', (rows) => rows.map((r) => r.getAttribute('data-agent')))).toEqual(['db1']);
      await page.goto(fleet.url('/jobs'));
      // the live test's job: the one with diffs
      const jid = (await page.locator('tr[data-jid]', { hasText: 'gate, motd' }).first().getAttribute('data-jid'))!;
      await Promise.all([page.waitForURL(`**/jobs/${jid}`), page.click(`tr[data-jid="${jid}"] a`)]);
      expect(await page.$$eval('pre.diff', (d) => d.length)).toBeGreaterThan(0);
    } finally {
      await nojs.close();
    }
  });

  it('shows each schedule with its last run, its result and its next run', async () => {
    await waitFor('the schedule to run once', async () => ((await fleet.text('/schedules')).match(/data-schedule="db_drift"[^]*?href="\/jobs\/\d{20}"[^]*?badge s-done/) ? true : undefined), 60_000);
    const page = await open('/schedules');
    const row = (await page.textContent('tr[data-schedule="db_drift"]'))!;
    expect(row).toContain('state.apply');
    expect(row).toContain('20 s');
    expect(row).toMatch(/\d{20}/);
    expect(row).toContain('1 done');
    expect(await page.$$eval('tr[data-schedule="db_drift"] time', (t) => t.length)).toBe(2);
    await shot(page, 'schedules');
    await page.close();
  });
});
