/**
 * Every *.test.ts under test/ belongs to exactly one vitest project (fast, host, fleet, stack),
 * as vitest itself resolves vitest.config.ts: a new directory or file nobody placed would
 * otherwise run in no project (never) or in two (twice, once in parallel where it must not).
 * A rerun project (fleet-pg: fleet's files on PostgreSQL) holds exactly its base's files.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { createVitest } from 'vitest/node';
import { RERUNS } from '../../vitest.config.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

it('every test file is in exactly one project', async () => {
  const files = (fs.readdirSync(path.join(ROOT, 'test'), { recursive: true }) as string[])
    .filter((f) => f.endsWith('.test.ts') && !f.split(path.sep).includes('node_modules'))
    .map((f) => path.join('test', f))
    .sort();
  const vitest = await createVitest('test', { watch: false, root: ROOT, config: path.join(ROOT, 'vitest.config.ts') }, {});
  try {
    const specs = await vitest.globTestSpecifications();
    const owners = new Map<string, string[]>(files.map((f) => [f, []]));
    const reruns = new Map<string, string[]>(Object.keys(RERUNS).map((p) => [p, []]));
    for (const s of specs) {
      const rel = path.relative(ROOT, s.moduleId);
      if (reruns.has(s.project.name)) reruns.get(s.project.name)!.push(rel);
      else owners.set(rel, [...(owners.get(rel) ?? []), s.project.name]);
    }
    const wrong = [...owners].filter(([, p]) => p.length !== 1).map(([f, p]) => `${f}: ${p.length ? p.join(', ') : 'no project'}`);
    expect(wrong).toEqual([]);
    expect(new Set([...owners.values()].flat())).toEqual(new Set(['fast', 'host', 'fleet', 'stack']));
    for (const [rerun, base] of Object.entries(RERUNS)) {
      const baseFiles = [...owners].filter(([, p]) => p.includes(base)).map(([f]) => f).sort();
      expect(baseFiles.length).toBeGreaterThan(0);
      expect({ [rerun]: reruns.get(rerun)!.sort() }).toEqual({ [rerun]: baseFiles });
    }
  } finally {
    await vitest.close();
  }
});
