/** The master's schedule (master.yaml `schedule:`): each job with its last run, its outcome and its next run. */
import { href, html, type Html } from '../html.js';
import type { ConsoleQueries, JobSummary } from '../queries.js';
import type { ConsoleSource } from '../source.js';
import { counts, target, time } from './format.js';

function every(s: number): string {
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

export async function schedulesPage(src: ConsoleSource, qs: ConsoleQueries): Promise<Html> {
  const items = src.schedules();
  const lastRuns = new Map<string, JobSummary | undefined>();
  for (const s of items) if (s.last_run) lastRuns.set(s.last_run.jid, await qs.jobSummary(s.last_run.jid));
  return html`<h1>Schedules</h1>
${items.length ? '' : html`<p class="muted">No schedule in master.yaml.</p>`}
<table class="list" id="schedules">
<thead><tr><th>Name</th><th>Function</th><th>Target</th><th>SLS / command</th><th>When</th><th>Last run</th><th>Last result</th><th>Next run</th></tr></thead>
<tbody>${items.map((s) => {
    const last = s.last_run ? lastRuns.get(s.last_run.jid) : undefined;
    return html`<tr data-schedule="${s.name}">
<td>${s.name}${s.enabled ? '' : html` <span class="badge down">disabled</span>`}</td>
<td><code>${s.function}</code>${s.test ? html` <span class="badge test">test</span>` : ''}</td>
<td>${target(s.target, s.tgt_type)}</td>
<td>${s.command !== null ? html`<code>${s.command}</code>` : s.sls?.length ? html`<code>${s.sls.join(', ')}</code>` : html`<span class="muted">highstate</span>`}</td>
<td>${s.cron !== null ? html`cron <code>${s.cron}</code>` : every(s.interval_s)}${s.splay_s ? html` <span class="muted">+ up to ${s.splay_s} s</span>` : ''}</td>
<td>${s.last_run ? html`${time(s.last_run.time)} <a href="${href(['jobs', s.last_run.jid])}">${s.last_run.jid}</a>` : html`<span class="muted">never</span>`}</td>
<td>${s.running ? html`<a href="${href(['jobs', s.running])}"><span class="badge s-running">running</span></a>` : last ? counts(last.counts) : ''}</td>
<td>${time(s.next_run)}</td>
</tr>`;
  })}</tbody>
</table>`;
}
