/** Write a state tree from a {path: content} object and run the real engine on it. */
import fs from 'node:fs';
import path from 'node:path';
import { apply, compile, type EngineRequest } from '../../engine/engine.js';
import { LocalTree } from '../../engine/tree/local.js';
import { bundleHash, toWire, type BundleEntry } from '../../engine/tree/bundle.js';
import { tempDir } from './harness.js';

export function writeTree(files: Record<string, string>, dir = tempDir('tsalt-tree-')): string {
  for (const [p, c] of Object.entries(files)) {
    const abs = path.join(dir, p);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, c);
  }
  return dir;
}

type Opts = Partial<Omit<EngineRequest, 'tree'>>;

function req(dir: string, o: Opts): EngineRequest {
  return {
    tree: new LocalTree(dir),
    id: o.id ?? 'host1',
    grains: o.grains ?? { id: o.id ?? 'host1', os_family: 'Debian', roles: ['web'] },
    pillar: o.pillar ?? {},
    sls: o.sls,
    test: o.test ?? false,
    root: o.root,
    onResult: o.onResult,
  };
}

export function applyTree(files: Record<string, string> | string, o: Opts = {}) {
  const dir = typeof files === 'string' ? files : writeTree(files);
  return apply(req(dir, o));
}

export function compileTree(files: Record<string, string> | string, o: Opts = {}) {
  const dir = typeof files === 'string' ? files : writeTree(files);
  return compile(req(dir, o));
}

/** results keyed by id (first result of each id) */
export function byId<T extends { id: string }>(results: T[]): Record<string, T> {
  const out: Record<string, T> = {};
  for (const r of results) out[r.id] ??= r;
  return out;
}

/** The bundle message a master sends for these files (revision r1): what an agent's BundleCache stores. */
export function bundleMessage(files: Record<string, string>) {
  const entries: BundleEntry[] = Object.entries(files).map(([p, t]) => ({ path: p, data: Buffer.from(t), executable: false }));
  const hash = bundleHash(entries);
  return { type: 'bundle' as const, hash, revision: 'r1', files: toWire(entries) };
}
