/**
 * Pillar per agent, rendered on the master from the pillar top.sls of the job's revision with
 * that agent's id and grains. The result goes into that agent's job and nowhere else; the
 * pillar tree itself is never bundled or served.
 */
import { renderPillar } from '../engine/compile/pillar.js';
import { normaliseTreePath, TreeError, type TreeSource } from '../engine/tree/source.js';
import type { Data } from '../engine/render/salt-functions.js';
import type { BundleEntry } from '../engine/tree/bundle.js';

/** Pillar for one agent from a revision's pillar tree (none: empty pillar). */
export async function pillarFor(tree: TreeSource | undefined, id: string, grains: Data): Promise<Data> {
  if (!tree) return {};
  return renderPillar(tree, id, grains);
}

/** A tree held in memory: the pillar files of one commit, read from git objects. */
export class MemoryTree implements TreeSource {
  private readonly files: Map<string, Buffer>;

  constructor(
    readonly label: string,
    entries: readonly BundleEntry[],
  ) {
    this.files = new Map(entries.map((e) => [e.path, e.data]));
  }

  readSync(p: string): Buffer {
    const rel = normaliseTreePath(p);
    const data = this.files.get(rel);
    if (data === undefined) throw new TreeError(`salt://${rel} not found in ${this.label}`);
    return data;
  }

  async read(p: string): Promise<Buffer> {
    return this.readSync(p);
  }

  existsSync(p: string): boolean {
    return this.files.has(normaliseTreePath(p));
  }

  async exists(p: string): Promise<boolean> {
    return this.existsSync(p);
  }

  async list(dir: string): Promise<string[]> {
    const base = normaliseTreePath(dir);
    return [...this.files.keys()].filter((f) => !base || f.startsWith(`${base}/`)).sort();
  }
}
