/** The job history: newest first, who started each, what it ran, how its agents ended. */
import { href, html, type Html } from '../html.js';
import type { ConsoleQueries, JobSummary } from '../queries.js';
import { between, counts, rev, startedBy, target, time, what } from './format.js';

export const PAGE_SIZE = 50;

export function jobRow(j: JobSummary): Html {
  return html`<tr data-jid="${j.jid}">
<td><a href="${href(['jobs', j.jid])}">${j.jid}</a></td>
<td>${time(j.created)}</td>
<td>${startedBy(j.started_by)}</td>
<td>${j.kind}</td>
<td>${target(j.target, j.tgt_type)}</td>
<td>${what(j.kind, j.args)}</td>
<td>${j.args.test === true ? html`<span class="badge test">test</span>` : ''}</td>
<td>${counts(j.counts)}</td>
<td>${j.running ? html`<span class="badge s-running">running</span>` : between(j.created, j.finished)}</td>
<td>${rev(j.revision)}</td>
</tr>`;
}

export async function jobRows(qs: ConsoleQueries, before?: string): Promise<Html> {
  return html`${(await qs.jobs(PAGE_SIZE, before)).map(jobRow)}`;
}

export async function jobsPage(qs: ConsoleQueries, before?: string): Promise<Html> {
  const list = await qs.jobs(PAGE_SIZE, before);
  const older = list.length === PAGE_SIZE ? list[list.length - 1]!.jid : undefined;
  return html`<h1>Jobs</h1>
<table class="list" id="jobs">
<thead><tr><th>Job</th><th>Started</th><th>By</th><th>Kind</th><th>Target</th><th>SLS / command</th><th>Test</th><th>Agents</th><th>Duration</th><th>Revision</th></tr></thead>
<tbody id="job-rows"${before ? '' : html` data-live="/live/jobs" data-src="/jobs?part=rows"`}>${list.map(jobRow)}</tbody>
</table>
<p>${before ? html`<a href="/jobs">newest</a> ` : ''}${older ? html`<a href="${href(['jobs'], { before: older })}">older</a>` : ''}</p>`;
}
