/**
 * One job: its facts, then per agent its status and every state result (result, comment,
 * duration, changes with file diffs). While it runs, the page is live: the client script
 * swaps in the sections the server says changed (see ../server.ts, /live/jobs/<jid>).
 */
import type { StateResult } from '../../../protocol/results.js';
import type { JobAgentRow } from '../../store-api.js';
import { href, html, type Html } from '../html.js';
import type { ConsoleQueries, JobSummary } from '../queries.js';
import { renderChanges } from './changes.js';
import { between, counts, duration, rev, startedBy, statusBadge, target, time, what } from './format.js';

export function jobSummary(j: JobSummary): Html {
  const a = j.args;
  return html`<div id="job-summary" data-running="${j.running ? 'yes' : 'no'}">
<table class="facts">
<tr><th>Kind</th><td>${j.kind}${a.test === true ? html` <span class="badge test">test run</span>` : j.kind === 'apply' ? html` <span class="badge i-${j.intent}" title="${INTENT_WHY[j.intent]}">${j.intent}</span>` : ''}</td></tr>
<tr><th>Started by</th><td>${startedBy(j.started_by)}</td></tr>
<tr><th>Target</th><td>${target(j.target, j.tgt_type)}</td></tr>
<tr><th>${j.kind === 'run' ? 'Command' : 'SLS'}</th><td>${what(j.kind, a)}</td></tr>
${Array.isArray(a.pillar_keys) ? html`<tr><th>Pillar given</th><td>keys ${(a.pillar_keys as unknown[]).map(String).join(', ')} <span class="muted">(values are not kept)</span></td></tr>` : ''}
${typeof a.batch === 'string' ? html`<tr><th>Batch</th><td>${a.batch}</td></tr>` : ''}
<tr><th>Revision</th><td>${rev(j.revision)}</td></tr>
<tr><th>Started</th><td>${time(j.created)}</td></tr>
<tr><th>Duration</th><td>${j.running ? html`<span class="badge s-running">running</span>` : between(j.created, j.finished)}</td></tr>
<tr><th>Agents</th><td id="job-counts">${counts(j.counts)}</td></tr>
</table>
</div>`;
}

function resultBadge(r: StateResult, test: boolean): Html {
  if (r.result === false) return html`<span class="badge r-false">failed</span>`;
  if (r.result === null) return html`<span class="badge r-none">would change</span>`;
  if (Object.keys(r.changes).length) return html`<span class="badge r-changed">${test ? 'would change' : 'changed'}</span>`;
  return html`<span class="badge r-true">ok</span>`;
}

type Intent = JobSummary['intent'] | undefined;

/** A schedule's run puts drift back (corrective); a rollout's or an operator's apply is intended. */
function intentOf(j: JobSummary): Intent {
  return j.kind === 'apply' && j.args.test !== true ? j.intent : undefined;
}

const INTENT_WHY: Record<JobSummary['intent'], string> = {
  corrective: 'a scheduled run: its changes put drift back',
  intentional: 'started by an operator or a rollout: its changes are the ones asked for',
};

function stateRow(r: StateResult, test: boolean, intent: Intent): Html {
  const changed = Object.keys(r.changes).length > 0;
  return html`<tr class="state" data-state="${r.id}">
<td>${resultBadge(r, test)}${changed && intent && r.result !== null && !test ? html` <span class="badge i-${intent}" title="${INTENT_WHY[intent]}">${intent}</span>` : ''}</td>
<td><code>${r.fun}</code><br><span class="sid">${r.id}</span>${r.name !== r.id ? html`<br><span class="muted">${r.name}</span>` : ''}<br><span class="muted">sls ${r.sls}</span></td>
<td><pre class="comment">${r.comment}</pre>${r.warnings?.length ? html`<pre class="warning">${r.warnings.join('\n')}</pre>` : ''}${changed ? renderChanges(r.changes) : ''}</td>
<td class="num">${duration(r.duration_ms)}</td>
</tr>`;
}

export async function agentSection(qs: ConsoleQueries, j: JobSummary, m: JobAgentRow, sig: string): Promise<Html> {
  const test = j.args.test === true;
  const results = await qs.agentResults(j.jid, m.agent_id);
  const notable = results.filter((r) => r.result !== true || Object.keys(r.changes).length > 0);
  const quiet = results.filter((r) => r.result === true && Object.keys(r.changes).length === 0);
  const failed = results.filter((r) => r.result === false).length;
  const changed = results.filter((r) => Object.keys(r.changes).length > 0).length;
  const intent = intentOf(j);
  const body = m.body;
  const head = html`<thead><tr><th>Result</th><th>State</th><th>Comment / changes</th><th>Duration</th></tr></thead>`;
  return html`<section class="agent" id="agent-${m.agent_id}" data-agent="${m.agent_id}" data-sig="${sig}">
<h2><a href="${href(['agents', m.agent_id])}">${m.agent_id}</a> ${statusBadge(m.status)} <span class="muted">${between(m.started ?? j.created, m.finished)}</span></h2>
<p class="muted">${results.length} state(s)${changed ? `, ${changed} ${test ? 'would change' : 'changed'}` : ''}${failed ? `, ${failed} failed` : ''}${intent && changed && !test ? html` · <span class="badge i-${intent}" title="${INTENT_WHY[intent]}">${intent}</span>` : ''}</p>
${m.error ? html`<pre class="error">${m.error}</pre>` : ''}
${body?.kind === 'error' && body.error !== m.error ? html`<pre class="error">${body.error}</pre>` : ''}
${body?.kind === 'run' ? html`<p>exit code <code>${body.retcode}</code></p><h3>stdout</h3><pre class="output">${body.stdout}</pre>${body.stderr ? html`<h3>stderr</h3><pre class="output">${body.stderr}</pre>` : ''}` : ''}
${notable.length ? html`<table class="states">${head}<tbody>${notable.map((r) => stateRow(r, test, intent))}</tbody></table>` : ''}
${quiet.length ? html`<details data-key="quiet-${m.agent_id}"><summary>${quiet.length} state(s) succeeded without changes</summary><table class="states">${head}<tbody>${quiet.map((r) => stateRow(r, test, intent))}</tbody></table></details>` : ''}
</section>`;
}

export async function agentFragment(qs: ConsoleQueries, jid: string, agent: string): Promise<Html | undefined> {
  const j = await qs.jobSummary(jid);
  const m = j && (await qs.jobAgents(jid)).find((x) => x.agent_id === agent);
  if (!j || !m) return undefined;
  return agentSection(qs, j, m, (await qs.signatures(jid)).get(agent) ?? '');
}

export async function jobPage(qs: ConsoleQueries, jid: string): Promise<Html | undefined> {
  const j = await qs.jobSummary(jid);
  if (!j) return undefined;
  const sigs = await qs.signatures(jid);
  const sections = await Promise.all((await qs.jobAgents(jid)).map((m) => agentSection(qs, j, m, sigs.get(m.agent_id) ?? '')));
  return html`<h1>Job <code>${j.jid}</code></h1>
<div id="job"${j.running ? html` data-live="${`/live/jobs/${j.jid}`}" data-src="${`/jobs/${j.jid}`}"` : ''}>
${jobSummary(j)}
<div id="agents">${sections}</div>
</div>`;
}
