/**
 * The entry of the `tsalt local` bundle (scripts/bundle.mjs -> dist/bundle/local.cjs), which
 * bin/tsalt.js loads for `tsalt local ...`: the engine and the command, without the master,
 * the agent's connection, PostgreSQL, TLS certificates or metrics. A masterless run starts a
 * new process every time, and on a machine where every fresh page of memory costs a fault the
 * bundle's size is start-up time: 2.7 MB read, decoded and deserialised for a run that uses a
 * third of it (docs/benchmarks.md, "The eighth pass").
 * Resolves to 'cli' for any other command: the launcher then runs it from the CLI bundle.
 */
// first, before any schema is built: a process that parses each state's arguments a few times
// and exits never repays the parser zod would compile per object schema (`new Function`, outside
// the code cache)
import './zod-jitless.js';
import { runCommand } from './run-command.js';

export async function main(argv: string[]): Promise<number | 'cli'> {
  const [name, ...rest] = argv;
  if (name !== 'local') return 'cli';
  return runCommand(name, () => import('./commands/local.js'), rest);
}
