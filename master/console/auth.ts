/**
 * Who may look: the holder of `console.token`. As Jupyter does it: `Authorization: Bearer
 * <token>` on every request (scripts), or `?token=<token>` once on any URL (a browser), which
 * sets an HttpOnly session cookie and redirects to the same URL without the token, so the
 * token leaves the address bar and the history. Sessions live in this master's memory only.
 */
import crypto from 'node:crypto';
import type http from 'node:http';

/** the cookie's name, with the console's port: cookies ignore ports, so two masters on one host keep apart */
export const sessionCookie = (port: number) => `tsalt_console_${port}`;
/** a session is forgotten this long after its last use */
const SESSION_IDLE_MS = 12 * 3600_000;
const MAX_SESSIONS = 1000;

export type AuthOutcome =
  | { kind: 'ok' }
  /** the token came in the query: set this cookie and send the browser to `location` */
  | { kind: 'login'; cookie: string; location: string }
  | { kind: 'refused'; why: string };

const digest = (s: string) => crypto.createHash('sha256').update(s).digest();

export class ConsoleAuth {
  private readonly tokenDigest: Buffer;
  /** session id -> last use (ms) */
  private readonly sessions = new Map<string, number>();

  constructor(
    token: string,
    private readonly cookie: string,
    private readonly now: () => number = Date.now,
  ) {
    this.tokenDigest = digest(token);
  }

  /** Constant time whatever the length of the guess (both sides hashed first). */
  private tokenOk(given: string): boolean {
    return crypto.timingSafeEqual(digest(given), this.tokenDigest);
  }

  private sessionOk(id: string): boolean {
    const last = this.sessions.get(id);
    if (last === undefined) return false;
    if (this.now() - last > SESSION_IDLE_MS) {
      this.sessions.delete(id);
      return false;
    }
    // re-inserted: the map's order stays least recently used first
    this.sessions.delete(id);
    this.sessions.set(id, this.now());
    return true;
  }

  private newSession(): string {
    const id = crypto.randomBytes(32).toString('base64url');
    this.sessions.set(id, this.now());
    while (this.sessions.size > MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    return id;
  }

  check(req: http.IncomingMessage, url: URL): AuthOutcome {
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null) {
      if (!this.tokenOk(queryToken)) return { kind: 'refused', why: 'wrong token' };
      const clean = new URL(url.href);
      clean.searchParams.delete('token');
      const cookie = `${this.cookie}=${this.newSession()}; HttpOnly; SameSite=Strict; Path=/`;
      // one leading slash: `//host` would send the browser to another site
      return { kind: 'login', cookie, location: (clean.pathname + clean.search).replace(/^\/+/, '/') };
    }
    const auth = req.headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
      return m && this.tokenOk(m[1]!) ? { kind: 'ok' } : { kind: 'refused', why: 'wrong token' };
    }
    const sid = cookieValue(req.headers.cookie, this.cookie);
    if (sid !== undefined) return this.sessionOk(sid) ? { kind: 'ok' } : { kind: 'refused', why: 'session expired or unknown' };
    return { kind: 'refused', why: 'no token' };
  }
}

export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}
