/**
 * What a provider may use of the host and the run: a small environment, not the state's whole
 * RunContext. The run base builds one per run from its facts, options and grains; fixture tests
 * build one whose `exec` replays recorded command output and records the commands run.
 */
import path from 'node:path';
import { exec as realExec, type ExecOptions, type ExecResult } from '../run/exec.js';
import { FactCache } from '../run/facts.js';
import type { PkgDbAnswerCache } from './pkg/db-answer-cache.js';

export type Exec = (argv: readonly string[], opts?: ExecOptions) => Promise<ExecResult>;

export interface HostEnv {
  /** Run-wide memo of system queries (one dpkg-query per run). */
  readonly facts: FactCache;
  /** Agent options (opts win over grains where both may say something). */
  readonly opts: Readonly<Record<string, unknown>>;
  readonly grains: Readonly<Record<string, unknown>>;
  /** `--root DIR` mapping of a path as the tree writes it. */
  path(p: string): string;
  /** How programs start: the real exec, or a recording one in fixture tests. */
  readonly exec: Exec;
  /** What this process did once and remembers across runs (refresh-once keys). */
  readonly memory: Set<string>;
  /** The installed-packages answer kept across runs (./pkg/db-answer-cache.ts); none: always query. */
  readonly pkgDbCache?: PkgDbAnswerCache;
}

/** The process's memory for the default environments: an agent's runs share it. */
const processMemory = new Set<string>();

export function makeHostEnv(o: Partial<Omit<HostEnv, 'path'>> & { root?: string } = {}): HostEnv {
  const root = o.root ? path.resolve(o.root) : undefined;
  return {
    facts: o.facts ?? new FactCache(),
    opts: o.opts ?? {},
    grains: o.grains ?? {},
    path: (p) => (root ? path.join(root, path.resolve('/', p)) : p),
    exec: o.exec ?? realExec,
    memory: o.memory ?? processMemory,
    ...(o.pkgDbCache ? { pkgDbCache: o.pkgDbCache } : {}),
  };
}

/**
 * A failure a provider reports in its own words (the package manager's or init system's
 * message). The state shows the message as it is, like a StateFailure.
 */
export class ProviderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProviderError';
  }
}
