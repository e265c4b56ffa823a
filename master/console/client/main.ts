/**
 * The console's only script (built by esbuild into the bundle, served as /static/console.js).
 * It makes a running job's page and the job list live: the server says over server-sent events
 * *which* part changed, and the script fetches that part rendered by the server and swaps it in.
 * Markup only ever comes from the server's escaping templates, parsed by DOMParser (which runs
 * no script); agent strings are never turned into markup here.
 */

function parseFragment(text: string): Element[] {
  const doc = new DOMParser().parseFromString(`<!doctype html><body>${text}`, 'text/html');
  return Array.from(doc.body.children);
}

async function fetchText(url: string): Promise<string | undefined> {
  const r = await fetch(url, { credentials: 'same-origin', headers: { Accept: 'text/html' } });
  return r.ok ? r.text() : undefined;
}

/** Replace `old` by `next`, keeping which <details> the reader had opened. */
function swap(old: Element, next: Element): void {
  const open = new Set(Array.from(old.querySelectorAll('details[open]')).map((d) => d.getAttribute('data-key')));
  for (const d of Array.from(next.querySelectorAll('details'))) if (open.has(d.getAttribute('data-key'))) d.setAttribute('open', '');
  old.replaceWith(document.importNode(next, true));
}

/** Runs `work` for queued keys one at a time; keys queued while it runs are done after. */
function serial(work: (key: string) => Promise<void>): (key: string) => void {
  const queue = new Set<string>();
  let running = false;
  const loop = async () => {
    running = true;
    while (queue.size) {
      const key = queue.values().next().value as string;
      queue.delete(key);
      try {
        await work(key);
      } catch {
        /* the next event retries */
      }
    }
    running = false;
  };
  return (key) => {
    queue.add(key);
    if (!running) void loop();
  };
}

function liveJob(root: HTMLElement): void {
  const src = root.dataset.src!;
  const es = new EventSource(root.dataset.live!);
  const update = serial(async (key) => {
    const url = key === '' ? `${src}?part=summary` : `${src}?part=agent&agent=${encodeURIComponent(key)}`;
    const text = await fetchText(url);
    const next = text === undefined ? undefined : parseFragment(text)[0];
    if (!next) return;
    const old = key === '' ? document.getElementById('job-summary') : document.getElementById(`agent-${key}`);
    if (old) swap(old, next);
    else if (key !== '') document.getElementById('agents')?.append(document.importNode(next, true));
  });
  es.addEventListener('sig', (e) => {
    const { agent, sig } = JSON.parse((e as MessageEvent<string>).data) as { agent: string; sig: string };
    if (document.getElementById(`agent-${agent}`)?.getAttribute('data-sig') !== sig) {
      update(agent);
      update('');
    }
  });
  es.addEventListener('done', () => {
    es.close();
    update('');
    root.removeAttribute('data-live');
  });
}

/** An element whose content the server re-renders whenever a job moves (the job list, a rollout). */
function liveContent(el: HTMLElement): void {
  const es = new EventSource(el.dataset.live!);
  const update = serial(async () => {
    const text = await fetchText(el.dataset.src!);
    if (text === undefined) return;
    // table rows only parse inside a table
    const nodes =
      el.tagName === 'TBODY'
        ? Array.from(new DOMParser().parseFromString(`<!doctype html><table><tbody>${text}</tbody></table>`, 'text/html').querySelectorAll('tbody > tr'))
        : parseFragment(text);
    el.replaceChildren(...nodes.map((n) => document.importNode(n, true)));
  });
  es.addEventListener('jobs', () => update('content'));
}

function start(): void {
  const job = document.getElementById('job');
  if (job?.dataset.live) liveJob(job);
  for (const id of ['job-rows', 'rollout-live']) {
    const el = document.getElementById(id);
    if (el?.dataset.live) liveContent(el);
  }
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
