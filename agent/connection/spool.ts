/**
 * Job returns waiting for the master's acknowledgement. Written before the first send, dropped
 * on `return_ack`: an agent that lost the master, or was restarted, sends them again on its next
 * connection, so no result is lost.
 *
 * On disk they are one append-only journal, `spool/returns.jsonl`: a line per return (its JSON)
 * and a line per acknowledgement (`{"ack":"<jid>"}`). A job costs two appends to a file that
 * exists, where a file per return cost a create, a rename and an unlink (an agent process of 200
 * agents spent a fifth of a no-op job's CPU creating and removing them). The file is emptied
 * once nothing in it waits and it has grown; it stays open once opened (opening it per job was
 * a tenth of what is left of a no-op job's CPU).
 * Returns spooled as `<jid>.json` files by earlier versions are still read and delivered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { JobReturnSchema, type JobReturn } from '../../protocol/messages.js';
import type { Logger } from '../../core/log.js';

const JOURNAL = 'returns.jsonl';
/** emptied when nothing waits and it is over this; rewritten with only what waits when over MAX */
const EMPTY_AT = 256 * 1024;
const REWRITE_AT = 64 * 1024 * 1024;

/** A journal's lines: the returns still waiting (jid -> JSON, in the order spooled), and the lines that did not parse. */
function replay(text: string): { waiting: Map<string, string>; bad: string[] } {
  const waiting = new Map<string, string>();
  const bad: string[] = [];
  for (const line of text.split('\n')) {
    if (!line) continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      bad.push(line); // a write cut short (the agent or the machine died during it)
      continue;
    }
    if (v && typeof v === 'object' && typeof (v as { ack?: unknown }).ack === 'string') waiting.delete((v as { ack: string }).ack);
    else if (v && typeof v === 'object' && typeof (v as { jid?: unknown }).jid === 'string') waiting.set((v as { jid: string }).jid, line);
    else bad.push(line);
  }
  return { waiting, bad };
}

/** The jids a spool directory holds (tests, from outside the agent): journal and per-return files. */
export function spooledJids(cacheDir: string): string[] {
  const dir = path.join(cacheDir, 'spool');
  let text = '';
  try {
    text = fs.readFileSync(path.join(dir, JOURNAL), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d{20}\.json$/.test(f)).map((f) => f.slice(0, 20)) : [];
  return [...new Set([...replay(text).waiting.keys(), ...files])].sort();
}

export class Spool {
  private readonly dir: string;
  private readonly journal: string;
  /** returns waiting in the journal: jid -> JSON */
  private readonly waiting = new Map<string, string>();
  /** returns waiting as files of their own (spooled by an earlier version) */
  private readonly files = new Set<string>();
  /** the journal, once written to */
  private fd: number | undefined;
  /** the journal's size as this process knows it (bytes; UTF-16 units for what it read at start) */
  private size = 0;

  constructor(cacheDir: string, private readonly log: Logger) {
    this.dir = path.join(cacheDir, 'spool');
    this.journal = path.join(this.dir, JOURNAL);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(this.dir)) if (/^\d{20}\.json$/.test(f)) this.files.add(f.slice(0, 20));
    let text = '';
    try {
      text = fs.readFileSync(this.journal, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const { waiting, bad } = replay(text);
    for (const [jid, json] of waiting) this.waiting.set(jid, json);
    this.size = text.length;
    if (bad.length) {
      this.log.error(`spool ${this.journal}: ${bad.length} unreadable line(s) (a write cut short?); moved aside to ${this.journal}.bad`);
      fs.appendFileSync(`${this.journal}.bad`, bad.join('\n') + '\n', { mode: 0o600 });
    }
    if (bad.length || this.size > EMPTY_AT) this.rewrite(); // compacted to what waits
  }

  /** `json`: the message's JSON when the caller has it already */
  put(msg: JobReturn, json = JSON.stringify(msg)): void {
    this.append(json + '\n');
    this.waiting.set(msg.jid, json);
  }

  remove(jid: string): void {
    if (this.files.delete(jid)) {
      try {
        fs.unlinkSync(path.join(this.dir, `${jid}.json`));
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
    if (!this.waiting.delete(jid)) return;
    if (this.waiting.size === 0 && this.size > EMPTY_AT) {
      this.open();
      fs.ftruncateSync(this.fd!, 0);
      this.size = 0;
    } else this.append(`{"ack":${JSON.stringify(jid)}}\n`);
  }

  /** A return of this jid is waiting for the master's acknowledgement. */
  has(jid: string): boolean {
    return this.waiting.has(jid) || this.files.has(jid);
  }

  jids(): string[] {
    return [...new Set([...this.waiting.keys(), ...this.files])].sort();
  }

  all(): JobReturn[] {
    const out: JobReturn[] = [];
    for (const jid of this.jids()) {
      const json = this.waiting.get(jid);
      const file = path.join(this.dir, `${jid}.json`);
      try {
        out.push(JobReturnSchema.parse(JSON.parse(json ?? fs.readFileSync(file, 'utf8'))));
      } catch (e) {
        // a damaged return would be re-sent forever: set it aside, keep the rest flowing
        if (json === undefined) {
          this.log.error(`spool ${file} is unreadable (${(e as Error).message}); moved aside`);
          fs.renameSync(file, `${file}.bad`);
          this.files.delete(jid);
        } else {
          this.log.error(`spool ${this.journal}: the return of job ${jid} is unreadable (${(e as Error).message}); moved aside to ${this.journal}.bad`);
          fs.appendFileSync(`${this.journal}.bad`, json + '\n', { mode: 0o600 });
          this.remove(jid);
        }
      }
    }
    return out;
  }

  private open(): void {
    this.fd ??= fs.openSync(this.journal, 'a', 0o600);
  }

  /** Let the journal's file go (the agent stops); a later put opens it again. */
  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  private append(line: string): void {
    if (this.size > REWRITE_AT) this.rewrite();
    this.open();
    const buf = Buffer.from(line);
    for (let off = 0; off < buf.length; ) off += fs.writeSync(this.fd!, buf, off);
    this.size += buf.length;
  }

  /** The journal with only what waits (a new file, renamed over the old). */
  private rewrite(): void {
    this.close();
    const text = [...this.waiting.values()].map((j) => j + '\n').join('');
    const tmp = `${this.journal}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o600 });
    fs.renameSync(tmp, this.journal);
    this.size = text.length;
  }
}
