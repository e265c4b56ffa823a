/** `tsalt master [--config FILE] [--log-level L]`: run the master until SIGTERM/SIGINT. */
import { parseCommand } from '../args.js';
import { loadMasterConfig } from '../../master/config.js';
import { makeLogger, LogLevelSchema } from '../../core/log.js';
import { installUnhandledRejectionNet } from '../../core/last-resort.js';
import type { RunningMaster } from '../../master/master.js';

const USAGE = 'usage: tsalt master [--config /etc/tsalt/master.yaml] [--log-level error|warn|info|debug]\n';

export async function run(argv: string[]): Promise<number> {
  const { values } = parseCommand(
    argv,
    { config: { type: 'string', short: 'c' }, 'log-level': { type: 'string', short: 'l' }, help: { type: 'boolean', short: 'h' } },
    USAGE,
    false,
  );
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let cfg;
  try {
    cfg = loadMasterConfig(values.config);
  } catch (e) {
    process.stderr.write(`tsalt master: ${(e as Error).message}\n`);
    return 1;
  }
  const level = LogLevelSchema.parse(values['log-level'] ?? cfg.log_level);
  const log = makeLogger(level, 'master');
  // from here a rejected promise nobody handled is logged (and counted once the metrics exist),
  // not the end of the master; an uncaught exception still ends it (core/last-resort.ts says why)
  let m: RunningMaster | undefined;
  installUnhandledRejectionNet(log, () => m?.unhandledRejection());
  const { startMaster } = await import('../../master/master.js');
  try {
    m = await startMaster(cfg, log);
  } catch (e) {
    log.error(`cannot start: ${(e as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (sig: string) => {
      log.info(`${sig}: shutting down`);
      resolve();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
  await m.close({ exiting: true });
  // the agents' connections were left open for the kernel to close as the process ends (their
  // close frames written, the store closed): end it once main has returned (ws's closing
  // timers and the open sockets would otherwise keep it up)
  setImmediate(() => process.exit()).unref();
  return 0;
}
