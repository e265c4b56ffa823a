/**
 * The entry of the daemon-only bundle (scripts/bundle.mjs -> dist/bundle/agent-daemon.cjs),
 * which bin/tsalt.js loads for `tsalt agent`: the connection, the light calls, the message
 * schemas and the config, without the engine, nunjucks or systeminformation, which run in the
 * daemon's job worker (started from its own bundle, job-worker.cjs). An agent idles most of its
 * life: what it never runs should not sit in its memory (docs/benchmarks.md, "Agent idle RSS").
 * Resolves to 'cli' when this process would run the engine itself (the job worker, jobs run
 * inline): the launcher then runs the command from the CLI bundle.
 */
// first: before any schema is built
import './zod-jitless.js';
import { UsageError } from './args.js';
import { EngineNeeded, run } from './commands/agent.js';

export async function main(argv: string[]): Promise<number | 'cli'> {
  try {
    return await run(argv, { withoutEngine: true });
  } catch (e) {
    if (e instanceof EngineNeeded) return 'cli';
    if (!(e instanceof UsageError)) throw e;
    // as cli/main.ts answers a bad command line
    process.stderr.write(`tsalt agent: ${e.message}\n${e.usage.replace(/\n?$/, '\n')}`);
    return 1;
  }
}
