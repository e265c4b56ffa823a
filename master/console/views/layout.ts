/** The page around every view: navigation, the stylesheet and the client script (no inline code: CSP). */
import { html, type Html } from '../html.js';

export type Section = 'agents' | 'jobs' | 'releases' | 'schedules';

const NAV: [Section, string][] = [
  ['agents', 'Agents'],
  ['jobs', 'Jobs'],
  ['releases', 'Releases'],
  ['schedules', 'Schedules'],
];

export function page(o: { title: string; section: Section; body: Html; sections: ReadonlySet<Section>; refresh?: boolean }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${o.title} · tsalt</title>
<link rel="stylesheet" href="/static/console.css">
${o.refresh ? html`<noscript><meta http-equiv="refresh" content="5"></noscript>` : ''}
<script src="/static/console.js" defer></script>
</head>
<body>
<header>
<a class="brand" href="/agents">tsalt</a>
<nav>${NAV.filter(([s]) => o.sections.has(s)).map(([s, label]) => html`<a href="/${s}"${s === o.section ? html` aria-current="page"` : ''}>${label}</a>`)}</nav>
<span class="readonly">read-only console</span>
</header>
<main>
${o.body}
</main>
</body>
</html>
`;
}
