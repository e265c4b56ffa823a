/**
 * Releases: the revisions timeline (commit, author, subject, outcome), the running (or last)
 * rollout batch by batch with its verify checks, and, per revision, what a rollback to it would
 * change: the state tree's diff from the desired revision, the agents that would move, and the
 * latest `--test` run of that revision (the console starts no job; the page says how to run one).
 */
import type { RevisionRow, RolloutBatchRow, VerifyOutcome, VerifyResultRow } from '../../store-api.js';
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

const CHECK_CLASS: Record<VerifyOutcome, string> = { passed: 's-done', failed: 's-failed', running: 's-running' };
const CHECK_WORD: Record<VerifyOutcome, string> = { passed: 'passed', failed: 'failed', running: 'checking' };

/** One verify check after a batch, as the store recorded it: outcome, name, tries, why it failed, when. */
function checkLine(v: VerifyResultRow): Html {
  return html`<div class="check" data-outcome="${v.outcome}"><span class="badge ${CHECK_CLASS[v.outcome]}">${CHECK_WORD[v.outcome]}</span> ${v.name}${v.attempts > 1 ? html` <span class="muted">(${v.attempts} tries)</span>` : ''}${v.message ? html` <span class="error">${v.message}</span>` : ''} <span class="muted">${time(v.finished ?? v.started)}</span></div>`;
}

/** The verify results stored for a batch; without any, why there are none. */
function verifyCell(b: RolloutBatchRow, rel: ConsoleReleases): Html {
  if (b.verify.length) return html`${b.verify.map(checkLine)}`;
  if (b.status === 'pending' || b.status === 'not_run') return html`<span class="muted">not run</span>`;
  if (b.status === 'skipped') return html`<span class="muted">not run: every agent offline</span>`;
  if (b.status === 'applying') return html`<span class="muted">after the batch${rel.verifyChecks.length ? `: ${rel.verifyChecks.join(', ')}` : ''}</span>`;
  if (b.status === 'failed') return html`<span class="muted">not run: the batch failed</span>`;
  return html`<span class="muted">no checks configured</span>`;
}

const BATCH_CLASS: Record<RolloutBatchRow['status'], string> = {
  pending: 'down',
  applying: 's-running',
  verifying: 's-running',
  done: 's-done',
  failed: 's-failed',
  skipped: 'down',
  not_run: 'down',
};

export async function rolloutSection(src: ConsoleSource, qs: ConsoleQueries, rel: ConsoleReleases): Promise<Html> {
  const running = rel.running();
  // the rollout and its batches in one read: a batch moving on between them showed beside a stale row
  const snap = await src.store.releaseSnapshot({ agents: false, rollouts: { limit: 1, running } });
  const r = running !== undefined ? snap.running : snap.rollouts[0];
  if (!r) return html`<div id="rollout"><p class="muted">No rollout yet: a push to the branch (or <code>tsalt rollout</code>) starts one.</p></div>`;
  const stored = snap.batches;
  const rollbacks = r.status === 'rolled_back' && r.previous ? await qs.rollbackJobs(r.previous, r.started) : [];
  // every job the section shows, read before it is drawn
  const summaries = new Map<string, JobSummary>();
  for (const jid of [...stored.map((b) => b.jid), ...(stored.length ? [] : r.jids)]) {
    if (jid && !summaries.has(jid)) {
      const j = await qs.jobSummary(jid);
      if (j) summaries.set(jid, j);
    }
  }
  const agentsOf = new Map<string, string>();
  const unrecorded = stored.length ? [] : r.jids.map((jid) => summaries.get(jid)).filter((j): j is JobSummary => j !== undefined);
  for (const j of [...unrecorded, ...rollbacks]) agentsOf.set(j.jid, (await qs.jobAgents(j.jid)).map((m) => m.agent_id).join(', '));
  const jobCells = (j: JobSummary | undefined, agents: string) =>
    j
      ? html`<td><a href="${href(['jobs', j.jid])}">${j.jid}</a></td><td>${agents}</td><td>${counts(j.counts)}</td><td>${j.running ? html`<span class="badge s-running">running</span>` : between(j.created, j.finished)}</td>`
      : html`<td><span class="muted">no job</span></td><td>${agents}</td><td></td><td></td>`;
  const batchRow = (b: RolloutBatchRow) => {
    const j = b.jid ? summaries.get(b.jid) : undefined;
    const agents = b.agents.map((a) => (b.offline.includes(a) ? `${a} (offline)` : a)).join(', ');
    return html`<tr data-batch="${String(b.batch)}" data-status="${b.status}"${b.jid ? html` data-jid="${b.jid}"` : ''}><td>${b.batch} <span class="badge ${BATCH_CLASS[b.status]}">${b.status.replace(/_/g, ' ')}</span></td><td>${b.group_name}</td>${jobCells(j, agents)}<td class="verify">${verifyCell(b, rel)}</td></tr>`;
  };
  // a rollout from before batches were stored (schema 4): its jobs (unrecorded), without verify results
  const jobRow = (label: Html | string, j: JobSummary, verify: Html) =>
    html`<tr data-jid="${j.jid}"><td>${label}</td><td></td>${jobCells(j, agentsOf.get(j.jid) ?? '')}<td>${verify}</td></tr>`;
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
<thead><tr><th>Batch</th><th>Group</th><th>Job</th><th>Agents</th><th>Outcome</th><th>Duration</th><th>Verify</th></tr></thead>
<tbody>${stored.map(batchRow)}${unrecorded.map((j, i) => jobRow(`${i + 1}`, j, html`<span class="muted">not recorded</span>`))}${rollbacks.map((j) => jobRow(html`<span class="badge i-corrective">rollback</span>`, j, html``))}</tbody>
</table>
</div>`;
}

/** What the releases page's live stream watches: the rollout's row and its stored batches and checks. */
export async function rolloutSignature(src: ConsoleSource, rel: ConsoleReleases): Promise<string> {
  const id = rel.running();
  const snap = await src.store.releaseSnapshot({ agents: false, rollouts: { limit: 1, running: id } });
  const r = id !== undefined ? snap.running : snap.rollouts[0];
  if (!r) return '';
  const batches = snap.batches.map((b) => `${b.status}:${b.jid ?? ''}:${b.verify.map((v) => `${v.outcome}${v.attempts}`).join(',')}`);
  return `${r.id}:${r.status}:${r.batch}:${r.jids.length}:${r.message ?? ''}:${id ?? ''}:${batches.join('|')}`;
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
  // in one read: a push acted on meanwhile is shown with its outcome and desired, or not yet (as `tsalt revisions`)
  const snap = await store.releaseSnapshot({ revisions: 50, rollouts: { limit: 10 } });
  const { revisions, desired, rollouts } = snap;
  const agents = snap.agents.filter((a) => a.key_state === 'accepted');
  // after the store: a push moves the branch before it is recorded
  const head = await src.head().catch(() => undefined);
  const desiredRow = desired ? await store.getRevision(desired) : undefined;
  const section = await rolloutSection(src, qs, rel);
  return html`<h1>Releases</h1>
<table class="facts">
<tr><th>Serving</th><td>${rel.label}</td></tr>
<tr><th>Desired revision</th><td>${rev(desired)} ${desiredRow?.subject ?? ''}</td></tr>
<tr><th>Branch head</th><td>${rev(head)}</td></tr>
<tr><th>Verify after each batch</th><td>${rel.verifyChecks.length ? rel.verifyChecks.join('; ') : html`<span class="muted">nothing configured (rollout.verify)</span>`}</td></tr>
</table>
<div id="rollout-live" data-live="/live/rollout" data-src="/releases?part=rollout">${section}</div>
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
  // the revision, the desired one and the agents' sync in one read (as `tsalt status`)
  const snap = await store.releaseSnapshot({ revisions: 1000 });
  const row = snap.revisions.find((r) => r.sha.startsWith(sha));
  if (!row) return undefined;
  const { desired } = snap;
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
  const sync = agentSync(snap, new Set(await src.connected()));
  const moving = sync.filter((a) => a.revision_applied !== row.sha);
  const tests = await qs.testRunsOf(row.sha, 5);
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
