/**
 * The last-resort net of the two daemons (`tsalt master`, `tsalt agent`): a rejected promise
 * nobody handled is logged with its stack at error level and the process goes on. On Node 20 it
 * would end the process, and a long-lived daemon must not end for one fault (the agent's return
 * spool on a full disk once threw inside a fire-and-forget call and took the agent down). Every
 * such path is meant to be handled where it happens; a line from here is a bug to fix there.
 *
 * Uncaught exceptions (synchronous throws) are left to Node's default: the process ends and
 * systemd restarts it. After a throw that unwound an arbitrary stack the process's state is
 * unknown (half-updated maps, a connection half set up); a rejection unwinds only its own async
 * function, whose caller did not wait for it.
 */
import { inspect } from 'node:util';
import type { Logger } from './log.js';

/** The handler: logs `reason` (its stack) and calls `count` (the master's metric); never throws. */
export function unhandledRejectionHandler(log: Logger, count?: () => void): (reason: unknown) => void {
  return (reason) => {
    try {
      count?.();
    } catch {
      // a metric must not stop the line below
    }
    const what = reason instanceof Error ? (reason.stack ?? `${reason.name}: ${reason.message}`) : inspect(reason, { depth: 2, breakLength: Infinity });
    try {
      log.error(`unhandled promise rejection (a bug: a fault not handled where it happened); the process goes on: ${what}`);
    } catch {
      // stdout gone (EPIPE): nothing left to tell, and the process still goes on
    }
  };
}

/** Installs the net for this process; the function returned removes it. */
export function installUnhandledRejectionNet(log: Logger, count?: () => void): () => void {
  const h = unhandledRejectionHandler(log, count);
  process.on('unhandledRejection', h);
  return () => process.off('unhandledRejection', h);
}
