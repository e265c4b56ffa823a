/**
 * The agent's one door to the state engine: what it runs in its own process when it has no job
 * worker (`multiprocessing: False`, several agents in one process), the job worker's own loop,
 * and grains detection (systeminformation). The daemon-only bundle (scripts/bundle.mjs,
 * dist/bundle/agent-daemon.cjs) puts agent/engine-inline-daemon.ts in this module's place, so
 * an idle daemon neither loads nor holds the engine's source.
 */
export { apply } from '../engine/engine.js';
export { runCall } from './calls.js';
export { serveJobs } from './worker.js';
export { detectGrains } from '../engine/grains/detect.js';
