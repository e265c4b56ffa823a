/**
 * agent/engine-inline.ts as the daemon-only bundle has it (scripts/bundle.mjs swaps it in): that
 * bundle runs only a daemon with a job worker (cli/agent-daemon.ts hands anything else to the
 * CLI bundle), so the engine is never run in it. Grains detection stays: the daemon detects
 * them itself when its worker cannot (systeminformation is then required from the extra bundle
 * next to it, dist/bundle/systeminformation.cjs).
 */
import type * as Inline from './engine-inline.js';

export { detectGrains } from '../engine/grains/detect.js';

function notHere(what: string): never {
  throw new Error(`${what} runs in the agent's job worker, not in the daemon-only bundle`);
}
export const apply: typeof Inline.apply = () => notHere('a state run');
export const runCall: typeof Inline.runCall = () => notHere('an engine call');
export const serveJobs: typeof Inline.serveJobs = () => notHere('the job worker');
