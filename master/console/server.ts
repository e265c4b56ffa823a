/**
 * The console's HTTP server: GET (and HEAD) only, every request behind the token (auth.ts),
 * every response with a strict Content-Security-Policy (scripts and styles from this origin
 * only, no inline code, no frames, no other hosts). Pages are rendered on the server, so the
 * lists work without JavaScript; the small client script only makes running jobs live, fed
 * by server-sent events.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { Logger } from '../../core/log.js';
import { BoundedWriter } from '../bounded-writer.js';
import { ConsoleAuth, sessionCookie } from './auth.js';
import type { ConsoleConfig } from './config.js';
import { html, type Html } from './html.js';
import type { ConsoleLive, JobChange } from './live.js';
import { ConsoleQueries } from './queries.js';
import type { ConsoleSource } from './source.js';
import { CONSOLE_CSS } from './style.js';
import { page, type Section } from './views/layout.js';
import { agentPage, agentsPage } from './views/agents.js';
import { jobRows, jobsPage } from './views/jobs.js';
import { agentFragment, jobPage, jobSummary } from './views/job.js';
import { schedulesPage } from './views/schedules.js';
import { releasesPage, rollbackPage, rolloutSection, rolloutSignature } from './views/releases.js';

export const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'self'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CSP,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  // a ?token= URL must never travel further in a Referer
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
  'Cache-Control': 'no-store',
};

// scripts/bundle.mjs builds master/console/client/main.ts with esbuild and defines this as its text
declare const __TSALT_CONSOLE_JS__: string | undefined;

/** The client script: in the bundle; from dist/bundle/console.js when running unbundled. */
function clientScript(): string | undefined {
  if (typeof __TSALT_CONSOLE_JS__ === 'string') return __TSALT_CONSOLE_JS__;
  for (const rel of ['../../bundle/console.js', '../../dist/bundle/console.js']) {
    try {
      return fs.readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface ConsoleServer {
  port: number;
  close(): Promise<void>;
}

type Reply = { status: number; type: string; body: string; headers?: Record<string, string> };

const HTML_TYPE = 'text/html; charset=utf-8';

class NotFound extends Error {}

/** how often a live job page is told what changed, at most */
const PUSH_EVERY_MS = 200;

export function serveConsole(cfg: ConsoleConfig, src: ConsoleSource, live: ConsoleLive, log: Logger): Promise<ConsoleServer> {
  // the cookie is named after the port, known once listening (port 0 picks one)
  let auth: ConsoleAuth | undefined;
  const qs = new ConsoleQueries(src.store);
  const js = clientScript();
  if (js === undefined) log.warn('console: client script not built (npm run build); pages work, running jobs are not live');
  const sections: ReadonlySet<Section> = new Set<Section>(['agents', 'jobs', 'releases', 'schedules']);

  const full = (title: string, section: Section, body: Html, refresh = false): Reply => ({
    status: 200,
    type: HTML_TYPE,
    body: page({ title, section, body, sections, refresh }).text,
  });
  const fragment = (h: Html | undefined): Reply => {
    if (!h) throw new NotFound();
    return { status: 200, type: HTML_TYPE, body: h.text };
  };

  async function route(url: URL, parts: string[]): Promise<Reply> {
    const [top, id, ...rest] = parts;
    if (rest.length) throw new NotFound();
    const p = url.searchParams;
    switch (top) {
      case undefined:
        return { status: 302, type: HTML_TYPE, body: '', headers: { Location: '/agents' } };
      case 'agents':
        if (id === undefined) return full('Agents', 'agents', await agentsPage(src, qs, p.get('tgt') ?? '', p.get('tgt_type') ?? 'glob'));
        {
          const body = await agentPage(src, qs, id);
          if (!body) throw new NotFound();
          return full(`Agent ${id}`, 'agents', body);
        }
      case 'jobs': {
        if (id === undefined) {
          const before = p.get('before') ?? undefined;
          if (p.get('part') === 'rows') return fragment(await jobRows(qs, before));
          return full('Jobs', 'jobs', await jobsPage(qs, before), before === undefined);
        }
        const part = p.get('part');
        if (part === 'summary') {
          const j = await qs.jobSummary(id);
          return fragment(j && jobSummary(j));
        }
        if (part === 'agent') return fragment(await agentFragment(qs, id, p.get('agent') ?? ''));
        const body = await jobPage(qs, id);
        if (!body) throw new NotFound();
        return full(`Job ${id}`, 'jobs', body, (await qs.jobSummary(id))?.running === true);
      }
      case 'releases': {
        if (id !== undefined) {
          const body = await rollbackPage(src, qs, id);
          if (!body) throw new NotFound();
          return full(`Rollback to ${id.slice(0, 12)}`, 'releases', body);
        }
        if (p.get('part') === 'rollout') {
          if (!src.releases) throw new NotFound();
          return fragment(await rolloutSection(src, qs, src.releases));
        }
        return full('Releases', 'releases', await releasesPage(src, qs), src.releases?.running() !== undefined);
      }
      case 'schedules':
        if (id !== undefined) throw new NotFound();
        return full('Schedules', 'schedules', await schedulesPage(src, qs));
      case 'static':
        if (id === 'console.css') return { status: 200, type: 'text/css; charset=utf-8', body: CONSOLE_CSS };
        if (id === 'console.js' && js !== undefined) return { status: 200, type: 'text/javascript; charset=utf-8', body: js };
        throw new NotFound();
      default:
        throw new NotFound();
    }
  }

  const streams = new Set<BoundedWriter>();

  /** Server-sent events: `sig` per agent whose section changed, `done` when the job completed. */
  async function liveJob(res: http.ServerResponse, jid: string): Promise<void> {
    if (!(await qs.jobSummary(jid))) {
      reply(res, { status: 404, type: 'text/plain; charset=utf-8', body: 'no such job\n' });
      return;
    }
    const w = openStream(res);
    const sent = new Map<string, string>();
    // one look at a time, in order: a look reads the store in several steps
    let looking: Promise<void> = Promise.resolve();
    const look = async () => {
      if (res.writableEnded) return;
      const sigs = await qs.signatures(jid);
      const running = (await qs.jobSummary(jid))?.running;
      if (res.writableEnded || w.dropped) return;
      for (const [agent, sig] of sigs) {
        if (sent.get(agent) === sig) continue;
        sent.set(agent, sig);
        w.write(`event: sig\ndata: ${JSON.stringify({ agent, sig })}\n\n`);
      }
      if (!running) {
        w.write('event: done\ndata: {}\n\n');
        w.end();
      }
    };
    // a reader that is behind gets no new look until it caught up: the look then sends what
    // changed meanwhile, so nothing piles up for a slow page and nothing is lost
    let waiting = false;
    const push = () => {
      if (w.behind) {
        if (!waiting) {
          waiting = true;
          w.whenDrained(() => {
            waiting = false;
            push();
          });
        }
        return;
      }
      looking = looking.then(look).catch((e: Error) => {
        log.warn(`console: live job ${jid}: ${e.message}`);
        w.end();
      });
    };
    // a big job streams thousands of results: one look per PUSH_EVERY_MS at most, not one per result
    let pending: NodeJS.Timeout | undefined;
    const off = live.subscribe((c: JobChange) => {
      if (c.jid !== jid || res.writableEnded || pending) return;
      pending = setTimeout(() => {
        pending = undefined;
        if (!res.writableEnded) push();
      }, PUSH_EVERY_MS);
    });
    res.on('close', () => {
      off();
      clearTimeout(pending);
    });
    // subscribed before the first look: nothing can happen in between unseen
    push();
  }

  /** Server-sent events for the job list: `jobs` whenever a job starts, an agent ends, a job completes. */
  function liveJobs(res: http.ServerResponse): void {
    const tell = told(openStream(res));
    const off = live.subscribe((c: JobChange) => {
      if (c.kind !== 'state') tell(`event: jobs\ndata: ${JSON.stringify({ jid: c.jid })}\n\n`);
    });
    res.on('close', off);
  }

  /**
   * Server-sent events for the releases page: `jobs` when a job moves or the rollout's record
   * changes. A rollout also moves without jobs (verify checks run between batches, its end is
   * written after the last one), so its row, its batches and their checks in the store are looked
   * at twice a second.
   */
  function liveRollout(res: http.ServerResponse, rel: NonNullable<ConsoleSource['releases']>): void {
    const tell = told(openStream(res));
    // its batches and verify checks too: a check's try or result changes the page with no job moving
    const sig = () => rolloutSignature(src, rel);
    let last: string | undefined;
    void sig().then((s) => (last ??= s), () => {});
    const off = live.subscribe((c: JobChange) => {
      if (c.kind !== 'state') tell('event: jobs\ndata: {}\n\n');
    });
    let looking = false;
    const poll = setInterval(() => {
      if (looking) return;
      looking = true;
      sig()
        .then((now) => {
          if (last !== undefined && now !== last) tell('event: jobs\ndata: {}\n\n');
          last = now;
        })
        .catch((e: Error) => log.warn(`console: live rollout: ${e.message}`))
        .finally(() => (looking = false));
    }, 500);
    poll.unref();
    res.on('close', () => {
      off();
      clearInterval(poll);
    });
  }

  /**
   * "Something moved, look again": while the reader is behind, the latest such event waits here
   * (one, not one per job change) and is sent when it caught up; the page reloads what it shows
   * from the server anyway.
   */
  function told(w: BoundedWriter): (event: string) => void {
    let latest: string | undefined;
    return (event) => {
      if (w.dropped) return;
      if (!w.behind) {
        w.write(event);
        return;
      }
      if (latest === undefined)
        w.whenDrained(() => {
          const e = latest!;
          latest = undefined;
          w.write(e);
        });
      latest = event;
    };
  }

  /**
   * An event stream to a browser: what waits for it is bounded (BoundedWriter), and one that is
   * still behind a keepalive interval after it was seen behind, with no catching up between, has
   * stopped reading and is dropped.
   */
  function openStream(res: http.ServerResponse): BoundedWriter {
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', Connection: 'keep-alive' });
    const who = `console ${res.req.method ?? 'GET'} ${res.req.url?.replace(/([?&]token=)[^&]*/, '$1…') ?? ''} from ${res.req.socket.remoteAddress ?? '?'}:${res.req.socket.remotePort ?? '?'}`;
    const w = new BoundedWriter(res, { name: () => who, log });
    w.write('retry: 2000\n\n');
    streams.add(w);
    let seen: number | undefined;
    const keepalive = setInterval(() => {
      if (!w.behind) {
        seen = undefined;
        w.write(': keepalive\n\n');
        return;
      }
      if (seen === w.catchUps) return w.drop(`stopped reading (behind for ${cfg.keepalive_s} s)`);
      seen = w.catchUps;
      w.whenDrained(() => {});
    }, cfg.keepalive_s * 1000);
    keepalive.unref();
    res.on('close', () => {
      clearInterval(keepalive);
      streams.delete(w);
    });
    return w;
  }

  function reply(res: http.ServerResponse, r: Reply): void {
    res.writeHead(r.status, { ...SECURITY_HEADERS, 'Content-Type': r.type, 'Content-Length': Buffer.byteLength(r.body), ...r.headers });
    res.end(r.body);
  }

  const refusedPage = (why: string) =>
    html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>401 · tsalt console</title></head><body><h1>401: a token is needed</h1><p>${why}. Open the console with <code>?token=&lt;console.token from master.yaml&gt;</code> on the URL once, or send <code>Authorization: Bearer &lt;token&gt;</code>.</p></body></html>`.text;

  const server = http.createServer((req, res) => {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://console.invalid');
    } catch {
      reply(res, { status: 400, type: 'text/plain; charset=utf-8', body: 'bad request\n' });
      return;
    }
    if (!auth) {
      reply(res, { status: 503, type: 'text/plain; charset=utf-8', body: 'starting\n' });
      return;
    }
    const a = auth.check(req, url);
    if (a.kind === 'refused') {
      reply(res, { status: 401, type: HTML_TYPE, body: refusedPage(a.why), headers: { 'WWW-Authenticate': 'Bearer realm="tsalt console"' } });
      return;
    }
    if (a.kind === 'login') {
      reply(res, { status: 303, type: HTML_TYPE, body: '', headers: { 'Set-Cookie': a.cookie, Location: a.location } });
      return;
    }
    // read-only by construction: no handler takes a body, no method but GET/HEAD gets one
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      reply(res, { status: 405, type: 'text/plain; charset=utf-8', body: 'the console is read-only: GET only\n', headers: { Allow: 'GET, HEAD' } });
      return;
    }
    let parts: string[];
    try {
      parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    } catch {
      reply(res, { status: 400, type: 'text/plain; charset=utf-8', body: 'bad path\n' });
      return;
    }
    if (parts[0] === 'live' && parts[1] === 'rollout' && parts.length === 2 && src.releases && req.method === 'GET') {
      liveRollout(res, src.releases);
      return;
    }
    if (parts[0] === 'live' && parts[1] === 'jobs' && parts.length <= 3) {
      if (req.method === 'HEAD') {
        res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8' });
        res.end();
        return;
      }
      if (parts[2] === undefined) liveJobs(res);
      else void liveJob(res, parts[2]).catch((e: Error) => {
        log.warn(`console: live job ${parts[2]}: ${e.message}`);
        if (!res.headersSent) reply(res, { status: 500, type: 'text/plain; charset=utf-8', body: 'internal error; see the master log\n' });
        else res.end();
      });
      return;
    }
    route(url, parts).then(
      (r) => reply(res, r),
      (e: Error) => {
        if (e instanceof NotFound) {
          reply(res, { status: 404, type: HTML_TYPE, body: page({ title: 'Not found', section: 'agents', sections, body: html`<h1>Not found</h1><p>Nothing at <code>${url.pathname}</code>.</p>` }).text });
          return;
        }
        log.warn(`console: ${req.method} ${url.pathname}: ${e.stack ?? e.message}`);
        reply(res, { status: 500, type: 'text/plain; charset=utf-8', body: 'internal error; see the master log\n' });
      },
    );
  });
  server.on('clientError', (_e, sock) => sock.destroy());

  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(new Error(`console ${cfg.interface}:${cfg.port}: ${e.message}`)));
    server.listen(cfg.port, cfg.interface, () => {
      server.removeAllListeners('error');
      server.on('error', (e) => log.error(`console: ${e.message}`));
      server.unref();
      const addr = server.address();
      const port = typeof addr === 'object' && addr ? addr.port : cfg.port;
      auth = new ConsoleAuth(cfg.token, sessionCookie(port));
      log.info(`console on http://${cfg.interface.includes(':') ? `[${cfg.interface}]` : cfg.interface}:${port}/ (token in master.yaml console.token)`);
      resolve({
        port,
        close: () =>
          new Promise<void>((r) => {
            for (const w of streams) w.end();
            server.close(() => r());
            server.closeAllConnections();
          }),
      });
    });
  });
}
