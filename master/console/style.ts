/** The console's stylesheet, served as /static/console.css (CSP: no inline styles). */
export const CONSOLE_CSS = `
:root{--fg:#1d2329;--muted:#6a737d;--line:#d8dee4;--bg:#fff;--head:#24292f;--ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--info:#0969da}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:var(--fg);background:var(--bg)}
header{display:flex;gap:1.5em;align-items:center;background:var(--head);color:#fff;padding:.6em 1.2em}
header a{color:#d0d7de;text-decoration:none}
header a[aria-current]{color:#fff;font-weight:600;border-bottom:2px solid #fff}
header nav{display:flex;gap:1.2em}
.brand{font-weight:700;color:#fff!important}
.readonly{margin-left:auto;font-size:12px;color:#8c959f}
main{padding:1em 1.2em;max-width:1400px}
h1{font-size:20px;margin:.2em 0 .6em}
h2{font-size:16px;margin:1.2em 0 .4em}
h3{font-size:13px;margin:.6em 0 .2em}
a{color:var(--info)}
code,pre{font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
pre{margin:0;white-space:pre-wrap;word-break:break-word}
table{border-collapse:collapse}
table.list,table.states{width:100%}
th,td{text-align:left;vertical-align:top;padding:.35em .6em;border-bottom:1px solid var(--line)}
thead th{background:#f6f8fa;font-weight:600;font-size:12.5px}
td.num{text-align:right;white-space:nowrap}
table.facts th{width:11em;color:var(--muted);font-weight:500}
table.grains th{font-weight:400}
.muted{color:var(--muted)}
.error{color:var(--bad)}
pre.error{background:#ffebe9;padding:.4em .6em;border-radius:4px}
.badge{display:inline-block;padding:0 .5em;border-radius:1em;font-size:12px;line-height:1.6;border:1px solid var(--line);white-space:nowrap}
.up,.s-done,.r-true,.sync-in-sync{background:#dafbe1;border-color:#aceebb;color:#116329}
.down,.s-lost,.s-timeout,.s-cancelled,.sync-never-applied,.sync-unknown{background:#f6f8fa;color:var(--muted)}
.s-failed,.r-false,.sync-failed{background:#ffebe9;border-color:#ffcecb;color:#a40e26}
.s-running,.s-queued{background:#ddf4ff;border-color:#b6e3ff;color:#0550ae}
.r-changed,.r-none,.sync-behind,.sync-held{background:#fff8c5;border-color:#f5e0a0;color:#7d4e00}
.test{background:#fbefff;border-color:#ecd8f8;color:#8250df}
.i-corrective{background:#fff1e5;border-color:#ffd8b5;color:#953800}
.i-intentional{background:#ddf4ff;border-color:#b6e3ff;color:#0550ae}
.who-rollout,.who-schedule{background:#f6f8fa}
form.filter{display:flex;gap:.8em;align-items:center;margin:0 0 .8em}
input,select,button{font:inherit;padding:.25em .4em}
section.agent{border:1px solid var(--line);border-radius:6px;padding:0 .8em .6em;margin:0 0 1em}
section.agent h2 a{text-decoration:none}
.sid{font-weight:600}
details summary{cursor:pointer;color:var(--muted);margin:.4em 0}
dl.changes{margin:.4em 0 0}
dl.changes dt{font-weight:600;font-size:12px;color:var(--muted)}
dl.changes dd{margin:0 0 .3em 1em}
pre.diff{background:#f6f8fa;border:1px solid var(--line);border-radius:4px;padding:.3em 0;overflow-x:auto}
pre.diff span{display:block;padding:0 .6em}
pre.diff .add{background:#dafbe1}
pre.diff .del{background:#ffebe9}
pre.diff .hunk{background:#ddf4ff;color:#57606a}
pre.diff .file{color:var(--muted);font-weight:600}
pre.output{background:#f6f8fa;padding:.4em .6em;border-radius:4px}
pre.warning{color:var(--warn)}
.timeline li{margin:.2em 0}
`;
