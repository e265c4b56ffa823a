/**
 * Timing one whole process: wall time from our clock around spawn, peak RSS and CPU from
 * GNU time (`/usr/bin/time -f`), which reads the child's rusage after it exits, so nothing of
 * the measured process is sampled or missed. Figures are medians with min/max spread.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const GNU_TIME = '/usr/bin/time';

/**
 * Run argv once. Returns wall ms, peak RSS (KiB), user+sys CPU ms, exit code and output.
 * GNU time writes to its own file (-o) so the measured program's stderr stays its own.
 */
export function timeOnce(argv, { env, cwd, input } = {}) {
  if (!fs.existsSync(GNU_TIME)) throw new Error(`${GNU_TIME} missing: run bash bench/setup.sh (Debian package 'time')`);
  const out = path.join(os.tmpdir(), `tsalt-bench-time-${process.pid}-${Math.random().toString(36).slice(2)}`);
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(GNU_TIME, ['-o', out, '-f', '%M %U %S', ...argv], {
      cwd,
      env: env ?? process.env,
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const so = [];
    const se = [];
    child.stdout.on('data', (d) => so.push(d));
    child.stderr.on('data', (d) => se.push(d));
    if (input !== undefined) child.stdin.end(input);
    child.on('error', reject);
    child.on('close', (code) => {
      const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
      let rssKiB = NaN;
      let cpuMs = NaN;
      try {
        // Last line: a non-zero exit adds "Command exited with non-zero status N" before it.
        const last = fs.readFileSync(out, 'utf8').trim().split('\n').pop() ?? '';
        const [m, u, s] = last.split(/\s+/).map(Number);
        rssKiB = m;
        cpuMs = (u + s) * 1000;
      } catch {
        /* figures stay NaN: shown as '-' */
      }
      fs.rmSync(out, { force: true });
      resolve({ wallMs, rssKiB, cpuMs, code, stdout: Buffer.concat(so).toString(), stderr: Buffer.concat(se).toString() });
    });
  });
}

/**
 * Run argv `runs` times in sequence; every run must exit with `expectCode` (a benchmark of a
 * failing run measures nothing), else throws with the run's output.
 */
export async function timeMany(label, argv, { runs = 5, expectCode = 0, check, ...opts } = {}) {
  const samples = [];
  for (let i = 0; i < runs; i++) {
    const r = await timeOnce(argv, opts);
    if (r.code !== expectCode) {
      throw new Error(`${label}: run ${i + 1} exited ${r.code} (want ${expectCode}):\n${tail(r.stdout)}\n${tail(r.stderr)}`);
    }
    if (check) check(r, i);
    samples.push(r);
  }
  return summarise(label, samples);
}

export function summarise(label, samples) {
  const pick = (k) => samples.map((s) => s[k]).filter((v) => Number.isFinite(v));
  return {
    label,
    runs: samples.length,
    wall: stats(pick('wallMs')),
    rssKiB: stats(pick('rssKiB')),
    cpu: stats(pick('cpuMs')),
    last: samples[samples.length - 1],
  };
}

export function stats(xs) {
  if (!xs.length) return { median: NaN, min: NaN, max: NaN, n: 0 };
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  const median = s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
  return { median, min: s[0], max: s[s.length - 1], n: s.length };
}

export function tail(text, lines = 15) {
  return String(text ?? '').trim().split('\n').slice(-lines).join('\n');
}

export function loadAvg() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
