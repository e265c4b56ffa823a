/**
 * The Grafana dashboard shipped with the stack (states/grafana/files/tsalt-fleet.json): every
 * panel's query names only metrics the master exports (read from a real scrape of MasterMetrics
 * and ReleaseMetrics on one registry, as the master builds them), every exported metric has a panel,
 * the panels are well formed, and the grafana state provisions the file where its dashboard
 * provider looks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { loadSaltYaml } from '../../core/salt-yaml.js';
import { describe, expect, it } from 'vitest';
import { MasterMetrics } from '../../master/metrics.js';
import { ReleaseMetrics } from '../../master/release-metrics.js';
import { SqliteStore as Store } from '../../master/store-sqlite.js';
import { tempDir } from '../helpers/harness.js';

const root = path.resolve(import.meta.dirname, '../..');
const dashFile = path.join(root, 'states/grafana/files/tsalt-fleet.json');

interface Panel {
  id: number;
  type: string;
  title: string;
  datasource: { type: string; uid: string };
  gridPos: { x: number; y: number; w: number; h: number };
  targets: { refId: string; expr: string; datasource: { type: string; uid: string } }[];
}

/**
 * Every series name the master's endpoint exposes (histograms: _bucket, _sum, _count): its own
 * metrics and the release metrics, registered on the same registry as the master does.
 */
async function exportedSeries(): Promise<Set<string>> {
  const m = new MasterMetrics();
  const store = new Store(path.join(tempDir(), 'master.db'));
  try {
    await store.setDesired('b'.repeat(40));
    new ReleaseMetrics(m.registry, store, () => new Set());
    m.jobStarted('1', 'apply');
    m.jobCompleted('1');
    return seriesOf(await m.render({ agents: () => [{ key_state: 'accepted', connected: true }], revision: async () => 'a'.repeat(40) }));
  } finally {
    await store.close();
  }
}

function seriesOf(text: string): Set<string> {
  const names = new Set<string>();
  for (const line of text.split('\n')) {
    const t = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (!t) continue;
    names.add(t[1]!);
    if (t[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) names.add(t[1]! + s);
  }
  return names;
}

/** Metric names in a PromQL expression: identifiers that are not functions, keywords, labels or [ranges]. */
function metricNames(expr: string): string[] {
  const noStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""').replace(/\{[^}]*\}/g, '{}').replace(/\[[^\]]*\]/g, '[]');
  const words = [...noStrings.matchAll(/[A-Za-z_:][A-Za-z0-9_:]*/g)].map((m) => ({ w: m[0], before: noStrings.slice(0, m.index).trimEnd(), after: noStrings.slice(m.index! + m[0].length).trimStart() }));
  const keywords = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset']);
  const out: string[] = [];
  for (let i = 0; i < words.length; i++) {
    const { w, before, after } = words[i]!;
    if (after.startsWith('(')) continue; // a function or aggregation
    if (/^(by|without)\b/.test(after)) continue; // `sum by (x) (...)`: an aggregation
    if (keywords.has(w)) continue;
    if (/\b(by|without|on|ignoring)\s*\([^)]*$/.test(before)) continue; // a label list
    out.push(w);
  }
  return out;
}

describe('the tsalt Grafana dashboard', () => {
  const dash = JSON.parse(fs.readFileSync(dashFile, 'utf8')) as { uid: string; panels: Panel[]; templating: { list: { name: string; type: string }[] } };

  it('every panel query names metrics the master exports, and at least one', async () => {
    const exported = await exportedSeries();
    expect(exported.size).toBeGreaterThan(5);
    // both sets are in the scrape: the master's own and the release metrics
    expect([...exported]).toEqual(expect.arrayContaining(['tsalt_agents', 'tsalt_job_duration_seconds', 'tsalt_desired_revision_info', 'tsalt_agents_behind', 'tsalt_rollouts_total', 'tsalt_state_changes_by_intent_total']));
    const used = new Set<string>();
    for (const p of dash.panels) {
      expect(p.targets.length, p.title).toBeGreaterThan(0);
      for (const t of p.targets) {
        const names = metricNames(t.expr);
        expect(names.length, `${p.title}: ${t.expr}`).toBeGreaterThan(0);
        for (const n of names) {
          expect(exported, `${p.title}: ${t.expr} names '${n}'`).toContain(n);
          used.add(n.replace(/_(bucket|sum|count)$/, ''));
        }
      }
    }
    // every metric the master has is on the dashboard
    const bases = [...exported].filter((n) => !/_(bucket|sum|count)$/.test(n) || !exported.has(n.replace(/_(bucket|sum|count)$/, '')));
    expect(bases.filter((n) => !used.has(n))).toEqual([]);
  });

  it('the name check catches a metric the master does not export', async () => {
    expect(metricNames('sum by (state) (tsalt_agents{state="connected"})')).toEqual(['tsalt_agents']);
    expect(metricNames('histogram_quantile(0.9, sum by (le) (rate(tsalt_job_duration_seconds_bucket[$__rate_interval])))')).toEqual(['tsalt_job_duration_seconds_bucket']);
    expect(metricNames('time() - tsalt_master_start_time_seconds')).toEqual(['tsalt_master_start_time_seconds']);
    expect(metricNames('rate(tsalt_rollouts_total[5m])')).toEqual(['tsalt_rollouts_total']);
  });

  it('panels are well formed: unique ids, the Prometheus data source variable, on the grid', async () => {
    expect(dash.uid).toBe('tsalt-fleet');
    expect(dash.templating.list).toContainEqual(expect.objectContaining({ name: 'datasource', type: 'datasource' }));
    const ids = dash.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dash.panels) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      for (const t of p.targets) expect(t.datasource).toEqual(p.datasource);
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
    }
  });

  it('the grafana state provisions it where the dashboard provider reads', async () => {
    const sls = fs.readFileSync(path.join(root, 'states/grafana/init.sls'), 'utf8');
    const provider = loadSaltYaml(fs.readFileSync(path.join(root, 'states/grafana/files/dashboards.yaml'), 'utf8')) as { providers: { options: { path: string } }[] };
    const dir = provider.providers[0]!.options.path;
    expect(sls).toContain(`- name: ${dir}/tsalt-fleet.json\n    - source: salt://grafana/files/tsalt-fleet.json`);
    expect(sls).toMatch(/- name: \{\{ grafana\.provisioning \}\}\/dashboards\/tsalt\.yaml\n\s+- source: salt:\/\/grafana\/files\/dashboards\.yaml/);
    expect(sls).toMatch(/watch:[\s\S]*- file: grafana-dashboard-tsalt/);
  });
});
