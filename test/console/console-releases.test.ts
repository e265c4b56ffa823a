/**
 * The releases page in Chromium against a master serving a bare config repository that a test
 * pushes to with real `git push`, and two real agents: the revisions timeline, a rollout shown
 * batch by batch as it runs (its verify check holding batch 1 until the test lets it pass),
 * and what a rollback would change. Screenshots go to docs/console/.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, REPO, waitFor } from '../integration/fleet-harness.js';
import { ConsoleReleaseFleet, launchBrowser, TOKEN } from './console-harness.js';

const SHOTS = path.join(REPO, 'docs/console');

const files = (tag: string) => ({
  'states/top.sls': "base:\n  '*':\n    - app\n",
  'states/app.sls': `/etc/app.conf:\n  file.managed:\n    - makedirs: True\n    - contents: "release=${tag} port={{ pillar['app']['port'] }}"\n`,
  'pillar/top.sls': "base:\n  '*':\n    - app\n",
  'pillar/app.sls': 'app:\n  port: 8080\n',
});

interface Status {
  desired: string;
  last_rollout: { revision: string; status: string } | null;
  agents: { id: string; sync: string; revision_applied: string | null }[];
}

describe('console: releases in Chromium', () => {
  let fleet: ConsoleReleaseFleet;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let ctx: BrowserContext;
  let gate: string;
  let open_: string;
  let fail: string;
  let v1 = '';
  let v2 = '';

  const open = async (p: string): Promise<Page> => {
    const page = await ctx.newPage();
    expect((await page.goto(fleet.console.url(p)))?.status(), p).toBe(200);
    return page;
  };
  const shot = (page: Page, name: string) => page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
  const settled = (rev: string) =>
    waitFor(`rollout of ${rev.slice(0, 12)} to end`, async () => {
      const s = await fleet.json<Status>(['status']);
      return s.desired === rev && s.last_rollout?.revision === rev && s.last_rollout.status !== 'running' && s.agents.every((a) => a.sync === 'in_sync') ? s : undefined;
    }, 60_000);

  beforeAll(async () => {
    buildOnce();
    fs.mkdirSync(SHOTS, { recursive: true });
    fleet = new ConsoleReleaseFleet({ files: files('v1') });
    gate = path.join(fleet.dir, 'verify-gate');
    open_ = path.join(fleet.dir, 'verify-open');
    fail = path.join(fleet.dir, 'verify-fail');
    fs.writeFileSync(open_, '');
    // the verify check passes while `open_` exists; without it, each check waits for a `gate`
    // file and takes it: the test lets the batches pass one at a time
    fleet.masterCfg.rollout = {
      target: 'r*',
      batch: 1,
      verify: [
        {
          name: 'app answers',
          // `fail` makes it fail at once, with a message the page must show
          command: `if [ -e ${fail} ]; then echo 'app: 502 from upstream' >&2; exit 1; fi; while [ ! -e ${gate} ] && [ ! -e ${open_} ]; do sleep 0.1; done; rm -f ${gate}`,
          timeout_s: 120,
          retries: 1,
          delay_s: 0.1,
        },
      ],
    };
    v1 = fleet.git(fleet.work, 'rev-parse', 'HEAD');
    await fleet.startMaster();
    fleet.startAgents([fleet.agentConfig('r1'), fleet.agentConfig('r2')]);
    await fleet.acceptAll(['r1', 'r2']);
    await waitFor('agents on v1', async () => ((await fleet.json<Status>(['status'])).agents.every((a) => a.revision_applied === v1) ? true : undefined), 60_000);
    v2 = fleet.push('app: release v2', files('v2'));
    await settled(v2);
    browser = await launchBrowser();
    ctx = browser.context;
    const login = await ctx.newPage();
    expect((await login.goto(fleet.console.url(`/releases?token=${TOKEN}`)))?.status()).toBe(200);
    await login.close();
  });
  afterAll(async () => {
    await browser?.close();
    await fleet?.stop();
  });

  it('shows the pushed revisions and the rollout of the last one, batch by batch with its verify', async () => {
    const page = await open('/releases');
    const row = (sha: string) => page.textContent(`tr[data-revision="${sha}"]`);
    expect(await row(v2)).toMatch(/desired[^]*app: release v2[^]*rolled out/);
    expect(await row(v1)).toContain('initial');
    expect(await page.textContent('#rollout h2')).toMatch(/Last rollout: [0-9a-f]{12} succeeded/);
    const batches = await page.$$eval('#batches tbody tr', (rows) => rows.map((r) => r.textContent ?? ''));
    expect(batches).toHaveLength(2);
    for (const b of batches) expect(b).toMatch(/done[^]*r\*[^]*1 done[^]*passed app answers/);
    // the outcome is the stored one: one check per batch, passed on its first try, with its time
    const checks = await page.$$eval('#batches tbody tr td.verify .check', (c) => c.map((x) => [x.getAttribute('data-outcome'), x.querySelector('time')?.getAttribute('datetime') ?? '']));
    expect(checks.map(([o]) => o)).toEqual(['passed', 'passed']);
    for (const [, t] of checks) expect(t).toMatch(/^\d{4}-\d\d-\d\dT/);
    await page.close();
  });

  it('follows a rollout live: each batch done, then held by its verify check; then its end', async () => {
    const page = await open('/releases');
    await page.evaluate(() => ((window as unknown as { __stay: number }).__stay = 1));
    fs.rmSync(open_);
    const v3 = fleet.push('app: release v3', files('v3'));
    const checking = (n: number) =>
      page.waitForFunction(
        (k) => {
          // every planned batch is listed from the start; batch k's stored check is running
          return document.querySelector(`#batches tbody tr[data-batch="${k}"] .check[data-outcome="running"]`) !== null;
        },
        n,
        { timeout: 60_000 },
      );
    await checking(1);
    expect(await page.textContent('#rollout h2')).toMatch(new RegExp(`Rollout running: ${v3.slice(0, 12)}`));
    await shot(page, 'releases-rollout');
    fs.writeFileSync(gate, '');
    expect(await page.textContent('#batches tbody tr[data-batch="2"]')).toMatch(/pending[^]*not run/);
    await checking(2);
    expect(await page.textContent('#batches tbody tr:first-child')).toContain('passed');
    // the last verify passing ends the rollout with no job moving: the page still learns it
    fs.writeFileSync(gate, '');
    await page.waitForFunction(() => document.querySelector('#rollout h2')?.textContent?.includes('succeeded'), undefined, { timeout: 60_000 });
    expect(await page.$$eval('#batches tbody tr', (r) => r.map((x) => x.textContent ?? ''))).toEqual([expect.stringContaining('passed'), expect.stringContaining('passed')]);
    expect(await page.evaluate(() => (window as unknown as { __stay?: number }).__stay)).toBe(1);
    await settled(v3);
    fs.writeFileSync(open_, '');
    await page.reload();
    await shot(page, 'releases');
    await page.close();
  });

  it('shows what a rollback would change: the state tree diff, the agents that move, a test run of it', async () => {
    const t = await fleet.json<{ code: number; jid: string }>(['apply', 'r*', '--revision', v1, '--test']);
    expect(t.code).toBe(0);
    const page = await open('/releases');
    await Promise.all([page.waitForURL(`**/releases/${v1}`), page.click(`tr[data-revision="${v1}"] a`)]);
    expect(await page.textContent('h1')).toContain(v1.slice(0, 12));
    const diff = await page.$$eval('#tree-changes pre.diff span', (s) => s.map((x) => x.textContent));
    expect(diff).toContain('-    - contents: "release=v3 port={{ pillar[\'app\'][\'port\'] }}"');
    expect(diff).toContain('+    - contents: "release=v1 port={{ pillar[\'app\'][\'port\'] }}"');
    expect(await page.$$eval('#moving tbody tr', (r) => r.length)).toBe(2);
    expect(await page.textContent('#test-runs')).toContain(t.jid);
    // pillar is never compared nor shown
    expect(await page.content()).not.toContain('8080');
    await shot(page, 'rollback');
    await page.close();
  });

  it('shows a verify failure as stored: the check failed after its tries, with its message; the next batch not run', async () => {
    const page = await open('/releases');
    fs.writeFileSync(fail, '');
    const v4 = fleet.push('app: release v4', files('v4'));
    await waitFor(`rollout of ${v4.slice(0, 12)} halted`, async () => {
      const s = await fleet.json<Status>(['status']);
      return s.last_rollout?.revision === v4 && s.last_rollout.status === 'halted' ? s : undefined;
    }, 60_000);
    fs.rmSync(fail);
    await page.waitForFunction(() => document.querySelector('#rollout h2')?.textContent?.includes('halted'), undefined, { timeout: 60_000 });
    const first = page.locator('#batches tbody tr[data-batch="1"]');
    expect(await first.getAttribute('data-status')).toBe('failed');
    expect(await first.locator('.check').getAttribute('data-outcome')).toBe('failed');
    expect(await first.locator('.check').textContent()).toMatch(/failed app answers \(2 tries\) exit 1: app: 502 from upstream/);
    expect(await page.textContent('#batches tbody tr[data-batch="2"]')).toMatch(/not run[^]*not run/);
    await page.close();
  });
});
