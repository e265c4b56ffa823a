/**
 * Job returns waiting for the master's acknowledgement, one file per jid. Written before the
 * first send, removed on `return_ack`: an agent that lost the master, or was restarted, sends
 * them again on its next connection, so no result is lost.
 */
import fs from 'node:fs';
import path from 'node:path';
import { JobReturnSchema, type JobReturn } from '../../protocol/messages.js';
import type { Logger } from '../../core/log.js';

export class Spool {
  private readonly dir: string;
  /** the jids spooled by this process or found at its start: has() without a readdir per job */
  private readonly known = new Set<string>();
  constructor(cacheDir: string, private readonly log: Logger) {
    this.dir = path.join(cacheDir, 'spool');
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const jid of this.jids()) this.known.add(jid);
  }

  /** `json`: the message's JSON when the caller has it already */
  put(msg: JobReturn, json = JSON.stringify(msg)): void {
    const file = path.join(this.dir, `${msg.jid}.json`);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, json, { mode: 0o600 });
    fs.renameSync(tmp, file);
    this.known.add(msg.jid);
  }

  remove(jid: string): void {
    this.known.delete(jid);
    try {
      fs.unlinkSync(path.join(this.dir, `${jid}.json`)); // one syscall (rmSync lstats first), once per job
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
  }

  /** A return of this jid is (or was, this process's life) waiting for the master's acknowledgement. */
  has(jid: string): boolean {
    return this.known.has(jid);
  }

  jids(): string[] {
    return fs
      .readdirSync(this.dir)
      .filter((f) => /^\d{20}\.json$/.test(f))
      .map((f) => f.slice(0, 20))
      .sort();
  }

  all(): JobReturn[] {
    const out: JobReturn[] = [];
    for (const jid of this.jids()) {
      const file = path.join(this.dir, `${jid}.json`);
      try {
        out.push(JobReturnSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8'))));
      } catch (e) {
        // a damaged file would be re-sent forever: set it aside, keep the rest flowing
        this.log.error(`spool ${file} is unreadable (${(e as Error).message}); moved aside`);
        fs.renameSync(file, `${file}.bad`);
        this.known.delete(jid);
      }
    }
    return out;
  }
}
