/** The fleet: every accepted agent with its state and revision, filtered by a target; one agent's grains and jobs. */
import { TargetTypeSchema, type TargetType } from '../../../protocol/cli-messages.js';
import { resolveTarget, targetNeedsPillar, TargetError } from '../../target.js';
import type { AgentRow, ReleaseSnapshot } from '../../store-api.js';
import { href, html, type Html } from '../html.js';
import type { ConsoleQueries } from '../queries.js';
import type { ConsoleSource } from '../source.js';
import { agentSync } from '../../release-handlers.js';
import { SYNC_WORDS } from './releases.js';
import { between, rev, statusBadge, startedBy, target, time, what } from './format.js';

/** Target types the filter offers: the CLI's, minus pillar matching (the console never reads pillar). */
export const FILTER_TYPES: readonly TargetType[] = TargetTypeSchema.options.filter((t) => t !== 'pillar' && t !== 'pillar_pcre');

export type Sync = 'in sync' | 'behind' | 'failed' | 'held' | 'never applied' | 'unknown';

/**
 * With releases, as `tsalt status` says it (against the revision each agent should run: the
 * desired one, or the one a halted rollout or a targeted rollback holds it on); without, against
 * the state tree's HEAD.
 */
function syncTable(snap: ReleaseSnapshot | undefined, head: string | undefined, connected: ReadonlySet<string>): (a: AgentRow) => Sync {
  if (!snap) return (a) => syncOf(a, head);
  const byId = new Map(agentSync(snap, connected).map((l) => [l.id, l]));
  return (a) => {
    const l = byId.get(a.id);
    if (!l) return 'unknown';
    return !a.revision_applied && l.sync === 'behind' ? 'never applied' : SYNC_WORDS[l.sync];
  };
}

export function syncOf(a: AgentRow, head: string | undefined): Sync {
  const st = a.attempt_status;
  if (st === 'failed' || st === 'timeout' || st === 'lost') return 'failed';
  if (!a.revision_applied) return 'never applied';
  if (!head) return 'unknown';
  return a.revision_applied === head ? 'in sync' : 'behind';
}

/** The revision last given to the agent (a real run) and how it went. */
function attempt(a: AgentRow): Html {
  if (!a.revision_attempted) return html`<span class="muted">none</span>`;
  const st = a.attempt_status ? statusBadge(a.attempt_status) : html``;
  return html`${rev(a.revision_attempted)} ${a.attempt_jid ? html`<a href="${href(['jobs', a.attempt_jid])}">${st}</a>` : st}`;
}

function osOf(g: Record<string, unknown>): string {
  return [g.os, g.osrelease].filter((x) => typeof x === 'string' || typeof x === 'number').join(' ');
}

function rolesOf(g: Record<string, unknown>): string {
  const r = g.roles;
  if (Array.isArray(r)) return r.map(String).join(', ');
  return typeof r === 'string' ? r : '';
}

export async function agentsPage(src: ConsoleSource, qs: ConsoleQueries, tgt: string, tgtTypeRaw: string): Promise<Html> {
  // with releases, the rows and their sync against the desired revision from one read
  const snap = src.releases ? await src.store.releaseSnapshot() : undefined;
  const all = snap?.agents ?? (await src.store.listAgents());
  const accepted = all.filter((a) => a.key_state === 'accepted');
  const pending = all.filter((a) => a.key_state === 'pending').length;
  const tgtType = (FILTER_TYPES as readonly string[]).includes(tgtTypeRaw) ? (tgtTypeRaw as TargetType) : 'glob';
  let shown = accepted;
  let filterError: string | undefined;
  if (tgt.trim()) {
    if (targetNeedsPillar(tgt, tgtType, src.nodegroups)) {
      filterError = 'pillar matching (I@, J@) is not available in the console: it never reads pillar';
      shown = [];
    } else {
      try {
        shown = await resolveTarget(tgt, tgtType, accepted, src.nodegroups, () => Promise.reject(new Error('no pillar in the console')));
      } catch (e) {
        if (!(e instanceof TargetError)) throw e;
        filterError = e.message;
        shown = [];
      }
    }
  }
  const connected = await src.connected();
  const head = await src.head().catch(() => undefined);
  const sync = syncTable(snap, head, connected);
  const rows = shown.map((a) => {
    const s = sync(a);
    return html`<tr data-agent="${a.id}">
<td><a href="${href(['agents', a.id])}">${a.id}</a></td>
<td>${connected.has(a.id) ? html`<span class="badge up">connected</span>` : html`<span class="badge down">offline</span>`}</td>
<td>${time(a.last_seen)}</td>
<td>${osOf(a.grains)}</td>
<td>${rolesOf(a.grains)}</td>
<td>${rev(a.revision_applied)}</td>
<td>${attempt(a)}</td>
<td><span class="badge sync-${s.replace(/ /g, '-')}">${s}</span></td>
</tr>`;
  });
  return html`<h1>Agents</h1>
<form class="filter" method="get" action="/agents">
<label>Target <input name="tgt" value="${tgt}" placeholder="web* or G@roles:web and not db1" size="40"></label>
<label>as <select name="tgt_type">${FILTER_TYPES.map((t) => html`<option value="${t}"${t === tgtType ? html` selected` : ''}>${t}</option>`)}</select></label>
<button type="submit">Filter</button>
${tgt ? html`<a href="/agents">clear</a>` : ''}
</form>
${filterError ? html`<p class="error" role="alert">${filterError}</p>` : ''}
<p class="muted">${shown.length} of ${accepted.length} accepted agent(s)${pending ? `, ${pending} key(s) pending acceptance (tsalt keys list)` : ''}; state tree at ${head ? html`${rev(head)}` : 'no git revision'}.</p>
<table class="list" id="agents">
<thead><tr><th>ID</th><th>Connection</th><th>Last seen</th><th>OS</th><th>Roles</th><th>Applied</th><th>Last attempt</th><th>Sync</th></tr></thead>
<tbody>${rows}</tbody>
</table>`;
}

/** Grains as rows: nested keys joined with ':' (Salt's grains.get path), values as JSON unless plain text. */
function grainRows(g: Record<string, unknown>, prefix = ''): Html[] {
  const out: Html[] = [];
  for (const k of Object.keys(g).sort()) {
    const v = g[k];
    const key = prefix ? `${prefix}:${k}` : k;
    if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) out.push(...grainRows(v as Record<string, unknown>, key));
    else out.push(html`<tr><th scope="row"><code>${key}</code></th><td><pre class="value">${typeof v === 'string' ? v : JSON.stringify(v)}</pre></td></tr>`);
  }
  return out;
}

export async function agentPage(src: ConsoleSource, qs: ConsoleQueries, id: string): Promise<Html | undefined> {
  const snap = src.releases ? await src.store.releaseSnapshot({ agents: id }) : undefined;
  const a = snap ? snap.agents[0] : await src.store.getAgent(id);
  if (!a) return undefined;
  const head = await src.head().catch(() => undefined);
  const jobs = await qs.agentJobs(id, 50);
  const connected = await src.connected();
  const sync = syncTable(snap, head, connected);
  return html`<h1>Agent <code>${a.id}</code></h1>
<table class="facts">
<tr><th>Key</th><td>${a.key_state} <code class="muted">${a.fingerprint}</code></td></tr>
<tr><th>Connection</th><td>${connected.has(a.id) ? html`<span class="badge up">connected</span>` : html`<span class="badge down">offline</span>`}</td></tr>
<tr><th>First seen</th><td>${time(a.first_seen)}</td></tr>
<tr><th>Last seen</th><td>${time(a.last_seen)}</td></tr>
<tr><th>Applied revision</th><td>${rev(a.revision_applied)}</td></tr>
<tr><th>Last attempt</th><td>${attempt(a)}</td></tr>
<tr><th>Sync</th><td>${sync(a)}</td></tr>
</table>
<h2>Recent jobs</h2>
<table class="list" id="agent-jobs">
<thead><tr><th>Job</th><th>Started</th><th>By</th><th>Target</th><th>What</th><th>Outcome</th><th>Duration</th></tr></thead>
<tbody>${jobs.map(
    (j) => html`<tr><td><a href="${href(["jobs", j.jid])}#agent-${id}">${j.jid}</a></td><td>${time(j.created)}</td><td>${startedBy(j.started_by)}</td><td>${target(j.target, j.tgt_type)}</td><td>${what(j.kind, j.args)}${j.args.test === true ? html` <span class="badge test">test</span>` : ''}</td><td>${statusBadge(j.status)}</td><td>${between(j.created, j.finished)}</td></tr>`,
  )}</tbody>
</table>
<h2>Grains</h2>
<table class="grains" id="grains">${grainRows(a.grains)}</table>`;
}
