/**
 * ssh_auth.present / ssh_auth.absent: keys in a user's authorized_keys, as salt.states.ssh_auth
 * (with salt.modules.ssh underneath) does it. A key is identified by its base64 blob; a line
 * holding it with other options/enc/comment is rewritten in place. Every other line (comments,
 * blank lines, keys we don't manage) stays as it is, in order; Salt itself drops blank lines
 * when it rewrites, we don't. Writes are atomic (file/atomic-write); the file is a managed
 * path, so `--root` applies to it, while the user and home come from the machine's accounts.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import type { RunContext } from './context.js';
import { defineState, listArg, principalArg, StateFailure, type Changes, type StateModule } from './define.js';
import { atomicWrite } from './file/atomic-write.js';
import { refuseSpecial } from './file/paths.js';
import { readFirstSource } from './file/source.js';
import { statPerms, type PermState } from './file/ownership.js';
import { lookupUser, type PasswdEntry } from './runas.js';

// ---- key types (salt.modules.ssh._refine_enc) ----

const ENC_ALIASES: Record<string, string> = {
  r: 'ssh-rsa',
  rsa: 'ssh-rsa',
  'ssh-rsa': 'ssh-rsa',
  d: 'ssh-dss',
  dsa: 'ssh-dss',
  dss: 'ssh-dss',
  'ssh-dss': 'ssh-dss',
  // ecdsa defaults to 256 bits; larger curves must be named in full
  e: 'ecdsa-sha2-nistp256',
  ecdsa: 'ecdsa-sha2-nistp256',
  ed25519: 'ssh-ed25519',
  'ssh-ed25519': 'ssh-ed25519',
};

const ENC_ALLOWED = new Set([
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'rsa-sha2-512-cert-v01@openssh.com',
  'rsa-sha2-256-cert-v01@openssh.com',
  'ssh-rsa-cert-v01@openssh.com',
  'ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ecdsa-sha2-nistp384-cert-v01@openssh.com',
  'ecdsa-sha2-nistp521-cert-v01@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
  'sk-ecdsa-sha2-nistp256-cert-v01@openssh.com',
  'ssh-ed25519-cert-v01@openssh.com',
  'sk-ssh-ed25519@openssh.com',
  'sk-ssh-ed25519-cert-v01@openssh.com',
]);

function refineEnc(enc: string): string {
  const e = ENC_ALIASES[enc] ?? (ENC_ALLOWED.has(enc) ? enc : undefined);
  if (!e) throw new StateFailure(`Incorrect encryption key type '${enc}'.`);
  return e;
}

/** What sshd accepts as a key type word in authorized_keys (and Salt's file parser). */
const FILE_KEYTYPE = /^(?:sk-)?(?:ssh|ecdsa|rsa)-[A-Za-z0-9@._-]+$/;
/** Salt's name parser also takes the short forms and any `x-y` word. */
const NAME_KEYTYPE = /^(?:\S+-\S+|ed25519|ecdsa)$/;
const BASE64_CHARS = /^[A-Za-z0-9+/]+={0,2}$/;

/** Salt only writes keys that decode as strict base64 (its _fingerprint check). */
function validBase64(key: string): boolean {
  return BASE64_CHARS.test(key) && key.length % 4 === 0 && !/=[^=]/.test(key);
}

// ---- authorized_keys lines ----

export interface AuthKey {
  /** comma-joined options as written (quoted values may hold commas and spaces), or '' */
  options: string;
  enc: string;
  key: string;
  /** words after the key, joined by single spaces (Salt compares them that way) */
  comment: string;
}

/** Split off the first word, honouring "quoted strings" (sshd's option syntax). */
function firstWord(s: string): [string, string] {
  let quoted = false;
  let i = 0;
  for (; i < s.length; i++) {
    const c = s[i]!;
    if (c === '\\' && quoted) i++;
    else if (c === '"') quoted = !quoted;
    else if (!quoted && /\s/.test(c)) break;
  }
  return [s.slice(0, i), s.slice(i).trimStart()];
}

function words(s: string): string[] {
  return s.split(/\s+/).filter(Boolean);
}

/** `[options] enc key [comment]`, or undefined for comments, blank lines and other text. */
function parseLine(line: string, keytype: RegExp, keyOk: (k: string) => boolean): AuthKey | undefined {
  const t = line.trim();
  if (!t || t.startsWith('#')) return undefined;
  const plain = words(t);
  if (plain.length >= 2 && keytype.test(plain[0]!) && keyOk(plain[1]!)) {
    return { options: '', enc: plain[0]!, key: plain[1]!, comment: plain.slice(2).join(' ') };
  }
  const [options, rest] = firstWord(t);
  const w = words(rest);
  if (options && w.length >= 2 && keytype.test(w[0]!) && keyOk(w[1]!)) {
    return { options, enc: w[0]!, key: w[1]!, comment: w.slice(2).join(' ') };
  }
  return undefined;
}

/** A line of an authorized_keys file (or of a `source` key file). */
export function parseAuthLine(line: string): AuthKey | undefined {
  return parseLine(line, FILE_KEYTYPE, () => true);
}

function formatLine(k: AuthKey): string {
  return [k.options, k.enc, k.key, k.comment].filter((s) => s !== '').join(' ');
}

function sameLine(a: AuthKey, b: AuthKey): boolean {
  return a.options === b.options && a.enc === b.enc && a.key === b.key && a.comment === b.comment;
}

/** salt.modules.ssh._expand_authorized_keys_path: %h, %u and %% as sshd_config(5). */
function expandConfig(config: string, user: string, home: string): string {
  let out = '';
  for (let i = 0; i < config.length; i++) {
    const c = config[i]!;
    if (c !== '%') {
      out += c;
      continue;
    }
    const t = config[++i];
    if (t === undefined) throw new StateFailure("AuthorizedKeysFile path: Last character can't be escape character");
    if (t === '%') out += '%';
    else if (t === 'u') out += user;
    else if (t === 'h') out += home;
    else throw new StateFailure(`AuthorizedKeysFile path: unknown token character "%${t}"`);
  }
  return path.isAbsolute(out) ? out : path.join(home, out);
}

// ---- arguments ----

const textArg = z.pipe(
  z.union([z.string(), z.number()]),
  z.transform((v) => String(v)),
);

const args = z.object({
  /** the key, or a whole `[options] enc key [comment]` line; only a label when `source` is set */
  name: z.pipe(
    z.string(),
    z.transform((s) => s.trim()),
  ),
  user: principalArg,
  enc: z._default(z.string(), 'ssh-rsa'),
  comment: z.optional(z.nullable(textArg)),
  /** salt:// (or local/http) file of keys, one per line; then name, enc and comment are ignored */
  source: z._default(z.string(), ''),
  options: z.optional(z.nullable(listArg(z.string()))),
  /** relative to the user's home; %h and %u expand */
  config: z._default(z.string(), '.ssh/authorized_keys'),
  /** accepted as Salt does; fingerprints are not part of what we report */
  fingerprint_hash_type: z.optional(z.nullable(z.string())),
});
type Args = z.output<typeof args>;

/** The key a state without `source` is about, with name's parts overriding enc/comment/options. */
function keyFromName(a: Args): AuthKey {
  const options = (a.options ?? []).map((o) => o.trim()).join(',');
  const comment = a.comment ?? '';
  const parsed = parseLine(a.name, NAME_KEYTYPE, (k) => BASE64_CHARS.test(k));
  if (parsed) return { ...parsed, options: parsed.options || options, comment: parsed.comment || comment };
  // `key [comment]`
  const [key = '', ...rest] = words(a.name);
  return { options, enc: a.enc, key, comment: rest.length ? rest.join(' ') : comment };
}

/** The wanted line: enc refined, key checked (Salt refuses what it could not read back). */
function wanted(k: AuthKey): AuthKey {
  const enc = refineEnc(k.enc);
  if (!validBase64(k.key)) throw new StateFailure('Invalid public ssh key, most likely has spaces or invalid syntax');
  return { ...k, enc, comment: words(k.comment).join(' ') };
}

// ---- the user's file ----

interface Target {
  pw: PasswdEntry;
  /** authorized_keys on disk (--root applied) */
  file: string;
  /** home on disk */
  home: string;
  text: string;
  exists: boolean;
}

function checkHashType(t: string | null | undefined): void {
  if (t && !crypto.getHashes().includes(t.toLowerCase())) {
    throw new StateFailure(`The fingerprint_hash_type ${t} is not supported.`);
  }
}

function readKeys(file: string): { text: string; exists: boolean } {
  // a device, FIFO or socket (or a link to one: /etc/x -> /dev/null) is never read nor replaced
  refuseSpecial(file);
  try {
    return { text: fs.readFileSync(file, 'utf8'), exists: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', exists: false };
    throw new StateFailure(`Problem reading ssh key file ${file}: ${(e as Error).message}`);
  }
}

/** Resolve user, home and file. An unknown user is undefined (callers decide: fail or predict). */
async function target(ctx: RunContext, a: Args): Promise<Target | undefined> {
  let pw: PasswdEntry;
  try {
    pw = await lookupUser(a.user);
  } catch (e) {
    if (e instanceof StateFailure) return undefined;
    throw e;
  }
  const file = ctx.path(expandConfig(a.config, pw.name, pw.home));
  return { pw, file, home: ctx.path(pw.home), ...readKeys(file) };
}

/** Keys of a `source` file; name/enc/comment of the state do not apply to them. */
async function sourceKeys(ctx: RunContext, source: string): Promise<AuthKey[]> {
  let text: string;
  if (source.startsWith('salt://')) {
    let found: boolean;
    try {
      found = await ctx.tree.exists(source);
    } catch (e) {
      throw new StateFailure((e as Error).message);
    }
    if (!found) throw new StateFailure(`Failed to add the ssh key. Source file ${source} is missing`);
    text = (await ctx.tree.read(source)).toString('utf8');
  } else {
    // Salt fetches key files unverified (cp.get_file_str); so do we
    text = (await readFirstSource(ctx, [source], undefined, true)).data.toString('utf8');
  }
  // one entry per key; a key listed twice takes its last line, as Salt's dict does
  const byKey = new Map<string, AuthKey>();
  for (const line of text.split('\n')) {
    const k = parseAuthLine(line);
    if (k && validBase64(k.key)) byKey.set(k.key, k);
  }
  if (byKey.size === 0) throw new StateFailure(`No keys detected in ${source}. Is file properly formatted?`);
  return [...byKey.values()];
}

type Status = 'add' | 'update' | 'exists';

/** Make `k` present in `text`: lines holding the key are rewritten, a missing key is appended. */
function putKey(text: string, k: AuthKey): { text: string; status: Status } {
  const lines = text.split('\n');
  let found = false;
  let changed = false;
  for (let i = 0; i < lines.length; i++) {
    const cur = parseAuthLine(lines[i]!);
    if (!cur || cur.key !== k.key) continue;
    found = true;
    if (!sameLine(cur, k)) {
      lines[i] = formatLine(k);
      changed = true;
    }
  }
  if (found) return { text: lines.join('\n'), status: changed ? 'update' : 'exists' };
  const sep = text === '' || text.endsWith('\n') ? '' : '\n';
  return { text: `${text}${sep}${formatLine(k)}\n`, status: 'add' };
}

/** Remove every line holding `key`. */
function dropKey(text: string, key: string): { text: string; removed: boolean } {
  const lines = text.split('\n');
  const kept = lines.filter((l) => parseAuthLine(l)?.key !== key);
  return { text: kept.join('\n'), removed: kept.length !== lines.length };
}

interface Plan {
  t: Target;
  text: string;
  changes: Changes;
  comment: string;
}

/** Create the file's missing directories: 0700 and the user's inside the home (~/.ssh), as Salt. */
async function makeParents(t: Target): Promise<void> {
  const missing: string[] = [];
  for (let d = path.dirname(t.file); !fs.existsSync(d); d = path.dirname(d)) {
    missing.unshift(d);
    if (path.dirname(d) === d) break;
  }
  const inHome = (d: string) => d.startsWith(t.home.endsWith('/') ? t.home : `${t.home}/`);
  for (const d of missing) {
    await fs.promises.mkdir(d);
    // a shared directory outside the home (/etc/ssh/keys for %u files) stays root's
    if (inHome(d)) {
      await fs.promises.chown(d, t.pw.uid, t.pw.gid);
      await fs.promises.chmod(d, 0o700);
    }
  }
}

async function write(t: Target, text: string): Promise<void> {
  refuseSpecial(t.file);
  let dest = t.file;
  let perms: PermState;
  if (t.exists) {
    // write through a symlinked authorized_keys, as Salt's in-place write does, but only to a
    // file the key's user owns: root must not follow a user's link onto someone else's file
    dest = fs.realpathSync(t.file);
    const st = fs.statSync(dest);
    if (dest !== t.file && st.uid !== t.pw.uid && t.pw.uid !== 0) {
      throw new StateFailure(`${t.file} leads to ${dest}, which ${t.pw.name} does not own; refusing to write through the link`);
    }
    perms = statPerms(st);
  } else {
    await makeParents(t);
    perms = { uid: t.pw.uid, gid: t.pw.gid, mode: 0o600 };
  }
  try {
    await atomicWrite(dest, Buffer.from(text), perms);
  } catch (e) {
    throw new StateFailure(`Could not write to key file: ${(e as Error).message}`);
  }
}

/** Salt fails a key that would live in a home directory that is not there. */
function requireHome(t: Target): void {
  if (t.file.startsWith(t.home) && !fs.statSync(t.home, { throwIfNoEntry: false })?.isDirectory()) {
    throw new StateFailure('Failed to add the ssh key. Is the home directory available, and/or does the key file exist?');
  }
}

function appliedComment(label: string, user: string, status: 'add' | 'update'): string {
  return `The authorized host key ${label} for user ${user} was ${status === 'add' ? 'added' : 'updated'}`;
}

const present = defineState<typeof args, Plan>({
  args,
  async check(ctx, a) {
    checkHashType(a.fingerprint_hash_type);
    const keys = a.source ? await sourceKeys(ctx, a.source) : [keyFromName(a)];
    const want = keys.map(wanted);
    const t = await target(ctx, a);
    // test mode predicts as Salt does (an earlier state may create the user); a real run fails
    if (!t && !ctx.test) throw new StateFailure(`User '${a.user}' does not exist`);
    const missingUser = t ? '' : ` (user ${a.user} does not exist yet)`;
    let text = t?.text ?? '';
    const statuses = want.map((k) => {
      const r = putKey(text, k);
      text = r.text;
      return { key: k.key, status: r.status };
    });
    const todo = statuses.filter((s) => s.status !== 'exists');
    if (!a.source) {
      const key = want[0]!.key;
      const status = statuses[0]!.status;
      if (status === 'exists') return { comment: `The authorized host key ${key} is already present for user ${a.user}` };
      if (t && !ctx.test) requireHome(t);
      const changes = { [key]: status === 'add' ? 'New' : 'Updated' };
      return {
        changes,
        comment: `Key ${key} for user ${a.user} is set to be ${status === 'add' ? 'added' : 'updated'}${missingUser}`,
        plan: t && { t, text, changes, comment: appliedComment(key, a.user, status) },
      };
    }
    if (!todo.length) {
      return {
        comment: ctx.test
          ? `All host keys in file ${a.source} are already present`
          : `The authorized host key ${a.name} is already present for user ${a.user}`,
      };
    }
    if (t && !ctx.test) requireHome(t);
    // Salt reports a source as one change under the state's name; an update outranks an add
    const status = todo.some((s) => s.status === 'update') ? 'update' : 'add';
    const changes = { [a.name]: status === 'add' ? 'New' : 'Updated' };
    return {
      changes,
      comment: todo.map((s) => `Set to ${s.status}: ${s.key}`).join('\n') + missingUser,
      plan: t && { t, text, changes, comment: appliedComment(a.name, a.user, status) },
    };
  },
  async apply(_ctx, _a, plan) {
    if (!plan) throw new Error('ssh_auth.present: apply without a plan');
    await write(plan.t, plan.text);
    return { changes: plan.changes, comment: plan.comment };
  },
});

const absent = defineState<typeof args, Plan>({
  args,
  async check(ctx, a) {
    checkHashType(a.fingerprint_hash_type);
    // absent matches on the key alone: enc, comment and options do not matter
    const keys = a.source ? (await sourceKeys(ctx, a.source)).map((k) => k.key) : [keyFromName(a).key];
    const t = await target(ctx, a);
    let text = t?.text ?? '';
    const removed = keys.filter((k) => {
      const r = dropKey(text, k);
      text = r.text;
      return r.removed;
    });
    if (!t || !removed.length) {
      if (a.source) return { comment: ctx.test ? `All host keys in file ${a.source} are already absent` : 'Key not present' };
      return { comment: ctx.test ? 'Key is already absent' : 'Key not present' };
    }
    const label = a.source ? a.name : keys[0]!;
    return {
      changes: { [label]: 'Removed' },
      comment: a.source
        ? removed.map((k) => `Set to remove: ${k}`).join('\n')
        : `Key ${label} for user ${a.user} is set for removal`,
      plan: { t, text, changes: { [label]: 'Removed' }, comment: 'Key removed' },
    };
  },
  async apply(_ctx, _a, plan) {
    if (!plan) throw new Error('ssh_auth.absent: apply without a plan');
    await write(plan.t, plan.text);
    return { changes: plan.changes, comment: plan.comment };
  },
});

export default { present, absent } satisfies StateModule;
