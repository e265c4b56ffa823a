/**
 * Preloaded into the master by `bench/fleet.mjs --mem` (node --require): where the master's memory
 * goes (JS heap vs external/arrayBuffers vs the rest of RSS: OpenSSL, socket buffers, malloc).
 * Samples process.memoryUsage() every 50 ms and keeps the sample with the highest RSS; on
 * SIGWINCH it appends to $TSALT_MEM_PROBE_FILE one JSON line: that peak sample since the last
 * signal and the figures now, after a full GC when --expose-gc is on (live memory, not garbage).
 * With $TSALT_MEM_PROBE_SNAPSHOTS (a directory), each signal also writes a heap snapshot there.
 */
'use strict';
const fs = require('node:fs');
const file = process.env.TSALT_MEM_PROBE_FILE;
if (file) {
  const now = () => {
    const m = process.memoryUsage();
    return { rss: m.rss, heapTotal: m.heapTotal, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers };
  };
  let peak = now();
  setInterval(() => {
    const m = now();
    if (m.rss > peak.rss) peak = m;
  }, 50).unref();
  process.on('SIGWINCH', () => {
    const before = now();
    if (typeof global.gc === 'function') global.gc();
    const snapshots = process.env.TSALT_MEM_PROBE_SNAPSHOTS;
    if (snapshots) require('node:v8').writeHeapSnapshot(require('node:path').join(snapshots, `master-${Date.now()}.heapsnapshot`));
    fs.appendFileSync(file, JSON.stringify({ at: Date.now(), peak, now: before, afterGc: now() }) + '\n');
    peak = now();
  });
}
