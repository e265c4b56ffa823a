/**
 * Pillar per agent, rendered on the master from the pillar top.sls of the job's revision with
 * that agent's id and grains. The result goes into that agent's job and nowhere else; the
 * pillar tree itself is never bundled or served.
 */
import { isPureSaltCall, renderPillarWith } from '../engine/compile/pillar.js';
import { makeRenderBase } from '../engine/render/render-base.js';
import { matchTop, readTop, type TopFile } from '../engine/compile/top.js';
import { normaliseTreePath, TreeError, type TreeSource } from '../engine/tree/source.js';
import type { Data } from '../engine/render/salt-functions.js';
import type { BundleEntry } from '../engine/tree/bundle.js';

/** Pillar for one agent from a revision's pillar tree (none: empty pillar). */
export async function pillarFor(tree: TreeSource | undefined, id: string, grains: Data): Promise<Data> {
  if (!tree) return {};
  // only a tree held in memory is fixed: a live directory may change between two renders
  if (!(tree instanceof MemoryTree)) return renderPillarWith(tree, id, { ...grains, id: grains.id ?? id });
  let cache = caches.get(tree);
  if (!cache) caches.set(tree, (cache = new PillarCache(tree)));
  return cache.render(id, grains);
}

/** One cache per pillar tree object: a revision's MemoryTree lives as long as its snapshot. */
const caches = new WeakMap<TreeSource, PillarCache>();

/**
 * The pillar tree a job renders from, read once per snapshot: a revision's tree is already in
 * memory; a plain pillar directory is read into memory here, so every agent of the job sees
 * the same files (and the cache may share renders between them). A directory that cannot be
 * read whole (an unreadable file, a link out of the tree) stays live and is rendered uncached.
 */
export function pillarTreeOf(snap: { pillar(): TreeSource | undefined }): Promise<TreeSource | undefined> {
  let p = frozen.get(snap);
  if (!p) frozen.set(snap, (p = freeze(snap.pillar())));
  return p;
}
const frozen = new WeakMap<object, Promise<TreeSource | undefined>>();

async function freeze(live: TreeSource | undefined): Promise<TreeSource | undefined> {
  if (!live || live instanceof MemoryTree) return live;
  try {
    const files = await live.list('');
    return new MemoryTree(live.label, files.map((path): BundleEntry => ({ path, data: live.readSync(path), executable: false })));
  } catch {
    return live;
  }
}

/** A render's dependencies: the grains keys it read, with their values as JSON. */
interface Entry {
  /** the grains keys read, sorted, joined: entries with the same keys share a map */
  values: Map<string, Promise<Data>>;
  keys: string[];
}

const ABSENT = '\0absent';
const valueOf = (grains: Data, k: string) => (Object.prototype.hasOwnProperty.call(grains, k) ? JSON.stringify(grains[k]) ?? ABSENT : ABSENT);

/**
 * Pillar renders shared between agents whose render inputs are equal. A render sees the pillar
 * tree (fixed per cache), the SLS list top.sls gives the agent, and the grains (id included)
 * its templates read. Each render runs with a view of the grains that notes every key read;
 * its result is kept under (SLS list, those keys' values), and another agent gets it only when
 * its own values for those keys are equal. A render that reads `id`, enumerates the grains,
 * calls a salt function whose result is not a function of its inputs (cmd.run, file.read,
 * random.*...) or whose tree uses the `random` filter is never shared. Shared results are
 * frozen: no caller can change another agent's pillar.
 */
export class PillarCache {
  /** SLS list (JSON) -> key set -> entry */
  private readonly bySls = new Map<string, Map<string, Entry>>();
  /** top.sls rendered and parsed: key set -> the grains keys its render read, and the result by their values */
  private readonly tops = new Map<string, { keys: string[]; values: Map<string, TopFile> }>();
  private shareable: Promise<boolean> | undefined;
  /** SLS list (JSON) -> the last render of that list in flight: renders of one list run one after the other */
  private readonly inflight = new Map<string, Promise<unknown>>();
  /** renders done and renders shared, for tests and the bench */
  readonly stats = { rendered: 0, shared: 0 };
  /** top.sls renders done (topFor), for tests */
  readonly topStats = { rendered: 0 };

  constructor(private readonly tree: TreeSource) {}

  async render(id: string, grainsIn: Data): Promise<Data> {
    const grains: Data = { ...grainsIn, id: grainsIn.id ?? id };
    if (!this.tree.existsSync('top.sls')) return {};
    if (!(await this.canShare())) {
      this.stats.rendered++;
      return renderPillarWith(this.tree, id, grains);
    }
    // top.sls matches on the id (globs) as well as grains: the SLS list it gives is the input
    const sls = JSON.stringify(matchTop(this.topFor(grains), { id, grains }));
    // a job asks for every agent's pillar at once: each render of a list waits for the one
    // before it, so that agents whose inputs equal a render in flight share it (instead of all
    // missing the cache together and rendering each their own)
    const mine = (this.inflight.get(sls) ?? Promise.resolve()).then(() => this.renderList(sls, id, grains));
    const settled = mine.then(
      () => undefined,
      () => undefined,
    );
    this.inflight.set(sls, settled);
    void settled.then(() => this.inflight.get(sls) === settled && this.inflight.delete(sls));
    return mine;
  }

  private async renderList(sls: string, id: string, grains: Data): Promise<Data> {
    let sets = this.bySls.get(sls);
    if (!sets) this.bySls.set(sls, (sets = new Map()));
    for (const e of sets.values()) {
      const hit = e.values.get(e.keys.map((k) => valueOf(grains, k)).join('\0'));
      if (hit) {
        this.stats.shared++;
        return hit;
      }
    }
    const seen = watchGrains(grains);
    const { read, view } = seen;
    let impure = false;
    this.stats.rendered++;
    const result = renderPillarWith(this.tree, id, view, {}, { impure: () => (impure = true) }).then(deepFreeze);
    // the render is synchronous inside: by now every read has happened
    await result.catch(() => undefined);
    if (seen.whole || impure || read.has('id')) return result;
    const keys = [...read].sort();
    const setKey = keys.join('\0');
    let e = sets.get(setKey);
    if (!e) sets.set(setKey, (e = { keys, values: new Map() }));
    e.values.set(keys.map((k) => valueOf(grains, k)).join('\0'), result);
    return result;
  }

  /**
   * top.sls rendered and parsed for these grains: shared, like the renders, between agents whose
   * values of the grains keys its template read are equal (a plain top file reads none: one
   * render per tree); a render that reads `id`, enumerates the grains or calls an impure salt
   * function is this agent's alone. Matching the targets (id globs included) stays per agent.
   */
  private topFor(grains: Data): TopFile {
    for (const e of this.tops.values()) {
      const hit = e.values.get(e.keys.map((k) => valueOf(grains, k)).join('\0'));
      if (hit) return hit;
    }
    const seen = watchGrains(grains);
    const { read, view } = seen;
    let impure = false;
    this.topStats.rendered++;
    const top = readTop(makeRenderBase({ tree: this.tree, grains: view, pillar: {}, onSaltCall: (name) => void (isPureSaltCall(name) || (impure = true)) }));
    if (seen.whole || impure || read.has('id')) return top;
    const keys = [...read].sort();
    const setKey = keys.join('\0');
    let e = this.tops.get(setKey);
    if (!e) this.tops.set(setKey, (e = { keys, values: new Map() }));
    e.values.set(keys.map((k) => valueOf(grains, k)).join('\0'), top);
    return top;
  }

  /** The `random` filter gives each render its own pick: such a tree is rendered per agent. */
  private canShare(): Promise<boolean> {
    // one look for all the agents asking at once (looked at again if it failed)
    if (!this.shareable) {
      const p = this.tree.list('').then((files) => !files.some((f) => /\brandom\b/.test(this.tree.readSync(f).toString('utf8'))));
      p.catch(() => this.shareable === p && (this.shareable = undefined));
      this.shareable = p;
    }
    return this.shareable;
  }
}

function deepFreeze<T>(v: T): T {
  if (v && typeof v === 'object' && !Object.isFrozen(v)) {
    Object.freeze(v);
    for (const x of Object.values(v)) deepFreeze(x);
  }
  return v;
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

/** A view of the grains that notes which keys a render read, and whether it enumerated them all. */
function watchGrains(grains: Data): { view: Data; read: Set<string>; whole: boolean } {
  const seen = { view: grains, read: new Set<string>(), whole: false };
  const note = (k: string | symbol) => typeof k === 'string' && seen.read.add(k);
  seen.view = new Proxy(grains, {
    get: (t, k, r) => (note(k), Reflect.get(t, k, r)),
    has: (t, k) => (note(k), Reflect.has(t, k)),
    getOwnPropertyDescriptor: (t, k) => (note(k), Reflect.getOwnPropertyDescriptor(t, k)),
    ownKeys: (t) => ((seen.whole = true), Reflect.ownKeys(t)),
  });
  return seen;
}
