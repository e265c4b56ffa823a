/** What a state function can reach while it runs. One context per state; facts shared per run. */
import type { TreeSource } from '../tree/source.js';
import type { FactCache } from '../run/facts.js';
import type { HostEnv } from '../providers/host.js';
import type { Providers } from '../providers/table.js';
import type { RequisiteKind, RequisiteRef } from '../requisite-kinds.js';

export interface RunContext {
  /** `--test` / `test=True`: check only, change nothing. */
  readonly test: boolean;
  /** `--root DIR`: file states manage `path(name)`; everything else stays the machine's. */
  readonly root: string | undefined;
  /** Map a path as the tree writes it to the path on disk (applies `root`). */
  path(p: string): string;
  /** The state tree at the revision being applied (`salt://` lookups, confined to the tree). */
  readonly tree: TreeSource;
  readonly grains: Readonly<Record<string, unknown>>;
  readonly pillar: Readonly<Record<string, unknown>>;
  readonly opts: Readonly<Record<string, unknown>>;
  /** Run-wide cache for system queries: one `dpkg-query`/`rpm -qa` per run, not one per state. */
  readonly facts: FactCache;
  /** What providers get of the run: facts, opts, grains, path mapping, how programs start. */
  readonly host: HostEnv;
  /** The run's providers (the default tables, or a test's own). */
  readonly providers: Providers;
  /**
   * Data one state hands to later states of the same run (test runs too), keyed by the module
   * that owns it: file.accumulated text read by file.managed and file.blockreplace.
   */
  readonly runData: Map<string, unknown>;
  /** This state's `*_in` requisites as written (file.accumulated must know what it feeds). */
  readonly requisitesIn: Readonly<Partial<Record<RequisiteKind, readonly RequisiteRef[]>>>;
  /** Render a Jinja (Nunjucks) template with grains/pillar/salt/opts plus `vars`. */
  renderTemplate(text: string, vars: Record<string, unknown>, name: string): string;
  /** Identity of the running state, for messages. */
  readonly id: string;
  readonly sls: string;
}
