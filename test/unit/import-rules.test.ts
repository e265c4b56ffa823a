/**
 * The rooms of docs/design.md and what each may import, checked on the source: the test reads
 * the table from docs/design.md, so the rules and the check cannot drift apart. Fails on an
 * import a room may not make, and on any circle between rooms.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** `| room | holds | may import |` rows of the "Rooms" table. */
function rules(): Map<string, Set<string>> {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/design.md'), 'utf8');
  const section = doc.split('## Rooms and what may import what')[1]!.split('\n## ')[0]!;
  const out = new Map<string, Set<string>>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    if (cells.length < 5 || cells[1] === 'room' || /^-+$/.test(cells[1]!)) continue;
    const may = cells[3]!.startsWith('(') ? [] : cells[3]!.split(',').map((s) => s.trim());
    out.set(cells[1]!, new Set(may));
  }
  return out;
}

/** Every relative import (static, re-export, dynamic) from a room's sources, as room -> room. */
function imports(rooms: string[]): Array<{ from: string; to: string; file: string; spec: string }> {
  const out: Array<{ from: string; to: string; file: string; spec: string }> = [];
  for (const room of rooms) {
    for (const f of fs.readdirSync(path.join(ROOT, room), { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      const file = path.join(room, f);
      const src = fs.readFileSync(path.join(ROOT, file), 'utf8');
      // `import x from '..'`, `export {x} from '..'`, `import '..'`, `import('..')`
      const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]|(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g;
      for (const m of src.matchAll(re)) {
        const spec = (m[1] ?? m[2] ?? m[3])!;
        const to = path.normalize(path.join(path.dirname(file), spec)).split(path.sep)[0]!;
        if (to !== room) out.push({ from: room, to, file, spec });
      }
    }
  }
  return out;
}

it('docs/design.md names the six rooms', () => {
  expect([...rules().keys()]).toEqual(['protocol', 'core', 'engine', 'agent', 'master', 'cli']);
});

it('every import between rooms is one docs/design.md allows', () => {
  const r = rules();
  const found = imports([...r.keys()]);
  expect(found.length).toBeGreaterThan(50); // the scan sees the imports there are
  const bad = found.filter((i) => !r.get(i.from)!.has(i.to)).map((i) => `${i.file}: ${i.from} -> ${i.to} ('${i.spec}')`);
  expect(bad).toEqual([]);
});

it('no circle between rooms, and the ones the design forbids by name', () => {
  const r = rules();
  const edges = new Map<string, Set<string>>([...r.keys()].map((k) => [k, new Set()]));
  for (const i of imports([...r.keys()])) edges.get(i.from)!.add(i.to);
  const circles: string[] = [];
  const visit = (n: string, trail: string[]) => {
    for (const m of edges.get(n) ?? []) {
      if (trail.includes(m)) circles.push([...trail.slice(trail.indexOf(m)), m].join(' -> '));
      else visit(m, [...trail, m]);
    }
  };
  for (const n of edges.keys()) visit(n, [n]);
  expect(circles).toEqual([]);
  for (const [a, b] of <Array<[string, string]>>[['master', 'agent'], ['agent', 'master'], ['engine', 'master'], ['engine', 'agent'], ['core', 'engine'], ['protocol', 'core']]) {
    expect(edges.get(a)!.has(b), `${a} imports ${b}`).toBe(false);
  }
});

it('zod is imported as a namespace: `import { z }` names one object holding all of zod, which the bundler must keep whole', () => {
  // `import * as z from 'zod'` lets esbuild drop what no module reaches (docs/benchmarks.md, "The
  // ninth pass": 158 KB of the `tsalt local` bundle, half of the agent daemon's)
  const found: string[] = [];
  for (const room of rules().keys()) {
    for (const f of fs.readdirSync(path.join(ROOT, room), { recursive: true }) as string[]) {
      if (!f.endsWith('.ts')) continue;
      const src = fs.readFileSync(path.join(ROOT, room, f), 'utf8');
      if (/from\s+['"]zod(\/mini)?['"]/.test(src)) found.push(f);
      for (const m of src.matchAll(/^\s*import\s+(?!type\b)(?!\*\s+as\s)[^;]*?from\s+['"](zod(?:\/[\w/]+)?)['"]/gm)) found.push(`BAD ${room}/${f}: ${m[0].trim()}`);
    }
  }
  expect(found.filter((x) => !x.startsWith('BAD ')).length).toBeGreaterThan(40); // the scan sees zod's importers
  expect(found.filter((x) => x.startsWith('BAD '))).toEqual([]);
});
