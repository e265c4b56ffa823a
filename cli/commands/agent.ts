/**
 * `tsalt agent [--config FILE]... [--log-level L]`: run the agent until SIGTERM/SIGINT.
 * Several --config flags run several agents in one process (load tests on one machine).
 */
import { parseCommand } from '../args.js';
import { loadAgentConfig, type AgentConfig } from '../../agent/connection/config.js';
import { makeLogger, LogLevelSchema } from '../../core/log.js';
import { installUnhandledRejectionNet } from '../../core/last-resort.js';

/**
 * Thrown by run() in the daemon-only bundle (cli/agent-daemon.ts) when this process would run
 * the engine itself: the launcher then runs the command from the CLI bundle.
 */
export class EngineNeeded extends Error {}

const USAGE = 'usage: tsalt agent [--config /etc/tsalt/agent.yaml]... [--log-level error|warn|info|debug]\n';

export async function run(argv: string[], o: { withoutEngine?: boolean } = {}): Promise<number> {
  const { values } = parseCommand(
    argv,
    {
      config: { type: 'string', short: 'c', multiple: true },
      'log-level': { type: 'string', short: 'l' },
      help: { type: 'boolean', short: 'h' },
      // internal: the job worker the agent starts (agent/job-worker.ts), not for operators
      'job-worker': { type: 'boolean' },
    },
    USAGE,
    false,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values['job-worker']) {
    if (o.withoutEngine) throw new EngineNeeded('the job worker');
    if (!process.send) {
      process.stderr.write('tsalt agent: --job-worker is the process the agent starts for its jobs, not a command\n');
      return 1;
    }
    await (await import('../../agent/engine-inline.js')).serveJobs();
    return 0;
  }
  let cfgs: AgentConfig[];
  try {
    cfgs = (values.config?.length ? values.config : [undefined]).map((f) => loadAgentConfig(f));
  } catch (e) {
    process.stderr.write(`tsalt agent: ${(e as Error).message}\n`);
    return 1;
  }
  // one process running many agents (load tests) runs their jobs inline: a worker each would be a process each
  const multiprocessing = (c: AgentConfig) => c.multiprocessing ?? cfgs.length === 1;
  if (o.withoutEngine && !cfgs.every(multiprocessing)) throw new EngineNeeded('jobs run in this process');
  const { AgentDaemon } = await import('../../agent/daemon.js');
  const levels = cfgs.map((c) => LogLevelSchema.parse(values['log-level'] ?? c.log_level));
  const daemons = cfgs.map((c, i) => new AgentDaemon(c, makeLogger(levels[i]!, `agent ${c.id}`), { multiprocessingDefault: cfgs.length === 1 }));
  // from here a rejected promise nobody handled is logged, not the end of the agent (of every
  // agent of this process); an uncaught exception still ends it (core/last-resort.ts says why).
  // The job worker has no net: see agent/worker.ts.
  installUnhandledRejectionNet(makeLogger(levels[0]!, cfgs.length === 1 ? `agent ${cfgs[0]!.id}` : 'agent'));
  try {
    for (const d of daemons) await d.start();
  } catch (e) {
    process.stderr.write(`tsalt agent: ${(e as Error).message}\n`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    process.once('SIGTERM', () => resolve());
    process.once('SIGINT', () => resolve());
  });
  // a run in progress gets a moment to finish; its return stays spooled either way
  await Promise.all(daemons.map((d) => d.stop(10_000)));
  return 0;
}
