/**
 * Running one command module: what cli/main.ts (every command) and cli/local-main.ts (the
 * `tsalt local` bundle) do alike around a command's own `run`.
 */
import { UsageError } from './args.js';

export type CommandModule = { run(argv: string[]): Promise<number> };

/** Commands that run until stopped: their output is a log, not something piped into head. */
const DAEMONS = new Set(['master', 'agent']);

/**
 * `tsalt jobs | head`: the reader closed the pipe because it has what it wanted. Stop quietly
 * (as a Unix filter killed by SIGPIPE would, minus the trace); the exit code stays 0 so a
 * `set -o pipefail` script is not failed by its own `head`.
 */
function quietOnClosedPipe(): void {
  for (const s of [process.stdout, process.stderr]) {
    s.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'EPIPE') process.exit(0);
      throw e;
    });
  }
}

/** Runs `tsalt <name> <rest...>`; a bad command line prints the command's usage and gives 1. */
export async function runCommand(name: string, load: () => Promise<CommandModule>, rest: string[]): Promise<number> {
  if (!DAEMONS.has(name)) quietOnClosedPipe();
  try {
    return await (await load()).run(rest);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`tsalt ${name}: ${e.message}\n${e.usage.replace(/\n?$/, '\n')}`);
    return 1;
  }
}
