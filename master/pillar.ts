/**
 * Pillar per agent, rendered on the master from pillar/top.sls with that agent's id and
 * grains. The result goes into that agent's job and nowhere else; the pillar tree itself is
 * never bundled or served.
 */
import fs from 'node:fs';
import { LocalTree } from '../engine/tree/local.js';
import { renderPillar } from '../engine/compile/pillar.js';
import type { Data } from '../engine/render/salt-functions.js';

export class PillarSource {
  constructor(readonly dir: string) {}

  /** Rendered fresh for every job: the pillar tree may have changed since the last one. */
  async forAgent(id: string, grains: Data): Promise<Data> {
    if (!fs.existsSync(this.dir)) return {};
    return renderPillar(new LocalTree(this.dir), id, grains);
  }
}
