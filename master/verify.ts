/**
 * rollout.verify: checks run after each batch that must pass before the next batch starts.
 * A command on the master (`curl -fsS http://VIP/healthz`), an HTTP GET with an expected
 * status, or a command run on the batch's agents; each with a timeout and retries.
 */
import * as z from 'zod';
import { exec } from '../engine/run/exec.js';
import type { JobManager } from './jobs.js';

export const VerifyCheckSchema = z
  .strictObject({
    /** a name for the log and `tsalt status` (default: the command or URL) */
    name: z.string().min(1).max(200).optional(),
    /** a shell command on the master; exit 0 passes */
    command: z.string().min(1).optional(),
    /** an HTTP(S) GET from the master; `status` passes */
    http: z.url({ protocol: /^https?$/ }).optional(),
    /** with `http`: the status that passes */
    status: z.number().int().min(100).max(599).default(200),
    /** a shell command on each agent of the batch; exit 0 on all of them passes */
    agent_command: z.string().min(1).optional(),
    /** each try's time limit */
    timeout_s: z.number().positive().default(10),
    /** tries after the first one fails, `delay_s` apart */
    retries: z.number().int().min(0).default(2),
    /** seconds between tries */
    delay_s: z.number().min(0).default(2),
  })
  .superRefine((c, ctx) => {
    const kinds = [c.command, c.http, c.agent_command].filter((x) => x !== undefined).length;
    if (kinds !== 1) ctx.addIssue({ code: 'custom', message: 'a verify check is exactly one of command, http, agent_command' });
  });
export type VerifyCheck = z.infer<typeof VerifyCheckSchema>;

export function checkName(c: VerifyCheck): string {
  return c.name ?? (c.command !== undefined ? `command ${JSON.stringify(c.command)}` : c.http !== undefined ? `GET ${c.http}` : `on agents: ${JSON.stringify(c.agent_command)}`);
}

/** One try; resolves with why it failed, or undefined when it passed. */
async function once(c: VerifyCheck, agents: string[], jobs: Pick<JobManager, 'start'>): Promise<string | undefined> {
  if (c.command !== undefined) {
    const r = await exec(['/bin/sh', '-c', c.command], { timeoutMs: c.timeout_s * 1000 });
    const out = (r.stderr || r.stdout).trim().slice(0, 300);
    return r.code === 0 ? undefined : `exit ${r.code}${r.signal ? ` (${r.signal}, timeout ${c.timeout_s}s)` : ''}${out ? `: ${out}` : ''}`;
  }
  if (c.http !== undefined) {
    try {
      const res = await fetch(c.http, { signal: AbortSignal.timeout(c.timeout_s * 1000), redirect: 'manual' });
      await res.body?.cancel();
      return res.status === c.status ? undefined : `status ${res.status}, expected ${c.status}`;
    } catch (e) {
      const err = e as Error & { cause?: { message?: string } };
      return err.name === 'TimeoutError' ? `no answer within ${c.timeout_s}s` : `${err.message}${err.cause?.message ? `: ${err.cause.message}` : ''}`;
    }
  }
  const bad: string[] = [];
  const code = await jobs.start(
    { type: 'run', target: agents.join(','), tgt_type: 'list', command: c.agent_command!, timeout_s: c.timeout_s, user: 'rollout:verify' },
    (ev) => {
      if (ev.type === 'agent_done' && ev.status !== 'done') {
        const body = ev.body?.kind === 'run' ? ` (exit ${ev.body.retcode}: ${(ev.body.stderr || ev.body.stdout).trim().slice(0, 200)})` : ev.error ? ` (${ev.error})` : '';
        bad.push(`${ev.agent} ${ev.status}${body}`);
      }
      if (ev.type === 'error') bad.push(ev.message);
    },
  );
  return code === 0 && !bad.length ? undefined : bad.join('; ') || `exit ${code}`;
}

/** A check's result as it stands: when it starts (running, 0 tries) and after each try. */
export interface VerifyProgress {
  /** its place in the list (0-based) */
  seq: number;
  name: string;
  outcome: 'running' | 'passed' | 'failed';
  attempts: number;
  message: string | null;
  started: string;
  finished: string | null;
}

/** Every check in order; the first that fails all its tries fails the batch (its message says why). */
export async function runVerify(
  checks: readonly VerifyCheck[],
  agents: string[],
  jobs: Pick<JobManager, 'start'>,
  say: (msg: string, level?: 'info' | 'warn') => void,
  progress: (p: VerifyProgress) => void = () => {},
): Promise<string | undefined> {
  for (const [seq, c] of checks.entries()) {
    const base = { seq, name: checkName(c), started: new Date().toISOString() };
    progress({ ...base, outcome: 'running', attempts: 0, message: null, finished: null });
    let why: string | undefined;
    let attempt = 0;
    for (; attempt <= c.retries; attempt++) {
      if (attempt) await new Promise((r) => setTimeout(r, c.delay_s * 1000));
      why = await once(c, agents, jobs);
      const last = !why || attempt === c.retries;
      progress({ ...base, outcome: !why ? 'passed' : last ? 'failed' : 'running', attempts: attempt + 1, message: why ?? null, finished: last ? new Date().toISOString() : null });
      if (!why) break;
      say(`verify ${checkName(c)}: try ${attempt + 1}/${c.retries + 1} failed: ${why}`);
    }
    if (why) return `verify ${checkName(c)} failed: ${why}`;
    say(`verify ${checkName(c)}: passed`);
  }
  return undefined;
}
