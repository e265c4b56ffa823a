/**
 * Salt's `host` states: names in /etc/hosts. Lines, comments and other entries are kept as
 * they are; only the names this state is about move. Written atomically (file/atomic-write).
 * /etc/hosts is a managed file, so `--root` applies to it.
 */
import fs from 'node:fs';
import path from 'node:path';
import * as z from 'zod/mini';
import { boolArg, defineState, listArg, StateFailure, type StateModule } from './define.js';
import { atomicWrite } from './file/atomic-write.js';
import { refuseSpecial } from './file/paths.js';
import { defaultPerms, statPerms } from './file/ownership.js';

const HOSTS = '/etc/hosts';

interface Line {
  /** the line as it was (rewritten only when its names change) */
  text: string;
  ip?: string;
  names?: string[];
  comment?: string;
  changed?: boolean;
}

function parse(text: string): Line[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines.map((t) => {
    const hash = t.indexOf('#');
    const body = (hash >= 0 ? t.slice(0, hash) : t).trim();
    const fields = body.split(/\s+/).filter(Boolean);
    if (fields.length < 1) return { text: t };
    return { text: t, ip: fields[0], names: fields.slice(1), comment: hash >= 0 ? t.slice(hash) : undefined };
  });
}

function render(lines: Line[]): string {
  return lines.map((l) => (l.changed && l.ip && l.names ? [l.ip, ...l.names].join('\t') + (l.comment ? ` ${l.comment}` : '') : l.text)).join('\n') + '\n';
}

interface Edit {
  lines: Line[];
  added: string[];
  removed: string[];
}

function edit(text: string, name: string, add: string[], removeFrom: (ip: string) => boolean): Edit {
  const lines = parse(text);
  const added: string[] = [];
  const removed: string[] = [];
  for (const l of lines) {
    if (!l.ip || !l.names) continue;
    if (l.names.includes(name) && removeFrom(l.ip)) {
      l.names = l.names.filter((n) => n !== name);
      l.changed = true;
      removed.push(`${l.ip} ${name}`);
    }
  }
  for (const ip of add) {
    const line = lines.find((l) => l.ip === ip && l.names);
    if (line?.names!.includes(name)) continue;
    if (line) {
      line.names!.push(name);
      line.changed = true;
    } else lines.push({ text: '', ip, names: [name], changed: true });
    added.push(`${ip} ${name}`);
  }
  // a line left with no names would be invalid: drop it
  return { lines: lines.filter((l) => !l.ip || !l.names || l.names.length > 0), added, removed };
}

function read(path: string): string {
  // a device, FIFO or socket (or a link to one: /etc/x -> /dev/null) is never read nor replaced
  refuseSpecial(path, HOSTS);
  try {
    return fs.readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw new StateFailure(`cannot read ${HOSTS}: ${(e as Error).message}`);
  }
}

const ipArg = listArg(z.string().check(z.regex(/^[0-9a-fA-F:.]+(%\w+)?$/, 'must be an IPv4 or IPv6 address')));

function makeState(kind: 'present' | 'absent') {
  const args = z.object({
    name: z.string().check(z.regex(/^[^\s#]+$/, 'a host name has no spaces or #')),
    ip: kind === 'present' ? ipArg : z.optional(ipArg),
    /** present: remove the name from every other address */
    clean: z._default(boolArg, false),
  });
  return defineState<typeof args, Edit>({
    args,
    async check(ctx, a) {
      const ips = a.ip ?? [];
      const e =
        kind === 'present'
          ? edit(read(ctx.path(HOSTS)), a.name, ips, (ip) => a.clean && !ips.includes(ip))
          : edit(read(ctx.path(HOSTS)), a.name, [], (ip) => ips.length === 0 || ips.includes(ip));
      if (!e.added.length && !e.removed.length) {
        return { comment: kind === 'present' ? `Host ${a.name} (${ips.join(', ')}) already present` : `Host ${a.name} already absent` };
      }
      const changes: Record<string, string[]> = {};
      if (e.added.length) changes.added = e.added;
      if (e.removed.length) changes.removed = e.removed;
      return { changes, plan: e, comment: `Host ${a.name} would be ${kind === 'present' ? 'added' : 'removed'} in ${HOSTS}` };
    },
    async apply(ctx, a, plan) {
      const target = ctx.path(HOSTS);
      refuseSpecial(target, HOSTS);
      fs.mkdirSync(path.dirname(target), { recursive: true }); // only ever missing under --root
      const st = fs.existsSync(target) ? statPerms(fs.statSync(target)) : { ...defaultPerms('file'), mode: 0o644 };
      await atomicWrite(target, Buffer.from(render(plan!.lines)), st);
      const changes: Record<string, string[]> = {};
      if (plan!.added.length) changes.added = plan!.added;
      if (plan!.removed.length) changes.removed = plan!.removed;
      return { changes, comment: `Host ${a.name} ${kind === 'present' ? 'added' : 'removed'} in ${HOSTS}` };
    },
  });
}

export default { present: makeState('present'), absent: makeState('absent') } satisfies StateModule;
