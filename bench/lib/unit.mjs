/**
 * What a packaged systemd unit (packaging/*.service) starts its process with, so a bench measures
 * the daemon as shipped: the node flags of its ExecStart and its Environment= settings.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const AGENT_UNIT = path.join(REPO, 'packaging', 'tsalt-agent.service');
export const MASTER_UNIT = path.join(REPO, 'packaging', 'tsalt-master.service');

/** The node flags the packaged unit starts the agent with (its ExecStart), so the bench measures the agent as shipped. */
export function unitNodeFlags(unit = AGENT_UNIT) {
  const line = /^ExecStart=(.*)$/m.exec(fs.readFileSync(unit, 'utf8'))?.[1] ?? '';
  const words = line.split(/\s+/);
  if (!/(^|\/)node$/.test(words[0] ?? '')) return []; // started through the launcher: no flags
  return words.slice(1, words.findIndex((w) => w.endsWith('tsalt.js')));
}
/** The Environment= settings of a packaged unit (MALLOC_ARENA_MAX=...), applied to the measured process. */
export function unitEnv(unit = AGENT_UNIT) {
  const env = {};
  for (const m of fs.readFileSync(unit, 'utf8').matchAll(/^Environment=(.*)$/gm)) {
    for (const kv of m[1].trim().split(/\s+/)) {
      const i = kv.indexOf('=');
      if (i > 0) env[kv.slice(0, i)] = kv.slice(i + 1);
    }
  }
  return env;
}
