/** Small text formats shared by the pages: times, durations, revisions, outcome counts. */
import { html, type Html } from '../html.js';
import type { StatusCounts } from '../queries.js';

/** `2026-12-06 08:40:01` (UTC, as stored), with the full ISO time as the tooltip. */
export function time(iso: string | null | undefined): Html {
  if (!iso) return html`<span class="muted">never</span>`;
  const shown = iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '');
  return html`<time datetime="${iso}" title="${iso}">${shown}</time>`;
}

export function duration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms) || ms < 0) return '';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 2 : 1)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${Math.round(s - m * 60)} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function between(from: string | null | undefined, to: string | null | undefined): string {
  if (!from || !to) return '';
  return duration(Date.parse(to) - Date.parse(from));
}

export function rev(r: string | null | undefined): Html {
  if (!r) return html`<span class="muted">none</span>`;
  return html`<code title="${r}">${r.startsWith('dir-') ? r : r.slice(0, 12)}</code>`;
}

const ORDER: (keyof StatusCounts)[] = ['done', 'failed', 'timeout', 'lost', 'cancelled', 'running', 'queued'];

export function counts(c: StatusCounts): Html {
  const parts = ORDER.filter((k) => c[k] > 0).map((k) => html`<span class="badge s-${k}">${c[k]} ${k}</span>`);
  return parts.length ? html`${parts}` : html`<span class="muted">no agent</span>`;
}

export function statusBadge(status: string): Html {
  return html`<span class="badge s-${status.replace(/[^a-z-]/g, '')}">${status}</span>`;
}

/** `G@roles:web` style prefix-free display of a target with its type. */
export function target(tgt: string, tgtType: string): Html {
  return tgtType === 'glob' ? html`<code>${tgt}</code>` : html`<code>${tgt}</code> <span class="muted">(${tgtType})</span>`;
}

/** What a job ran: its SLS list (highstate when empty) or its command. */
export function what(kind: string, args: Record<string, unknown>): Html {
  if (kind === 'run') return html`<code>${String(args.command ?? '')}</code>`;
  const sls = Array.isArray(args.sls) ? (args.sls as unknown[]).map(String) : [];
  return sls.length ? html`<code>${sls.join(', ')}</code>` : html`<span class="muted">highstate</span>`;
}

/** rollout / schedule:NAME / user@cli, as the job's started_by says. */
export function startedBy(by: string): Html {
  if (by === 'rollout') return html`<span class="badge who-rollout">rollout</span>`;
  if (by.startsWith('schedule:')) return html`<span class="badge who-schedule">schedule</span> ${by.slice('schedule:'.length)}`;
  return html`${by}`;
}
