/**
 * The entry of the job worker's bundle (scripts/bundle.mjs -> dist/bundle/job-worker.cjs), which
 * bin/tsalt.js loads for `tsalt agent --job-worker`, the child process an agent daemon starts
 * for its jobs (agent/job-worker.ts): the engine and the worker's loop, without the master, the
 * daemon's connection, PostgreSQL or metrics; x509 (the agent's first key) and systeminformation
 * (grains) come from the extras next to it when first used, as for the daemon. The daemon lets
 * its worker go when jobs stop, so the first job after a quiet spell starts one again: what it
 * reads, decodes and keeps of its bundle is part of that job's time and of the agent's memory
 * while jobs run.
 * Resolves to 'cli' for anything but the bare worker invocation: the launcher then runs the
 * command from the CLI bundle (which answers a mistaken `--job-worker` from a terminal).
 */
export async function main(argv: string[]): Promise<number | 'cli'> {
  if (argv.length !== 2 || argv[0] !== 'agent' || argv[1] !== '--job-worker' || !process.send) return 'cli';
  const { serveJobs } = await import('../agent/engine-inline.js');
  await serveJobs();
  return 0;
}
