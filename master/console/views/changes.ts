/**
 * A state's `changes` as an operator reads them: unified diffs as diffs (one line each, added,
 * removed, hunk), `show_changes: False` as a note and nothing else, the rest as JSON text.
 */
import { html, type Html } from '../html.js';

/** What file states put in `diff` when show_changes is False (Salt's placeholder). */
export const HIDDEN_DIFF = '<show_changes=False>';

function looksLikeDiff(s: string): boolean {
  return /^(---|\+\+\+|@@) /m.test(s);
}

export function diffBlock(text: string): Html {
  const lines = text.replace(/\n$/, '').split('\n');
  return html`<pre class="diff">${lines.map((l) => {
    const cls = l.startsWith('+++') || l.startsWith('---') ? 'file' : l.startsWith('@@') ? 'hunk' : l.startsWith('+') ? 'add' : l.startsWith('-') ? 'del' : 'ctx';
    return html`<span class="${cls}">${l}</span>`;
  })}</pre>`;
}

export function renderChanges(changes: Record<string, unknown>, depth = 0): Html {
  const keys = Object.keys(changes);
  if (!keys.length) return html``;
  return html`<dl class="changes">${keys.map((k) => {
    const v = changes[k];
    let body: Html;
    if (k === 'diff' && typeof v === 'string') {
      body =
        v === HIDDEN_DIFF
          ? html`<p class="muted hidden-diff">diff not shown (show_changes: False)</p>`
          : looksLikeDiff(v)
            ? diffBlock(v)
            : html`<p>${v}</p>`;
    } else if (v && typeof v === 'object' && !Array.isArray(v) && depth < 3) {
      body = renderChanges(v as Record<string, unknown>, depth + 1);
    } else {
      body = v === '' ? html`<span class="muted">(empty)</span>` : html`<pre class="value">${typeof v === 'string' ? v : JSON.stringify(v, null, 2)}</pre>`;
    }
    return html`<dt>${k}</dt><dd>${body}</dd>`;
  })}</dl>`;
}
