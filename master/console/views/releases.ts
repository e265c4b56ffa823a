/**
 * Releases: the revisions timeline (commit, author, subject, outcome), the running (or last)
 * rollout batch by batch with its verify checks, and, per revision, what a rollback to it would
 * change: the state tree's diff from the desired revision, the agents that would move, and the
 * latest `--test` run of that revision (the console starts no job; the page says how to run one).
 */
import type { RevisionRow, RolloutRow } from '../../store.js';
import { agentSync, type AgentSync } from '../../release-handlers.js';
import { href, html, type Html } from '../html.js';
import type { ConsoleQueries, JobSummary } from '../queries.js';
import type { ConsoleReleases, ConsoleSource } from '../source.js';
import { treeChanges } from '../tree-diff.js';
import { diffBlock } from './changes.js';
import { between, counts, rev, startedBy, time } from './format.js';

const OUTCOME_CLASS: Record<string, string> = {
  seen: 'down',
  rolling_out: 's-running',
  rolled_out: 's-done',
  failed: 's-failed',
  rolled_back: 'i-corrective',
  refused: 's-failed',
};

export const SYNC_WORDS: Record<AgentSync, 'in sync' | 'behind' | 'failed' | 'held'> = { in_sync: 'in sync', behind: 'behind', failed: 'failed', held: 'held' };

function outcome(o: string): Html {
  return html`<span class="badge ${OUTCOME_CLASS[o] ?? 'down'}">${o.replace(/_/g, ' ')}</span>`;
}

function rolloutStatus(s: string): Html {
  const cls = s === 'running' ? 's-running' : s === 'succeeded' ? 's-done' : s === 'rolled_back' ? 'i-corrective' : 's-failed';
  return html`<span class="badge ${cls}">${s.replace(/_/g, ' ')}</span>`;
}

/** Verify after a batch, as far as the rollout's record tells: the checks gate the next batch. */
function verifyCell(r: RolloutRow, rel: ConsoleReleases, j: JobSummary, last: boolean): Html {
  if (!rel.verifyChecks.length) return html`<span class="muted">no checks configured</span>`;
  const names = rel.verifyChecks.join(', ');
  if (j.running) return html`<span class="muted">after the batch: ${names}</span>`;
  if (j.counts.done !== Object.values(j.counts).reduce((a, b) => a + b, 0)) return html`<span class="muted">not run: the batch failed</span>`;
  if (last && r.status !== 'succeeded' && r.message && /verify/.test(r.message)) return html`<span class="badge s-failed">failed</span> <span class="error">${r.message}</span>`;
  if (last && r.status === 'running') return html`<span class="badge s-running">checking</span> ${names}`;
  return html`<span class="badge s-done">passed</span> ${names}`;
}

export function rolloutSection(src: ConsoleSource, qs: ConsoleQueries, rel: ConsoleReleases): Html {
  const running = rel.running();
  const r = running !== undefined ? src.store.getRollout(running) : src.store.listRollouts(1)[0];
  if (!r) return html`<div id="rollout"><p class="muted">No rollout yet: a push to the branch (or <code>tsalt rollout</code>) starts one.</p></div>`;
  const jobs = r.jids.map((jid) => qs.jobSummary(jid)).filter((j): j is JobSummary => j !== undefined);
  const rollbacks = r.status === 'rolled_back' && r.previous ? qs.rollbackJobs(r.previous, r.started) : [];
  const row = (label: Html | string, j: JobSummary, verify: Html) =>
    html`<tr data-jid="${j.jid}"><td>${label}</td><td><a href="${href(['jobs', j.jid])}">${j.jid}</a></td><td>${qs.jobAgents(j.jid).map((m) => m.agent_id).join(', ')}</td><td>${counts(j.counts)}</td><td>${j.running ? html`<span class="badge s-running">running</span>` : between(j.created, j.finished)}</td><td>${verify}</td></tr>`;
  return html`<div id="rollout">
<h2>${running !== undefined ? 'Rollout running' : 'Last rollout'}: ${rev(r.revision)} ${rolloutStatus(r.status)}</h2>
<table class="facts">
<tr><th>Why</th><td>${r.reason}${r.started_by !== r.reason ? html` by ${startedBy(r.started_by)}` : ''}</td></tr>
<tr><th>From</th><td>${rev(r.previous)} → ${rev(r.revision)}</td></tr>
<tr><th>Started</th><td>${time(r.started)}${r.finished ? html`, finished ${time(r.finished)} (${between(r.started, r.finished)})` : ''}</td></tr>
<tr><th>Batch</th><td>${r.batch} of ${r.batches}${rel.batch ? html` <span class="muted">(batch: ${rel.batch}${rel.target ? `, target ${rel.target}` : ''})</span>` : ''}</td></tr>
${r.message ? html`<tr><th>Note</th><td><pre class="comment">${r.message}</pre></td></tr>` : ''}
</table>
<table class="list" id="batches">
<thead><tr><th>Batch</th><th>Job</th><th>Agents</th><th>Outcome</th><th>Duration</th><th>Verify</th></tr></thead>
<tbody>${jobs.map((j, i) => row(`${i + 1}`, j, verifyCell(r, rel, j, i === jobs.length - 1)))}${rollbacks.map((j) => row(html`<span class="badge i-corrective">rollback</span>`, j, html``))}</tbody>
</table>
</div>`;
}

function revisionRow(r: RevisionRow, desired: string | undefined, head: string | undefined, agents: { applied: number; failed: number }): Html {
  return html`<tr data-revision="${r.sha}">
<td>${rev(r.sha)}${r.sha === desired ? html` <span class="badge s-done">desired</span>` : ''}${r.sha === head ? html` <span class="badge down">branch head</span>` : ''}</td>
<td>${time(r.date)}</td>
<td>${r.author ?? ''}</td>
<td>${r.subject ?? ''}</td>
<td>${outcome(r.outcome)}${r.detail ? html` <span class="muted">${r.detail}</span>` : ''}</td>
<td class="num">${agents.applied}${agents.failed ? html` <span class="error">(${agents.failed} failed)</span>` : ''}</td>
<td>${r.sha === desired ? '' : html`<a href="${href(['releases', r.sha])}">what a rollback would change</a>`}</td>
</tr>`;
}

export async function releasesPage(src: ConsoleSource, qs: ConsoleQueries): Promise<Html> {
  const rel = src.releases;
  if (!rel) {
    return html`<h1>Releases</h1><p class="muted">This master serves a plain state tree: releases (revisions, rollouts, rollbacks) need <code>git:</code> or <code>rollout:</code> in master.yaml.</p>`;
  }
  const store = src.store;
  const desired = store.desired();
  const head = await src.head().catch(() => undefined);
  const agents = store.listAgents().filter((a) => a.key_state === 'accepted');
  const revisions = store.listRevisions(50);
  const desiredRow = desired ? store.getRevision(desired) : undefined;
  const rollouts = store.listRollouts(10);
  return html`<h1>Releases</h1>
<table class="facts">
<tr><th>Serving</th><td>${rel.label}</td></tr>
<tr><th>Desired revision</th><td>${rev(desired)} ${desiredRow?.subject ?? ''}</td></tr>
<tr><th>Branch head</th><td>${rev(head)}</td></tr>
<tr><th>Verify after each batch</th><td>${rel.verifyChecks.length ? rel.verifyChecks.join('; ') : html`<span class="muted">nothing configured (rollout.verify)</span>`}</td></tr>
</table>
<div id="rollout-live" data-live="/live/rollout" data-src="/releases?part=rollout">${rolloutSection(src, qs, rel)}</div>
<h2>Revisions</h2>
<table class="list" id="revisions">
<thead><tr><th>Commit</th><th>Date</th><th>Author</th><th>Subject</th><th>Outcome</th><th>Agents on it</th><th></th></tr></thead>
<tbody>${revisions.map((r) =>
    revisionRow(r, desired, head, {
      applied: agents.filter((a) => a.revision_applied === r.sha).length,
      failed: agents.filter((a) => a.revision_attempted === r.sha && a.attempt_status !== 'done' && a.revision_applied !== r.sha).length,
    }),
  )}</tbody>
</table>
${rollouts.length > 1 ? html`<h2>Earlier rollouts</h2>
<table class="list" id="rollouts">
<thead><tr><th>Revision</th><th>Why</th><th>By</th><th>Started</th><th>Status</th><th>Agents</th><th>Note</th></tr></thead>
<tbody>${rollouts.slice(1).map((r) => html`<tr><td>${rev(r.revision)}</td><td>${r.reason}</td><td>${startedBy(r.started_by)}</td><td>${time(r.started)}</td><td>${rolloutStatus(r.status)}</td><td>${r.agents.join(', ')}</td><td>${r.message ?? ''}</td></tr>`)}</tbody>
</table>` : ''}`;
}

/** /releases/<sha>: what making <sha> the fleet's revision again would change. */
export async function rollbackPage(src: ConsoleSource, qs: ConsoleQueries, sha: string): Promise<Html | undefined> {
  const rel = src.releases;
  if (!rel || !/^[0-9a-f]{7,40}$/.test(sha)) return undefined;
  const store = src.store;
  const row = store.listRevisions(1000).find((r) => r.sha.startsWith(sha));
  if (!row) return undefined;
  const desired = store.desired();
  let changes: Html;
  if (!desired) changes = html`<p class="muted">No desired revision yet: nothing to compare with.</p>`;
  else {
    try {
      const [from, to] = await Promise.all([rel.states(desired), rel.states(row.sha)]);
      const files = treeChanges(from.entries, to.entries);
      changes = files.length
        ? html`${files.map(
            (f) => html`<h3><code>${f.path}</code> <span class="badge ${f.change === 'added' ? 's-done' : f.change === 'removed' ? 's-failed' : 'r-changed'}">${f.change}</span>${f.executable ? html` <span class="muted">executable ${String(f.executable.from)} → ${String(f.executable.to)}</span>` : ''}</h3>${f.diff ? (/^(---|\+\+\+|@@) /m.test(f.diff) ? diffBlock(f.diff) : html`<p>${f.diff}</p>`) : ''}`,
          )}`
        : html`<p class="muted">The state tree is the same at both revisions (pillar is not compared).</p>`;
    } catch (e) {
      changes = html`<p class="error">${(e as Error).message}</p>`;
    }
  }
  const sync = agentSync(store, new Set(src.connectedIds()));
  const moving = sync.filter((a) => a.revision_applied !== row.sha);
  const tests = qs.testRunsOf(row.sha, 5);
  return html`<h1>Rolling back to <code>${row.sha.slice(0, 12)}</code></h1>
<table class="facts">
<tr><th>Commit</th><td><code>${row.sha}</code></td></tr>
<tr><th>Subject</th><td>${row.subject ?? ''}</td></tr>
<tr><th>Author</th><td>${row.author ?? ''}, ${time(row.date)}</td></tr>
<tr><th>Outcome so far</th><td>${outcome(row.outcome)}</td></tr>
<tr><th>Desired now</th><td>${rev(desired)}</td></tr>
</table>
<p>The console changes nothing. To roll back: <code>tsalt rollback ${row.sha.slice(0, 12)}</code>; to see each agent's changes first: <code>tsalt apply '${rel.target ?? '*'}' --revision ${row.sha.slice(0, 12)} --test</code> (its result shows below).</p>
<h2>Agents that would move (${moving.length} of ${sync.length})</h2>
<table class="list" id="moving">
<thead><tr><th>Agent</th><th>Applied now</th><th>Sync</th></tr></thead>
<tbody>${moving.map((a) => html`<tr><td><a href="${href(['agents', a.id])}">${a.id}</a></td><td>${rev(a.revision_applied)}</td><td>${SYNC_WORDS[a.sync]}</td></tr>`)}</tbody>
</table>
<h2>Predicted changes on the agents (test runs of this revision)</h2>
${tests.length ? html`<table class="list" id="test-runs"><thead><tr><th>Job</th><th>Started</th><th>By</th><th>Agents</th></tr></thead><tbody>${tests.map((j) => html`<tr><td><a href="${href(['jobs', j.jid])}">${j.jid}</a></td><td>${time(j.created)}</td><td>${startedBy(j.started_by)}</td><td>${counts(j.counts)}</td></tr>`)}</tbody></table>` : html`<p class="muted">No test run of this revision yet.</p>`}
<h2>State tree changes from the desired revision</h2>
<div id="tree-changes">${changes}</div>`;
}
