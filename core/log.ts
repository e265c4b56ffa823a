/**
 * One line per event on stdout (journald adds its own timestamp, but files and terminals
 * need one). Callers pass identifiers and counts, never pillar, keys or command output.
 */
import * as z from 'zod/mini';

export const LogLevelSchema = z.enum(['error', 'warn', 'info', 'debug']);
export type LogLevel = z.infer<typeof LogLevelSchema>;
const rank: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
  child(component: string): Logger;
}

export function makeLogger(level: LogLevel, component: string, out: (line: string) => void = (l) => process.stdout.write(l)): Logger {
  const emit = (lv: LogLevel, msg: string) => {
    if (rank[lv] > rank[level]) return;
    // one event, one line, whatever the message holds
    out(`${new Date().toISOString()} ${lv.padEnd(5)} ${component}: ${msg.replace(/[\r\n]+/g, ' ')}\n`);
  };
  return {
    error: (m) => emit('error', m),
    warn: (m) => emit('warn', m),
    info: (m) => emit('info', m),
    debug: (m) => emit('debug', m),
    child: (c) => makeLogger(level, `${component}/${c}`, out),
  };
}

export const silentLogger: Logger = {
  error() {},
  warn() {},
  info() {},
  debug() {},
  child: () => silentLogger,
};
