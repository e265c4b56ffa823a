/**
 * Job returns waiting for the master's acknowledgement. Written before the first send, dropped
 * on `return_ack`: an agent that lost the master, or was restarted, sends them again on its next
 * connection, so no result is lost.
 *
 * On disk they are one append-only journal, `spool/returns.jsonl`: a line per return (its JSON)
 * and a line per acknowledgement (`{"ack":"<jid>"}`). A job costs two appends to a file that
 * exists, where a file per return cost a create, a rename and an unlink (an agent process of 200
 * agents spent a fifth of a no-op job's CPU creating and removing them). The file stays open once
 * opened (opening it per job was a tenth of what is left of a no-op job's CPU).
 *
 * The journal is the only copy: memory holds where each waiting return's line is (its offset
 * and length), and a return is read back from the file when it is sent again. A copy in memory
 * too grew the daemon by up to max_return_bytes per return for as long as the master was away
 * (returns of jobs that ran through the outage). The file is emptied once nothing in it waits
 * and it has grown, and rewritten with only what waits once that is less than half of it.
 * Returns spooled as `<jid>.json` files by earlier versions are still read and delivered.
 */
import fs from 'node:fs';
import path from 'node:path';
import { JobReturnSchema, type JobReturn } from '../../protocol/messages.js';
import type { Logger } from '../../core/log.js';

const JOURNAL = 'returns.jsonl';
/** emptied when nothing waits and it is over this */
const EMPTY_AT = 256 * 1024;
/** over this, rewritten with only what waits once that is under half of it */
const COMPACT_AT = 4 * 1024 * 1024;
/** how much of the journal a scan reads at a time */
const CHUNK = 1024 * 1024;
const NL = 0x0a;

/** Where a line is in the journal: its first byte and its length in bytes (without the newline). */
interface Line {
  off: number;
  len: number;
}

/**
 * A journal's lines, read a chunk at a time (a line is in memory only while it is parsed): the
 * returns still waiting (jid -> line, in the order spooled), the lines that did not parse (a write
 * cut short: the agent or the machine died during it), and whether the file ends with a newline.
 */
function scan(fd: number): { waiting: Map<string, Line>; bad: Line[]; size: number; whole: boolean } {
  const waiting = new Map<string, Line>();
  const bad: Line[] = [];
  const chunk = Buffer.allocUnsafe(CHUNK);
  /** the pieces of the line read so far, and where it starts */
  let parts: Buffer[] = [];
  let start = 0;
  let pos = 0;
  const line = (end: number) => {
    const buf = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    parts = [];
    const at: Line = { off: start, len: end - start };
    start = end + 1;
    if (!at.len) return;
    let v: unknown;
    try {
      v = JSON.parse(buf.toString('utf8'));
    } catch {
      bad.push(at);
      return;
    }
    if (v && typeof v === 'object' && typeof (v as { ack?: unknown }).ack === 'string') waiting.delete((v as { ack: string }).ack);
    else if (v && typeof v === 'object' && typeof (v as { jid?: unknown }).jid === 'string') waiting.set((v as { jid: string }).jid, at);
    else bad.push(at);
  };
  for (;;) {
    const n = fs.readSync(fd, chunk, 0, CHUNK, pos);
    if (n === 0) break;
    let from = 0;
    for (let nl = chunk.indexOf(NL, 0); nl >= 0 && nl < n; nl = chunk.indexOf(NL, from)) {
      parts.push(Buffer.from(chunk.subarray(from, nl)));
      line(pos + nl);
      from = nl + 1;
    }
    if (from < n) parts.push(Buffer.from(chunk.subarray(from, n)));
    pos += n;
  }
  const whole = parts.length === 0;
  // the last line without its newline: cut short, unless it parses (the newline alone was lost)
  if (!whole) line(pos);
  return { waiting, bad, size: pos, whole };
}

/** The bytes of `at` in the file. */
function readLine(fd: number, at: Line): Buffer {
  const buf = Buffer.allocUnsafe(at.len);
  for (let got = 0; got < at.len; ) {
    const n = fs.readSync(fd, buf, got, at.len - got, at.off + got);
    if (n === 0) throw new Error(`the journal ends at byte ${at.off + got}, before the line's end`);
    got += n;
  }
  return buf;
}

function writeAll(fd: number, buf: Buffer): void {
  for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off);
}

/** The jids a spool directory holds (tests, from outside the agent): journal and per-return files. */
export function spooledJids(cacheDir: string): string[] {
  const dir = path.join(cacheDir, 'spool');
  let jids: string[] = [];
  let fd: number | undefined;
  try {
    fd = fs.openSync(path.join(dir, JOURNAL), 'r');
    jids = [...scan(fd).waiting.keys()];
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  const files = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => /^\d{20}\.json$/.test(f)).map((f) => f.slice(0, 20)) : [];
  return [...new Set([...jids, ...files])].sort();
}

export class Spool {
  private readonly dir: string;
  private readonly journal: string;
  /** returns waiting in the journal: jid -> where its line is (the return itself stays on disk) */
  private readonly waiting = new Map<string, Line>();
  /** bytes of the journal's lines that still wait (with their newlines) */
  private live = 0;
  /** returns waiting as files of their own (spooled by an earlier version) */
  private readonly files = new Set<string>();
  /** the journal, once read or written (read and append) */
  private fd: number | undefined;
  /** the journal's size in bytes */
  private size = 0;
  /** the journal's last line has no newline (a rewrite at start failed): the next append starts with one */
  private openLine = false;

  constructor(cacheDir: string, private readonly log: Logger) {
    this.dir = path.join(cacheDir, 'spool');
    this.journal = path.join(this.dir, JOURNAL);
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    for (const f of fs.readdirSync(this.dir)) if (/^\d{20}\.json$/.test(f)) this.files.add(f.slice(0, 20));
    if (!fs.existsSync(this.journal)) return;
    const { waiting, bad, size, whole } = scan(this.open());
    this.size = size;
    for (const [jid, at] of waiting) this.keep(jid, at);
    if (bad.length) {
      this.log.error(`spool ${this.journal}: ${bad.length} unreadable line(s) (a write cut short?); moved aside to ${this.journal}.bad`);
      const aside = fs.openSync(`${this.journal}.bad`, 'a', 0o600);
      try {
        for (const at of bad) writeAll(aside, Buffer.concat([readLine(this.fd!, at), Buffer.from('\n')]));
      } finally {
        fs.closeSync(aside);
      }
    }
    // compacted to what waits; a last line without its newline would run into the next one
    if (bad.length || !whole || this.size > EMPTY_AT) {
      try {
        this.rewrite();
      } catch (e) {
        // a full disk, say: what waits is still where the scan found it, and is sent from there
        this.log.error(`spool ${this.journal}: not compacted (${(e as Error).message}); kept as it is`);
        fs.rmSync(`${this.journal}.tmp`, { force: true });
        this.openLine = !whole;
      }
    }
  }

  /** `json`: the message's JSON when the caller has it already */
  put(msg: JobReturn, json = JSON.stringify(msg)): void {
    const buf = Buffer.from(json + '\n');
    const off = this.append(buf);
    this.keep(msg.jid, { off, len: buf.length - 1 });
  }

  remove(jid: string): void {
    if (this.files.delete(jid)) {
      try {
        fs.unlinkSync(path.join(this.dir, `${jid}.json`));
      } catch (e) {
        // as an acknowledgement not written below: after a restart it is sent again, stored once
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn(`spool ${path.join(this.dir, `${jid}.json`)}: not removed after its acknowledgement (${(e as Error).message}); it may be sent again after a restart (stored once)`);
      }
    }
    if (!this.forget(jid)) return;
    try {
      if (this.waiting.size === 0 && this.size > EMPTY_AT) {
        fs.ftruncateSync(this.open(), 0);
        this.size = 0;
        this.openLine = false;
      } else if (this.size > COMPACT_AT && this.live * 2 < this.size) this.rewrite();
      else this.append(Buffer.from(`{"ack":${JSON.stringify(jid)}}\n`));
    } catch (e) {
      // not on disk: after a restart the return is sent again, and the master keeps the first
      fs.rmSync(`${this.journal}.tmp`, { force: true });
      this.log.warn(`spool ${this.journal}: the acknowledgement of job ${jid} was not written (${(e as Error).message}); its return may be sent again after a restart (stored once)`);
    }
  }

  /** A return of this jid is waiting for the master's acknowledgement. */
  has(jid: string): boolean {
    return this.waiting.has(jid) || this.files.has(jid);
  }

  jids(): string[] {
    return [...new Set([...this.waiting.keys(), ...this.files])].sort();
  }

  /**
   * The waiting return of `jid`, read back from disk; undefined when none waits, or when it does
   * not read back (a damaged return would be re-sent forever: set aside, the rest keep flowing).
   */
  read(jid: string): JobReturn | undefined {
    const at = this.waiting.get(jid);
    if (at) {
      let bytes: Buffer | undefined;
      try {
        bytes = readLine(this.open(), at);
        const ret = JobReturnSchema.parse(JSON.parse(bytes.toString('utf8')));
        if (ret.jid !== jid) throw new Error(`the line at byte ${at.off} is job ${ret.jid}'s`);
        return ret;
      } catch (e) {
        this.log.error(`spool ${this.journal}: the return of job ${jid} is unreadable (${(e as Error).message}); moved aside to ${this.journal}.bad`);
        try {
          if (bytes) fs.appendFileSync(`${this.journal}.bad`, Buffer.concat([bytes, Buffer.from('\n')]), { mode: 0o600 });
        } catch (w) {
          this.log.error(`spool ${this.journal}.bad: not written (${(w as Error).message})`);
        }
        this.remove(jid);
        return undefined;
      }
    }
    if (!this.files.has(jid)) return undefined;
    const file = path.join(this.dir, `${jid}.json`);
    try {
      return JobReturnSchema.parse(JSON.parse(fs.readFileSync(file, 'utf8')));
    } catch (e) {
      // forgotten either way: a damaged return would be re-sent forever
      this.files.delete(jid);
      try {
        fs.renameSync(file, `${file}.bad`);
        this.log.error(`spool ${file} is unreadable (${(e as Error).message}); moved aside`);
      } catch (w) {
        // a read-only disk, say: left where it is, not sent again by this process
        this.log.error(`spool ${file} is unreadable (${(e as Error).message}) and could not be moved aside (${(w as Error).message}); left in place and skipped`);
      }
      return undefined;
    }
  }

  /** `jid`'s return is at `at` (a return spooled again: the newer line is the one read back) */
  private keep(jid: string, at: Line): void {
    const old = this.waiting.get(jid);
    if (old) this.live -= old.len + 1;
    this.waiting.set(jid, at);
    this.live += at.len + 1;
  }

  private forget(jid: string): boolean {
    const at = this.waiting.get(jid);
    if (!at) return false;
    this.waiting.delete(jid);
    this.live -= at.len + 1;
    return true;
  }

  private open(): number {
    this.fd ??= fs.openSync(this.journal, 'a+', 0o600);
    return this.fd;
  }

  /** Let the journal's file go (the agent stops); a later put opens it again. */
  close(): void {
    if (this.fd === undefined) return;
    fs.closeSync(this.fd);
    this.fd = undefined;
  }

  /**
   * Appends `buf`; where it starts. All or nothing: a write cut short (the disk full) is cut off
   * the file again, or the offsets of every later line would be wrong and the next line would run
   * into the piece.
   */
  private append(buf: Buffer): number {
    const fd = this.open();
    if (this.openLine) {
      writeAll(fd, Buffer.from('\n'));
      this.size += 1;
      this.openLine = false;
    }
    const off = this.size;
    try {
      writeAll(fd, buf);
    } catch (e) {
      try {
        fs.ftruncateSync(fd, off);
      } catch {
        // still there: the next line starts on a line of its own, its offset where it lands
        this.size = fs.fstatSync(fd).size;
        this.openLine = true;
      }
      throw e;
    }
    this.size += buf.length;
    return off;
  }

  /** The journal with only what waits, copied a line at a time (a new file, renamed over the old). */
  private rewrite(): void {
    const from = this.open();
    const tmp = `${this.journal}.tmp`;
    const to = fs.openSync(tmp, 'w', 0o600);
    const moved = new Map<string, Line>();
    let off = 0;
    try {
      for (const [jid, at] of this.waiting) {
        const line = Buffer.concat([readLine(from, at), Buffer.from('\n')]);
        writeAll(to, line);
        moved.set(jid, { off, len: at.len });
        off += line.length;
      }
    } finally {
      fs.closeSync(to);
    }
    fs.renameSync(tmp, this.journal);
    this.close();
    for (const [jid, at] of moved) this.waiting.set(jid, at);
    this.size = this.live = off;
    this.openLine = false;
  }
}
