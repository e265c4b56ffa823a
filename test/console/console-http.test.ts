/**
 * The console over plain HTTP against a real master and real agents: the token gate (Bearer,
 * ?token= once then a session cookie, 401 otherwise), the security headers, read-only (no
 * method but GET), agent strings escaped, pillar values and show_changes: False diffs never
 * shown, pages that need no JavaScript.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildOnce, waitFor } from '../integration/fleet-harness.js';
import { ConsoleFleet, TOKEN } from './console-harness.js';

const states = {
  'top.sls': "base:\n  '*':\n    - motd\n",
  'motd.sls': [
    'motd:',
    '  file.managed:',
    '    - name: /etc/motd',
    '    - makedirs: True',
    "    - contents: {{ pillar['motd'] | tojson }}",
    'secret_conf:',
    '  file.managed:',
    '    - name: /etc/app/secret.conf',
    '    - makedirs: True',
    '    - show_changes: False',
    "    - contents: {{ ('password=' ~ pillar['db_password']) | tojson }}",
  ].join('\n') + '\n',
};
const pillar = (motd: string, pw: string) => ({
  'top.sls': "base:\n  '*':\n    - common\n",
  'common.sls': `motd: ${JSON.stringify(motd)}\ndb_password: ${JSON.stringify(pw)}\n`,
});

const HOSTILE = {
  roles: ['web'],
  evil_script: '<script>window.__pwned = 1</script>',
  evil_img: '<img src=x onerror="window.__pwned = 2">',
  nested: { '<b>key</b>': '"><svg onload=alert(1)>' },
};

describe('console over HTTP', () => {
  let fleet: ConsoleFleet;
  let jid = '';
  beforeAll(async () => {
    buildOnce();
    fleet = new ConsoleFleet({
      states,
      pillar: pillar('hello v1', 'pillar-secret-v1'),
      master: { schedule: { nightly: { function: 'state.apply', target: 'db1', cron: '0 3 * * *' }, hourly_run: { function: 'cmd.run', arg: 'uptime', target: 'web*', hours: 1 } } },
    });
    await fleet.startMaster();
    fleet.startAgent('web1', { grains: HOSTILE });
    fleet.startAgent('db1', { grains: { roles: ['db'] } });
    await fleet.acceptAll(['web1', 'db1']);
    const first = await fleet.json<{ jid: string; code: number }>(['apply', '*']);
    expect(first.code).toBe(0);
    fleet.writeTree('pillar', pillar('hello v2', 'pillar-secret-v2'));
    const second = await fleet.json<{ jid: string; code: number }>(['apply', '*', 'pillar={"extra": "override-value-xyz"}']);
    expect(second.code).toBe(0);
    jid = second.jid;
  });
  afterAll(async () => {
    await fleet?.stop();
  });

  it('refuses every path without the token, and with a wrong one', async () => {
    for (const p of ['/', '/agents', '/agents/web1', '/jobs', `/jobs/${jid}`, '/schedules', '/static/console.js', '/static/console.css', '/live/jobs', `/live/jobs/${jid}`, '/live/rollout', '/releases']) {
      const none = await fleet.get(p, { token: null });
      expect(none.status, p).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Bearer/);
      expect(await none.text()).not.toContain('web1');
      expect((await fleet.get(p, { token: 'wrong-token-wrong-token' })).status, p).toBe(401);
      expect((await fleet.get(`${p}${p.includes('?') ? '&' : '?'}token=wrong`, { token: null })).status, p).toBe(401);
    }
    // a made-up session cookie is no session
    expect((await fleet.get('/agents', { token: null, headers: { Cookie: `tsalt_console_${fleet.console.port}=forged` } })).status).toBe(401);
  });

  it('takes ?token= once: an HttpOnly session cookie and a redirect to the same URL without it', async () => {
    const r = await fleet.get(`/agents?tgt=web*&token=${TOKEN}&tgt_type=glob`, { token: null });
    expect(r.status).toBe(303);
    expect(r.headers.get('location')).toBe('/agents?tgt=web*&tgt_type=glob');
    const cookie = r.headers.get('set-cookie')!;
    expect(cookie).toMatch(new RegExp(`^tsalt_console_${fleet.console.port}=[A-Za-z0-9_-]{43};`));
    expect(cookie).toMatch(/HttpOnly/);
    expect(cookie).toMatch(/SameSite=Strict/);
    expect(cookie).not.toContain(TOKEN);
    const page = await fleet.get('/agents?tgt=web*', { token: null, headers: { Cookie: cookie.split(';')[0]! } });
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('href="/agents/web1"');
    // the redirect stays on this site whatever the path looks like
    const odd = await fleet.get(`/.//evil.example/x?token=${TOKEN}`, { token: null });
    expect(odd.status).toBe(303);
    expect(odd.headers.get('location')).toMatch(/^\/[^/]/);
  });

  it('sends a strict Content-Security-Policy and friends on every response', async () => {
    for (const r of [await fleet.get('/agents'), await fleet.get('/agents', { token: null }), await fleet.get('/nope')]) {
      const csp = r.headers.get('content-security-policy')!;
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).not.toContain('unsafe-eval');
      expect(csp).toContain("frame-ancestors 'none'");
      expect(r.headers.get('x-content-type-options')).toBe('nosniff');
      expect(r.headers.get('referrer-policy')).toBe('no-referrer');
    }
  });

  it('is read-only: every method but GET/HEAD is refused and starts nothing', async () => {
    const before = (await fleet.json<unknown[]>(['jobs'])).length;
    for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
      for (const p of ['/jobs', `/jobs/${jid}`, '/agents/web1', '/schedules']) {
        const r = await fleet.get(p, { method });
        expect(r.status, `${method} ${p}`).toBe(405);
        expect(r.headers.get('allow')).toBe('GET, HEAD');
      }
    }
    expect((await fleet.json<unknown[]>(['jobs'])).length).toBe(before);
    // HEAD answers (an event stream too, without holding the connection)
    for (const p of ['/agents', `/jobs/${jid}`, `/live/jobs/${jid}`]) expect((await fleet.get(p, { method: 'HEAD' })).status, p).toBe(200);
  });

  it('renders agent-supplied strings as text, never markup', async () => {
    for (const p of ['/agents', '/agents/web1']) {
      const body = await fleet.text(p);
      expect(body).not.toContain('<script>window');
      expect(body).not.toContain('<img src=x');
      expect(body).not.toContain('<svg');
      expect(body).not.toContain('<b>key</b>');
    }
    const grains = await fleet.text('/agents/web1');
    expect(grains).toContain('&lt;script&gt;window.__pwned = 1&lt;/script&gt;');
    expect(grains).toContain('&lt;img src=x onerror=&quot;window.__pwned = 2&quot;&gt;');
    // every <script> on the page is the console's own file
    expect([...grains.matchAll(/<script\b[^>]*>/g)].map((m) => m[0])).toEqual(['<script src="/static/console.js" defer>']);
  });

  it('lists agents and filters them with the CLI target syntax, without JavaScript', async () => {
    const all = await fleet.text('/agents');
    expect(all).toMatch(/data-agent="web1"[\s\S]*connected/);
    expect(all).toContain('data-agent="db1"');
    const web = await fleet.text(`/agents?tgt=${encodeURIComponent('G@roles:web and not db*')}&tgt_type=compound`);
    expect(web).toContain('data-agent="web1"');
    expect(web).not.toContain('data-agent="db1"');
    const grain = await fleet.text('/agents?tgt=roles:db&tgt_type=grain');
    expect(grain).toContain('data-agent="db1"');
    expect(grain).not.toContain('data-agent="web1"');
    const none = await fleet.text('/agents?tgt=zzz*');
    expect(none).toContain('matched no accepted agent');
    // pillar matching would let the console probe pillar values
    const pil = await fleet.text(`/agents?tgt=${encodeURIComponent('I@db_password:pillar-secret-v2')}&tgt_type=compound`);
    expect(pil).toContain('pillar matching');
    expect(pil).not.toContain('data-agent="web1"');
  });

  it('shows a job: file diffs as diffs, no diff for show_changes: False, no pillar value', async () => {
    const body = await fleet.text(`/jobs/${jid}`);
    expect(body).toContain('id="agent-web1"');
    expect(body).toMatch(/<span class="del">-hello v1<\/span>/);
    expect(body).toMatch(/<span class="add">\+hello v2<\/span>/);
    expect(body).toContain('diff not shown (show_changes: False)');
    for (const secret of ['pillar-secret-v1', 'pillar-secret-v2', 'override-value-xyz']) expect(body).not.toContain(secret);
    expect(body).toMatch(/Pillar given<\/th><td>keys extra/);
    // an operator's apply: its changes are intended (a schedule's would be corrective)
    expect(body).toContain('i-intentional');
  });

  it('lists jobs with who started them, their target, test flag and outcome counts', async () => {
    const t = await fleet.json<{ jid: string; code: number }>(['apply', 'db1', 'motd', '--test']);
    const body = await fleet.text('/jobs');
    const row = body.slice(body.indexOf(`data-jid="${t.jid}"`));
    expect(row).toMatch(/^[^]*?@cli[^]*?<code>db1<\/code>[^]*?<code>motd<\/code>[^]*?badge test[^]*?1 done/);
    expect(body).toContain(`data-jid="${jid}"`);
  });

  it('lists the schedules, cron or interval, with their next run', async () => {
    const body = await fleet.text('/schedules');
    const row = (name: string) => body.slice(body.indexOf(`data-schedule="${name}"`)).split('</tr>')[0]!;
    expect(row('nightly')).toMatch(/state\.apply[^]*<code>db1<\/code>[^]*cron <code>0 3 \* \* \*<\/code>[^]*never[^]*<time datetime="\d{4}-\d\d-\d\dT\d\d:\d0:00/);
    expect(row('hourly_run')).toMatch(/cmd\.run[^]*<code>uptime<\/code>[^]*1 h[^]*never[^]*<time datetime=/);
  });

  it('streams a job with server-sent events: a sig per agent, then done', async () => {
    const r = await fleet.get(`/live/jobs/${jid}`);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await waitFor('the stream to end', async () => r.text());
    expect(text).toMatch(/event: sig\ndata: \{"agent":"db1","sig":"done:2"\}/);
    expect(text).toMatch(/event: sig\ndata: \{"agent":"web1","sig":"done:2"\}/);
    expect(text).toMatch(/event: done/);
  });
});
